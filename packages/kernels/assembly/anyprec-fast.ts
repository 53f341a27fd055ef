// Any-precision GEMV at ≤ 4 bits on prepared planes (issue #20 item 3): gemv_anyprec's arithmetic
// with lut4_rows' integer machinery. A width of ≤ 4 bits has ≤ 16 table entries per row, so the
// table fits one swizzle as 7-bit levels u (value = lo + step·u per row), and the activations are
// lut4_quantize's int8 codes (one scale per 128 columns).
// Prepared planes: each plane stays separate (a pass at b bits reads planes 0..b−1 only, so bytes
// moved ∝ b), re-laid per row and 128 columns as 16 bytes per plane. Columns 32s + i and 32s + 16 + i
// (s = 0..3, i = 0..15) sit in byte i at bits (p + s) mod 4 and 4 + (p + s) mod 4 of plane p: the
// planes' bits of one step s never share a position, so one and per plane (four masks in all) and
// an or per plane gather 32 columns' codes as two nibbles, low and high, as Q4_0's bytes hold them.
// The nibble is the code with its bits in the step's order, which the step's table undoes: per row
// and width four 16-byte tables, table s at index Σ_p bit_p·2^((p + s) mod 4) holding the level of
// code Σ_p bit_p·2^(bits − 1 − p) (the caller builds them). The 32 columns of step s are activations
// 32s..32s+31 of the chunk: natural order, no permutation.

import { lut4_scratch_bytes } from './lut-gemv';

// @ts-ignore: decorator
@inline function swz(t: v128, i: v128): v128 {
  // indices are ≤ 15 here, where the relaxed swizzle (one pshufb on x86) is exact
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.relaxed_swizzle(t, i);
  return i8x16.swizzle(t, i);
}

// Σ q·u of 16 lanes into four i32 lanes (q int8 activations, u 7-bit levels).
// @ts-ignore: decorator
@inline function dot16(q: v128, u: v128, ones: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(q, u), ones);
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q), i16x8.extend_low_i8x16_u(u)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q), i16x8.extend_high_i8x16_u(u)));
}

// Step s of one row: the 32 products of columns 32s..32s+31 in four i32 lanes. p: the row's chunk in
// plane 0 (plane stride ps); tb: the step's table; masks: 0x11 << k at masks + 16k; lo4: 0x0f.
// Lanes hold at most 128·127·127 per chunk: far from i32's range.
// @ts-ignore: decorator
@inline function step(p: usize, ps: usize, bits: i32, s: i32, tb: v128, ql: v128, qh: v128, masks: usize, lo4: v128, ones: v128): v128 {
  let c = v128.and(v128.load(p), v128.load(masks + (<usize>(s & 3) << 4)));
  if (bits > 1) c = v128.or(c, v128.and(v128.load(p + ps), v128.load(masks + (<usize>((s + 1) & 3) << 4))));
  if (bits > 2) c = v128.or(c, v128.and(v128.load(p + 2 * ps), v128.load(masks + (<usize>((s + 2) & 3) << 4))));
  if (bits > 3) c = v128.or(c, v128.and(v128.load(p + 3 * ps), v128.load(masks + (<usize>((s + 3) & 3) << 4))));
  const lo = swz(tb, v128.and(c, lo4));
  const hi = swz(tb, v128.and(i16x8.shr_u(c, 4), lo4));
  return i32x4.add(dot16(ql, lo, ones), dot16(qh, hi, ones));
}

