import { q4lcx1, q4lcx4, q4lcx8, q4ncx1, q4ncx4, q4ncx8, q5cx1, q5cx4, q5cx8, q4rcx1, q4rcx4, q4rcx8, q4rvx1, q4rvx4, q4rvx8, q4x1, q4x4, q8x1, q8x4, q8x8 } from './ggml-gemm-kernels';
import { matmul_ggml_tiled } from './ggml-tiled';

// GEMM on the prepared ggml tiles (ggml-tiled.ts), Q8_0 and Q4_0: prefill, and the decode of Q4_0
// (matmulGgml picks it by build, type and batch; kernels.ts GEMM_MIN_BATCH has the measurements).
//
// Plain SIMD has no 8-bit dot: its only integer multiply-add is pmaddwd (i32x4.dot_i16x8_s, 8
// products per instruction), so a block dot costs at least 16 pmaddwd and 16 adds per 4 rows and 32
// columns. The decode GEMV spends as much again on reducing each row's lanes (lanesSum4: 6
// shuffles), on the nibble masks and on the scales, once per row tile and token. Here the weights
// are put "by lanes" instead: i32 lane i of a vector holds two i16 weights of row i, so pmaddwd
// against a splat of the two matching activations adds to row i's dot in lane i directly, and the
// four rows' dots come out in one vector with no reduction at all. The record's rows are turned into
// that form (a 4x4 transpose of 32-bit units, then the same in-place masks as the GEMV's planes)
// once per four (Q8_0: eight) tokens, whose accumulators stay in registers across the blocks.
//
// Lane vector m (Q4_0 m = 0..3, Q8_0 m = 0..7) holds bytes 4m..4m+3 of rows 0..3. Read as i16 lanes,
// lane i is (b[4m] | b[4m+1] << 8, b[4m+2] | b[4m+3] << 8) of row i, and
//   Q4_0  & 0x000f  u[4m], u[4m+2]             meets (256·x[4m],    256·x[4m+2])
//         & 0x0f00  256·u[4m+1], 256·u[4m+3]   meets (x[4m+1],      x[4m+3])
//         & 0x00f0  16·u[16+4m], 16·u[18+4m]   meets (16·x[16+4m],  16·x[18+4m])
//         >> 12     u[17+4m], u[19+4m]         meets (256·x[17+4m], 256·x[19+4m])
//   Q8_0  << 8      256·q[4m], 256·q[4m+2]     meets (x[4m],        x[4m+2])
//         & 0xff00  256·q[4m+1], 256·q[4m+3]   meets (x[4m+1],      x[4m+3])
// so every product is 256·w·x, exactly as the plain GEMV's planes make them (|256·127·127·32| <
// 2^31). gemm_act_pairs writes those activation pairs, 16 i32 per block. The integer dots are exact,
// and the scales are applied in the GEMV's operations and order (Q4_0: (dots − 2048·Σx)·(d·(dx/256));
// Q8_0: (dots/256)·(d·dx), the shift exact), block after block, so each output equals the decode
// GEMV's for that token bit for bit.

// Entries of the activation-pair table (gemm_act_pairs): 16 i32 per block, one per (lane vector, plane).
const PAIR_BYTES: usize = 64;

// Writes the activation pairs of n activation entries (the int8 codes of quantize_act_q8, 32 per
// entry at xq) to dst (PAIR_BYTES per entry). kind: 0 = Q8_0, 1 = Q4_0.
export function gemm_act_pairs(kind: i32, xq: usize, n: i32, dst: usize): void {
  for (let e = 0; e < n; e++) {
    const x = xq + (<usize>e << 5);
    const d = dst + <usize>e * PAIR_BYTES;
    if (kind == 1) {
      for (let m: usize = 0; m < 4; m++) {
        const o = d + (m << 4);
        const j = m << 2;
        storePair(o, <i32>load<i8>(x + j) << 8, <i32>load<i8>(x + j + 2) << 8);
        storePair(o + 4, <i32>load<i8>(x + j + 1), <i32>load<i8>(x + j + 3));
        storePair(o + 8, <i32>load<i8>(x + j + 16) << 4, <i32>load<i8>(x + j + 18) << 4);
        storePair(o + 12, <i32>load<i8>(x + j + 17) << 8, <i32>load<i8>(x + j + 19) << 8);
      }
    } else {
      for (let m: usize = 0; m < 8; m++) {
        const o = d + (m << 3);
        const j = m << 2;
        storePair(o, <i32>load<i8>(x + j), <i32>load<i8>(x + j + 2));
        storePair(o + 4, <i32>load<i8>(x + j + 1), <i32>load<i8>(x + j + 3));
      }
    }
  }
}

// @ts-ignore: decorator
@inline function storePair(p: usize, lo: i32, hi: i32): void {
  store<u32>(p, (<u32>lo & 0xffff) | (<u32>hi << 16));
}

