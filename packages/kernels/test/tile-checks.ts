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

/** [rows, cols, tokens] the tile tests multiply: one token, a batch below a GEMM pass, whole passes and a tail. */
export const TILE_SHAPES = [
  [8, 64, 1],
  [12, 96, 3],
  [16, 256, 8],
  [20, 160, 13],
] as const;

/**
 * For tile types whose integer dots and scales are those of Q8_0 blocks of the same weights (`asQ8`):
 * every TILE_SHAPES product equals the Q8_0 one bit for bit, and is not two empty results.
 */
export function equalsQ8Check(k: Kernels, type: TiledBlockType, blocks: (r: () => number, rows: number, cols: number) => Uint8Array, asQ8: (b: Uint8Array) => Uint8Array, seed: (rows: number, cols: number, batch: number) => number): void {
  it.each(TILE_SHAPES)('[%i, %i] × %i tokens: equal to the same weights as Q8_0 blocks, bit for bit', (rows, cols, batch) => {
    const r = rng(seed(rows, cols, batch));
    const b = blocks(r, rows, cols);
    const q8 = asQ8(b);
    const x = randF32(r, batch * cols, 2);
    const a = k.prepareGgml(type, b, rows, cols);
    const c = k.prepareGgml('q8_0', q8, rows, cols);
    const ya = k.matmulGgml(type, a, rows, cols, x, batch);
    const yb = k.matmulGgml('q8_0', c, rows, cols, x, batch);
    expect(Array.from(ya)).toEqual(Array.from(yb));
    expect(ya.some((v) => v !== 0)).toBe(true); // not two empty results
    a.free();
    c.free();
  });
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
