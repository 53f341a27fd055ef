// Any-precision GEMV at ≤ 4 bits on prepared planes (issue #20 item 3): gemv_anyprec's arithmetic
// with lut4_rows' integer machinery. A width of ≤ 4 bits has ≤ 16 table entries per row, so the
// table fits one i8x16.swizzle as 7-bit levels u (value = lo + step·u per row), and the activations
// are lut4_quantize's int8 codes (one scale per 128 columns).
// Prepared planes: each plane stays separate (a pass at b bits reads planes 0..b−1 only, so bytes
// moved ∝ b), re-laid per row and 128 columns as 16 bytes where bit t of byte i is column i + 16t.
// Step t of a 128-column chunk then takes the code bit of plane p (code MSB first from plane 0, so
// bit k = bits−1−p) for 16 columns at once with one shift and one and per plane: i16x8 shifts (x86
// has no 8-bit ones) are exact here because the mask keeps only bits that never crossed a byte. The
// 16 columns of step t are activations 16t..16t+15 of the chunk: natural order, no permutation.

import { lut4_scratch_bytes } from './lut-gemv';

// Bit t of every byte of v moved to bit k.
// @ts-ignore: decorator
@inline function bitAt(v: v128, t: i32, k: i32): v128 {
  const m = i16x8.splat(<i16>(<i32>0x0101 << k));
  if (t > k) return v128.and(i16x8.shr_u(v, t - k), m);
  if (t < k) return v128.and(i16x8.shl(v, k - t), m);
  return v128.and(v, m);
}

// The codes of columns 16t..16t+15 of a chunk from its plane bytes at p (plane stride ps).
// @ts-ignore: decorator
@inline function codes(p: usize, ps: usize, t: i32, bits: i32): v128 {
  let c = bitAt(v128.load(p), t, bits - 1);
  if (bits > 1) c = v128.or(c, bitAt(v128.load(p + ps), t, bits - 2));
  if (bits > 2) c = v128.or(c, bitAt(v128.load(p + 2 * ps), t, bits - 3));
  if (bits > 3) c = v128.or(c, bitAt(v128.load(p + 3 * ps), t, bits - 4));
  return c;
}

// Σ q·u of 16 lanes into four i32 lanes (q int8 activations, u 7-bit levels).
// @ts-ignore: decorator
@inline function dot16(q: v128, u: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(q, u), i16x8.splat(1));
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), i16x8.extend_low_i8x16_u(u)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), i16x8.extend_high_i8x16_u(u)));
}

// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}

