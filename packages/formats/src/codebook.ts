import { LowbitError } from '@lowbit/kernels';
import { kmeans1d } from '@lowbit/solvers';
import { checkBits } from './integer.js';
import { readBits, rowBytes, writeBits } from './bits.js';
import { checkMatrix } from './int-quant.js';
import { NF4_TABLE, nearestIndex } from './nf4.js';
import type { CodebookTensor, Nf4Tensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export type { CodebookTensor, Nf4Tensor };

export function quantizeCodebook(data: Float32Array, shape: [number, number], o: { bits: number; weights?: Float32Array }): CodebookTensor {
  checkMatrix('quantizeCodebook', data, shape);
  checkBits(o.bits);
  const [rows, cols] = shape;
  if (o.weights && o.weights.length !== cols) throw new LowbitError('E_SHAPE', `quantizeCodebook: weights must have ${cols} entries (one per input channel), got ${o.weights.length}`);
  const size = 2 ** o.bits;
  const lut = new Float32Array(rows * size);
  const rb = rowBytes(cols, o.bits);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    const km = kmeans1d(row, size, o.weights);
    lut.set(km.centroids, r * size);
    for (let c = 0; c < cols; c++) writeBits(codes, r * rb * 8 + c * o.bits, o.bits, km.assignment[c]);
  }
  return { kind: 'codebook', bits: o.bits, shape: [rows, cols], lut, codes };
}

export function dequantizeCodebook(t: CodebookTensor): Float32Array {
  validatePacked('dequantizeCodebook', t);
  const [rows, cols] = t.shape;
  const size = 2 ** t.bits;
  const rb = rowBytes(cols, t.bits);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * cols + c] = t.lut[r * size + readBits(t.codes, r * rb * 8 + c * t.bits, t.bits)];
  }
  return out;
}

export function quantizeNf4(data: Float32Array, shape: [number, number], o: { group?: number } = {}): Nf4Tensor {
  checkMatrix('quantizeNf4', data, shape);
  const group = o.group ?? 64;
  if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `quantizeNf4: group size must be a positive integer, got ${group}`);
  const [rows, cols] = shape;
  const ng = Math.ceil(cols / group);
  const scales = new Float32Array(rows * ng);
  const rb = rowBytes(cols, 4);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      let amax = 0;
      for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) {
        const v = data[r * cols + c];
        if (!Number.isFinite(v)) throw new LowbitError('E_NAN', `quantizeNf4: value at [${r}, ${c}] is ${v}`);
        amax = Math.max(amax, Math.abs(v));
      }
      const s = amax > 0 ? amax : 1;
      scales[r * ng + g] = s;
      for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) {
        writeBits(codes, r * rb * 8 + c * 4, 4, nearestIndex(NF4_TABLE, data[r * cols + c] / s));
      }
    }
  }
  return { kind: 'nf4', shape: [rows, cols], group, scales, codes };
}

export function dequantizeNf4(t: Nf4Tensor): Float32Array {
  validatePacked('dequantizeNf4', t);
  const [rows, cols] = t.shape;
  const ng = Math.ceil(cols / t.group);
  const rb = rowBytes(cols, 4);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = t.scales[r * ng + Math.floor(c / t.group)] * NF4_TABLE[readBits(t.codes, r * rb * 8 + c * 4, 4)];
    }
  }
  return out;
}
