// The kernels' prepared K-quant tiles (prepareKQuant + gemvKQuant) against a reference built from
// independent parts: ggml's dequantization (dequantizeK, bit-identical to llama.cpp's, see
// kquants.test.ts), the activations rounded to int8 as ggml's Q8_K does (kquantActivationsQ8), and
// the dot in f64. Random block bytes reach every code, scale, min and high-bit position.
import { type KQuantWeightType, type KernelVariant, createKernelPool, createKernels, gemvKQuant, kquantActivationsQ8, kquantTilesBytes, prepareKQuant, unprepareKQuant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { randomKBlocks } from '../../kernels/test/helpers.js';
import { dequantizeK } from '../src/ggml-kquants.js';
import { Linear } from '../src/linear.js';

const TYPES: KQuantWeightType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

function reference(type: KQuantWeightType, blocks: Uint8Array, rows: number, cols: number, x: Float32Array): { y: Float64Array; mag: Float64Array } {
  const w = new Float32Array(rows * cols);
  dequantizeK(type, blocks, 0, (rows * cols) / 256, w);
  const xq = kquantActivationsQ8(x);
  const y = new Float64Array(rows);
  const mag = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      y[r] += w[r * cols + c] * xq[c];
      mag[r] += Math.abs(w[r * cols + c] * xq[c]);
    }
  }
  return { y, mag };
}

describe.for(['relaxed', 'simd'] as KernelVariant[])('prepared K-quant tiles (%s build)', (variant) => {
  it.for(TYPES)('%s: gemvKQuant on prepared tiles equals dequantize-then-dot with Q8_K activations', async (type) => {
    const k = await createKernels({ variant });
    // 7 rows: a partial last tile; 512 columns: two super-blocks per row
    const rows = 7;
    const cols = 512;
    const blocks = randomKBlocks(type, rows, cols, 7 + type.charCodeAt(1));
    const x = Float32Array.from({ length: 2 * cols }, (_, i) => Math.sin(0.37 * i + 1) * (1 + (i % 11)));
    const t = prepareKQuant(k, type, blocks, rows, cols);
    expect(t).not.toBeNull();
    expect(t?.byteLength).toBe(kquantTilesBytes(type, rows, cols));
    const y = gemvKQuant(k, type, t as NonNullable<typeof t>, rows, cols, x, 2);
    const raw = gemvKQuant(k, type, blocks, rows, cols, x, 2);
    for (let b = 0; b < 2; b++) {
      const { y: want, mag } = reference(type, blocks, rows, cols, x.subarray(b * cols, (b + 1) * cols));
      for (let r = 0; r < rows; r++) {
        // The integer dots are exact; what differs from f64 is ~6 f32 roundings per super-block (the
        // i32 sums and the d / dmin products, their difference, the activation scale, the running
        // sum), each ≤ 2^-24 of a term whose size is bounded by the sum of the |w·x| of both parts
        // (mins included, up to ~4× the row's Σ|w·x| for these random scales): 2e-6 of Σ|w·x| holds.
        expect(Math.abs(y[b * rows + r] - want[r]), `${type} batch ${b} row ${r}`).toBeLessThanOrEqual(2e-6 * mag[r] + 1e-30);
        // and the unprepared int8 kernel (same rounding of x, another summation order) agrees as well
        expect(Math.abs(y[b * rows + r] - raw[b * rows + r])).toBeLessThanOrEqual(4e-6 * mag[r] + 1e-30);
      }
    }
    // the blocks come back from the tiles byte for byte (what a re-saved model writes)
    expect(Buffer.from(unprepareKQuant(k, type, t as NonNullable<typeof t>, rows, cols)).equals(Buffer.from(blocks))).toBe(true);
    t?.free();
  });
});

describe('Linear runs K-quant layers on prepared tiles', () => {
  it('a Q4_K layer: results as the tiles give them, source returns the blocks byte for byte', async () => {
    const k = await createKernels();
    const rows = 9;
    const cols = 256;
    const blocks = randomKBlocks('Q4_K', rows, cols, 3);
    const l = new Linear(k, 'w', { format: 'kquant', type: 'Q4_K', shape: [rows, cols], data: blocks });
    const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i));
    const { y: want, mag } = reference('Q4_K', blocks, rows, cols, x);
    const y = l.apply(x, 1);
    for (let r = 0; r < rows; r++) expect(Math.abs(y[r] - want[r])).toBeLessThanOrEqual(2e-6 * mag[r] + 1e-30);
    const src = l.source;
    expect(src.format).toBe('kquant');
    expect(Buffer.from((src as { data: Uint8Array }).data).equals(Buffer.from(blocks))).toBe(true);
    l.free();
  });
});

describe('prepared K-quant tiles on a thread pool', () => {
  it('rows split over two threads (whole tiles) give the single-instance results exactly', async () => {
    const pool = await createKernelPool({ threads: 2 });
    const one = await createKernels();
    try {
      // 70 rows: several 4-row chunks per thread and a partial last tile; batch 3 (prefill)
      const rows = 70;
      const cols = 512;
      for (const type of ['Q4_K', 'Q6_K', 'Q3_K'] as const) {
        const blocks = randomKBlocks(type, rows, cols, 19);
        const x = Float32Array.from({ length: 3 * cols }, (_, i) => Math.cos(0.11 * i) * (i % 7));
        const tp = prepareKQuant(pool, type, blocks, rows, cols);
        const t1 = prepareKQuant(one, type, blocks, rows, cols);
        const yp = gemvKQuant(pool, type, tp as NonNullable<typeof tp>, rows, cols, x, 3);
        const y1 = gemvKQuant(one, type, t1 as NonNullable<typeof t1>, rows, cols, x, 3);
        // each row's arithmetic is the same whichever thread runs it: bit-identical
        expect(Array.from(yp), type).toEqual(Array.from(y1));
        tp?.free();
        t1?.free();
      }
    } finally {
      await pool.close();
    }
  });
});
