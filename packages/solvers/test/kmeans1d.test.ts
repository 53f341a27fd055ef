import { describe, expect, it } from 'vitest';
import { isLowbitError, kmeans1d, leastSquares, solveSpd } from '../src/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Exhaustive optimum for tiny inputs: every way to cut the sorted values into k runs. */
function bruteForce(x: number[], k: number): number {
  const s = [...x].sort((a, b) => a - b);
  const n = s.length;
  const sse = (a: number, b: number) => {
    const seg = s.slice(a, b + 1);
    const m = seg.reduce((p, v) => p + v, 0) / seg.length;
    return seg.reduce((p, v) => p + (v - m) ** 2, 0);
  };
  let best = Number.POSITIVE_INFINITY;
  const rec = (start: number, left: number, acc: number) => {
    if (left === 1) {
      best = Math.min(best, acc + sse(start, n - 1));
      return;
    }
    for (let end = start; end <= n - left; end++) rec(end + 1, left - 1, acc + sse(start, end));
  };
  rec(0, Math.min(k, n), 0);
  return best;
}

describe('kmeans1d', () => {
  it('reaches the exhaustive optimum cost (to 9 decimals) on small random sets', () => {
    const r = rng(3);
    for (let t = 0; t < 30; t++) {
      const n = 3 + Math.floor(r() * 9);
      const k = 1 + Math.floor(r() * 4);
      const x = Array.from({ length: n }, () => Math.round((r() * 2 - 1) * 100) / 10);
      const res = kmeans1d(x, k);
      expect(res.cost).toBeCloseTo(bruteForce(x, k), 9);
      // Every value sits in its nearest centroid's cluster and the centroid is its cluster mean.
      for (let i = 0; i < n; i++) {
        const d = Math.abs(x[i] - res.centroids[res.assignment[i]]);
        for (const c of res.centroids) expect(d).toBeLessThanOrEqual(Math.abs(x[i] - c) + 1e-12);
      }
    }
  });

  it('finds obvious clusters and handles fewer points than k', () => {
    const res = kmeans1d([1, 1.1, 0.9, 10, 10.2, 9.8, -5], 3);
    expect(Array.from(res.centroids).map((c) => Math.round(c * 10) / 10)).toEqual([-5, 1, 10]);
    const few = kmeans1d([2, 2, 3], 4);
    expect(few.centroids.length).toBe(4);
    expect(few.cost).toBe(0);
  });

  it('respects weights', () => {
    const res = kmeans1d([0, 1], 1, [3, 1]);
    expect(res.centroids[0]).toBeCloseTo(0.25, 12);
  });

  it('rejects bad input', () => {
    for (const fn of [() => kmeans1d([1, Number.NaN], 2), () => kmeans1d([1, 2], 0), () => kmeans1d([1, 2], 1, [1])]) {
      try {
        fn();
        throw new Error('no error');
      } catch (e) {
        expect(isLowbitError(e)).toBe(true);
      }
    }
  });
});

describe('linear solvers', () => {
  it('solveSpd and leastSquares recover the exact solutions of small systems (to 1e-10)', () => {
    const A = Float64Array.of(4, 1, 1, 3);
    const x = solveSpd(A, Float64Array.of(1, 2), 2);
    expect(4 * x[0] + x[1]).toBeCloseTo(1, 12);
    expect(x[0] + 3 * x[1]).toBeCloseTo(2, 12);
    const M = Float64Array.of(1, 0, 0, 1, 1, 1); // [3, 2]
    const y = [1, 2, 3];
    const ls = leastSquares(M, 3, 2, y);
    expect(ls[0]).toBeCloseTo(1, 10);
    expect(ls[1]).toBeCloseTo(2, 10);
  });
  it('dampens a singular system instead of failing', () => {
    const x = solveSpd(Float64Array.of(1, 1, 1, 1), Float64Array.of(2, 2), 2);
    expect(x[0] + x[1]).toBeCloseTo(2, 3);
  });
});
