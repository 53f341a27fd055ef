import { hsum } from './f32';

// llama.cpp block formats (ggml-common.h), bit for bit:
//   block_q8_0 { f16 d; i8 qs[32]; }            34 bytes, w = d·q
//   block_q4_0 { f16 d; u8 qs[16]; }            18 bytes, w = d·(u − 8)
//   block_q4_1 { f16 d; f16 m; u8 qs[16]; }     20 bytes, w = d·u + m
// In the 4-bit blocks byte j holds element j (low nibble) and element j+16 (high nibble).
// Activations come from quantize_act_q8: int8 codes per 32 values in natural order, scale xs, code sum.

// f16 → f32 by placing the f16 exponent/mantissa bits in an f32 and rescaling by 2^112: one multiply
// handles normals and subnormals alike; the all-ones exponent (Inf/NaN) is mapped separately.
// @ts-ignore: decorator
@inline export function f16(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  if (em >= 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((em & 0x3ff) << 13));
  return reinterpret<f32>(sign | (em << 13)) * reinterpret<f32>(0x77800000);
}

// @ts-ignore: decorator
@inline function dotNibbles(qs: usize, x: usize): v128 {
  const bytes = v128.load(qs);
  const lo = v128.and(bytes, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(bytes, 4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(x, 16), hi,
      i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(x), lo, i32x4.splat(0)));
  } else {
    const x0 = v128.load(x);
    const x1 = v128.load(x, 16);
    let a = i16x8.extmul_low_i8x16_s(lo, x0);
    a = i16x8.add(a, i16x8.extmul_high_i8x16_s(lo, x0));
    a = i16x8.add(a, i16x8.extmul_low_i8x16_s(hi, x1));
    a = i16x8.add(a, i16x8.extmul_high_i8x16_s(hi, x1));
    return i32x4.extadd_pairwise_i16x8_s(a);
  }
}

// @ts-ignore: decorator
@inline function dotNibblesScalar(qs: usize, x: usize): i32 {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const byte = <i32>load<u8>(qs + <usize>j);
    s += (byte & 15) * <i32>load<i8>(x + <usize>j) + (byte >> 4) * <i32>load<i8>(x + <usize>(j + 16));
  }
  return s;
}

// @ts-ignore: decorator
@inline function dotBytes(qs: usize, x: usize): v128 {
  // |q·x| <= 127·127 does not leave room to add two products in i16, so widen first.
  const w0 = v128.load(qs);
  const w1 = v128.load(qs, 16);
  const x0 = v128.load(x);
  const x1 = v128.load(x, 16);
  let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), i16x8.extend_low_i8x16_s(x0));
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), i16x8.extend_high_i8x16_s(x0)));
  a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), i16x8.extend_low_i8x16_s(x1)));
  return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), i16x8.extend_high_i8x16_s(x1)));
}

// One output: row `wr` against activation vector `bi` (block index base). SIMD and scalar bodies are
// separate functions because a scalar build must not even declare a v128 local.
// @ts-ignore: decorator
@inline function rowSimd(kind: i32, wr: usize, nblk: i32, bsize: usize, xq: usize, xs: usize, xsum: usize, bi: usize): f32 {
  const qoff: usize = kind == 2 ? 4 : 2;
  let facc = f32x4.splat(0);
  let s: f32 = 0;
  for (let k = 0; k < nblk; k++) {
    const blk = wr + <usize>k * bsize;
    const dx = load<f32>(xs + ((bi + <usize>k) << 2));
    const d = f16(load<u16>(blk)) * dx;
    const xsumk = <f32>load<i32>(xsum + ((bi + <usize>k) << 2));
    if (kind == 1) s -= 8 * d * xsumk;
    else if (kind == 2) s += f16(load<u16>(blk, 2)) * dx * xsumk;
    const xk = xq + ((bi + <usize>k) << 5);
    const acc = kind == 0 ? dotBytes(blk + qoff, xk) : dotNibbles(blk + qoff, xk);
    facc = f32x4.add(facc, f32x4.mul(f32x4.convert_i32x4_s(acc), f32x4.splat(d)));
  }
  return s + hsum(facc);
}

// @ts-ignore: decorator
@inline function rowScalar(kind: i32, wr: usize, nblk: i32, bsize: usize, xq: usize, xs: usize, xsum: usize, bi: usize): f32 {
  const qoff: usize = kind == 2 ? 4 : 2;
  let s: f32 = 0;
  for (let k = 0; k < nblk; k++) {
    const blk = wr + <usize>k * bsize;
    const dx = load<f32>(xs + ((bi + <usize>k) << 2));
    const d = f16(load<u16>(blk)) * dx;
    const xsumk = <f32>load<i32>(xsum + ((bi + <usize>k) << 2));
    if (kind == 1) s -= 8 * d * xsumk;
    else if (kind == 2) s += f16(load<u16>(blk, 2)) * dx * xsumk;
    const xk = xq + ((bi + <usize>k) << 5);
    let dot = 0;
    if (kind == 0) {
      for (let j = 0; j < 32; j++) dot += <i32>load<i8>(blk + qoff + <usize>j) * <i32>load<i8>(xk + <usize>j);
    } else {
      dot = dotNibblesScalar(blk + qoff, xk);
    }
    s += d * <f32>dot;
  }
  return s;
}

// kind: 0 = Q8_0, 1 = Q4_0, 2 = Q4_1. Computes rows [r0, r1).
export function matmul_ggml(kind: i32, w: usize, rows: i32, cols: i32, xq: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const nblk = cols >> 5; // ggml rows are whole blocks; the JS side checks cols % 32 == 0
  const bsize: usize = kind == 0 ? 34 : kind == 1 ? 18 : 20;
  const rowBytes = <usize>nblk * bsize;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b * <usize>nblk;
      const v = ASC_FEATURE_SIMD
        ? rowSimd(kind, wr, nblk, bsize, xq, xs, xsum, bi)
        : rowScalar(kind, wr, nblk, bsize, xq, xs, xsum, bi);
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), v);
    }
  }
}
