import { addTile, blockBytes, blockDot, codesAt, dotNibblesScalar, dotPrepped, f16, lanesSum4, prepA, prepB } from './ggml';

// ggml blocks repacked once at upload ("prepared") for the matmuls below. Rows go in tiles of four;
// a tile holds, per 32-column block k, one record:
//   Q8_0: f32 d[4] | i8 qs[4][32]                     144 bytes
//   Q4_0: f32 d[4] | u8 qs[4][16]                      80 bytes
//   Q4_1: f32 d[4] | f32 m[4] | u8 qs[4][16]           96 bytes
// (qs bytes exactly as in the ggml block). The four scales of a tile are one aligned f32x4 load, where
// the block layout needed four 16-bit lane inserts and an f16 conversion (~20 x86 instructions per
// tile-block, a third of the Q4_0 inner loop); the records stream in order and every vector load is
// 16-byte aligned. The f32 scales cost 2 bytes per block more (Q4_0 18 → 20). Rows past the matrix
// in its last tile have zero scales and codes.

// Relaxed builds lay a 4-bit record's codes out by lanes instead: code vector m (m = 0..3) holds
// bytes 4m..4m+3 of rows 0, 1, 2, 3 in turn. One i8 dot against the activation codes broadcast per
// 32-bit lane (act_splats) then puts row i in i16 lanes 2i, 2i+1, and a single pairwise widening
// gives the four row sums, where rows side by side needed a 4x4 lane transpose per record (9
// instructions): streamed 5632x2048 q4_0 6.8-7.1 -> 7.7-7.8 GB/s, 2048x5632 7.55 -> 8.0 (CPU
// time, interleaved A/B, outputs bit-identical). Prefill transposes each record back to rows once
// for the whole batch.
// @ts-ignore: decorator
@inline function laneLayout(kind: i32): bool {
  return ASC_FEATURE_RELAXED_SIMD && (kind == 1 || kind == 2 || kind == 5 || kind == 6 || kind == 7);
}
// Bytes per activation entry of the 4-bit side table (xq16): the plain build's i16 planes, or the
// relaxed build's act_splats record (scale, 8·code sum, eight broadcast code vectors).
// @ts-ignore: decorator
@inline function sideBytes(): usize {
  return ASC_FEATURE_RELAXED_SIMD ? 160 : 64;
}

// @ts-ignore: decorator
@inline function scaleBytes(kind: i32): usize {
  return kind == 2 ? 32 : 16;
}
// @ts-ignore: decorator
@inline function codeBytes(kind: i32): usize {
  return kind == 0 ? 32 : 16;
}
// @ts-ignore: decorator
@inline function recordBytes(kind: i32): usize {
  return scaleBytes(kind) + 4 * codeBytes(kind) + (kind == 7 ? 16 : 0);
}

// Q5_0's high bits as its records hold them (after the nibbles, at +80): byte lane (i, t) of the 16,
// row i's bits 4 of elements 4m + t (bit 2m) and 16 + 4m + t (bit 2m + 1) for m = 0..3, so the kernels
// reach code vector m's by one 16-bit shift (scripts/gen-ggml-gemm.mjs).
// @ts-ignore: decorator
@inline function q5HighByte(qh: u32, t: u32): u8 {
  let v: u32 = 0;
  for (let m: u32 = 0; m < 4; m++) v |= (((qh >> (4 * m + t)) & 1) << (2 * m)) | (((qh >> (16 + 4 * m + t)) & 1) << (2 * m + 1));
  return <u8>v;
}

// Bytes of the prepared form of a [rows, cols] matrix.
export function ggml_tiled_bytes(kind: i32, rows: i32, cols: i32): usize {
  return <usize>((rows + 3) >> 2) * <usize>(cols >> 5) * recordBytes(kind);
}

