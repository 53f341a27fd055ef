// The batched K-quant kernel (kquant_tiles_rows: a prepared tile unpacked once per four tokens)
// against the GEMV it replaces for prefill: gemvKQuant on a batch must give, for every token, the
// bits that gemvKQuant gives that token alone (batch 1 runs the per-token GEMV). Random block bytes
// reach every code, scale, min and high-bit position; row counts leave partial last tiles.
import { type KQuantWeightType, type KernelVariant, createKernelPool, createKernels, gemvKQuant, prepareKQuant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { randomKBlocks } from './helpers.js';

const TYPES: KQuantWeightType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

// activations with outliers and exact zeros, so the int8 rounding and the block maxima vary per token
const activations = (batch: number, cols: number) => Float32Array.from({ length: batch * cols }, (_, i) => (i % 13 === 0 ? 0 : Math.sin(0.37 * i + 1) * (1 + (i % 11)) * (i % 97 === 5 ? 40 : 1)));

function perToken(y: Float32Array, one: (b: number) => Float32Array, batch: number, rows: number, what: string): void {
  for (let b = 0; b < batch; b++) {
    const want = one(b);
    const got = y.subarray(b * rows, (b + 1) * rows);
    // bit-identical: same integer sums, same f32 operations in the same order
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${what} token ${b}`).toBe(true);
  }
}

describe.for(['relaxed', 'simd'] as KernelVariant[])('batched K-quant tiles (%s build)', (variant) => {
  it.for(TYPES)('%s: a batch of 1..9 tokens gives each token the per-token GEMV bits', async (type) => {
    const k = await createKernels({ variant });
    // 7 rows (one partial tile) and 13 (three full, one partial); 512 columns: two super-blocks
    for (const rows of [7, 13]) {
      const cols = 512;
      const t = prepareKQuant(k, type, randomKBlocks(type, rows, cols, 5 + rows + type.charCodeAt(1)), rows, cols);
      if (t === null) throw new Error('prepareKQuant gave no tiles on a SIMD build');
      const x = activations(9, cols);
      const single = (b: number) => gemvKQuant(k, type, t, rows, cols, x.subarray(b * cols, (b + 1) * cols), 1);
      for (let batch = 1; batch <= 9; batch++) {
        const y = gemvKQuant(k, type, t, rows, cols, x.subarray(0, batch * cols), batch);
        perToken(y, single, batch, rows, `${type} rows ${rows} batch ${batch}`);
      }
      t.free();
    }
  });
});

describe('batched K-quant tiles on a thread pool', () => {
  it('rows split over two threads give the single-token results bit for bit', async () => {
    const pool = await createKernelPool({ threads: 2 });
    try {
      const rows = 70;
      const cols = 256;
      for (const type of ['Q4_K', 'Q6_K', 'Q2_K'] as const) {
        const t = prepareKQuant(pool, type, randomKBlocks(type, rows, cols, 23), rows, cols);
        if (t === null) throw new Error('prepareKQuant gave no tiles on a SIMD build');
        const x = activations(6, cols);
        const y = gemvKQuant(pool, type, t, rows, cols, x, 6);
        perToken(y, (b) => gemvKQuant(pool, type, t, rows, cols, x.subarray(b * cols, (b + 1) * cols), 1), 6, rows, type);
        t.free();
      }
    } finally {
      await pool.close();
    }
  });
});