// Decode (one token) reads its tiles with no read-ahead: the tiled GEMV's bursts of one byte per
// cache line ahead (ggml-tiled.ts tiledGemv) slowed this path down, 100 x 5632x2048 Q4_0 streamed
// 16.9-18.2 -> 11.2-12.1 GB/s (CPU time, best of 7, interleaved A/B, busy machine). Nor does it run
// two tiles per pass to read each activation record once for both (two streams tb bytes apart):
// 18.9-19.5 -> 10.5-10.6 GB/s, same measure. One sequential stream of records is what streams best.
// Single tokens run q4rcx1, which reads compact activations (int8 codes, xs, xsum: 40 B per block)
// where q4rx1 read the 160-byte act_splats records: with long rows the records (2048x5632, the FFN's
// down projection: 28 KiB) were read from beyond L1 for every tile, and that shape streamed 12.8 ->
// 19.8 GB/s (5632x2048 20.0 -> 20.4, 2048x2048 19.1 -> 19.8; same measure, outputs equal). Reading
// the codes compactly but the scale and code sum still from the records left it at 12.0. The prefill
// GEMM's 8- and 4-token kernels read the compact form too (q4rcx8, q4rcx4: the act_splats bytes of
// 8 tokens per block were 1280, 16 times the record's weights): 5632x2048 at batch 64, Node 20
// 96-97 -> 107-109 GOP/s, workerd 102-103 -> 110-111, Chromium equal (engines area, CPU time).
// Full tiles of rows [r0, r1) for every token. Tiles go in groups whose weights (about 192 KiB)
// stay in L2 while each block of four tokens runs over the group, so the activation pairs are read
// from beyond L2 once per group rather than once per tile.
// @ts-ignore: decorator
@inline function gemmTiles(kind: i32, w: usize, rows: i32, nblk: i32, xq: usize, pairs: usize, xs: usize, xsum: usize, batch: i32, out: usize, r0: i32, r1: i32): i32 {
  const tb = <usize>nblk * (kind == 1 || kind == 4 || kind == 5 || kind == 6 ? 80 : kind == 7 ? 96 : 144);
  const group = max<i32>(1, <i32>(<usize>196608 / tb));
  const t0 = r0 >> 2;
  const t1 = r1 >> 2; // full tiles only
  for (let g = t0; g < t1; g += group) {
    const ge = min<i32>(t1, g + group);
    let b = 0;
    if (kind == 4 && ASC_FEATURE_RELAXED_SIMD) {
      for (; b + 8 <= batch; b += 8) {
        for (let t = g; t < ge; t++) q4rvx8(w + <usize>t * tb, nblk, pairs, batch, b, out, rows, t << 2);
      }
      for (; b + 4 <= batch; b += 4) {
        for (let t = g; t < ge; t++) q4rvx4(w + <usize>t * tb, nblk, pairs, batch, b, out, rows, t << 2);
      }
      for (; b < batch; b++) {
        for (let t = g; t < ge; t++) q4rvx1(w + <usize>t * tb, nblk, pairs, batch, b, out, rows, t << 2);
      }
      continue;
    }
    // MXFP4 (5) and NF4 (6): the same loops over their table kernels (kind is a constant here)
    if ((kind == 5 || kind == 6) && ASC_FEATURE_RELAXED_SIMD) {
      for (; b + 8 <= batch; b += 8) {
        for (let t = g; t < ge; t++) {
          if (kind == 5) q4lcx8(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
          else q4ncx8(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
        }
      }
      for (; b + 4 <= batch; b += 4) {
        for (let t = g; t < ge; t++) {
          if (kind == 5) q4lcx4(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
          else q4ncx4(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
        }
      }
      for (; b < batch; b++) {
        for (let t = g; t < ge; t++) {
          if (kind == 5) q4lcx1(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
          else q4ncx1(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
        }
      }
      continue;
    }
    if (kind == 7 && ASC_FEATURE_RELAXED_SIMD) {
      for (; b + 8 <= batch; b += 8) {
        for (let t = g; t < ge; t++) q5cx8(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
      }
      for (; b + 4 <= batch; b += 4) {
        for (let t = g; t < ge; t++) q5cx4(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
      }
      for (; b < batch; b++) {
        for (let t = g; t < ge; t++) q5cx1(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
      }
      continue;
    }
    if (kind == 1 && ASC_FEATURE_RELAXED_SIMD) {
      for (; b + 8 <= batch; b += 8) {
        for (let t = g; t < ge; t++) q4rcx8(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
      }
    } else if (kind == 0) {
      for (; b + 8 <= batch; b += 8) {
        for (let t = g; t < ge; t++) q8x8(w + <usize>t * tb, nblk, pairs, xs, xsum, batch, b, out, rows, t << 2);
      }
    }
    for (; b + 4 <= batch; b += 4) {
      for (let t = g; t < ge; t++) {
        if (kind == 1 && ASC_FEATURE_RELAXED_SIMD) q4rcx4(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
        else if (kind == 1) q4x4(w + <usize>t * tb, nblk, pairs, xs, xsum, batch, b, out, rows, t << 2);
        else q8x4(w + <usize>t * tb, nblk, pairs, xs, xsum, batch, b, out, rows, t << 2);
      }
    }
    for (; b < batch; b++) {
      for (let t = g; t < ge; t++) {
        if (kind == 1 && ASC_FEATURE_RELAXED_SIMD) q4rcx1(w + <usize>t * tb, nblk, xq, xs, xsum, batch, b, out, rows, t << 2);
        else if (kind == 1) q4x1(w + <usize>t * tb, nblk, pairs, xs, xsum, batch, b, out, rows, t << 2);
        else q8x1(w + <usize>t * tb, nblk, pairs, xs, xsum, batch, b, out, rows, t << 2);
      }
    }
  }
  return max<i32>(r0, t1 << 2);
}

// As matmul_ggml_tiled (same arguments, plus the pair table of gemm_act_pairs over the same
// entries), for kinds 0 and 1: full tiles by the GEMM above, a partial last tile by
// matmul_ggml_tiled. r0 must be a multiple of 4. Relaxed builds keep Q4_0 records by lanes already
// and multiply nibbles by the relaxed 8-bit dot (16 products per instruction against pmaddwd's 8):
// for kind 1 there, the tokens run the GEMV's laneDots on the int8 codes, scales and code sums (xq,
// xs, xsum; `pairs` is read only by kind 4: the act_splats table, xq16) with the nibble split shared
// by eight tokens (four: 17.0 ms, eight: 15.5,
// 5632x2048 at batch 64, CPU time, interleaved A/B; scripts/bench-ggml-gemm.mjs). Q8_0 also runs eight
// tokens per pass where it can (26.7 -> 24.4 ms, same measure); its sums spill, its unpacking halves.
//
// kind 4 (relaxed builds only; elsewhere as kind 1): Q4_0 by i32x4.relaxed_dot_i8x16_i7x16_add_s,
// the same exact integer dots accumulated in i32 lanes at once. Chromium 150's and workerd's V8 lower
// it to one VNNI vpdpbusd per 16 products, Node 20's to three instructions (peak rows of the engines
// benchmark area, which also runs this kind); outputs equal kind 1's bit for bit.
export function matmul_ggml_gemm(kind: i32, w: usize, rows: i32, cols: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, pairs: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const nblk = cols >> 5;
  let r = r0;
  if (kind == 4 && !ASC_FEATURE_RELAXED_SIMD) kind = 1;
  // MXFP4 (kind 5) and NF4 (kind 6, lowbit's staging blocks {f32 absmax; u8 qs[16]}, QLoRA's levels as
  // 7-bit integers: scripts/gen-ggml-gemm.mjs): relaxed builds, whole tiles only (prepareGgml holds them
  // to rows in fours)
  if (kind == 5) {
    if (ASC_FEATURE_RELAXED_SIMD) gemmTiles(5, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
    return;
  }
  if (kind == 6) {
    if (ASC_FEATURE_RELAXED_SIMD) gemmTiles(6, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
    return;
  }
  // Q5_0 (kind 7): Q4_0's records with 16 bytes of high bits (ggml-tiled.ts), the same rules
  if (kind == 7) {
    if (ASC_FEATURE_RELAXED_SIMD) gemmTiles(7, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
    return;
  }
  if (ASC_FEATURE_SIMD) {
    if (kind == 4) r = gemmTiles(4, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
    else if (kind == 1) r = gemmTiles(1, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
    else r = gemmTiles(0, w, rows, nblk, xq, pairs, xs, xsum, batch, out, r0, r1);
  }
  if (r < r1) matmul_ggml_tiled(kind == 4 ? 1 : kind, w, rows, cols, xq, xq16, xs, xsum, batch, out, r, r1);
}

// matmul_ggml_tiled_multi with the GEMM: up to three prepared matrices of one input as one row range.
export function matmul_ggml_gemm_multi(kind0: i32, w0: usize, rows0: i32, kind1: i32, w1: usize, rows1: i32, kind2: i32, w2: usize, rows2: i32, cols: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, pairs: usize, batch: i32, out0: usize, out1: usize, out2: usize, r0: i32, r1: i32): void {
  const e0 = rows0;
  const e1 = rows0 + rows1;
  if (r0 < e0) matmul_ggml_gemm(kind0, w0, rows0, cols, xq, xq16, xs, xsum, pairs, batch, out0, r0, min<i32>(r1, e0));
  if (r1 > e0 && r0 < e1) matmul_ggml_gemm(kind1, w1, rows1, cols, xq, xq16, xs, xsum, pairs, batch, out1, max<i32>(r0, e0) - e0, min<i32>(r1, e1) - e0);
  if (r1 > e1) matmul_ggml_gemm(kind2, w2, rows2, cols, xq, xq16, xs, xsum, pairs, batch, out2, max<i32>(r0, e1) - e1, r1 - e1);
}