// An MXFP4 block's E8M0 scale halved, 2^(e − 128), as f32 (2^-127 and 2^-128 subnormal): the kernels
// multiply 2·fp4(u), an integer, so the block's values are this times those.
// @ts-ignore: decorator
@inline function mxHalfScale(e: u32): f32 {
  return reinterpret<f32>(e >= 2 ? (e - 1) << 23 : e == 1 ? 0x00400000 : 0x00200000);
}

// src: rows × (cols/32) ggml blocks; dst: ggml_tiled_bytes(kind, rows, cols) bytes. Returns 1 where an
// NF4 block (kind 6, relaxed builds; records as Q4_0's with the f32 absmax for d) has a non-finite
// absmax, or an MXFP4 block (kind 5, relaxed builds; records as Q4_0's with 2^(e − 128) for d) has scale 0xFF (NaN),
// which the kernels cannot read, else 0.
export function prepare_ggml(kind: i32, src: usize, rows: i32, cols: i32, dst: usize): i32 {
  let nan = 0;
  const nblk = cols >> 5;
  const bsize = blockBytes(kind);
  const qoff = codesAt(kind);
  const sb = scaleBytes(kind);
  const qb = codeBytes(kind);
  const rb = recordBytes(kind);
  const tiles = (rows + 3) >> 2;
  for (let t = 0; t < tiles; t++) {
    for (let i = 0; i < 4; i++) {
      const r = (t << 2) + i;
      for (let k = 0; k < nblk; k++) {
        const rec = dst + (<usize>t * <usize>nblk + <usize>k) * rb;
        if (r < rows) {
          const blk = src + (<usize>r * <usize>nblk + <usize>k) * bsize;
          if (kind == 5) {
            const e = <u32>load<u8>(blk);
            store<f32>(rec + (<usize>i << 2), mxHalfScale(e));
            if (e == 255) nan = 1;
          } else if (kind == 6) {
            const d = load<f32>(blk);
            store<f32>(rec + (<usize>i << 2), d);
            if (d - d != 0) nan = 1;
          } else store<f32>(rec + (<usize>i << 2), f16(load<u16>(blk)));
          if (kind == 2) store<f32>(rec + 16 + (<usize>i << 2), f16(load<u16>(blk, 2)));
          if (laneLayout(kind)) {
            for (let j: usize = 0; j < 16; j++) store<u8>(rec + sb + ((j >> 2) << 4) + (<usize>i << 2) + (j & 3), load<u8>(blk + qoff + j));
          } else memory.copy(rec + sb + <usize>i * qb, blk + qoff, qb);
          if (kind == 7) {
            const qh = load<u32>(blk, 2);
            for (let t: u32 = 0; t < 4; t++) store<u8>(rec + 80 + (<usize>i << 2) + <usize>t, q5HighByte(qh, t));
          }
        } else {
          store<f32>(rec + (<usize>i << 2), 0);
          if (kind == 2) store<f32>(rec + 16 + (<usize>i << 2), 0);
          if (laneLayout(kind)) {
            for (let j: usize = 0; j < 16; j++) store<u8>(rec + sb + ((j >> 2) << 4) + (<usize>i << 2) + (j & 3), 0);
          } else memory.fill(rec + sb + <usize>i * qb, 0, qb);
          if (kind == 7) store<u32>(rec + 80 + (<usize>i << 2), 0);
        }
      }
    }
  }
  return nan;
}

// The binary16 bits of an f32 that f16() produced (so exactly representable): the inverse of f16(),
// NaN payloads included.
// @ts-ignore: decorator
@inline function f16Bits(v: f32): u32 {
  const b = reinterpret<u32>(v);
  const sign = (b >> 16) & 0x8000;
  const e = (b >> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e == 0xff) return sign | 0x7c00 | (m >> 13);
  if (e == 0) return sign;
  if (<i32>e <= 112) return sign | <u32>(abs<f32>(v) * reinterpret<f32>(0x4b800000)); // f16 subnormal: m·2^-24
  return sign | ((e - 112) << 10) | (m >> 13);
}

