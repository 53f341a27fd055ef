import { LowbitError } from '@lowbit/kernels';
import { kmeans1d } from '@lowbit/solvers';
import { checkMatrix } from './int-quant.js';
import type { AnyPrecisionTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export type { AnyPrecisionTensor };

export interface AnyPrecisionOptions {
  /** Width of the seed k-means model (default 3). */
  seedBits?: number;
  /** Widest model grown from it (at most 8). */
  maxBits: number;
  /**
   * Per-input-column sensitivity (length cols, finite, >= 0), e.g. diag(XᵀX) from calibration: every
   * k-means minimises Σ_c w_c·(W_rc − Ŵ_rc)² (SqueezeLLM's weighted objective). Columns of weight 0
   * get 1e-6 of the mean weight, so every cluster keeps mass. Default: all ones (plain k-means).
   */
  weights?: ArrayLike<number>;
}

/**
 * Any-precision nested codes (Park et al. 2024): a k-means seed model at `seedBits` per row, then
 * upscaled one bit at a time to `maxBits`, each parent cluster's members split by an exact 2-means,
 * so the b-bit code of a weight is the top b bits of its (b+1)-bit code and one bit-plane tensor
 * holds every width. A row with fewer distinct values than levels is reproduced exactly at every
 * width: k-means spreads copies of one value over several levels at zero cost, a row of fewer
 * values than levels (cols < 2^seedBits) repeats its largest centroid in the spare levels, and a
 * parent of one distinct value (or one member) hands it to both children. An empty parent keeps its
 * value in both children, so no table entry is ever undefined.
 */
export function quantizeAnyPrecision(data: Float32Array, shape: [number, number], o: AnyPrecisionOptions): AnyPrecisionTensor {
  const fn = 'quantizeAnyPrecision';
  checkMatrix(fn, data, shape);
  const seed = o.seedBits ?? 3;
  const n = o.maxBits;
  if (!Number.isInteger(seed) || seed < 1 || !Number.isInteger(n) || n < seed || n > 8) {
    throw new LowbitError('E_ARG', `${fn}: need 1 <= seedBits <= maxBits <= 8, got ${seed} and ${n}`);
  }
  const [rows, cols] = shape;
  const w = sensitivity(fn, o.weights, cols);
  const rpb = Math.ceil(cols / 8);
  const planes = new Uint8Array(n * rows * rpb);
  const luts = Array.from({ length: n - seed + 1 }, (_, i) => new Float32Array(rows * 2 ** (seed + i)));
  const code = new Int32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    for (let c = 0; c < cols; c++) if (!Number.isFinite(row[c])) throw new LowbitError('E_NAN', `${fn}: value at [${r}, ${c}] is ${row[c]}`);
    const k0 = 2 ** seed;
    const km = kmeans1d(row, k0, w);
    code.set(km.assignment);
    for (let j = 0; j < k0; j++) luts[0][r * k0 + j] = km.centroids[Math.min(j, km.centroids.length - 1)];
    for (let m = seed + 1; m <= n; m++) {
      const parents = 2 ** (m - 1);
      const members: number[][] = Array.from({ length: parents }, () => []);
      for (let c = 0; c < cols; c++) members[code[c]].push(c);
      const lut = luts[m - seed];
      const prev = luts[m - 1 - seed];
      for (let p = 0; p < parents; p++) {
        const idx = members[p];
        const at = r * 2 * parents + 2 * p;
        if (idx.length === 0) {
          lut[at] = lut[at + 1] = prev[r * parents + p];
          continue;
        }
        const km2 = kmeans1d(idx.map((c) => row[c]), 2, w && idx.map((c) => w[c]));
        lut[at] = km2.centroids[0];
        lut[at + 1] = km2.centroids[km2.centroids.length - 1];
        idx.forEach((c, j) => {
          code[c] = 2 * p + km2.assignment[j];
        });
      }
    }
    for (let c = 0; c < cols; c++) {
      for (let b = 0; b < n; b++) if ((code[c] >> (n - 1 - b)) & 1) planes[(b * rows + r) * rpb + (c >> 3)] |= 1 << (c & 7);
    }
  }
  return { kind: 'any-precision', seedBits: seed, maxBits: n, shape: [rows, cols], luts, planes };
}

/** Positive weights or undefined (plain k-means): zero-sensitivity columns (dead inputs) get a small floor. */
function sensitivity(fn: string, weights: ArrayLike<number> | undefined, cols: number): Float64Array | undefined {
  if (weights === undefined) return undefined;
  if (weights.length !== cols) throw new LowbitError('E_SHAPE', `${fn}: ${weights.length} sensitivity weights for ${cols} columns`);
  let mean = 0;
  for (let c = 0; c < cols; c++) {
    if (!(weights[c] >= 0) || !Number.isFinite(weights[c])) throw new LowbitError('E_ARG', `${fn}: sensitivity weight ${c} is ${weights[c]}; weights must be finite and >= 0`);
    mean += weights[c] / cols;
  }
  const floor = mean > 0 ? mean * 1e-6 : 1;
  return Float64Array.from({ length: cols }, (_, c) => (weights[c] > 0 ? weights[c] : floor));
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
