import { expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so these checks run the built package (dist/).
import { type Kernels, type TiledBlockType, createKernelPool, createKernels, isLowbitError } from '../dist/index-node.js';
import { randF32, rng } from './helpers.js';

/** The LowbitError code f throws, or what else happened. */
export function errorCode(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isLowbitError(e) ? e.code : String(e);
  }
  return 'no error';
}

/**
 * What every tile type that only the relaxed-SIMD builds run, in whole tiles, must do: unprepare to its
 * blocks byte for byte, give a 2-thread pool's bits on one thread, and refuse rows not in fours, blocks
 * not prepared and other builds. `blocks(r, rows, cols)` makes valid random blocks of the type.
 */
export function relaxedTileChecks(k: Kernels, type: TiledBlockType, blocks: (r: () => number, rows: number, cols: number) => Uint8Array): void {
  it('unprepares to the blocks byte for byte', () => {
    const b = blocks(rng(5), 8, 96);
    const t = k.prepareGgml(type, b, 8, 96);
    expect(k.unprepareGgml(type, t, 8, 96)).toEqual(b);
    t.free();
  });

  it('a 2-thread pool gives the single-thread bits', async () => {
    const pool = await createKernelPool({ threads: 2, variant: 'relaxed-threads' });
    try {
      const r = rng(9);
      const [rows, cols, batch] = [64, 128, 5];
      const b = blocks(r, rows, cols);
      const x = randF32(r, batch * cols);
      const one = k.matmulGgml(type, k.prepareGgml(type, b, rows, cols), rows, cols, x, batch);
      const two = pool.matmulGgml(type, pool.prepareGgml(type, b, rows, cols), rows, cols, x, batch);
      expect(Array.from(two)).toEqual(Array.from(one));
    } finally {
      await pool.close();
    }
  });

  it('refuses rows not in fours, blocks not prepared, and builds without relaxed SIMD', async () => {
    expect(errorCode(() => k.prepareGgml(type, blocks(rng(4), 6, 64), 6, 64))).toBe('E_SHAPE');
    expect(errorCode(() => k.matmulGgml(type, blocks(rng(4), 4, 64), 4, 64, new Float32Array(64), 1))).toBe('E_UNSUPPORTED');
    const plain = await createKernels({ variant: 'simd' });
    expect(plain.supportsMxfp4Tiles).toBe(false);
    expect(errorCode(() => plain.prepareGgml(type, blocks(rng(4), 4, 64), 4, 64))).toBe('E_UNSUPPORTED');
  });
}
