// 16-entry table GEMV on prepared 4-bit codes (NF4, codebooks of ≤ 16 entries, BCQ of ≤ 4 planes;
// issue #20 item 3). Each weight is a 4-bit index into a 16-entry table of 7-bit unsigned levels u,
// value = lo + step·u with (step, lo) per (row, block of `bs` columns); the table is per tensor, per
// row or per (row, block) (strides in bytes). i8x16.swizzle maps 16 codes to their levels in one
// instruction, and the relaxed i8·i7 dot multiplies them by int8 activations as Q4_0's tiles do
// (levels 0..127 are the 7-bit operand, so no sign trick is needed):
//   y[r] = Σ_b step_rb·Σ_{j in b} xs_j·(u·q)_j + lo_rb·Σ_{j in b} xs_j·Σq_j
// with x ≈ xs_j·q per block of ab activations (q ∈ [−127, 127]; ab up to 256, as ggml's Q8_K for
// the K-quants), the second sum precomputed once per token.
// Codes: rows × cols/2 bytes, 32-column blocks of 16 bytes, byte i = element i (low nibble) and
// element i + 16 (high nibble), as ggml's Q4_0.

// x (cols f32) → q (i8), xs (f32 per ab), xsum (f32 per block of bs: Σ xs_a·Σq_a over its ab-blocks).
// @ts-ignore: decorator
@inline function quantizeX(x: usize, cols: i32, bs: i32, ab: i32, q: usize, xs: usize, xsum: usize): void {
  const na = cols / ab;
  const per = bs / ab;
  for (let a = 0; a < na; a++) {
    const p = x + ((<usize>a * <usize>ab) << 2);
    const len = <usize>ab << 2;
    let m = f32x4.abs(v128.load(p));
    for (let i: usize = 16; i < len; i += 16) m = f32x4.max(m, f32x4.abs(v128.load(p + i)));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const inv: f32 = d > 0 ? 1 / d : 0;
    let s: i32 = 0;
    const qa = q + <usize>a * <usize>ab;
    for (let i: usize = 0; i < <usize>ab; i++) {
      const v = <i32>nearest(load<f32>(p + (i << 2)) * inv);
      store<i8>(qa + i, <i8>v);
      s += v;
    }
    store<f32>(xs + (<usize>a << 2), d);
    const b = a / per;
    const prev: f32 = a % per == 0 ? 0 : load<f32>(xsum + (<usize>b << 2));
    store<f32>(xsum + (<usize>b << 2), prev + d * <f32>s);
  }
}

// One 32-column block added to acc (four i32 lanes of Σ u·q). c: 16 code bytes, t: the table,
// q0/q1: elements 0..15 / 16..31 of the activation codes. Lanes hold at most 8·2·127·127 per
// block, far from i32's range for any row length a WebAssembly memory holds.
// @ts-ignore: decorator
@inline function blockDot(c: v128, t: v128, q0: v128, q1: v128, acc: v128): v128 {
  const m = i8x16.splat(0x0f);
  return levelDot(i8x16.swizzle(t, v128.and(c, m)), i8x16.swizzle(t, v128.and(i16x8.shr_u(c, 4), m)), q0, q1, acc);
}

// The same for 2-bit codes, 8 bytes per 32 columns: byte i holds elements i, i + 8, i + 16, i + 24
// in its bit pairs 0-1, 2-3, 4-5, 6-7. c: the 8 bytes in both halves (load64_splat); the mask keeps
// bits 0-1 in lanes 0..7 and bits 2-3 in lanes 8..15, so a 16-entry table holding level m at index
// m and at 4m (lut-fast.ts spreads it) maps both at once: two swizzles per 32 columns as the 4-bit
// codes, half the code bytes streamed.
// @ts-ignore: decorator
@inline function blockDot2(c: v128, t: v128, q0: v128, q1: v128, acc: v128): v128 {
  const m = i64x2(0x0303030303030303, 0x0c0c0c0c0c0c0c0c);
  return levelDot(i8x16.swizzle(t, v128.and(c, m)), i8x16.swizzle(t, v128.and(i16x8.shr_u(c, 4), m)), q0, q1, acc);
}

