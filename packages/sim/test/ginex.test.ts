import { describe, expect, it } from 'vitest';
import { cacheMisses, ginexStudy, powerLawGraph, samplingTrace } from '../src/ginex.js';
import { LowbitError } from '../src/index.js';
import { seededRandom } from '../src/random.js';

/** Fewest misses any eviction choice reaches (exhaustive), for tiny traces. */
function optimalMisses(trace: number[], cap: number): number {
  let best = Number.POSITIVE_INFINITY;
  const rec = (i: number, cache: number[], misses: number) => {
    if (misses >= best) return;
    if (i === trace.length) {
      best = misses;
      return;
    }
    const v = trace[i];
    if (cache.includes(v)) return rec(i + 1, cache, misses);
    if (cache.length < cap) return rec(i + 1, [...cache, v], misses + 1);
    for (let k = 0; k < cache.length; k++) rec(i + 1, [...cache.slice(0, k), ...cache.slice(k + 1), v], misses + 1);
  };
  rec(0, [], 0);
  return best;
}

describe('Ginex feature cache', () => {
  it('the textbook trace: Belady 7 misses, LRU 10 (capacity 3)', () => {
    const t = [1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5];
    expect(cacheMisses(t, 3, 'belady')).toBe(7);
    expect(cacheMisses(t, 3, 'lru')).toBe(10);
  });
  it('Belady equals the exhaustive optimum on small random traces; LRU never beats it', () => {
    const rand = seededRandom(5);
    for (let trial = 0; trial < 40; trial++) {
      const t = Array.from({ length: 10 }, () => Math.floor(rand() * 5));
      const cap = 1 + (trial % 3);
      const opt = optimalMisses(t, cap);
      expect(cacheMisses(t, cap, 'belady')).toBe(opt);
      expect(cacheMisses(t, cap, 'lru')).toBeGreaterThanOrEqual(opt);
    }
  });
  it('power-law graph and sampling trace: sizes, degrees skewed, batches of distinct nodes', () => {
    const g = powerLawGraph(2000, 8, 2.5, 3);
    expect(g.offsets[g.n]).toBe(g.adj.length);
    const deg = Array.from({ length: g.n }, (_, i) => g.offsets[i + 1] - g.offsets[i]);
    expect(deg[0]).toBeGreaterThan(10 * (deg.reduce((a, b) => a + b, 0) / g.n)); // the hub is far above the mean
    const { trace, batchStarts } = samplingTrace(g, { batchSize: 32, fanouts: [5, 3], batches: 20 });
    expect(batchStarts.length).toBe(20);
    for (let b = 0; b < 20; b++) {
      const part = trace.subarray(batchStarts[b], b + 1 < 20 ? batchStarts[b + 1] : trace.length);
      expect(new Set(part).size).toBe(part.length);
    }
    const rows = ginexStudy(trace, g.n, [0, 0.1, 1], 512);
    expect(rows[0].lruHitRate).toBe(0);
    expect(rows[1].beladyHitRate).toBeGreaterThanOrEqual(rows[1].lruHitRate);
    expect(rows[2].lruHitRate).toBe(rows[2].beladyHitRate); // everything fits: only first touches miss
  });
  it('bad input', () => {
    expect(() => cacheMisses([1], -1, 'lru')).toThrow(LowbitError);
    expect(() => cacheMisses([1], 1, 'fifo' as 'lru')).toThrow(/unknown policy/);
    expect(() => powerLawGraph(10, 4, 1.5)).toThrow(/gamma > 2/);
  });
});
