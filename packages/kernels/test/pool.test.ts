import { afterAll, describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, type KernelPool, reference } from '../dist/index-node.js';
import { expectClose, randF16Scale, randF32, randU8, rng } from './helpers.js';

const pools: KernelPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

describe.each([2, 3])('KernelPool with %i threads', (threads) => {
  it('splits every row kernel and matches the reference', async () => {
    const pool = await createKernelPool({ threads });
    pools.push(pool);
    expect(['relaxed-threads', 'simd-threads']).toContain(pool.variant);
    for (const [rows, cols, batch] of [[1, 64, 1], [5, 64, 2], [37, 96, 1], [130, 256, 3]]) {
      const r = rng(rows * 31 + cols);
      const w = randF32(r, rows * cols);
      const x = randF32(r, batch * cols);
      expectClose(pool.matmulF32(w, rows, cols, x, batch), reference.matmulF32(w, rows, cols, x, batch), 1e-5, 1e-6);
      const packed = randU8(r, rows * cols / 2);
      const scales = Float32Array.from({ length: rows * (cols / 32) }, () => r() * 0.1 + 0.01);
      expectClose(pool.matmulQ4(packed, scales, null, rows, cols, 32, x, batch), reference.matmulQ4(packed, scales, null, rows, cols, 32, x, batch), 1e-5, 1e-6);
      const blocks = randU8(r, rows * (cols / 32) * 18);
      const view = new DataView(blocks.buffer);
      for (let o = 0; o < blocks.length; o += 18) view.setUint16(o, randF16Scale(r), true);
      expectClose(pool.matmulQ4_0(blocks, rows, cols, x, batch), reference.matmulGgml('q4_0', blocks, rows, cols, x, batch), 1e-5, 1e-6);
      const t = pool.prepareGgml('q4_0', blocks, rows, cols);
      expectClose(pool.matmulQ4_0(t, rows, cols, x, batch), reference.matmulGgml('q4_0', blocks, rows, cols, x, batch), 1e-5, 1e-6);
      t.free();
    }
  });
});

describe('KernelPool memory', () => {
  it('keeps working after the shared memory grows, and equals one thread', async () => {
    const pool = await createKernelPool({ threads: 2, initialPages: 2 });
    pools.push(pool);
    // Rows are computed the same way whichever thread runs them: bit-equal to the same build alone.
    const single = await createKernels({ variant: pool.variant === 'relaxed-threads' ? 'relaxed' : 'simd' });
    const rows = 1024;
    const cols = 4096; // 16 MiB: forces growth far beyond 2 pages while the workers run
    const w = randF32(rng(1), rows * cols);
    const x = randF32(rng(2), cols);
    const t = pool.upload(w);
    const a = pool.gemvF32(t, rows, cols, x);
    expect(Array.from(a)).toEqual(Array.from(single.gemvF32(w, rows, cols, x)));
    t.free();
  });

  it('refuses work after close', async () => {
    const pool = await createKernelPool({ threads: 2 });
    await pool.close();
    expect(() => pool.gemvF32(new Float32Array(4), 1, 4, new Float32Array(4))).toThrow(/closed/);
  });
});