// acc + Σ u·q over 32 columns, u0/u1: the levels (0..127) of elements 0..15 / 16..31.
// @ts-ignore: decorator
@inline function levelDot(u0: v128, u1: v128, q0: v128, q1: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // i16 pair sums (≤ 2·127·127 each) widened by pmaddwd against ones kept in a register: V8's
    // lowering of the fused dot-add loads its ones constant's address at every use
    const ones = i16x8.splat(1);
    return i32x4.add(acc, i32x4.add(
      i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(q0, u0), ones),
      i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(q1, u1), ones)));
  }
  const a = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q0), i16x8.extend_low_i8x16_u(u0)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q0), i16x8.extend_high_i8x16_u(u0)));
  const b = i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(q1), i16x8.extend_low_i8x16_u(u1)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(q1), i16x8.extend_high_i8x16_u(u1)));
  return i32x4.add(acc, i32x4.add(a, b));
}

// One 32-column block of 4-bit (two = false: 16 bytes at c) or 2-bit codes (8 bytes).
// @ts-ignore: decorator
@inline function codeDot(two: bool, c: usize, t: v128, q0: v128, q1: v128, acc: v128): v128 {
  return two ? blockDot2(v128.load64_splat(c), t, q0, q1, acc) : blockDot(v128.load(c), t, q0, q1, acc);
}

// Bytes of one token's activation record (int8 codes, scales per ab, sums per block), 16-aligned.
export function lut4_scratch_bytes(cols: i32): usize {
  return (<usize>cols + <usize>(cols >> 5) * 8 + 31) & ~(<usize>15);
}

// 1 where this build has SIMD (lut4_rows needs it).
export function lut4_simd(): i32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}

// The activation records of `batch` tokens (x: [batch, cols] f32) at scratch + t·lut4_scratch_bytes(cols),
// once per call, before lut4_rows splits the rows over threads.
export function lut4_quantize(x: usize, batch: i32, cols: i32, bs: i32, ab: i32, scratch: usize): void {
  if (!ASC_FEATURE_SIMD) return;
  const stride = lut4_scratch_bytes(cols);
  const na = cols / ab;
  for (let t = 0; t < batch; t++) {
    const q = scratch + <usize>t * stride;
    const xs = q + <usize>cols;
    quantizeX(x + ((<usize>t * <usize>cols) << 2), cols, bs, ab, q, xs, xs + (<usize>na << 2));
  }
}

// out[b·rows + r] for rows [r0, r1) (r0 a multiple of 4) and every token b, from lut4_quantize's
// records. codes: rows × cols/2 bytes; tabs: 16-byte tables, the one for (r, blk) at
// tabs + r·tabRow + blk·tabBlk; params per (row, block), rows × cols/bs of them: f32 (step, lo)
// pairs, or, when loRatio != 0 (its f32 bits in loRatioBits), f32 steps alone with lo = loRatio·step
// (tables symmetric about their middle, as NF4's: 4 bytes less per block); activations quantized per
// ab columns (ab | bs, ab % 32 == 0: one i32 chain per ab, converted to f32 once). cols % 32 == 0,
// bs | cols (the caller checks). A row kernel: a thread pool splits [0, rows) over its threads.
export function lut4_rows(codes: usize, tabs: usize, tabRow: i32, tabBlk: i32, params: usize, loRatioBits: i32, rows: i32, cols: i32, bs: i32, ab: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  // ab odd (ab | 1): 2-bit codes in blockDot2's layout, rows × cols/4 bytes, tables spread as it
  // reads them; a flag in ab rather than a second row kernel, which every thread pool would list
  if (ab & 1) lutRows(true, codes, tabs, tabRow, tabBlk, params, loRatioBits, rows, cols, bs, ab & ~1, batch, scratch, out, r0, r1);
  else lutRows(false, codes, tabs, tabRow, tabBlk, params, loRatioBits, rows, cols, bs, ab, batch, scratch, out, r0, r1);
}

