import { describe, expect, it } from 'vitest';
import { a3Attention } from '../src/a3.js';
import { seededRandom as rng } from '../src/random.js';

/** Textbook softmax(QK^T/sqrt(d))V, causal or not. */
function exact(Q: Float64Array, K: Float64Array, V: Float64Array, nq: number, n: number, d: number, dv: number, causal: boolean): Float64Array {
  const out = new Float64Array(nq * dv);
  for (let t = 0; t < nq; t++) {
    const last = causal ? Math.min(t, n - 1) : n - 1;
    const s = Array.from({ length: last + 1 }, (_, i) => {
      let x = 0;
      for (let j = 0; j < d; j++) x += Q[t * d + j] * K[i * d + j];
      return x / Math.sqrt(d);
    });
    const mx = Math.max(...s);
    const e = s.map((x) => Math.exp(x - mx));
    const z = e.reduce((a, b) => a + b, 0);
    for (let i = 0; i <= last; i++) for (let j = 0; j < dv; j++) out[t * dv + j] += (e[i] / z) * V[i * dv + j];
  }
  return out;
}

describe('A3 approximate attention', () => {
  const rand = rng(11);
  const [nq, n, d, dv] = [24, 24, 8, 5];
  const Q = Float64Array.from({ length: nq * d }, () => rand() * 2 - 1);
  const K = Float64Array.from({ length: n * d }, () => rand() * 2 - 1);
  const V = Float64Array.from({ length: n * dv }, () => rand() * 2 - 1);
  for (const causal of [false, true]) {
    it(`k = all, no search, no threshold: exact attention (${causal ? 'causal' : 'full'})`, () => {
      const r = a3Attention(Q, K, V, nq, n, d, dv, { m: 0, k: n, threshold: Number.POSITIVE_INFINITY, causal });
      const ref = exact(Q, K, V, nq, n, d, dv, causal);
      for (let i = 0; i < ref.length; i++) expect(r.out[i]).toBeCloseTo(ref[i], 12); // same sums in another order
      expect(r.dots).toBe(r.exactDots);
    });
  }
  it('the greedy search finds a dominant key with few dot products', () => {
    // key 3 is q itself scaled up: it dominates every component product
    const q = Float64Array.from([0.5, -0.4, 0.3, 0.2]);
    const Kd = Float64Array.from({ length: 8 * 4 }, (_, i) => (Math.floor(i / 4) === 3 ? 4 * q[i % 4] : ((i * 37) % 11) / 11 - 0.5));
    const Vd = Float64Array.from({ length: 8 }, (_, i) => i);
    const r = a3Attention(q, Kd, Vd, 1, 8, 4, 1, { m: 2, k: 1, threshold: 0 });
    expect(r.out[0]).toBe(3);
    expect(r.dots).toBeLessThan(8);
  });
  it('more search iterations never compute fewer candidates here, and error shrinks toward 0', () => {
    const ref = exact(Q, K, V, nq, n, d, dv, false);
    const err = (m: number) => {
      const r = a3Attention(Q, K, V, nq, n, d, dv, { m, k: n, threshold: Number.POSITIVE_INFINITY });
      let e = 0;
      let z = 0;
      for (let i = 0; i < ref.length; i++) [e, z] = [e + (r.out[i] - ref[i]) ** 2, z + ref[i] ** 2];
      return { rel: Math.sqrt(e / z), dots: r.dots };
    };
    const a = err(2);
    const b = err(64);
    expect(a.dots).toBeLessThan(b.dots);
    expect(b.rel).toBeLessThanOrEqual(a.rel);
  });
});
