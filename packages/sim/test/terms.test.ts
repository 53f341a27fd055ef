import { describe, expect, it } from 'vitest';
import { detectedBits, isSignedTensor, nafTerms, popcountTerms, signMagnitudeBits } from '../src/terms.js';

/** Fewest signed powers of two summing to n, by exhaustive search over digit strings in {-1,0,1} (independent of NAF). */
function minSignedDigits(n: number, width: number): number {
  let best = Number.POSITIVE_INFINITY;
  const rec = (i: number, sum: number, count: number) => {
    if (count >= best) return;
    if (i === width) {
      if (sum === n) best = count;
      return;
    }
    for (const d of [0, 1, -1]) rec(i + 1, sum + d * 2 ** i, count + (d === 0 ? 0 : 1));
  };
  rec(0, 0, 0);
  return best;
}

describe('bit-level value properties', () => {
  it('NAF term count is the minimal signed-digit count (exhaustive for |v| < 256)', () => {
    for (let v = 0; v < 256; v++) expect(nafTerms(v)).toBe(minSignedDigits(v, 10));
    expect(nafTerms(-7)).toBe(2); // 8 - 1
    expect(nafTerms(0b0110110)).toBe(3); // 64 - 8 - 2
  });
  it('NAF never needs more terms than popcount', () => {
    for (let v = 0; v < 1 << 16; v += 7) expect(nafTerms(v)).toBeLessThanOrEqual(popcountTerms(v));
  });
  it('sign-magnitude precision: leading one plus sign', () => {
    expect([0, 1, 2, 3, 4, 127, -1, -8, 32767].map(signMagnitudeBits)).toEqual([0, 1, 2, 2, 3, 7, 2, 5, 15]);
  });
});

describe('detectedBits (DNNsim @4748a60 dynamic-precision rule)', () => {
  // independent reference: the fewest bits w whose range holds v, searched upward
  const twos = (v: number) => {
    let w = 1;
    while (v < -(2 ** (w - 1)) || v >= 2 ** (w - 1)) w++;
    return w;
  };
  const unsigned = (v: number) => {
    let w = 1;
    while (v >= 2 ** w) w++;
    return w;
  };
  it('signed tensors: the two\'s-complement width, at least 2 (every 16-bit value)', () => {
    const wrong: number[] = [];
    for (let v = -32768; v < 32768; v++) if (detectedBits(v, true) !== Math.max(2, twos(v))) wrong.push(v);
    expect(wrong).toEqual([]);
  });
  it('unsigned tensors: the bits up to the leading one, at least 1', () => {
    const wrong: number[] = [];
    for (let v = 0; v < 32768; v++) if (detectedBits(v, false) !== unsigned(v)) wrong.push(v);
    expect(wrong).toEqual([]);
    expect([isSignedTensor([0, 3, 7]), isSignedTensor(Int16Array.from([4, -1]))]).toEqual([false, true]);
  });
});

