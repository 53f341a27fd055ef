import { describe, expect, it } from 'vitest';
import { exp64, log64 } from '../src/portable-math.js';

// exp64 / log64 use +, −, ×, ÷ only, so they give the same f64 in every engine; here they are held to
// within 1 ulp of this engine's Math.exp / Math.log (V8's libm, itself within 1 ulp of the true value).
const F64 = new Float64Array(1);
const I64 = new BigInt64Array(F64.buffer);
function ulps(a: number, b: number): number {
  if (Object.is(a, b)) return 0;
  F64[0] = a;
  const ia = I64[0];
  F64[0] = b;
  return Number(ia > I64[0] ? ia - I64[0] : I64[0] - ia);
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('portable exp and log', () => {
  it('exp64 is within 1 ulp of Math.exp from −745 to 709, exact at 0, 0 and ∞ past the edges', () => {
    const r = rng(1);
    let worst = 0;
    for (let i = 0; i < 200_000; i++) {
      // most arguments where log-softmax takes them (−30 … 0), the rest over the whole range
      const x = i % 4 ? -30 * r() : -745 + 1454 * r();
      worst = Math.max(worst, ulps(exp64(x), Math.exp(x)));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(exp64(0)).toBe(1);
    expect(ulps(exp64(1), Math.E)).toBeLessThanOrEqual(1);
    expect(exp64(710)).toBe(Number.POSITIVE_INFINITY);
    expect(exp64(-746)).toBe(0);
    expect(exp64(Number.NEGATIVE_INFINITY)).toBe(0);
    expect(exp64(Number.NaN)).toBeNaN();
    expect(ulps(exp64(-740), Math.exp(-740))).toBeLessThanOrEqual(1); // a subnormal result
    expect(ulps(exp64(709.7), Math.exp(709.7))).toBeLessThanOrEqual(1);
  });

  it('log64 is within 1 ulp of Math.log over normal and subnormal arguments, exact at 1, 2 and 1024', () => {
    const r = rng(2);
    let worst = 0;
    for (let i = 0; i < 200_000; i++) {
      const x = i % 4 ? 1 + 1e4 * r() : 2 ** (-1070 + 2090 * r());
      worst = Math.max(worst, ulps(log64(x), Math.log(x)));
    }
    expect(worst).toBeLessThanOrEqual(1);
    expect(log64(1)).toBe(0);
    expect(log64(2)).toBe(Math.LN2);
    expect(log64(1024)).toBe(10 * Math.LN2);
    expect(ulps(log64(Math.E), 1)).toBeLessThanOrEqual(1);
    expect(log64(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(log64(-1)).toBeNaN();
    expect(log64(Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
    expect(ulps(log64(5e-324), Math.log(5e-324))).toBeLessThanOrEqual(1);
  });
});
