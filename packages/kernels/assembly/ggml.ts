import { hsum } from './f32';

// llama.cpp block formats (ggml-common.h), bit for bit:
//   block_q8_0 { f16 d; i8 qs[32]; }            34 bytes, w = d·q
//   block_q4_0 { f16 d; u8 qs[16]; }            18 bytes, w = d·(u − 8)
//   block_q4_1 { f16 d; f16 m; u8 qs[16]; }     20 bytes, w = d·u + m
//   block_mxfp4 { u8 e; u8 qs[16]; }           17 bytes, w = 2^(e − 127)·fp4(u) (OCP MXFP4; kind 5)
//   block_q5_0 { f16 d; u8 qh[4]; u8 qs[16]; }  22 bytes, w = d·(u − 16), bit 4 of u[j] in bit j of qh (kind 7, prepared tiles only)
// and lowbit's NF4 staging block (kind 6, prepared tiles only):
//   { f32 absmax; u8 qs[16]; }                  20 bytes, w = absmax·nf4(u) (QLoRA's 16 levels)
// In the 4-bit blocks byte j holds element j (low nibble) and element j+16 (high nibble).
// Activations come from quantize_act_q8: int8 codes per 32 values in natural order, scale xs, code sum.

// Bytes of one block, and the offset of its codes (after d, and m for Q4_1).
// @ts-ignore: decorator
@inline export function blockBytes(kind: i32): usize {
  return kind == 0 ? 34 : kind == 1 ? 18 : kind == 5 ? 17 : kind == 7 ? 22 : 20;
}
// @ts-ignore: decorator
@inline export function codesAt(kind: i32): usize {
  return kind == 2 || kind == 6 ? 4 : kind == 5 ? 1 : kind == 7 ? 6 : 2;
}

// A batch row's four outputs of one block: the integer dots of four weight rows with the block's
// activation codes, scaled (d·dx), Q4_0's offset 8 taken out through the code sum sx, Q4_1's m·dx·sx
// added, accumulated into out[0..4).
// @ts-ignore: decorator
@inline export function addTile(kind: i32, dots: v128, d4: v128, m4: v128, dx: f32, sx: i32, off8: i32, unit: f32, out: usize): void {
  if (kind == 1) dots = i32x4.sub(dots, i32x4.splat(sx * off8));
  let v = f32x4.mul(f32x4.convert_i32x4_s(dots), f32x4.mul(d4, f32x4.splat(dx * unit)));
  if (kind == 2) v = f32x4.add(v, f32x4.mul(m4, f32x4.splat(dx * <f32>sx)));
  v128.store(out, f32x4.add(v128.load(out), v));
}

// f16 → f32 without floating-point arithmetic on the f16 bits themselves: normals by rebasing the
// exponent (integer add of 127 − 15), subnormals as mantissa·2^-24 (an exact int → f32 conversion
// times a power of two, both normal f32), the all-ones exponent as Inf/NaN. Multiplying the raw
// bits as an f32 subnormal by 2^112 gives the same values, but x86 takes a microcode assist on
// every subnormal operand: with random Q4_1 minima it made the kernel 2-3× slower.
// @ts-ignore: decorator
@inline export function f16(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const em = h & 0x7fff;
  if (em >= 0x7c00) return reinterpret<f32>(sign | 0x7f800000 | ((em & 0x3ff) << 13));
  if (em < 0x400) return reinterpret<f32>(sign | reinterpret<u32>(<f32>em * reinterpret<f32>(0x33800000)));
  return reinterpret<f32>(sign | ((em << 13) + 0x38000000));
}

// @ts-ignore: decorator
@inline export function dotNibblesScalar(qs: usize, x: usize): i32 {
  let s = 0;
  for (let j = 0; j < 16; j++) {
    const byte = <i32>load<u8>(qs + <usize>j);
    s += (byte & 15) * <i32>load<i8>(x + <usize>j) + (byte >> 4) * <i32>load<i8>(x + <usize>(j + 16));
  }
  return s;
}