// The inverse of prepare_ggml (kinds 0-2 and 5): the ggml blocks
// back from a prepared tensor, byte for byte, so a model need not keep its blocks in JS beside the
// WebAssembly copy (a 1B Q8_0 model: 1.1 GB less).
export function unprepare_ggml(kind: i32, src: usize, rows: i32, cols: i32, dst: usize): void {
  const nblk = cols >> 5;
  const bsize = blockBytes(kind);
  const qoff = codesAt(kind);
  const sb = scaleBytes(kind);
  const qb = codeBytes(kind);
  const rb = recordBytes(kind);
  for (let r = 0; r < rows; r++) {
    const t = r >> 2;
    const i = <usize>(r & 3);
    for (let k = 0; k < nblk; k++) {
      const rec = src + (<usize>t * <usize>nblk + <usize>k) * rb;
      const blk = dst + (<usize>r * <usize>nblk + <usize>k) * bsize;
      if (kind == 5) {
        const b = reinterpret<u32>(load<f32>(rec + (i << 2)));
        store<u8>(blk, <u8>(b >= 0x00800000 ? (b >> 23) + 1 : b == 0x00400000 ? 1 : 0));
      } else if (kind == 6) store<f32>(blk, load<f32>(rec + (i << 2)));
      else store<u16>(blk, <u16>f16Bits(load<f32>(rec + (i << 2))));
      if (kind == 2) store<u16>(blk, <u16>f16Bits(load<f32>(rec + 16 + (i << 2))), 2);
      if (laneLayout(kind)) {
        for (let j: usize = 0; j < 16; j++) store<u8>(blk + qoff + j, load<u8>(rec + sb + ((j >> 2) << 4) + (i << 2) + (j & 3)));
      } else memory.copy(blk + qoff, rec + sb + i * qb, qb);
      if (kind == 7) {
        let qh: u32 = 0;
        for (let t: u32 = 0; t < 4; t++) {
          const v = <u32>load<u8>(rec + 80 + (i << 2) + <usize>t);
          for (let m: u32 = 0; m < 4; m++) qh |= (((v >> (2 * m)) & 1) << (4 * m + t)) | (((v >> (2 * m + 1)) & 1) << (16 + 4 * m + t));
        }
        store<u32>(blk, qh, 2);
      }
    }
  }
}

// Relaxed 4-bit kinds (prefill, codes already split into low (a) and high (b) nibbles): a row's
// block dot as eight i16 pair sums (|each| <= 2·2·127·15 = 7620).
// @ts-ignore: decorator
@inline function pairSumsOf(a: v128, b: v128, x0: v128, x1: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.add(i16x8.relaxed_dot_i8x16_i7x16_s(x0, a), i16x8.relaxed_dot_i8x16_i7x16_s(x1, b));
  return a;
}

// Four rows' pair sums reduced to one i32 per row: the lane shuffles of lanesSum4 move 32-bit units,
// so they can add i16 lanes (two per unit, |sum of four| <= 30480 < 2^15) before the only widening,
// one pairwise add for the four rows instead of one per row.
// @ts-ignore: decorator
@inline function rowsSum4I16(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i16x8.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i16x8.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7)));
}

// Lane layout: a record's four integer row dots (i32x4). sp: the entry's act_splats record, codes
// broadcast at +32 (elements 0..15) and +96 (16..31). i16 lanes: one dot <= 2·15·127 = 3810, eight
// added <= 30480.
// @ts-ignore: decorator
@inline function laneDots(q: usize, sp: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    const m = i8x16.splat(0x0f);
    const c0 = v128.load(q);
    const s0 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 32), v128.and(c0, m)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 96), v128.and(i16x8.shr_u(c0, 4), m)));
    const c1 = v128.load(q, 16);
    const s1 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 48), v128.and(c1, m)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 112), v128.and(i16x8.shr_u(c1, 4), m)));
    const c2 = v128.load(q, 32);
    const s2 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 64), v128.and(c2, m)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 128), v128.and(i16x8.shr_u(c2, 4), m)));
    const c3 = v128.load(q, 48);
    const s3 = i16x8.add(
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 80), v128.and(c3, m)),
      i16x8.relaxed_dot_i8x16_i7x16_s(v128.load(sp, 144), v128.and(i16x8.shr_u(c3, 4), m)));
    return i32x4.dot_i16x8_s(i16x8.add(i16x8.add(s0, s1), i16x8.add(s2, s3)), i16x8.splat(1));
  }
  return i32x4.splat(0);
}