// @ts-ignore: decorator
@inline function rowsAt(bits: i32, planes: usize, ps: usize, tabs: usize, params: usize, rows: i32, cols: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  const nc = cols >> 7;
  const rb = <usize>(cols >> 3);
  const stride = lut4_scratch_bytes(cols);
  const lo4 = i8x16.splat(0x0f);
  const ones = i16x8.splat(1);
  // the step's masks are loaded (L1): the four steps written out with the masks in registers ran
  // 2x slower in V8 (4096x4096, 1..4 bits), the loop body being a quarter of the code
  const masks = memory.data<u8>([0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
    0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44, 0x44,
    0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88], 16);
  for (let b = 0; b < batch; b++) {
    const q = scratch + <usize>b * stride;
    const xs = q + <usize>cols;
    const xsum = load<f32>(xs + (<usize>nc << 2));
    const o = out + ((<usize>b * <usize>rows) << 2);
    let r = r0;
    // four rows share each activation load; their integer chains are independent
    for (; r + 4 <= r1; r += 4) {
      const t0 = tabs + (<usize>r << 6);
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
        for (let st = 0; st < 4; st++) {
          const ql = v128.load(qp + (<usize>st << 5));
          const qh = v128.load(qp + (<usize>st << 5), 16);
          const tt = t0 + (<usize>st << 4);
          i0 = i32x4.add(i0, step(p, ps, bits, st, v128.load(tt), ql, qh, masks, lo4, ones));
          i1 = i32x4.add(i1, step(p + rb, ps, bits, st, v128.load(tt, 64), ql, qh, masks, lo4, ones));
          i2 = i32x4.add(i2, step(p + 2 * rb, ps, bits, st, v128.load(tt, 128), ql, qh, masks, lo4, ones));
          i3 = i32x4.add(i3, step(p + 3 * rb, ps, bits, st, v128.load(tt, 192), ql, qh, masks, lo4, ones));
        }
        // the four rows' lane sums side by side (row i in lane i), then one scale multiply for all
        const s01 = i32x4.add(v128.shuffle<i32>(i0, i1, 0, 4, 1, 5), v128.shuffle<i32>(i0, i1, 2, 6, 3, 7));
        const s23 = i32x4.add(v128.shuffle<i32>(i2, i3, 0, 4, 1, 5), v128.shuffle<i32>(i2, i3, 2, 6, 3, 7));
        const sum = i32x4.add(v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), v128.shuffle<i32>(s01, s23, 2, 3, 6, 7));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sum), f32x4.splat(load<f32>(xs + (<usize>j << 2)))));
      }
      v128.store(o + (<usize>r << 2), f32x4.add(f32x4.mul(acc, st), f32x4.mul(lo, f32x4.splat(xsum))));
    }
    for (; r < r1; r++) {
      const tb = tabs + (<usize>r << 6);
      let acc: f32 = 0;
      let p = planes + <usize>r * rb;
      let qp = q;
      for (let j = 0; j < nc; j++, p += 16, qp += 128) {
        let i0 = i32x4.splat(0);
        for (let st = 0; st < 4; st++) {
          i0 = i32x4.add(i0, step(p, ps, bits, st, v128.load(tb + (<usize>st << 4)), v128.load(qp + (<usize>st << 5)), v128.load(qp + (<usize>st << 5), 16), masks, lo4, ones));
        }
        const s = i32x4.extract_lane(i0, 0) + i32x4.extract_lane(i0, 1) + i32x4.extract_lane(i0, 2) + i32x4.extract_lane(i0, 3);
        acc += <f32>s * load<f32>(xs + (<usize>j << 2));
      }
      store<f32>(o + (<usize>r << 2), acc * load<f32>(params + (<usize>r << 3)) + load<f32>(params + (<usize>r << 3), 4) * xsum);
    }
  }
}

// 1 where this build has SIMD (anyprec_fast_rows needs it).
export function anyprec_fast_simd(): i32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}

// out[b·rows + r] for rows [r0, r1) and every token b, from lut4_quantize's records (cols, one block
// of cols, activation blocks of 128). planes: the prepared planes, plane p at planes + p·ps, row r's
// 128-column chunk j at r·cols/8 + 16j; tabs: 64 bytes per row (the four steps' tables);
// params: f32 (step, lo) per row. cols % 128 == 0, 1 ≤ bits ≤ 4 (the caller checks).
export function anyprec_fast_rows(planes: usize, ps: usize, bits: i32, tabs: usize, params: usize, rows: i32, cols: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  if (!ASC_FEATURE_SIMD) return;
  if (bits == 4) rowsAt(4, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else if (bits == 3) rowsAt(3, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else if (bits == 2) rowsAt(2, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
  else rowsAt(1, planes, ps, tabs, params, rows, cols, batch, scratch, out, r0, r1);
}
