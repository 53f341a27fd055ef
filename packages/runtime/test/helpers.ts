import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type MxFormatName, type PackedIntTensor, actOrderInt, quantizeMx } from '@lowbit/formats';
import type { MxRowsTensor } from '../src/lowbit-tensors.js';

export const modelFile = fileURLToPath(defaultModelUrl);
export const validLines = readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').filter((l) => l.trim().length > 0);

/** log softmax(logits[row])[target] in f64. */
export function logProb(logits: Float32Array, row: number, vocab: number, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < vocab; j++) max = Math.max(max, logits[row * vocab + j]);
  let z = 0;
  for (let j = 0; j < vocab; j++) z += Math.exp(logits[row * vocab + j] - max);
  return logits[row * vocab + target] - max - Math.log(z);
}

/** MX with blocks of 32 along each row, built with formats' quantizeMx row by row (the reference rule). */
export function mxRows(format: MxFormatName, w: Float32Array, rows: number, cols: number): MxRowsTensor {
  const nb = Math.ceil(cols / 32);
  const scales = new Uint8Array(rows * nb);
  const codes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const q = quantizeMx(w.subarray(r * cols, (r + 1) * cols), { format });
    scales.set(q.scales, r * nb);
    codes.set(q.codes, r * cols);
  }
  return { kind: 'mx-rows', format, shape: [rows, cols], scales, codes };
}

/** The same INT-k weights with columns shuffled and a gIdx saying where each went (act-order). */
export function actOrder(t: PackedIntTensor, seed: number): PackedIntTensor {
  const perm = Int32Array.from({ length: t.shape[1] }, (_, i) => i);
  let s = seed;
  for (let i = perm.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return actOrderInt(t, perm);
}

/** xorshift weights in ±0.05 with every 37th in ±2, so groups and blocks get different scales. */
export function spikyWeights(rows: number, cols: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: rows * cols }, (_, i) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2 ** 32 - 0.5;
    return i % 37 === 0 ? 4 * u : u * 0.1;
  });
}
