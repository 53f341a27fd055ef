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
@inline function dotNibblesScalar(qs: usize, x: usize): i32 {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const byte = <i32>load<u8>(qs + <usize>j);
    s += (byte & 15) * <i32>load<i8>(x + <usize>j) + (byte >> 4) * <i32>load<i8>(x + <usize>(j + 16));
  }
  return s;
}

// One output of the scalar build: row `wr` against activation vector `bi` (block index base).
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

// Integer dot of one block with the activation codes (x0 = codes 0..15, x1 = 16..31), in i32 lanes.
// @ts-ignore: decorator
@inline function blockDot(kind: i32, qs: usize, x0: v128, x1: v128): v128 {
  if (kind == 0) {
    const w0 = v128.load(qs);
    const w1 = v128.load(qs, 16);
    let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), i16x8.extend_low_i8x16_s(x0));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), i16x8.extend_high_i8x16_s(x0)));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), i16x8.extend_low_i8x16_s(x1)));
    return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), i16x8.extend_high_i8x16_s(x1)));
  }
  const bytes = v128.load(qs);
  const lo = v128.and(bytes, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(bytes, 4);
  if (ASC_FEATURE_RELAXED_SIMD) {
    // i16 pair sums (<= 2·127·15 each) added once stay far inside i16 before the widening.
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)));
  }
  let a = i16x8.extmul_low_i8x16_s(lo, x0);
  a = i16x8.add(a, i16x8.extmul_high_i8x16_s(lo, x0));
  a = i16x8.add(a, i16x8.extmul_low_i8x16_s(hi, x1));
  a = i16x8.add(a, i16x8.extmul_high_i8x16_s(hi, x1));
  return i32x4.extadd_pairwise_i16x8_s(a);
}

// Scalar part of one block for row weights at `blk`: returns the scale d·xs and adds the
// zero-point / min term to the running correction (kept as a one-lane f32 accumulation).
// @ts-ignore: decorator
@inline function blockScale(kind: i32, blk: usize, dx: f32): f32 {
  return f16(load<u16>(blk)) * dx;
}

// @ts-ignore: decorator
@inline function blockCorr(kind: i32, blk: usize, d: f32, dx: f32, xsumk: f32): f32 {
  if (kind == 1) return -8 * d * xsumk;
  if (kind == 2) return f16(load<u16>(blk, 2)) * dx * xsumk;
  return 0;
}

// Four rows at a time: each activation block (two vectors, its scale and code sum) is loaded once
// for four weight rows. Rows past r1 repeat the last row; only real outputs are stored.
// @ts-ignore: decorator
@inline function tilesSimd(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const bsize: usize = kind == 0 ? 34 : kind == 1 ? 18 : 20;
  const qoff: usize = kind == 2 ? 4 : 2;
  const rowBytes = <usize>nblk * bsize;
  for (let r = r0; r < r1; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w + <usize>min<i32>(r + 1, r1 - 1) * rowBytes;
    const w2 = w + <usize>min<i32>(r + 2, r1 - 1) * rowBytes;
    const w3 = w + <usize>min<i32>(r + 3, r1 - 1) * rowBytes;
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b * <usize>nblk;
      let f0 = f32x4.splat(0), f1 = f32x4.splat(0), f2 = f32x4.splat(0), f3 = f32x4.splat(0);
      let c0: f32 = 0, c1: f32 = 0, c2: f32 = 0, c3: f32 = 0;
      for (let k = 0; k < nblk; k++) {
        const xk = xq + ((bi + <usize>k) << 5);
        const x0 = v128.load(xk);
        const x1 = v128.load(xk, 16);
        const dx = load<f32>(xs + ((bi + <usize>k) << 2));
        const sx = <f32>load<i32>(xsum + ((bi + <usize>k) << 2));
        const o = <usize>k * bsize;
        const d0 = blockScale(kind, w0 + o, dx), d1 = blockScale(kind, w1 + o, dx);
        const d2 = blockScale(kind, w2 + o, dx), d3 = blockScale(kind, w3 + o, dx);
        if (kind != 0) {
          c0 += blockCorr(kind, w0 + o, d0, dx, sx);
          c1 += blockCorr(kind, w1 + o, d1, dx, sx);
          c2 += blockCorr(kind, w2 + o, d2, dx, sx);
          c3 += blockCorr(kind, w3 + o, d3, dx, sx);
        }
        f0 = f32x4.add(f0, f32x4.mul(f32x4.convert_i32x4_s(blockDot(kind, w0 + o + qoff, x0, x1)), f32x4.splat(d0)));
        f1 = f32x4.add(f1, f32x4.mul(f32x4.convert_i32x4_s(blockDot(kind, w1 + o + qoff, x0, x1)), f32x4.splat(d1)));
        f2 = f32x4.add(f2, f32x4.mul(f32x4.convert_i32x4_s(blockDot(kind, w2 + o + qoff, x0, x1)), f32x4.splat(d2)));
        f3 = f32x4.add(f3, f32x4.mul(f32x4.convert_i32x4_s(blockDot(kind, w3 + o + qoff, x0, x1)), f32x4.splat(d3)));
      }
      const ob = out + ((<usize>b * <usize>rows + <usize>r) << 2);
      const n = min<i32>(4, r1 - r);
      store<f32>(ob, hsum(f0) + c0);
      if (n > 1) store<f32>(ob, hsum(f1) + c1, 4);
      if (n > 2) store<f32>(ob, hsum(f2) + c2, 8);
      if (n > 3) store<f32>(ob, hsum(f3) + c3, 12);
    }
  }
}

// kind: 0 = Q8_0, 1 = Q4_0, 2 = Q4_1. Computes rows [r0, r1).
export function matmul_ggml(kind: i32, w: usize, rows: i32, cols: i32, xq: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const nblk = cols >> 5; // ggml rows are whole blocks; the JS side checks cols % 32 == 0
  if (ASC_FEATURE_SIMD) {
    // Constant kinds let each copy of the inlined loop drop the other kinds' branches.
    if (kind == 0) tilesSimd(0, w, rows, nblk, xq, xs, xsum, batch, out, r0, r1);
    else if (kind == 1) tilesSimd(1, w, rows, nblk, xq, xs, xsum, batch, out, r0, r1);
    else tilesSimd(2, w, rows, nblk, xq, xs, xsum, batch, out, r0, r1);
    return;
  }
  const bsize: usize = kind == 0 ? 34 : kind == 1 ? 18 : 20;
  const rowBytes = <usize>nblk * bsize;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b * <usize>nblk;
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), rowScalar(kind, wr, nblk, bsize, xq, xs, xsum, bi));
    }
  }
}
