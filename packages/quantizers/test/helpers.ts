import { reference } from '@lowbit/kernels';
import type { MatmulKernels } from '@lowbit/solvers';
import { isLowbitError } from '../src/index.js';

/** A small deterministic generator (LCG) of uniforms in [-1, 1): tests reproduce from their seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** What `f` throws, as "CODE message" for a LowbitError ('none' if it returns), for toMatch. */
export function errorText(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isLowbitError(e) ? `${e.code} ${e.message}` : String(e);
  }
  return 'none';
}

/**
 * The kernel API computed in f64 (products rounded to f32 only where the real kernel's output is
 * f32): isolates the algebra of the kernel path (LDLQ form, block inverse for group scales) from f32 rounding.
 */
export const f64Kernels: MatmulKernels = {
  // an upload holds the f32 weights themselves; the reference matmul sums their products in f64
  upload: ((a: Float32Array) => ({ a, free() {} })) as unknown as MatmulKernels['upload'],
  matmulF32: ((w: { a?: Float32Array } | Float32Array, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array) => {
    const y = reference.matmulF32((w as { a?: Float32Array }).a ?? (w as Float32Array), rows, cols, x, batch);
    if (!out) return y;
    out.set(y);
    return out;
  }) as MatmulKernels['matmulF32'],
};
