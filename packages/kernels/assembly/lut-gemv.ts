// 16-entry table GEMV on prepared 4-bit codes (NF4, codebooks of ≤ 16 entries, BCQ of ≤ 4 planes;
// issue #20 item 3). Each weight is a 4-bit index into a 16-entry table of 7-bit unsigned levels u,
// value = lo + step·u with (step, lo) per (row, block of `bs` columns); the table is per tensor, per
// row or per (row, block) (strides in bytes). i8x16.swizzle maps 16 codes to their levels in one
// instruction, and the relaxed i8·i7 dot multiplies them by int8 activations as Q4_0's tiles do
// (levels 0..127 are the 7-bit operand, so no sign trick is needed):
//   y[r] = Σ_b step_rb·Σ_{j in b} xs_j·(u·q)_j + lo_rb·Σ_{j in b} xs_j·Σq_j
// with x ≈ xs_j·q per 32 activations (q ∈ [−127, 127]), the second sum precomputed once per token.
// Codes: rows × cols/2 bytes, 32-column blocks of 16 bytes, byte i = element i (low nibble) and
// element i + 16 (high nibble), as ggml's Q4_0.

// x (cols f32) → q (i8), xs (f32 per 32), xsum (f32 per block of bs: Σ xs_j·Σq_j).
// @ts-ignore: decorator
@inline function quantizeX(x: usize, cols: i32, bs: i32, q: usize, xs: usize, xsum: usize): void {
  const n32 = cols >> 5;
  const per = bs >> 5;
  for (let j = 0; j < n32; j++) {
    const p = x + (<usize>j << 7);
    let m = f32x4.abs(v128.load(p));
    for (let i: usize = 16; i < 128; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + i)));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const inv: f32 = d > 0 ? 1 / d : 0;
    let s: i32 = 0;
    for (let i: usize = 0; i < 32; i++) {
      const v = <i32>nearest(load<f32>(p + (i << 2)) * inv);
      store<i8>(q + (<usize>j << 5) + i, <i8>v);
      s += v;
    }
    store<f32>(xs + (<usize>j << 2), d);
    const b = j / per;
    const prev: f32 = j % per == 0 ? 0 : load<f32>(xsum + (<usize>b << 2));
    store<f32>(xsum + (<usize>b << 2), prev + d * <f32>s);
  }
}

// One 32-column block: Σ u·q as four i32 lanes. c: 16 code bytes, t: the table, q0/q1: elements
// 0..15 / 16..31 of the activation codes.
// @ts-ignore: decorator
@inline function blockDot(c: v128, t: v128, q0: v128, q1: v128): v128 {
  const m = i8x16.splat(0x0f);
  const u0 = i8x16.swizzle(t, v128.and(c, m));
  const u1 = i8x16.swizzle(t, v128.and(i16x8.shr_u(c, 4), m));
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.relaxed_dot_i8x16_i7x16_add_s(q0, u0, i32x4.relaxed_dot_i8x16_i7x16_add_s(q1, u1, i32x4.splat(0)));
  }
  const a = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q0), i16x8.extend_low_i8x16_u(u0)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q0), i16x8.extend_high_i8x16_u(u0)));
  const b = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q1), i16x8.extend_low_i8x16_u(u1)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q1), i16x8.extend_high_i8x16_u(u1)));
  return i32x4.add(a, b);
}

// Bytes of scratch lut4_gemv needs for `cols` columns.
export function lut4_scratch_bytes(cols: i32): usize {
  return <usize>cols + <usize>(cols >> 5) * 8 + 16;
}

