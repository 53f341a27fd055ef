import { kmeans1d } from '@lowbit/solvers';
import { describe, expect, it } from 'vitest';
import { quantizeAnyPrecision, readAnyPrecision } from '../src/any-precision.js';
import { errorCode, rng, sameBits } from './helpers.js';

describe('quantizeAnyPrecision: one splitter, plain or sensitivity-weighted', () => {
  it('rows with fewer distinct values than levels: exact at every width, tables hold only the row\'s values', () => {
    // row 0: three distinct values for 8 seed levels; row 1: one value; row 2: two values, one of them once
    const cols = 20;
    const rows = [
      Array.from({ length: cols }, (_, c) => [-0.5, 0.25, 2][c % 3]),
      new Array(cols).fill(1.5),
      Array.from({ length: cols }, (_, c) => (c === 7 ? -3 : 0.125)),
    ];
    const w = Float32Array.from(rows.flat());
    for (const weights of [undefined, Float64Array.from({ length: cols }, (_, c) => 1 + (c % 5))]) {
      const t = quantizeAnyPrecision(w, [3, cols], { seedBits: 3, maxBits: 5, weights });
      // every value is its own cluster's centroid (copies of one value share levels at zero cost),
      // so each width reproduces the row exactly and every table entry is one of the row's values
      for (let b = 3; b <= 5; b++) sameBits(readAnyPrecision(t, b), w);
      t.luts.forEach((lut, i) => {
        const size = 2 ** (3 + i);
        for (let q = 0; q < 3; q++) {
          const vals = new Set(rows[q]);
          const entries = Array.from(lut.subarray(q * size, (q + 1) * size));
          for (const v of entries) expect(vals.has(v), `row ${q} width ${3 + i}: ${v}`).toBe(true);
          expect(entries).toEqual([...entries].sort((a, b) => a - b));
        }
      });
      expect(new Set(t.luts[0].subarray(0, 8))).toEqual(new Set([-0.5, 0.25, 2]));
    }
    // fewer values than levels (3 columns, 8 seed levels): the spare levels repeat the largest
    const few = quantizeAnyPrecision(Float32Array.of(0.5, -1, 4), [1, 3], { seedBits: 3, maxBits: 4 });
    expect(Array.from(few.luts[0])).toEqual([-1, 0.5, 4, 4, 4, 4, 4, 4]);
    // a parent of one member hands it to both children
    expect(Array.from(few.luts[1])).toEqual([-1, -1, 0.5, 0.5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]);
    sameBits(readAnyPrecision(few, 4), Float32Array.of(0.5, -1, 4));
  });

  it('all-one weights give the unweighted result bit for bit; a heavy column is reproduced exactly at the seed width', () => {
    const r = rng(5);
    const [rows, cols] = [4, 48];
    const w = Float32Array.from({ length: rows * cols }, () => (r() + r() + r() - 1.5) * 0.3);
    const plain = quantizeAnyPrecision(w, [rows, cols], { seedBits: 2, maxBits: 5 });
    const ones = quantizeAnyPrecision(w, [rows, cols], { seedBits: 2, maxBits: 5, weights: new Float64Array(cols).fill(1) });
    expect(ones.planes).toEqual(plain.planes);
    plain.luts.forEach((l, i) => sameBits(ones.luts[i], l));
    const heavy = new Float64Array(cols).fill(1);
    heavy[10] = 1e9;
    const h = quantizeAnyPrecision(w, [rows, cols], { seedBits: 2, maxBits: 3, weights: heavy });
    const d = readAnyPrecision(h, 2);
    // the weighted mean of a cluster holding column 10 is within 1e-9 relative of its value (f32 rounding on top)
    for (let q = 0; q < rows; q++) expect(Math.abs(d[q * cols + 10] - w[q * cols + 10])).toBeLessThanOrEqual(1e-6 * Math.abs(w[q * cols + 10]) + 1e-12);
    // a weighted seed table is the weighted k-means of the row (independent call)
    const km = kmeans1d(w.subarray(0, cols), 4, heavy);
    expect(Array.from(h.luts[0].subarray(0, 4))).toEqual(Array.from(km.centroids, Math.fround));
  });

  it('zero-sensitivity columns are floored; bad weights and shapes are refused', () => {
    const w = Float32Array.from({ length: 2 * 16 }, (_, i) => Math.sin(i));
    const zero = new Float64Array(16);
    zero[3] = 2;
    const t = quantizeAnyPrecision(w, [2, 16], { seedBits: 2, maxBits: 4, weights: zero });
    for (const lut of t.luts) for (const v of lut) expect(Number.isFinite(v)).toBe(true);
    expect(errorCode(() => quantizeAnyPrecision(w, [2, 16], { maxBits: 4, weights: new Float64Array(15) }))).toBe('E_SHAPE');
    expect(errorCode(() => quantizeAnyPrecision(w, [2, 16], { maxBits: 4, weights: new Float64Array(16).fill(-1) }))).toBe('E_ARG');
    expect(errorCode(() => quantizeAnyPrecision(w, [2, 16], { maxBits: 4, weights: new Float64Array(16).fill(Number.POSITIVE_INFINITY) }))).toBe('E_ARG');
    expect(errorCode(() => quantizeAnyPrecision(w, [2, 16], { seedBits: 3, maxBits: 9 }))).toBe('E_ARG');
  });
});
