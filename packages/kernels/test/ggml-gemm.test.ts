import { describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, type Kernels, reference } from '../dist/index-node.js';
import { expectClose, randF16Scale, randF32, randU8, rng } from './helpers.js';

// The plain-SIMD prefill GEMM (assembly/ggml-gemm.ts) runs from 4 tokens up on prepared Q8_0 / Q4_0.
// It applies the scales in the decode GEMV's operations and order, so every token's outputs must be
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

/** The batch's outputs, one token at a time (the decode GEMV). */
function perToken(k: Kernels, type: 'q4_0' | 'q8_0', w: ReturnType<Kernels['prepareGgml']>, rows: number, cols: number, x: Float32Array, batch: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) out.push(...k.matmulGgml(type, w, rows, cols, x.subarray(b * cols, (b + 1) * cols), 1));
  return out;
}

describe('prefill GEMM on prepared ggml tiles', () => {
  it.each(['q4_0', 'q8_0'] as const)('%s: every token equals the decode GEMV bit for bit, and the reference', async (type) => {
    const k = await createKernels({ variant: 'simd' });
    // partial last tile (37, 6 rows), one tile, several tile groups (300 rows of 2048 columns is over
    // the GEMM's 192 KiB group for Q8_0); batches around the 4-token blocks
    for (const [rows, cols, batch, m128] of [[37, 96, 4, false], [8, 64, 5, true], [300, 2048, 7, false], [6, 32, 9, true], [64, 256, 16, false]] as const) {
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

  it('shared Q/K/V-style matmuls and a two-thread pool give the same bits', async () => {
    const k = await createKernels({ variant: 'simd' });
    const pool = await createKernelPool({ threads: 2, variant: 'simd-threads' });
    try {
      const r = rng(5);
      const cols = 128;
      const batch = 6;
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
});