// @ts-ignore: decorator
@inline function lutRows(two: bool, codes: usize, tabs: usize, tabRow: i32, tabBlk: i32, params: usize, loRatioBits: i32, rows: i32, cols: i32, bs: i32, ab: i32, batch: i32, scratch: usize, out: usize, r0: i32, r1: i32): void {
  if (!ASC_FEATURE_SIMD) return;
  const loRatio = reinterpret<f32>(loRatioBits);
  const na = cols / ab;
  const nb = cols / bs;
  const per = bs / ab;
  const chunks = ab >> 5;
  const rb = <usize>(two ? cols >> 2 : cols >> 1);
  const cs: usize = two ? 8 : 16;
  const pairs = loRatio == 0;
  const ps: usize = pairs ? 8 : 4;
  const pr = <usize>nb * ps;
  const tr = <usize>tabRow;
  const stride = lut4_scratch_bytes(cols);
  for (let t = 0; t < batch; t++) {
    const q = scratch + <usize>t * stride;
    const xs = q + <usize>cols;
    const xsum = xs + (<usize>na << 2);
    const o = out + ((<usize>t * <usize>rows) << 2);
    let r = r0;
    // four rows at a time share the activation loads and scales; their chains are independent
    for (; r + 4 <= r1; r += 4) {
      const t0 = tabs + <usize>r * tr;
      const p0 = params + <usize>r * pr;
      let c0 = codes + <usize>r * rb;
      let qp = q;
      let acc = f32x4.splat(0);
      let lo = f32x4.splat(0);
      let a = 0;
      // tables per tensor or per row (tabBlk 0: NF4, codebooks) are loaded once per tile
      let tb0 = v128.load(t0);
      let tb1 = v128.load(t0 + tr);
      let tb2 = v128.load(t0 + 2 * tr);
      let tb3 = v128.load(t0 + 3 * tr);
      for (let b = 0; b < nb; b++) {
        if (tabBlk != 0) {
          const tbo = t0 + <usize>b * <usize>tabBlk;
          tb0 = v128.load(tbo);
          tb1 = v128.load(tbo + tr);
          tb2 = v128.load(tbo + 2 * tr);
          tb3 = v128.load(tbo + 3 * tr);
        }
        const pb = p0 + <usize>b * ps;
        let st: v128;
        // with loRatio, lo4 holds the steps and loRatio multiplies the sum once at the end
        let lo4: v128;
        if (pairs) {
          // (step, lo) of the four rows: steps in lanes 0..3 of st, los of lo4
          const p01 = v128.load64_lane(pb + pr, v128.load64_zero(pb), 1);
          const p23 = v128.load64_lane(pb + 3 * pr, v128.load64_zero(pb + 2 * pr), 1);
          st = v128.shuffle<f32>(p01, p23, 0, 2, 4, 6);
          lo4 = v128.shuffle<f32>(p01, p23, 1, 3, 5, 7);
        } else {
          // four independent loads (a lane-insert chain waits on each insert)
          const s01 = v128.shuffle<f32>(v128.load32_zero(pb), v128.load32_zero(pb + pr), 0, 4, 1, 5);
          const s23 = v128.shuffle<f32>(v128.load32_zero(pb + 2 * pr), v128.load32_zero(pb + 3 * pr), 0, 4, 1, 5);
          st = v128.shuffle<f32>(s01, s23, 0, 1, 4, 5);
          lo4 = st;
        }
        lo = f32x4.add(lo, f32x4.mul(lo4, f32x4.splat(load<f32>(xsum + (<usize>b << 2)))));
        for (let ea = a + per; a < ea; a++) {
          let i0 = i32x4.splat(0);
          let i1 = i32x4.splat(0);
          let i2 = i32x4.splat(0);
          let i3 = i32x4.splat(0);
          for (let j = 0; j < chunks; j++, c0 += cs, qp += 32) {
            const q0 = v128.load(qp);
            const q1 = v128.load(qp, 16);
            i0 = codeDot(two, c0, tb0, q0, q1, i0);
            i1 = codeDot(two, c0 + rb, tb1, q0, q1, i1);
            i2 = codeDot(two, c0 + 2 * rb, tb2, q0, q1, i2);
            i3 = codeDot(two, c0 + 3 * rb, tb3, q0, q1, i3);
          }
          // the four rows' lane sums side by side (row i in lane i), then one scale multiply for all
          const s01 = i32x4.add(v128.shuffle<i32>(i0, i1, 0, 4, 1, 5), v128.shuffle<i32>(i0, i1, 2, 6, 3, 7));
          const s23 = i32x4.add(v128.shuffle<i32>(i2, i3, 0, 4, 1, 5), v128.shuffle<i32>(i2, i3, 2, 6, 3, 7));
          const sum = i32x4.add(v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), v128.shuffle<i32>(s01, s23, 2, 3, 6, 7));
          acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sum), f32x4.mul(st, f32x4.splat(load<f32>(xs + (<usize>a << 2))))));
        }
      }
      v128.store(o + (<usize>r << 2), f32x4.add(acc, pairs ? lo : f32x4.mul(lo, f32x4.splat(loRatio))));
    }
    for (; r < r1; r++) {
      const t0 = tabs + <usize>r * tr;
      const p0 = params + <usize>r * pr;
      let c0 = codes + <usize>r * rb;
      let qp = q;
      let acc0 = f32x4.splat(0);
      let lo0: f32 = 0;
      let a = 0;
      for (let b = 0; b < nb; b++) {
        const tb0 = v128.load(t0 + <usize>b * <usize>tabBlk);
        const st0 = load<f32>(p0 + <usize>b * ps);
        lo0 += (pairs ? load<f32>(p0 + <usize>b * ps, 4) : st0 * loRatio) * load<f32>(xsum + (<usize>b << 2));
        for (let ea = a + per; a < ea; a++) {
          let i0 = i32x4.splat(0);
          for (let j = 0; j < chunks; j++, c0 += cs, qp += 32) i0 = codeDot(two, c0, tb0, v128.load(qp), v128.load(qp, 16), i0);
          acc0 = f32x4.add(acc0, f32x4.mul(f32x4.convert_i32x4_s(i0), f32x4.splat(load<f32>(xs + (<usize>a << 2)) * st0)));
        }
      }
      store<f32>(o + (<usize>r << 2), hsum(acc0) + lo0);
    }
  }
}

