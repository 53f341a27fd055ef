// Incremental upscaling: every width's table is the sensitivity-weighted mean of its clusters, the
// clusters of b bits are unions of those of b+1 bits (the nesting), and the seed is the exact
// weighted k-means of @lowbit/solvers.
import { readAnyPrecision } from '@lowbit/formats';
import { kmeans1d } from '@lowbit/solvers';
import { describe, expect, it } from 'vitest';
import { isLowbitError, upscaleAnyPrecision } from '../src/index.js';

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** The b-bit code of element (r, c): the top b of the stored planes. */
function codeOf(t: ReturnType<typeof upscaleAnyPrecision>, r: number, c: number, bits: number): number {
  const [rows, cols] = t.shape;
  const rpb = Math.ceil(cols / 8);
  let code = 0;
  for (let b = 0; b < bits; b++) code = (code << 1) | ((t.planes[(b * rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1);
  return code;
}

describe('upscaleAnyPrecision (sensitivity-weighted seed, split per level)', () => {
  const rows = 5;
  const cols = 300;
  const w = randn(rows * cols, 3);
  // heavy-tailed sensitivities, as diag(XᵀX) of a real layer is
  const sens = Float64Array.from(randn(cols, 9), (v) => Math.exp(2 * v));
  const t = upscaleAnyPrecision(w, [rows, cols], { seedBits: 3, maxBits: 8, weights: sens });

  it('the seed is the exact weighted k-means of each row (the solver is the reference)', () => {
    for (let r = 0; r < rows; r++) {
      const row = w.subarray(r * cols, (r + 1) * cols);
      const km = kmeans1d(row, 8, sens);
      expect(Array.from(t.luts[0].subarray(r * 8, r * 8 + 8))).toEqual(Array.from(Float32Array.from(km.centroids)));
      for (let c = 0; c < cols; c++) expect(codeOf(t, r, c, 3)).toBe(km.assignment[c]);
    }
  });

  it('every level of every width is the weighted mean of its members; children partition their parent', () => {
    for (let bits = 3; bits <= 8; bits++) {
      const n = 2 ** bits;
      for (let r = 0; r < rows; r++) {
        const sw = new Float64Array(n);
        const swx = new Float64Array(n);
        for (let c = 0; c < cols; c++) {
          const k = codeOf(t, r, c, bits);
          // nesting: the b-bit code is the prefix of the (b+1)-bit code by construction of the planes;
          // what makes it the paper's upscaling is that the tables agree with it:
          sw[k] += sens[c];
          swx[k] += sens[c] * w[r * cols + c];
        }
        for (let k = 0; k < n; k++) {
          if (sw[k] === 0) continue; // an unused child (a parent with one distinct value)
          const mean = swx[k] / sw[k];
          // f32 table vs f64 mean: 1e-6 relative
          expect(Math.abs(t.luts[bits - 3][r * n + k] - mean)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(mean)));
        }
      }
    }
  });

  it('the weighted error falls with every bit; each split is no worse than keeping the parent', () => {
    const err = (bits: number) => {
      const d = readAnyPrecision(t, bits);
      let e = 0;
      for (let i = 0; i < d.length; i++) e += sens[i % cols] * (d[i] - w[i]) ** 2;
      return e;
    };
    const e = [3, 4, 5, 6, 7, 8].map(err);
    for (let i = 1; i < e.length; i++) expect(e[i]).toBeLessThan(e[i - 1]);
    // weighted k-means puts levels where the sensitive columns are: lower weighted error than plain
    const plain = upscaleAnyPrecision(w, [rows, cols], { seedBits: 3, maxBits: 3 });
    const d = readAnyPrecision(plain, 3);
    let ep = 0;
    for (let i = 0; i < d.length; i++) ep += sens[i % cols] * (d[i] - w[i]) ** 2;
    expect(e[0]).toBeLessThan(ep);
  });

  it('rows with few distinct values are reproduced exactly at every width', () => {
    const few = Float32Array.from({ length: 2 * 20 }, (_, i) => [0.5, -1.25, 3][i % 3] * (i < 20 ? 1 : -2));
    const f = upscaleAnyPrecision(few, [2, 20], { seedBits: 2, maxBits: 5 });
    for (let bits = 2; bits <= 5; bits++) expect(Array.from(readAnyPrecision(f, bits))).toEqual(Array.from(few));
  });

  it('bad widths, shapes and sensitivities are LowbitErrors', () => {
    const bad: [() => unknown, string][] = [
      [() => upscaleAnyPrecision(w, [rows, cols], { seedBits: 3, maxBits: 9 }), 'E_ARG'],
      [() => upscaleAnyPrecision(w, [rows, cols], { seedBits: 4, maxBits: 3 }), 'E_ARG'],
      [() => upscaleAnyPrecision(w, [rows, cols + 1]), 'E_SHAPE'],
      [() => upscaleAnyPrecision(w, [rows, cols], { weights: new Float64Array(cols - 1) }), 'E_SHAPE'],
      [() => upscaleAnyPrecision(w, [rows, cols], { weights: new Float64Array(cols).fill(-1) }), 'E_ARG'],
      [() => upscaleAnyPrecision(Float32Array.of(1, Number.NaN), [1, 2]), 'E_NAN'],
    ];
    for (const [f, code] of bad) {
      try {
        f();
        expect.unreachable();
      } catch (e) {
        expect(isLowbitError(e) && e.code).toBe(code);
      }
    }
  });
});
