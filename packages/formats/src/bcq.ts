import { LowbitError } from '@lowbit/kernels';
import { leastSquares } from '@lowbit/solvers';
import { checkMatrix } from './int-quant.js';
import type { BcqTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export type { BcqTensor };

export function quantizeBcq(data: Float32Array, shape: [number, number], o: { bits: number; group?: number; iterations?: number }): BcqTensor {
  checkMatrix('quantizeBcq', data, shape);
  const k = o.bits;
  if (!Number.isInteger(k) || k < 1 || k > 8) throw new LowbitError('E_ARG', `quantizeBcq: 1 to 8 bit-planes, got ${k}`);
  const [rows, cols] = shape;
  const group = o.group ?? cols;
  if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `quantizeBcq: group size must be a positive integer, got ${group}`);
  const iters = o.iterations ?? 8;
  const ng = Math.ceil(cols / group);
  const alphas = new Float32Array(rows * ng * k);
  const rowPlaneBytes = Math.ceil(cols / 8);
  const planes = new Uint8Array(k * rows * rowPlaneBytes);
  const signs = new Int8Array(group * k);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      const c0 = g * group;
      const n = Math.min(group, cols - c0);
      const w = data.subarray(r * cols + c0, r * cols + c0 + n);
      for (let i = 0; i < n; i++) if (!Number.isFinite(w[i])) throw new LowbitError('E_NAN', `quantizeBcq: value at [${r}, ${c0 + i}] is ${w[i]}`);
      const a = fitGroup(w, n, k, iters, signs);
      for (let i = 0; i < k; i++) {
        alphas[(r * ng + g) * k + i] = a[i];
        const plane = planes.subarray((i * rows + r) * rowPlaneBytes, (i * rows + r + 1) * rowPlaneBytes);
        for (let j = 0; j < n; j++) if (signs[j * k + i] > 0) plane[(c0 + j) >> 3] |= 1 << ((c0 + j) & 7);
      }
    }
  }
  return { kind: 'bcq', bits: k, shape: [rows, cols], group, alphas, planes };
}

function fitGroup(w: Float32Array, n: number, k: number, iters: number, signs: Int8Array): Float64Array {
  const alpha = new Float64Array(k);
  const res = Float64Array.from(w);
  for (let i = 0; i < k; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.abs(res[j]);
    alpha[i] = s / Math.max(1, n);
    for (let j = 0; j < n; j++) {
      const b = res[j] >= 0 ? 1 : -1;
      signs[j * k + i] = b;
      res[j] -= alpha[i] * b;
    }
  }
  for (let it = 0; it < iters; it++) {
    assignSigns(w, n, k, alpha, signs);
    // α given signs: least squares on the ±1 design matrix (dampened: planes can coincide).
    const M = new Float64Array(n * k);
    for (let j = 0; j < n * k; j++) M[j] = signs[j];
    const a = leastSquares(M, n, k, w, 1e-8);
    for (let i = 0; i < k; i++) alpha[i] = a[i];
  }
  assignSigns(w, n, k, alpha, signs);
  return alpha;
}

/** Signs given α: each weight takes the nearest of the 2^k values Σ ±α_i (first one on ties). */
function assignSigns(w: Float32Array, n: number, k: number, alpha: Float64Array, signs: Int8Array): void {
  const combos = 1 << k;
  const sums = new Float64Array(combos);
  for (let m = 0; m < combos; m++) {
    let s = 0;
    for (let i = 0; i < k; i++) s += (m >> i) & 1 ? alpha[i] : -alpha[i];
    sums[m] = s;
  }
  for (let j = 0; j < n; j++) {
    let best = 0;
    let bd = Number.POSITIVE_INFINITY;
    for (let m = 0; m < combos; m++) {
      const d = Math.abs(w[j] - sums[m]);
      if (d < bd) {
        bd = d;
        best = m;
      }
    }
    for (let i = 0; i < k; i++) signs[j * k + i] = (best >> i) & 1 ? 1 : -1;
  }
}

export function dequantizeBcq(t: BcqTensor): Float32Array {
  validatePacked('dequantizeBcq', t);
  const [rows, cols] = t.shape;
  const ng = Math.ceil(cols / t.group);
  const rpb = Math.ceil(cols / 8);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = Math.floor(c / t.group);
      let s = 0;
      for (let i = 0; i < t.bits; i++) {
        const bit = (t.planes[(i * rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1;
        s += (bit ? 1 : -1) * t.alphas[(r * ng + g) * t.bits + i];
      }
      out[r * cols + c] = s;
    }
  }
  return out;
}