// One output of the scalar build: row `wr` against activation vector `bi` (of `batch`).
// @ts-ignore: decorator
@inline function rowScalar(kind: i32, wr: usize, nblk: i32, bsize: usize, xq: usize, xs: usize, xsum: usize, bi: usize, batch: i32): f32 {
  const qoff = codesAt(kind);
  let s: f32 = 0;
  for (let k = 0; k < nblk; k++) {
    const blk = wr + <usize>k * bsize;
    const dx = load<f32>(xs + ((<usize>k * <usize>batch + bi) << 2));
    const d = f16(load<u16>(blk)) * dx;
    const xsumk = <f32>load<i32>(xsum + ((<usize>k * <usize>batch + bi) << 2));
    if (kind == 1) s -= 8 * d * xsumk;
    else if (kind == 2) s += f16(load<u16>(blk, 2)) * dx * xsumk;
    const xk = xq + ((<usize>k * <usize>batch + bi) << 5);
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

// Integer dot of one block with the activation codes, in i32 lanes (summed later across lanes).
// Q8_0: x0 = codes 0..15, x1 = 16..31. Q4 kinds, relaxed: the same natural-order codes against the
// low nibbles (elements 0..15) and the high nibbles (16..31) of the 16 packed bytes. Q4 kinds, plain
// SIMD: x0 is unused and `planes` points at four i16 planes (see quantize_act_q8) that meet the
// nibbles of the bytes read as 16-bit lanes, isolated by one mask each and multiplied and
// pair-summed by i32x4.dot_i16x8_s (pmaddwd); that result carries a factor 256.
// @ts-ignore: decorator
@inline export function blockDot(kind: i32, qs: usize, x0: v128, x1: v128, planes: usize): v128 {
  if (kind == 0) {
    const w0 = v128.load(qs);
    const w1 = v128.load(qs, 16);
    let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), i16x8.extend_low_i8x16_s(x0));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), i16x8.extend_high_i8x16_s(x0)));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), i16x8.extend_low_i8x16_s(x1)));
    return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), i16x8.extend_high_i8x16_s(x1)));
  }
  const bytes = v128.load(qs);
  if (ASC_FEATURE_RELAXED_SIMD) {
    const lo = v128.and(bytes, i8x16.splat(0x0f));
    const hi = i8x16.shr_u(bytes, 4);
    // i16 pair sums (<= 2·127·15 each) added once stay far inside i16 before the widening.
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(x0, lo), i16x8.relaxed_dot_i8x16_i7x16_s(x1, hi)));
  }
  const a = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(bytes, i16x8.splat(0x000f)), v128.load(planes)),
    i32x4.dot_i16x8_s(v128.and(bytes, i16x8.splat(0x00f0)), v128.load(planes, 16)));
  const b = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(bytes, i16x8.splat(0x0f00)), v128.load(planes, 32)),
    i32x4.dot_i16x8_s(i16x8.shr_u(bytes, 12), v128.load(planes, 48)));
  return i32x4.add(a, b);
}

// Four f16 values at p0..p3 (+off) as f32x4, by the same rules as f16() above.
// @ts-ignore: decorator
@inline function f16x4(p0: usize, p1: usize, p2: usize, p3: usize, off: usize): v128 {
  let h = i32x4.splat(0);
  h = v128.load16_lane(p0 + off, h, 0);
  h = v128.load16_lane(p1 + off, h, 2);
  h = v128.load16_lane(p2 + off, h, 4);
  h = v128.load16_lane(p3 + off, h, 6);
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = v128.and(h, i32x4.splat(0x7fff));
  const bits = i32x4.shl(em, 13);
  const normal = i32x4.add(bits, i32x4.splat(0x38000000));
  const sub = f32x4.mul(f32x4.convert_i32x4_s(em), f32x4.splat(reinterpret<f32>(0x33800000)));
  const special = v128.or(bits, i32x4.splat(0x7f800000));
  let v = v128.bitselect(special, normal, i32x4.gt_s(em, i32x4.splat(0x7bff)));
  v = v128.bitselect(sub, v, i32x4.lt_s(em, i32x4.splat(0x400)));
  return v128.or(sign, v);
}

// [Σa, Σb, Σc, Σd] of four i32x4: one vector holding one dot per row of the tile.
// @ts-ignore: decorator
@inline export function lanesSum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

