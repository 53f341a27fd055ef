import { expect } from 'vitest';
import { isLowbitError } from '../src/index.js';

/** Runs `fn` and returns the code of the LowbitError it throws ('none' if it returns); any other error fails the test. */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isLowbitError(e)).toBe(true);
    return (e as { code: string }).code;
  }
  return 'none';
}

/** A small deterministic generator (LCG) of uniforms in [0, 1): tests reproduce from their seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/**
 * Bit-for-bit equality of two f32 arrays (-0 distinguished). With `anyNaN`, any NaN equals any NaN:
 * WebAssembly leaves the sign and payload of a NaN made by arithmetic (Inf·0, NaN scale · dot) to the
 * host CPU (spec 4.3.3, "nondeterministic"); decoders that only copy bits must match NaNs exactly.
 */
export function sameBits(a: Float32Array, b: Float32Array, anyNaN = false): void {
  expect(a.length).toBe(b.length);
  if (anyNaN) {
    a = a.map((v) => (Number.isNaN(v) ? Number.NaN : v));
    b = b.map((v) => (Number.isNaN(v) ? Number.NaN : v));
  }
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) if (ua[i] !== ub[i]) throw new Error(`[${i}] ${a[i]} (0x${ua[i].toString(16)}) vs ${b[i]} (0x${ub[i].toString(16)})`);
}
