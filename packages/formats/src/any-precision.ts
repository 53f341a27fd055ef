import { LowbitError } from '@lowbit/kernels';
import { kmeans1d } from '@lowbit/solvers';
import { checkMatrix } from './int-quant.js';
import type { AnyPrecisionTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export type { AnyPrecisionTensor };

export function quantizeAnyPrecision(data: Float32Array, shape: [number, number], o: { seedBits?: number; maxBits: number }): AnyPrecisionTensor {
  checkMatrix('quantizeAnyPrecision', data, shape);
  const seed = o.seedBits ?? 3;
  const n = o.maxBits;
  if (!Number.isInteger(seed) || seed < 1 || !Number.isInteger(n) || n < seed || n > 8) {
    throw new LowbitError('E_ARG', `quantizeAnyPrecision: need 1 <= seedBits <= maxBits <= 8, got ${seed} and ${n}`);
  }
  const [rows, cols] = shape;
  const rpb = Math.ceil(cols / 8);
  const planes = new Uint8Array(n * rows * rpb);
  const luts = Array.from({ length: n - seed + 1 }, (_, i) => new Float32Array(rows * 2 ** (seed + i)));
  const code = new Int32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    for (let c = 0; c < cols; c++) if (!Number.isFinite(row[c])) throw new LowbitError('E_NAN', `quantizeAnyPrecision: value at [${r}, ${c}] is ${row[c]}`);
    const km = kmeans1d(row, 2 ** seed);
    code.set(km.assignment);
    luts[0].set(km.centroids, r * 2 ** seed);
    for (let m = seed + 1; m <= n; m++) {
      const parents = 2 ** (m - 1);
      const members: number[][] = Array.from({ length: parents }, () => []);
      for (let c = 0; c < cols; c++) members[code[c]].push(c);
      const lut = luts[m - seed];
      const prevLut = luts[m - 1 - seed];
      for (let p = 0; p < parents; p++) {
        const idx = members[p];
        if (idx.length === 0) {
          // An empty cluster keeps its parent's value in both children.
          lut[r * 2 * parents + 2 * p] = lut[r * 2 * parents + 2 * p + 1] = prevLut[r * parents + p];
          continue;
        }
        const km2 = kmeans1d(idx.map((c) => row[c]), 2);
        lut[r * 2 * parents + 2 * p] = km2.centroids[0];
        lut[r * 2 * parents + 2 * p + 1] = km2.centroids[1];
        idx.forEach((c, j) => {
          code[c] = 2 * p + km2.assignment[j];
        });
      }
    }
    for (let c = 0; c < cols; c++) {
      for (let b = 0; b < n; b++) {
        if ((code[c] >> (n - 1 - b)) & 1) planes[(b * rows + r) * rpb + (c >> 3)] |= 1 << (c & 7);
      }
    }
  }
  return { kind: 'any-precision', seedBits: seed, maxBits: n, shape: [rows, cols], luts, planes };
}

/** The `bits`-bit model (seedBits <= bits <= maxBits) read from the nested layout. */
export function readAnyPrecision(t: AnyPrecisionTensor, bits: number): Float32Array {
  validatePacked('readAnyPrecision', t);
  if (!Number.isInteger(bits) || bits < t.seedBits || bits > t.maxBits) {
    throw new LowbitError('E_ARG', `readAnyPrecision: this tensor holds ${t.seedBits} to ${t.maxBits} bits, asked for ${bits}`);
  }
  const [rows, cols] = t.shape;
  const rpb = Math.ceil(cols / 8);
  const size = 2 ** bits;
  const lut = t.luts[bits - t.seedBits];
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      let code = 0;
      for (let b = 0; b < bits; b++) code = (code << 1) | ((t.planes[(b * rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1);
      out[r * cols + c] = lut[r * size + code];
    }
  }
  return out;
}