// prepB with the high nibbles by a 16-bit shift and the low-nibble mask: V8 lowers i8x16.shr_u to
// the same two instructions but builds its mask again (three more) at every use.
// @ts-ignore: decorator
@inline function hiB(kind: i32, qs: usize): v128 {
  if (kind != 0 && ASC_FEATURE_RELAXED_SIMD) return v128.and(i16x8.shr_u(v128.load(qs), 4), i8x16.splat(0x0f));
  return prepB(kind, qs);
}

// Decode (and the rows of a partial tile in prefill): one vector of four row outputs per tile. pin:
// row r's output slot, always this call's to write, overwritten by the result.
// @ts-ignore: decorator
@inline function tiledGemv(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const sb = scaleBytes(kind);
  const qb = codeBytes(kind);
  const rb = recordBytes(kind);
  // Plain-SIMD Q4 dots carry a factor 256 (exact: a power of two), taken out with the scale.
  const unit: f32 = kind != 0 && !ASC_FEATURE_RELAXED_SIMD ? 0.00390625 : 1;
  const off8 = kind != 0 && !ASC_FEATURE_RELAXED_SIMD ? 2048 : 8;
  const tb = <usize>nblk * rb;
  const wEnd = w + <usize>((r1 + 3) >> 2) * tb; // the reads ahead stay inside this call's tiles
  let ahead = w + <usize>(r0 >> 2) * tb + tb;
  for (let r = r0; r < r1; r += 4) {
    const tile = w + <usize>(r >> 2) * tb;
    let sink: u32 = 0;
    // 4-bit kinds: one byte of every cache line ahead is read before this tile is computed. The
    // dots take many instructions per byte, so the out-of-order window of the compute loop spans
    // only a few cache lines and a single core streams ~5 GB/s; this loop of plain loads keeps many
    // misses in flight, and the tile is then computed from cache (5632x2048 q4_0 streamed 4.8-5.1 ->
    // 5.8-6.3 GB/s; Q8_0, with more bytes per instruction, gains nothing; strides of 128 or 256
    // bytes were slower). The reads go in bursts of at least 24 KiB (several tiles of a 2048-column
    // matrix) whenever less than 8 KiB past the next tile is read: each burst's misses overlap, and
    // the bursts' latencies, which the compute cannot hide, come fewer times (interleaved A/B,
    // 16 KiB bursts at the next tile: 5632x2048 q4_0 8.0 -> 8.6 GB/s, 2048x5632 6.4 -> 7.9; then
    // 24 KiB with the 8 KiB lead, in CPU time under load: 5632x2048 7.2 -> 7.8, 2048x2048 equal).
    if (kind != 0 && ahead < tile + 2 * tb + 8192 && ahead < wEnd) {
      const end = min<usize>(wEnd, max<usize>(tile + 2 * tb, ahead + 24576));
      for (let p = ahead; p < end; p += 64) sink += load<u8>(p);
      ahead = end;
    }
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b;
      let acc = f32x4.splat(0);
      let corr = f32x4.splat(0);
      let rec = tile;
      // Activation entries of block k are k·batch + b: walk them by pointer increments.
      const step = <usize>batch;
      let xk = xq + (bi << 5);
      const pb = kind != 0 ? sideBytes() : 64;
      let planes = xq16 + bi * pb;
      let xsk = xs + (bi << 2);
      let sumk = xsum + (bi << 2);
      const pin = out + ((<usize>b * <usize>rows + <usize>r) << 2);
      for (let k = 0; k < nblk; k++, rec += rb, xk += step << 5, planes += step * pb, xsk += step << 2, sumk += step << 2) {
        const x0 = laneLayout(kind) ? i32x4.splat(0) : v128.load(xk);
        const x1 = laneLayout(kind) ? i32x4.splat(0) : v128.load(xk, 16);
        // Not read where unused (relaxed Q4_0): V8 keeps a dead wasm load, since loads may trap.
        const dx: f32 = kind == 1 && ASC_FEATURE_RELAXED_SIMD ? 0 : load<f32>(xsk);
        // Relaxed 4-bit kinds read the activation scale and 8·code sum already splatted (act_splats).
        const d = f32x4.mul(v128.load(rec), (kind == 1 || kind == 2) && ASC_FEATURE_RELAXED_SIMD ? v128.load(planes) : f32x4.splat(dx * unit));
        if (kind == 2) {
          corr = f32x4.add(corr, f32x4.mul(v128.load(rec, 16), f32x4.splat(dx * <f32>load<i32>(sumk))));
        }
        const q = rec + sb;
        let dots: v128;
        if (laneLayout(kind)) dots = laneDots(q, planes);
        else {
          // Q8_0: row r's output slot takes lane 0 of each row's dot before the next row's codes are
          // loaded. V8 11 issues a loop body's loads first, in program order, and computes after, so
          // the eight code vectors were live at once and spilled; a store is an effect the arithmetic
          // before it must precede. One token, 40 x 5632x2048 Q8_0, relaxed build: 22.2 -> 23.8 GB/s
          // (CPU time, best of 11, interleaved with the old build in one process; same bits).
          const d0 = blockDot(kind, q, x0, x1, planes);
          if (kind == 0) v128.store32_lane(pin, d0, 0);
          const d1 = blockDot(kind, q + qb, x0, x1, planes);
          if (kind == 0) v128.store32_lane(pin, d1, 0);
          const d2 = blockDot(kind, q + 2 * qb, x0, x1, planes);
          if (kind == 0) v128.store32_lane(pin, d2, 0);
          dots = lanesSum4(d0, d1, d2, blockDot(kind, q + 3 * qb, x0, x1, planes));
        }
        // Q4_0's −8 offset enters the integer dot exactly (Σ(u − 8)·x = Σu·x − 8·Σx), Q4_1's minimum
        // through the code sums.
        const off = kind == 1 ? i32x4.sub(dots, ASC_FEATURE_RELAXED_SIMD ? v128.load(planes, 16) : i32x4.splat(load<i32>(sumk) * off8)) : dots;
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(off), d));
      }
      if (kind == 2) acc = f32x4.add(acc, corr);
      if (sink == 0xffffffff) acc = f32x4.splat(0); // keeps the loads; one burst's byte sum never gets there
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

