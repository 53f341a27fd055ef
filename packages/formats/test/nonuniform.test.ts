import { kmeans1d } from '@lowbit/solvers';
import { describe, expect, it } from 'vitest';
import {
  dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeNf4, isLowbitError, NF4_TABLE, quantizeAnyPrecision, quantizeBcq, quantizeCodebook, quantizeInt,
  quantizeNf4, readAnyPrecision,
} from '../src/index.js';
import { rng } from './helpers.js';

/** Laplacian-ish weights with a few outliers, like a trained layer. */
function weights(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => {
    const u = r() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.05 * (r() < 0.01 ? 8 : 1);
  });
}
const mse = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length;

describe('per-channel codebooks', () => {
  it.each([2, 3, 4])('%i bits: never worse than the uniform per-channel grid (k-means is optimal over all tables)', (bits) => {
    const w = weights(rng(bits), 16 * 96);
    const cb = dequantizeCodebook(quantizeCodebook(w, [16, 96], { bits }));
    const rtn = dequantizeInt(quantizeInt(w, [16, 96], { bits, symmetric: false, granularity: 'per-oc' }));
    expect(mse(cb, w)).toBeLessThanOrEqual(mse(rtn, w) * (1 + 1e-9));
    expect(mse(cb, w)).toBeGreaterThan(0);
  });
});

describe('NF4 tensors', () => {
  it('decodes to table values times the group absmax, partial last group included', () => {
    const w = weights(rng(5), 3 * 100);
    const t = quantizeNf4(w, [3, 100], { group: 64 });
    expect(t.scales.length).toBe(6);
    const d = dequantizeNf4(t);
    for (let i = 0; i < w.length; i++) {
      const s = t.scales[Math.floor(i / 100) * 2 + Math.floor((i % 100) / 64)];
      expect(NF4_TABLE.includes(Math.fround(d[i] / s)) || Math.abs(d[i] / s - Math.round(d[i] / s * 1e6) / 1e6) < 1e-6).toBe(true);
      expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(s * 0.17); // half the largest NF4 gap (0.33)
    }
  });
});

describe('binary-coding quantization', () => {
  it('1 bit: α = mean|w| and b = sign(w), the closed-form optimum', () => {
    const w = Float32Array.of(0.5, -1, 2, -0.25);
    const t = quantizeBcq(w, [1, 4], { bits: 1 });
    expect(t.alphas[0]).toBeCloseTo(0.9375, 6);
    expect(Array.from(dequantizeBcq(t))).toEqual([0.9375, -0.9375, 0.9375, -0.9375]);
  });

  it('error falls with every plane, and alternating refinement beats the greedy start', () => {
    const w = weights(rng(9), 8 * 128);
    const errs = [1, 2, 3, 4].map((bits) => mse(dequantizeBcq(quantizeBcq(w, [8, 128], { bits, group: 32 })), w));
    for (let i = 1; i < errs.length; i++) expect(errs[i]).toBeLessThan(errs[i - 1]);
    const greedy = mse(dequantizeBcq(quantizeBcq(w, [8, 128], { bits: 3, group: 32, iterations: 0 })), w);
    expect(errs[2]).toBeLessThan(greedy);
  });
});

describe('any-precision nested codes', () => {
  it('one layout serves 3..6 bits; error falls with every bit; the seed is the optimal 3-bit codebook', () => {
    const rows = 6;
    const cols = 80;
    const w = weights(rng(11), rows * cols);
    const t = quantizeAnyPrecision(w, [rows, cols], { seedBits: 3, maxBits: 6 });
    const errs = [3, 4, 5, 6].map((b) => mse(readAnyPrecision(t, b), w));
    for (let i = 1; i < errs.length; i++) expect(errs[i]).toBeLessThan(errs[i - 1]);
    let seedCost = 0;
    for (let r = 0; r < rows; r++) seedCost += kmeans1d(w.subarray(r * cols, (r + 1) * cols), 8).cost;
    expect(errs[0] * w.length).toBeCloseTo(seedCost, 6);
  });

  it('rejects widths it does not hold', () => {
    const t = quantizeAnyPrecision(weights(rng(1), 64), [1, 64], { maxBits: 4 });
    try {
      readAnyPrecision(t, 5);
      throw new Error('no error');
    } catch (e) {
      expect(isLowbitError(e)).toBe(true);
    }
  });
});
