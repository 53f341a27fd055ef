import { describe, expect, it } from 'vitest';
import { RetentionRule, checkMiniCache, miniCachePairs, slerp } from '../src/minicache.js';

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(tol);
};

describe('slerp', () => {
  const a = Float32Array.from([3, 0, 4, 0]); // |a| = 5
  const b = Float32Array.from([0, 2, 0, 0]); // orthogonal to a
  const out = new Float32Array(4);

  // f32 outputs from f64 arithmetic: within one f32 rounding of the exact unit vectors (6e-8)
  it('t = 0 gives the first direction, t = 1 the second', () => {
    slerp(a, 0, b, 0, 4, 0, out);
    close(out, [0.6, 0, 0.8, 0], 1e-7);
    slerp(a, 0, b, 0, 4, 1, out);
    close(out, [0, 1, 0, 0], 1e-7);
  });

  it('orthogonal vectors at t = 0.5: the bisector, distance 0.5', () => {
    const d = slerp(a, 0, b, 0, 4, 0.5, out);
    close(out, unit([0.6, 1, 0.8, 0]), 1e-7);
    expect(d).toBeCloseTo(0.5, 12);
  });

  it('at t the result lies t·Ω from the first direction (Ω = 60° here)', () => {
    const c = Float32Array.from([1, 0, 0, 0]);
    const e = Float32Array.from([0.5, Math.sqrt(3) / 2, 0, 0]);
    const d = slerp(c, 0, e, 0, 4, 0.25, out);
    expect(d).toBeCloseTo(1 / 3, 7);
    close(out, [Math.cos(Math.PI / 12), Math.sin(Math.PI / 12), 0, 0], 1e-7);
  });

  it('parallel vectors give their common direction, distance 0; opposite ones the nearer end', () => {
    const p = Float32Array.from([1, 2, 2, 0]);
    const q = Float32Array.from([3, 6, 6, 0]);
    expect(slerp(p, 0, q, 0, 4, 0.6, out)).toBe(0);
    close(out, [1 / 3, 2 / 3, 2 / 3, 0], 1e-7);
    const r = Float32Array.from([-1, -2, -2, 0]);
    expect(slerp(p, 0, r, 0, 4, 0.3, out)).toBeCloseTo(1, 6);
    close(out, [1 / 3, 2 / 3, 2 / 3, 0], 1e-7);
    slerp(p, 0, r, 0, 4, 0.7, out);
    close(out, [-1 / 3, -2 / 3, -2 / 3, 0], 1e-7);
  });

  it('a zero vector takes the other direction; two zeros stay zero; offsets are honoured', () => {
    const z = new Float32Array(8);
    z.set([0, 0, 5, 0], 4);
    slerp(new Float32Array(4), 0, z, 4, 4, 0.2, out);
    close(out, [0, 0, 1, 0], 0);
    slerp(new Float32Array(4), 0, new Float32Array(4), 0, 4, 0.5, out);
    close(out, [0, 0, 0, 0], 0);
  });
});

describe('MiniCache settings', () => {
  it('pairs from the middle on: 5 layers → [3, 4]; 32 → 16..31', () => {
    expect(miniCachePairs(5)).toEqual([[3, 4]]);
    expect(miniCachePairs(32)).toHaveLength(8);
    expect(miniCachePairs(32)[0]).toEqual([16, 17]);
    expect(miniCachePairs(2)).toEqual([[0, 1]]);
    expect(miniCachePairs(5, 0)).toEqual([[0, 1], [2, 3]]);
    for (const from of [4, -1, 1.5]) expect(() => miniCachePairs(5, from)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
  });

  it('out-of-range pairs, t, gamma and ranges are E_RANGE', () => {
    const bad = [
      { pairs: [[4, 5]] as [number, number][] },
      { pairs: [[1, 3]] as [number, number][] },
      { pairs: [[1, 2], [2, 3]] as [number, number][] },
      { t: 1.5 },
      { t: Number.NaN },
      { gamma: -0.1 },
      { pairs: [[3, 4]] as [number, number][], ranges: [] },
      { pairs: [[3, 4]] as [number, number][], ranges: [{ keys: [0.6, 0.5] as [number, number], values: [0, 1] as [number, number] }] },
    ];
    for (const o of bad) expect(() => checkMiniCache(o, 5)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    expect(checkMiniCache({}, 5)).toEqual({ pairs: [[3, 4]], t: 0.6, gamma: 0.05, ranges: undefined });
  });
});

describe('RetentionRule', () => {
  it('keeps tokens past d_min + (d_max − d_min)·γ; γ = 1 keeps none; the first token is kept unless γ = 1', () => {
    const r = new RetentionRule(0.5);
    expect([0.4, 0.2, 0.3, 0.35, 0.1].map((d) => r.retain(d))).toEqual([true, false, false, true, false]);
    const none = new RetentionRule(1);
    expect([0.4, 0.2, 0.9].map((d) => none.retain(d))).toEqual([false, false, false]);
    const fixed = new RetentionRule(0.05, [0.3, 0.7]); // threshold 0.32
    expect([0.31, 0.33, 0.1].map((d) => fixed.retain(d))).toEqual([false, true, false]);
  });
});