// Prefill (batch >= 2), full tiles: records outermost, each record's prepared weights serve every
// input vector (as tilesBatch in ggml.ts). Returns the first row it did not do.
// @ts-ignore: decorator
@inline function tiledBatch(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): i32 {
  const sb = scaleBytes(kind);
  const qb = codeBytes(kind);
  const rb = recordBytes(kind);
  const plain = kind != 0 && !ASC_FEATURE_RELAXED_SIMD;
  const unit: f32 = plain ? 0.00390625 : 1;
  const off8 = plain ? 2048 : 8; // Q4_0's 8, times the plain planes' factor 256
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const tile = w + <usize>(r >> 2) * <usize>nblk * rb;
    for (let b = 0; b < batch; b++) v128.store(out + ((<usize>b * <usize>rows + <usize>r) << 2), f32x4.splat(0));
    for (let k = 0; k < nblk; k++) {
      const rec = tile + <usize>k * rb;
      const d4 = v128.load(rec);
      const m4 = kind == 2 ? v128.load(rec, 16) : d4;
      const q = rec + sb;
      const q0 = i32x4.splat(0);
      // (row-layout reads only where the layout is by rows: V8 keeps dead wasm loads)
      const rl = !laneLayout(kind);
      let a0 = rl ? prepA(kind, q) : q0, b0 = rl ? hiB(kind, q) : q0;
      let a1 = rl ? prepA(kind, q + qb) : q0, b1 = rl ? hiB(kind, q + qb) : q0;
      let a2 = rl ? prepA(kind, q + 2 * qb) : q0, b2 = rl ? hiB(kind, q + 2 * qb) : q0;
      let a3 = rl ? prepA(kind, q + 3 * qb) : q0, b3 = rl ? hiB(kind, q + 3 * qb) : q0;
      if (laneLayout(kind)) {
        // Lane layout back to rows (a 4x4 transpose of 32-bit lanes), once per record for the batch.
        const v0 = v128.load(q), v1 = v128.load(q, 16), v2 = v128.load(q, 32), v3 = v128.load(q, 48);
        const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5);
        const t2 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);
        const rw0 = v128.shuffle<i32>(t0, t1, 0, 1, 4, 5), rw1 = v128.shuffle<i32>(t0, t1, 2, 3, 6, 7);
        const rw2 = v128.shuffle<i32>(t2, t3, 0, 1, 4, 5), rw3 = v128.shuffle<i32>(t2, t3, 2, 3, 6, 7);
        const m = i8x16.splat(0x0f);
        a0 = v128.and(rw0, m); b0 = v128.and(i16x8.shr_u(rw0, 4), m);
        a1 = v128.and(rw1, m); b1 = v128.and(i16x8.shr_u(rw1, 4), m);
        a2 = v128.and(rw2, m); b2 = v128.and(i16x8.shr_u(rw2, 4), m);
        a3 = v128.and(rw3, m); b3 = v128.and(i16x8.shr_u(rw3, 4), m);
      }
      for (let b = 0; b < batch; b++) {
        const bk = <usize>k * <usize>batch + <usize>b;
        const xk = xq + (bk << 5);
        const x0 = plain ? i32x4.splat(0) : v128.load(xk);
        const x1 = plain ? i32x4.splat(0) : v128.load(xk, 16);
        const planes = xq16 + bk * (kind != 0 ? sideBytes() : 64);
        const dx = load<f32>(xs + (bk << 2));
        const sx = load<i32>(xsum + (bk << 2));
        // Relaxed 4-bit: i16 pair sums reduced across the tile before one widening, as in decode.
        let dots = kind != 0 && ASC_FEATURE_RELAXED_SIMD
          ? rowsSum4I16(pairSumsOf(a0, b0, x0, x1), pairSumsOf(a1, b1, x0, x1), pairSumsOf(a2, b2, x0, x1), pairSumsOf(a3, b3, x0, x1))
          : lanesSum4(
            dotPrepped(kind, a0, b0, x0, x1, planes), dotPrepped(kind, a1, b1, x0, x1, planes),
            dotPrepped(kind, a2, b2, x0, x1, planes), dotPrepped(kind, a3, b3, x0, x1, planes));
        addTile(kind, dots, d4, m4, dx, sx, off8, unit, out + ((<usize>b * <usize>rows + <usize>r) << 2));
      }
    }
  }
  return r;
}