// @ts-ignore: decorator
@inline function hsum(a: v128): f32 {
  return (f32x4.extract_lane(a, 0) + f32x4.extract_lane(a, 1)) + (f32x4.extract_lane(a, 2) + f32x4.extract_lane(a, 3));
}

// BiQGEMM's GEMV on BCQ bit-planes as stored (kept for the comparison in the lowbit-types benchmark;
// the runtime runs BCQ on lut4_rows, which was faster): per token, for every 8 activations, the 256
// sums ±x[8j]…±x[8j+7] (bit t of m set: +x[8j+t]) are tabulated once (table: cols/8 × 256 f32); then
// every code byte of every plane is one table load. planes: [bits][rows, cols/8] bytes; alphas:
// [rows, cols/group, bits] f32; cols % 8 == 0, group % 8 == 0 (the caller checks).
export function bcq_biq_gemv(planes: usize, alphas: usize, bits: i32, rows: i32, cols: i32, group: i32, x: usize, table: usize, out: usize): void {
  const nj = cols >> 3;
  for (let j = 0; j < nj; j++) {
    const t = table + (<usize>j << 10);
    const xj = x + (<usize>j << 5);
    let s: f32 = 0;
    for (let i: usize = 0; i < 8; i++) s -= load<f32>(xj + (i << 2));
    store<f32>(t, s);
    // m = (m without its lowest set bit) + that bit: the sum flips that one sign, −x → +x
    for (let m = 1; m < 256; m++) {
      const low = ctz<i32>(m);
      store<f32>(t + (<usize>m << 2), load<f32>(t + (<usize>(m & (m - 1)) << 2)) + 2 * load<f32>(xj + (<usize>low << 2)));
    }
  }
  const rpb = <usize>nj;
  const ng = cols / group;
  const gj = group >> 3;
  for (let r = 0; r < rows; r++) {
    let y: f32 = 0;
    for (let i = 0; i < bits; i++) {
      const row = planes + (<usize>i * <usize>rows + <usize>r) * rpb;
      for (let g = 0; g < ng; g++) {
        let s0: f32 = 0;
        let s1: f32 = 0;
        const j0 = g * gj;
        let j = j0;
        for (; j + 2 <= j0 + gj; j += 2) {
          s0 += load<f32>(table + (<usize>j << 10) + (<usize>load<u8>(row + <usize>j) << 2));
          s1 += load<f32>(table + (<usize>(j + 1) << 10) + (<usize>load<u8>(row + <usize>j + 1) << 2));
        }
        if (j < j0 + gj) s0 += load<f32>(table + (<usize>j << 10) + (<usize>load<u8>(row + <usize>j) << 2));
        y += load<f32>(alphas + ((<usize>(r * ng + g) * <usize>bits + <usize>i) << 2)) * (s0 + s1);
      }
    }
    store<f32>(out + (<usize>r << 2), y);
  }
}
