import { describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, type Kernels, reference } from '../dist/index-node.js';
import { expectClose, randF16Scale, randF32, randU8, rng } from './helpers.js';

// The plain-SIMD lane GEMM (assembly/ggml-gemm.ts) runs prepared Q4_0 at every batch and Q8_0 from 4
// tokens up (relaxed builds: both from 8). It applies the scales in the decode GEMV's operations and order, so every token's outputs must be
// the batch-1 GEMV's bit for bit; against the f64 reference, the int dot is exact and only the f32
// products scale·dot and their sum differ (<= (cols/32)·2^-24 relative): 1e-5 of the largest output.
const INT_RTOL = 1e-5;

function blocksOf(r: () => number, type: 'q4_0' | 'q8_0', rows: number, cols: number, minus128 = false): Uint8Array {
  const size = type === 'q4_0' ? 18 : 34;
  const blocks = randU8(r, (rows * cols * size) / 32);
  const view = new DataView(blocks.buffer);
  for (let o = 0; o < blocks.length; o += size) {
    view.setUint16(o, randF16Scale(r), true);
    // Q8_0 code −128 (its own prepared kind): the lane planes must keep it exact too
    if (minus128) blocks[o + 2 + Math.floor(r() * 32)] = 0x80;
  }
  return blocks;
}

/** The batch's outputs by the tiled GEMV (matmul_ggml_tiled, what the GEMM replaces), one token at a time. */
function perToken(k: Kernels, type: 'q4_0' | 'q8_0', w: ReturnType<Kernels['prepareGgml']>, rows: number, cols: number, x: Float32Array, batch: number): number[] {
  const nblk = cols / 32;
  const h = k.heap;
  const relaxed = k.variant.startsWith('relaxed');
  const [xp, xq, xq16, xs, xsum, o] = [cols * 4, nblk * 32, nblk * 160, nblk * 4, nblk * 4, rows * 4].map((n) => h.alloc(n));
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    new Float32Array(k.memory.buffer, xp, cols).set(x.subarray(b * cols, (b + 1) * cols));
    // plain 4-bit: i16 planes; relaxed 4-bit: act_splats records (as matmulGgml lays them out)
    k.exports.quantize_act_q8(xp, cols, 1, xq, type === 'q4_0' && !relaxed ? xq16 : 0, xs, xsum);
    if (type === 'q4_0' && relaxed) k.exports.act_splats(xs, xsum, nblk, xq16, xq);
    k.exports.matmul_ggml_tiled(type === 'q4_0' ? 1 : 0, w.ptr, rows, cols, xq, xq16, xs, xsum, 1, o, 0, rows);
    out.push(...new Float32Array(k.memory.buffer, o, rows));
  }
  for (const p of [xp, xq, xq16, xs, xsum, o]) h.free(p);
  return out;
}

describe('prefill GEMM on prepared ggml tiles', () => {
  it.each([['q4_0', 'simd'], ['q8_0', 'simd'], ['q4_0', 'relaxed'], ['q8_0', 'relaxed']] as const)('%s, %s build: every token equals the tiled GEMV bit for bit, and the reference', async (type, variant) => {
    const k = await createKernels({ variant });
    // partial last tile (37, 6 rows), one tile, several tile groups (300 rows of 2048 columns is over
    // the GEMM's 192 KiB group for Q8_0); batches around the 4-token blocks
    for (const [rows, cols, batch, m128] of [[37, 96, 4, false], [13, 64, 1, false], [8, 96, 3, true], [37, 96, 8, true], [8, 64, 5, true], [300, 2048, 7, false], [6, 32, 9, true], [64, 256, 16, false]] as const) {
      const r = rng(rows * 7 + cols + batch);
      const blocks = blocksOf(r, type, rows, cols, m128 && type === 'q8_0');
      const w = k.prepareGgml(type, blocks, rows, cols);
      const x = randF32(r, batch * cols, 2);
      const got = k.matmulGgml(type, w, rows, cols, x, batch);
      expect(Array.from(got)).toEqual(perToken(k, type, w, rows, cols, x, batch));
      expectClose(got, reference.matmulGgml(type, blocks, rows, cols, x, batch), INT_RTOL, 1e-6);
      w.free();
    }
  });

  it.each(['simd', 'relaxed'] as const)('shared Q/K/V-style matmuls and a two-thread pool give the same bits (%s)', async (variant) => {
    const k = await createKernels({ variant });
    const pool = await createKernelPool({ threads: 2, variant: `${variant}-threads` });
    try {
      const r = rng(5);
      const cols = 128;
      const batch = 9;
      const shapes = [36, 8, 13];
      for (const type of ['q4_0', 'q8_0'] as const) {
        const blocks = shapes.map((rows) => blocksOf(r, type, rows, cols));
        const x = randF32(r, batch * cols);
        const want = shapes.map((rows, i) => perToken(k, type, k.prepareGgml(type, blocks[i], rows, cols), rows, cols, x, batch));
        for (const kk of [k, pool]) {
          const ws = shapes.map((rows, i) => kk.prepareGgml(type, blocks[i], rows, cols));
          const got = kk.matmulGgmlShared(type, ws, shapes, cols, x, batch);
          for (const [i, g] of got.entries()) expect(Array.from(g)).toEqual(want[i]);
          for (const w of ws) w.free();
        }
      }
    } finally {
      await pool.close();
    }
  });

  it.each(['simd', 'relaxed'] as const)('kind 4 (Q4_0 by the accumulating relaxed dot) gives kind 1 bit for bit (%s)', async (variant) => {
    const k = await createKernels({ variant });
    const h = k.heap;
    // partial last tile, 8-, 4- and 1-token blocks, several tile groups
    for (const [rows, cols, batch] of [[37, 96, 13], [8, 32, 1], [300, 2048, 9]] as const) {
      const r = rng(rows + cols * 3 + batch);
      const w = k.prepareGgml('q4_0', blocksOf(r, 'q4_0', rows, cols), rows, cols);
      const n = batch * (cols / 32);
      const [xp, xq, xq16, xs, xsum, o1, o4] = [cols * batch * 4, n * 32, n * 160, n * 4, n * 4, rows * batch * 4, rows * batch * 4].map((b) => h.alloc(b));
      new Float32Array(k.memory.buffer, xp, cols * batch).set(randF32(r, cols * batch));
      const relaxed = variant === 'relaxed';
      k.exports.quantize_act_q8(xp, cols, batch, xq, relaxed ? 0 : xq16, xs, xsum);
      // relaxed: the GEMM reads the act_splats records; plain SIMD (kind 4 runs as kind 1): its pairs
      if (relaxed) k.exports.act_splats(xs, xsum, n, xq16, xq);
      const pairs = relaxed ? xq16 : h.alloc(n * 64);
      if (!relaxed) k.exports.gemm_act_pairs(1, xq, n, pairs);
      const gemm = (kind: number, o: number) => k.exports.matmul_ggml_gemm(kind, w.ptr, rows, cols, xq, xq16, xs, xsum, pairs, batch, o, 0, rows);
      gemm(1, o1);
      // the last of several calls: Node 20's baseline compiler has computed this dot wrongly on first
      // calls (select.ts); the kernels are only ever meant to run optimized
      for (let i = 0; i < 20; i++) gemm(4, o4);
      expect(Array.from(new Uint32Array(k.memory.buffer, o4, rows * batch))).toEqual(Array.from(new Uint32Array(k.memory.buffer, o1, rows * batch)));
      w.free();
    }
  });
});
