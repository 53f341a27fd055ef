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
