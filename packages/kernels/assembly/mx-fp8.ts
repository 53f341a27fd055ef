// MXFP8 (E4M3 / E5M2 elements, E8M0 scales per 32) GEMV without a table: 16 codes at a time become
// f32s by moving their bits into an f32 (sign to bit 31, exponent and mantissa under f32's exponent
// field) and multiplying by 2^(127 − bias), which is exact for normals and subnormals alike (IEEE
// subnormals, never flushed in WebAssembly). The table GEMV (formats-gemv.ts) paid four scalar table
// loads and lane inserts per four codes: 0.5 GB/s against Q4_0 tiles' 13 on 4096×4096.
//
// Arithmetic equals gemv_lut_groups with that format's table, bit for bit: element c of a group feeds
// lane (c − c0) mod 4, lane += v·x[c] (v − 0 = v, −0 included), dot ((l0 + l1) + l2) + l3, the row
// sum += 2^(e − 127)·dot group after group. Specials follow @lowbit/formats' minifloats: E4M3 has no
// infinities and NaN at S.1111.111; E5M2 is IEEE-like (exponent 31: mantissa 0 ±Inf, else NaN).

// @ts-ignore: decorator
@inline function e8m0(e: u32): f32 {
  return e == 0xff ? NaN : e == 0 ? reinterpret<f32>(0x00400000) : reinterpret<f32>(e << 23);
}

// Four codes (u32 lanes) as f32 values.
// @ts-ignore: decorator
@inline function decode4(w: v128, e5m2: bool): v128 {
  const sign = i32x4.shl(v128.and(w, i32x4.splat(0x80)), 24);
  const mag = v128.and(w, i32x4.splat(0x7f));
  if (e5m2) {
    const v = f32x4.mul(v128.or(sign, i32x4.shl(mag, 21)), f32x4.splat(reinterpret<f32>(<u32>(127 + 112) << 23)));
    const special = i32x4.eq(v128.and(mag, i32x4.splat(0x7c)), i32x4.splat(0x7c));
    const inf = i32x4.eq(mag, i32x4.splat(0x7c));
    const s = v128.bitselect(v128.or(sign, i32x4.splat(0x7f800000)), i32x4.splat(0x7fc00000), inf);
    return v128.bitselect(s, v, special);
  }
  const v = f32x4.mul(v128.or(sign, i32x4.shl(mag, 20)), f32x4.splat(reinterpret<f32>(<u32>(127 + 120) << 23)));
  return v128.bitselect(i32x4.splat(0x7fc00000), v, i32x4.eq(mag, i32x4.splat(0x7f)));
}

// out[r] = Σ_g 2^(scale(r, g) − 127) · Σ_{c in g} fp8(code(r, c))·x[c], groups of 32, cols % 32 == 0.
// codes: rows × cols bytes; scales: rows × cols/32 E8M0 bytes. Returns 0, or 2 when not handled here
// (scalar build or cols not whole blocks: the caller runs the table GEMV).
export function gemv_mx_fp8(codes: usize, rows: i32, cols: i32, e5m2: i32, scales: usize, x: usize, out: usize): i32 {
  if (!ASC_FEATURE_SIMD || (cols & 31) != 0) return 2;
  const ng = cols >> 5;
  const e5 = e5m2 != 0;
  const rb = <usize>cols;
  let r = 0;
  // two rows at a time: their accumulator chains are independent (the adds of one row wait on each
  // other's latency) and they share the x loads; each row's additions keep their order
  for (; r + 2 <= rows; r += 2) {
    const src = codes + <usize>r * rb;
    let sum0: f32 = 0;
    let sum1: f32 = 0;
    for (let g = 0; g < ng; g++) {
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      const c0 = <usize>g << 5;
      for (let h: usize = 0; h < 32; h += 16) {
        const b0 = v128.load(src + c0 + h);
        const b1 = v128.load(src + rb + c0 + h);
        const lo0 = i16x8.extend_low_i8x16_u(b0);
        const hi0 = i16x8.extend_high_i8x16_u(b0);
        const lo1 = i16x8.extend_low_i8x16_u(b1);
        const hi1 = i16x8.extend_high_i8x16_u(b1);
        const xp = x + ((c0 + h) << 2);
        const x0 = v128.load(xp);
        const x1 = v128.load(xp, 16);
        const x2 = v128.load(xp, 32);
        const x3 = v128.load(xp, 48);
        acc0 = f32x4.add(acc0, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(lo0), e5), x0));
        acc1 = f32x4.add(acc1, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(lo1), e5), x0));
        acc0 = f32x4.add(acc0, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(lo0), e5), x1));
        acc1 = f32x4.add(acc1, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(lo1), e5), x1));
        acc0 = f32x4.add(acc0, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(hi0), e5), x2));
        acc1 = f32x4.add(acc1, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(hi1), e5), x2));
        acc0 = f32x4.add(acc0, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(hi0), e5), x3));
        acc1 = f32x4.add(acc1, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(hi1), e5), x3));
      }
      const dot0 = f32x4.extract_lane(acc0, 0) + f32x4.extract_lane(acc0, 1) + f32x4.extract_lane(acc0, 2) + f32x4.extract_lane(acc0, 3);
      const dot1 = f32x4.extract_lane(acc1, 0) + f32x4.extract_lane(acc1, 1) + f32x4.extract_lane(acc1, 2) + f32x4.extract_lane(acc1, 3);
      sum0 += e8m0(<u32>load<u8>(scales + <usize>r * <usize>ng + <usize>g)) * dot0;
      sum1 += e8m0(<u32>load<u8>(scales + <usize>(r + 1) * <usize>ng + <usize>g)) * dot1;
    }
    store<f32>(out + (<usize>r << 2), sum0);
    store<f32>(out + (<usize>(r + 1) << 2), sum1);
  }
  for (; r < rows; r++) {
    const src = codes + <usize>r * rb;
    let sum: f32 = 0;
    for (let g = 0; g < ng; g++) {
      let acc = f32x4.splat(0);
      const c0 = <usize>g << 5;
      for (let h: usize = 0; h < 32; h += 16) {
        const b = v128.load(src + c0 + h);
        const lo = i16x8.extend_low_i8x16_u(b);
        const hi = i16x8.extend_high_i8x16_u(b);
        const xp = x + ((c0 + h) << 2);
        acc = f32x4.add(acc, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(lo), e5), v128.load(xp)));
        acc = f32x4.add(acc, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(lo), e5), v128.load(xp, 16)));
        acc = f32x4.add(acc, f32x4.mul(decode4(i32x4.extend_low_i16x8_u(hi), e5), v128.load(xp, 32)));
        acc = f32x4.add(acc, f32x4.mul(decode4(i32x4.extend_high_i16x8_u(hi), e5), v128.load(xp, 48)));
      }
      const dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
      sum += e8m0(<u32>load<u8>(scales + <usize>r * <usize>ng + <usize>g)) * dot;
    }
    store<f32>(out + (<usize>r << 2), sum);
  }
  return 0;
}