// out[b·rows + r] = row r of W times token b of x ([batch, cols] f32). codes: rows × cols/2 bytes;
// tabs: 16-byte tables, the one for (r, blk) at tabs + r·tabRow + blk·tabBlk; params: f32 (step, lo)
// per (row, block), rows × cols/bs pairs; scratch: lut4_scratch_bytes(cols). cols % 32 == 0 and
// bs % 32 == 0, bs | cols (the caller checks). Returns 0, or 2 in a build without SIMD.
export function lut4_gemv(codes: usize, tabs: usize, tabRow: i32, tabBlk: i32, params: usize, rows: i32, cols: i32, bs: i32, x: usize, batch: i32, scratch: usize, out: usize): i32 {
  if (!ASC_FEATURE_SIMD) return 2;
  const n32 = cols >> 5;
  const nb = cols / bs;
  const per = bs >> 5;
  const q = scratch;
  const xs = scratch + <usize>cols;
  const xsum = xs + (<usize>n32 << 2);
  const rb = <usize>(cols >> 1);
  for (let t = 0; t < batch; t++) {
    quantizeX(x + ((<usize>t * <usize>cols) << 2), cols, bs, q, xs, xsum);
    const o = out + ((<usize>t * <usize>rows) << 2);
    let r = 0;
    // two rows at a time share the activation loads and keep two independent accumulator chains
    for (; r + 2 <= rows; r += 2) {
      const c0 = codes + <usize>r * rb;
      const c1 = c0 + rb;
      const t0 = tabs + <usize>r * <usize>tabRow;
      const t1 = t0 + <usize>tabRow;
      const p0 = params + ((<usize>r * <usize>nb) << 3);
      const p1 = p0 + (<usize>nb << 3);
      let acc0 = f32x4.splat(0);
      let acc1 = f32x4.splat(0);
      let lo0: f32 = 0;
      let lo1: f32 = 0;
      let j = 0;
      for (let b = 0; b < nb; b++) {
        const tb0 = v128.load(t0 + <usize>b * <usize>tabBlk);
        const tb1 = v128.load(t1 + <usize>b * <usize>tabBlk);
        const st0 = load<f32>(p0 + (<usize>b << 3));
        const st1 = load<f32>(p1 + (<usize>b << 3));
        const X = load<f32>(xsum + (<usize>b << 2));
        lo0 += load<f32>(p0 + (<usize>b << 3), 4) * X;
        lo1 += load<f32>(p1 + (<usize>b << 3), 4) * X;
        for (let e = j + per; j < e; j++) {
          const q0 = v128.load(q + (<usize>j << 5));
          const q1 = v128.load(q + (<usize>j << 5), 16);
          const d = load<f32>(xs + (<usize>j << 2));
          const d0 = blockDot(v128.load(c0 + (<usize>j << 4)), tb0, q0, q1);
          const d1 = blockDot(v128.load(c1 + (<usize>j << 4)), tb1, q0, q1);
          acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(d0), f32x4.splat(d * st0)));
          acc1 = f32x4.add(acc1, f32x4.mul(f32x4.convert_i32x4_s(d1), f32x4.splat(d * st1)));
        }
      }
      store<f32>(o + (<usize>r << 2), hsum(acc0) + lo0);
      store<f32>(o + (<usize>(r + 1) << 2), hsum(acc1) + lo1);
    }
    for (; r < rows; r++) {
      const c0 = codes + <usize>r * rb;
      const t0 = tabs + <usize>r * <usize>tabRow;
      const p0 = params + ((<usize>r * <usize>nb) << 3);
      let acc0 = f32x4.splat(0);
      let lo0: f32 = 0;
      let j = 0;
      for (let b = 0; b < nb; b++) {
        const tb0 = v128.load(t0 + <usize>b * <usize>tabBlk);
        const st0 = load<f32>(p0 + (<usize>b << 3));
        lo0 += load<f32>(p0 + (<usize>b << 3), 4) * load<f32>(xsum + (<usize>b << 2));
        for (let e = j + per; j < e; j++) {
          const d0 = blockDot(v128.load(c0 + (<usize>j << 4)), tb0, v128.load(q + (<usize>j << 5)), v128.load(q + (<usize>j << 5), 16));
          acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(d0), f32x4.splat(load<f32>(xs + (<usize>j << 2)) * st0)));
        }
      }
      store<f32>(o + (<usize>r << 2), hsum(acc0) + lo0);
    }
  }
  return 0;
}

// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}