// @ts-ignore: decorator
@inline function rowsAt(bits: i32, planes: usize, ps: usize, tabs: usize, params: usize, rows: i32, cols: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  const nc = cols >> 7;
  const rb = <usize>(cols >> 3);
  const stride = lut4_scratch_bytes(cols);
  for (let b = 0; b < batch; b++) {
    const q = scratch + <usize>b * stride;
    const xs = q + <usize>cols;
    const xsum = load<f32>(xs + (<usize>nc << 2));
    const o = out + ((<usize>b * <usize>rows) << 2);
    let r = r0;
    // four rows share each activation load; their integer chains are independent
    for (; r + 4 <= r1; r += 4) {
      const t0 = tabs + (<usize>r << 4);
      const tb0 = v128.load(t0);
      const tb1 = v128.load(t0, 16);
      const tb2 = v128.load(t0, 32);
      const tb3 = v128.load(t0, 48);
      const pb = params + (<usize>r << 3);
      const p01 = v128.load(pb);
      const p23 = v128.load(pb, 16);
      const st = v128.shuffle<f32>(p01, p23, 0, 2, 4, 6);
      const lo = v128.shuffle<f32>(p01, p23, 1, 3, 5, 7);
      let acc = f32x4.splat(0);
      let p = planes + <usize>r * rb;
      let qp = q;
      for (let j = 0; j < nc; j++, p += 16, qp += 128) {
        let i0 = i32x4.splat(0);
        let i1 = i32x4.splat(0);
        let i2 = i32x4.splat(0);
        let i3 = i32x4.splat(0);
        // the eight steps written out, so that every shift amount is a constant
        const q0 = v128.load(qp, 0);
        i0 = i32x4.add(i0, term(q0, tb0, p, ps, 0, bits));
        i1 = i32x4.add(i1, term(q0, tb1, p + rb, ps, 0, bits));
        i2 = i32x4.add(i2, term(q0, tb2, p + 2 * rb, ps, 0, bits));
        i3 = i32x4.add(i3, term(q0, tb3, p + 3 * rb, ps, 0, bits));
        const q1 = v128.load(qp, 16);
        i0 = i32x4.add(i0, term(q1, tb0, p, ps, 1, bits));
        i1 = i32x4.add(i1, term(q1, tb1, p + rb, ps, 1, bits));
        i2 = i32x4.add(i2, term(q1, tb2, p + 2 * rb, ps, 1, bits));
        i3 = i32x4.add(i3, term(q1, tb3, p + 3 * rb, ps, 1, bits));
        const q2 = v128.load(qp, 32);
        i0 = i32x4.add(i0, term(q2, tb0, p, ps, 2, bits));
        i1 = i32x4.add(i1, term(q2, tb1, p + rb, ps, 2, bits));
        i2 = i32x4.add(i2, term(q2, tb2, p + 2 * rb, ps, 2, bits));
        i3 = i32x4.add(i3, term(q2, tb3, p + 3 * rb, ps, 2, bits));
        const q3 = v128.load(qp, 48);
        i0 = i32x4.add(i0, term(q3, tb0, p, ps, 3, bits));
        i1 = i32x4.add(i1, term(q3, tb1, p + rb, ps, 3, bits));
        i2 = i32x4.add(i2, term(q3, tb2, p + 2 * rb, ps, 3, bits));
        i3 = i32x4.add(i3, term(q3, tb3, p + 3 * rb, ps, 3, bits));
        const q4 = v128.load(qp, 64);
        i0 = i32x4.add(i0, term(q4, tb0, p, ps, 4, bits));
        i1 = i32x4.add(i1, term(q4, tb1, p + rb, ps, 4, bits));
        i2 = i32x4.add(i2, term(q4, tb2, p + 2 * rb, ps, 4, bits));
        i3 = i32x4.add(i3, term(q4, tb3, p + 3 * rb, ps, 4, bits));
        const q5 = v128.load(qp, 80);
        i0 = i32x4.add(i0, term(q5, tb0, p, ps, 5, bits));
        i1 = i32x4.add(i1, term(q5, tb1, p + rb, ps, 5, bits));
        i2 = i32x4.add(i2, term(q5, tb2, p + 2 * rb, ps, 5, bits));
        i3 = i32x4.add(i3, term(q5, tb3, p + 3 * rb, ps, 5, bits));
        const q6 = v128.load(qp, 96);
        i0 = i32x4.add(i0, term(q6, tb0, p, ps, 6, bits));
        i1 = i32x4.add(i1, term(q6, tb1, p + rb, ps, 6, bits));
        i2 = i32x4.add(i2, term(q6, tb2, p + 2 * rb, ps, 6, bits));
        i3 = i32x4.add(i3, term(q6, tb3, p + 3 * rb, ps, 6, bits));
        const q7 = v128.load(qp, 112);
        i0 = i32x4.add(i0, term(q7, tb0, p, ps, 7, bits));
        i1 = i32x4.add(i1, term(q7, tb1, p + rb, ps, 7, bits));
        i2 = i32x4.add(i2, term(q7, tb2, p + 2 * rb, ps, 7, bits));
        i3 = i32x4.add(i3, term(q7, tb3, p + 3 * rb, ps, 7, bits));
        // the four rows' lane sums side by side (row i in lane i), then one scale multiply for all
        const s01 = i32x4.add(v128.shuffle<i32>(i0, i1, 0, 4, 1, 5), v128.shuffle<i32>(i0, i1, 2, 6, 3, 7));
        const s23 = i32x4.add(v128.shuffle<i32>(i2, i3, 0, 4, 1, 5), v128.shuffle<i32>(i2, i3, 2, 6, 3, 7));
        const sum = i32x4.add(v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), v128.shuffle<i32>(s01, s23, 2, 3, 6, 7));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sum), f32x4.splat(load<f32>(xs + (<usize>j << 2)))));
      }
      v128.store(o + (<usize>r << 2), f32x4.add(f32x4.mul(acc, st), f32x4.mul(lo, f32x4.splat(xsum))));
    }
    for (; r < r1; r++) {
      const tb = v128.load(tabs + (<usize>r << 4));
      let acc: f32 = 0;
      let p = planes + <usize>r * rb;
      let qp = q;
      for (let j = 0; j < nc; j++, p += 16, qp += 128) {
        let i0 = i32x4.splat(0);
        i0 = i32x4.add(i0, term(v128.load(qp, 0), tb, p, ps, 0, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 16), tb, p, ps, 1, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 32), tb, p, ps, 2, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 48), tb, p, ps, 3, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 64), tb, p, ps, 4, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 80), tb, p, ps, 5, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 96), tb, p, ps, 6, bits));
        i0 = i32x4.add(i0, term(v128.load(qp, 112), tb, p, ps, 7, bits));
        const s = i32x4.extract_lane(i0, 0) + i32x4.extract_lane(i0, 1) + i32x4.extract_lane(i0, 2) + i32x4.extract_lane(i0, 3);
        acc += <f32>s * load<f32>(xs + (<usize>j << 2));
      }
      store<f32>(o + (<usize>r << 2), acc * load<f32>(params + (<usize>r << 3)) + load<f32>(params + (<usize>r << 3), 4) * xsum);
    }
  }
}

// Step t's 16 products of one row, summed into four i32 lanes.
// @ts-ignore: decorator
@inline function term(q: v128, tb: v128, p: usize, ps: usize, t: i32, bits: i32): v128 {
  return dot16(q, i8x16.swizzle(tb, codes(p, ps, t, bits)));
}

// 1 where this build has SIMD (anyprec_fast_rows needs it).
export function anyprec_fast_simd(): i32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}

// out[b·rows + r] for rows [r0, r1) and every token b, from lut4_quantize's records (cols, one block
// of cols, activation blocks of 128). planes: the prepared planes, plane p at planes + p·ps, row r's
// 128-column chunk j at r·cols/8 + 16j; tabs: 16 bytes per row (levels of codes 0..2^bits − 1);
// params: f32 (step, lo) per row. cols % 128 == 0, 1 ≤ bits ≤ 4 (the caller checks).
export function anyprec_fast_rows(planes: usize, ps: usize, bits: i32, tabs: usize, params: usize, rows: i32, cols: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  if (!ASC_FEATURE_SIMD) return;
  if (bits == 4) rowsAt(4, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else if (bits == 3) rowsAt(3, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else if (bits == 2) rowsAt(2, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else rowsAt(1, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
}