// Four rows at a time, one lane per row: each activation block (codes, scale, code sum) is loaded
// once for four weight rows, the four f16 scales are converted together, and the four block dots
// are reduced into one vector, so a tile's outputs are stored as one v128 (when all four are
// real rows). Rows past r1 repeat the last row; only real outputs are stored.
// @ts-ignore: decorator
@inline function tilesSimd(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const bsize = blockBytes(kind);
  const qoff = codesAt(kind);
  const rowBytes = <usize>nblk * bsize;
  // Plain-SIMD Q4 dots carry a factor 256 (exact: a power of two), taken out with the scale.
  const unit: f32 = kind != 0 && !ASC_FEATURE_RELAXED_SIMD ? 0.00390625 : 1;
  for (let r = r0; r < r1; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w + <usize>min<i32>(r + 1, r1 - 1) * rowBytes;
    const w2 = w + <usize>min<i32>(r + 2, r1 - 1) * rowBytes;
    const w3 = w + <usize>min<i32>(r + 3, r1 - 1) * rowBytes;
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b;
      let acc = f32x4.splat(0);
      let corr = f32x4.splat(0);
      for (let k = 0; k < nblk; k++) {
        const xk = xq + ((<usize>k * <usize>batch + bi) << 5);
        const x0 = v128.load(xk);
        const x1 = v128.load(xk, 16);
        const planes = xq16 + ((<usize>k * <usize>batch + bi) << 6);
        const dx = load<f32>(xs + ((<usize>k * <usize>batch + bi) << 2));
        const o = <usize>k * bsize;
        const d = f32x4.mul(f16x4(w0, w1, w2, w3, o), f32x4.splat(dx));
        if (kind == 1) {
          corr = f32x4.add(corr, f32x4.mul(d, f32x4.splat(<f32>load<i32>(xsum + ((<usize>k * <usize>batch + bi) << 2)))));
        } else if (kind == 2) {
          const sdx = dx * <f32>load<i32>(xsum + ((<usize>k * <usize>batch + bi) << 2));
          corr = f32x4.add(corr, f32x4.mul(f16x4(w0, w1, w2, w3, o + 2), f32x4.splat(sdx)));
        }
        const dots = lanesSum4(
          blockDot(kind, w0 + o + qoff, x0, x1, planes), blockDot(kind, w1 + o + qoff, x0, x1, planes),
          blockDot(kind, w2 + o + qoff, x0, x1, planes), blockDot(kind, w3 + o + qoff, x0, x1, planes));
        const dd = kind != 0 && !ASC_FEATURE_RELAXED_SIMD ? f32x4.mul(d, f32x4.splat(unit)) : d;
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(dots), dd));
      }
      // Q4_0's −8 offset and Q4_1's minimum enter through the activation code sums.
      if (kind == 1) acc = f32x4.sub(acc, f32x4.mul(corr, f32x4.splat(8)));
      else if (kind == 2) acc = f32x4.add(acc, corr);
      const ob = out + ((<usize>b * <usize>rows + <usize>r) << 2);
      if (r + 4 <= r1) v128.store(ob, acc);
      else {
        const n = r1 - r;
        store<f32>(ob, f32x4.extract_lane(acc, 0));
        if (n > 1) store<f32>(ob, f32x4.extract_lane(acc, 1), 4);
        if (n > 2) store<f32>(ob, f32x4.extract_lane(acc, 2), 8);
      }
    }
  }
}

// Dot of one block against prepared weights: Q8_0 wa/wb = the two 16-byte halves of the codes;
// relaxed Q4 wa/wb = low/high nibbles; plain Q4 wa = the packed bytes (wb unused), read against
// the i16 planes as in blockDot.
// @ts-ignore: decorator
@inline export function dotPrepped(kind: i32, wa: v128, wb: v128, x0: v128, x1: v128, planes: usize): v128 {
  if (kind == 0) {
    let a = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(wa), i16x8.extend_low_i8x16_s(x0));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(wa), i16x8.extend_high_i8x16_s(x0)));
    a = i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(wb), i16x8.extend_low_i8x16_s(x1)));
    return i32x4.add(a, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(wb), i16x8.extend_high_i8x16_s(x1)));
  }
  if (ASC_FEATURE_RELAXED_SIMD) {
    return i32x4.extadd_pairwise_i16x8_s(i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(x0, wa), i16x8.relaxed_dot_i8x16_i7x16_s(x1, wb)));
  }
  const a = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(wa, i16x8.splat(0x000f)), v128.load(planes)),
    i32x4.dot_i16x8_s(v128.and(wa, i16x8.splat(0x00f0)), v128.load(planes, 16)));
  const b = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(wa, i16x8.splat(0x0f00)), v128.load(planes, 32)),
    i32x4.dot_i16x8_s(i16x8.shr_u(wa, 12), v128.load(planes, 48)));
  return i32x4.add(a, b);
}