// As matmul_ggml, on the prepared form. r0 must be a multiple of 4 (callers split by whole tiles).
export function matmul_ggml_tiled(kind: i32, w: usize, rows: i32, cols: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  if (kind >= 5) return; // MXFP4, NF4 and Q5_0 run on matmul_ggml_gemm only, in whole tiles
  const nblk = cols >> 5;
  if (ASC_FEATURE_SIMD) {
    let r = r0;
    if (batch >= 2) {
      if (kind == 0) r = tiledBatch(0, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
      else if (kind == 1) r = tiledBatch(1, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
      else r = tiledBatch(2, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r0, r1);
    }
    if (r >= r1) return;
    if (kind == 0) tiledGemv(0, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    else if (kind == 1) tiledGemv(1, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    else tiledGemv(2, w, rows, nblk, xq, xq16, xs, xsum, batch, out, r, r1);
    return;
  }
  const sb = scaleBytes(kind);
  const qb = codeBytes(kind);
  const rb = recordBytes(kind);
  for (let r = r0; r < r1; r++) {
    const tile = w + <usize>(r >> 2) * <usize>nblk * rb;
    const i = <usize>(r & 3);
    for (let b = 0; b < batch; b++) {
      const bi = <usize>b;
      let s: f32 = 0;
      for (let k = 0; k < nblk; k++) {
        const rec = tile + <usize>k * rb;
        const bk = <usize>k * <usize>batch + bi;
        const dx = load<f32>(xs + (bk << 2));
        const d = load<f32>(rec + (i << 2)) * dx;
        const xsumk = <f32>load<i32>(xsum + (bk << 2));
        if (kind == 1) s -= 8 * d * xsumk;
        else if (kind == 2) s += load<f32>(rec + 16 + (i << 2)) * dx * xsumk;
        const xk = xq + (bk << 5);
        const q = rec + sb + i * qb;
        let dot = 0;
        if (kind == 0) {
          for (let j = 0; j < 32; j++) dot += <i32>load<i8>(q + <usize>j) * <i32>load<i8>(xk + <usize>j);
        } else {
          dot = dotNibblesScalar(q, xk);
        }
        s += d * <f32>dot;
      }
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), s);
    }
  }
}

// For the relaxed 4-bit tiled kernels: per activation entry i (sideBytes() = 160 bytes at
// dst + 160·i, where the plain build keeps its i16 planes), xs[i] as f32x4, 8·xsum[i] as i32x4 (the
// inner loop takes both as memory operands instead of building two splats per record), then the
// entry's codes xq[32·i ..] broadcast four at a time: eight vectors of one 32-bit lane repeated.
export function act_splats(xs: usize, xsum: usize, n: i32, dst: usize, xq: usize): void {
  if (ASC_FEATURE_SIMD) {
    for (let i = 0; i < n; i++) {
      const e = dst + <usize>i * sideBytes();
      v128.store(e, f32x4.splat(load<f32>(xs + (<usize>i << 2))));
      v128.store(e, i32x4.splat(load<i32>(xsum + (<usize>i << 2)) << 3), 16);
      if (ASC_FEATURE_RELAXED_SIMD) {
        const c = xq + (<usize>i << 5);
        for (let m: usize = 0; m < 8; m++) v128.store(e + 32 + (m << 4), v128.load32_splat(c + (m << 2)));
      }
    }
  }
}

// Up to three prepared matrices of one input as one row range (a layer's Q, K, V or gate and up):
// rows [0, rows0) are w0's, the next rows1 w1's, then w2's, so a pool splits them in one job, with
// one wake-up and one tail instead of three (256-row K and V are jobs of tens of microseconds).
// rows0 and rows1 must be multiples of 4 (tiles; callers check); each piece runs matmul_ggml_tiled.
export function matmul_ggml_tiled_multi(kind0: i32, w0: usize, rows0: i32, kind1: i32, w1: usize, rows1: i32, kind2: i32, w2: usize, rows2: i32, cols: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out0: usize, out1: usize, out2: usize, r0: i32, r1: i32): void {
  const e0 = rows0;
  const e1 = rows0 + rows1;
  if (r0 < e0) matmul_ggml_tiled(kind0, w0, rows0, cols, xq, xq16, xs, xsum, batch, out0, r0, min<i32>(r1, e0));
  if (r1 > e0 && r0 < e1) matmul_ggml_tiled(kind1, w1, rows1, cols, xq, xq16, xs, xsum, batch, out1, max<i32>(r0, e0) - e0, min<i32>(r1, e1) - e0);
  if (r1 > e1) matmul_ggml_tiled(kind2, w2, rows2, cols, xq, xq16, xs, xsum, batch, out2, max<i32>(r0, e1) - e1, r1 - e1);
}