// @ts-ignore: decorator
@inline export function prepA(kind: i32, qs: usize): v128 {
  const v = v128.load(qs);
  return kind != 0 && ASC_FEATURE_RELAXED_SIMD ? v128.and(v, i8x16.splat(0x0f)) : v;
}

// @ts-ignore: decorator
@inline export function prepB(kind: i32, qs: usize): v128 {
  if (kind == 0) return v128.load(qs, 16);
  if (ASC_FEATURE_RELAXED_SIMD) return i8x16.shr_u(v128.load(qs), 4);
  return i32x4.splat(0);
}

// Prefill (batch >= 2), full 4-row tiles: blocks outermost, so a block's four f16 scales and its
// prepared weights serve every input vector (whose codes for one block lie side by side, see
// quantize_act_q8), and each output tile accumulates in `out` itself.
// Offsets enter the integer dot exactly (Q4_0: Σ(u − 8)·x = Σu·x − 8·Σx in i32). Against the
// per-vector loop this halves the work per weight for relaxed Q4 at batch 64. Returns the first
// row it did not do (the partial tile, if any).
// @ts-ignore: decorator
@inline function tilesBatch(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): i32 {
  const bsize = blockBytes(kind);
  const qoff = codesAt(kind);
  const rowBytes = <usize>nblk * bsize;
  const plain = kind != 0 && !ASC_FEATURE_RELAXED_SIMD;
  const unit: f32 = plain ? 0.00390625 : 1;
  const off8 = plain ? 2048 : 8; // Q4_0's 8, times the plain planes' factor 256
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    for (let b = 0; b < batch; b++) v128.store(out + ((<usize>b * <usize>rows + <usize>r) << 2), f32x4.splat(0));
    for (let k = 0; k < nblk; k++) {
      const o = <usize>k * bsize;
      const d4 = f16x4(w0, w1, w2, w3, o);
      const m4 = kind == 2 ? f16x4(w0, w1, w2, w3, o + 2) : d4;
      const a0 = prepA(kind, w0 + o + qoff), b0 = prepB(kind, w0 + o + qoff);
      const a1 = prepA(kind, w1 + o + qoff), b1 = prepB(kind, w1 + o + qoff);
      const a2 = prepA(kind, w2 + o + qoff), b2 = prepB(kind, w2 + o + qoff);
      const a3 = prepA(kind, w3 + o + qoff), b3 = prepB(kind, w3 + o + qoff);
      for (let b = 0; b < batch; b++) {
        const bk = <usize>k * <usize>batch + <usize>b;
        const xk = xq + (bk << 5);
        const x0 = plain ? i32x4.splat(0) : v128.load(xk);
        const x1 = plain ? i32x4.splat(0) : v128.load(xk, 16);
        const planes = xq16 + (bk << 6);
        const dx = load<f32>(xs + (bk << 2));
        const sx = load<i32>(xsum + (bk << 2));
        let dots = lanesSum4(
          dotPrepped(kind, a0, b0, x0, x1, planes), dotPrepped(kind, a1, b1, x0, x1, planes),
          dotPrepped(kind, a2, b2, x0, x1, planes), dotPrepped(kind, a3, b3, x0, x1, planes));
        addTile(kind, dots, d4, m4, dx, sx, off8, unit, out + ((<usize>b * <usize>rows + <usize>r) << 2));
      }
    }
  }
  return r;
}

// kind: 0 = Q8_0, 1 = Q4_0, 2 = Q4_1. Computes rows [r0, r1).
// `xq16` holds the i16 activation planes for the plain-SIMD Q4 kinds (0 otherwise).
export function matmul_ggml(kind: i32, w: usize, rows: i32, cols: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const nblk = cols >> 5; // ggml rows are whole blocks; the JS side checks cols % 32 == 0
  if (ASC_FEATURE_SIMD) {
    // Constant kinds let each copy of the inlined loop drop the other kinds' branches.
    let r = r0;
    if (batch >= 2) {
      if (kind == 0) r = tilesBatch(0, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
      else if (kind == 1) r = tilesBatch(1, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
      else r = tilesBatch(2, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
    }
    if (r >= r1) return;
    if (kind == 0) tilesSimd(0, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    else if (kind == 1) tilesSimd(1, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    else tilesSimd(2, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    return;
  }
  const bsize = blockBytes(kind);
  const rowBytes = <usize>nblk * bsize;
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b;
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), rowScalar(kind, wr, nblk, bsize, xq, xs, xsum, bi, batch));
    }
  }
}
