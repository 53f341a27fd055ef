import { LowbitError } from './errors.js';
import { type Kernels, scoped } from './kernels.js';

/** The WASM half of @lowbit/formats' FleXOR decoder (dequantizeFlexorWasm there). */

interface FlexorExports {
  flexor_decode(stored: number, rows: number, cols: number, nIn: number, nOut: number, colMasks: number, alphas: number, out: number): void;
}

/**
 * Decodes FleXOR stored bits: slice s of row r is out = XOR of colMasks[i] over set stored bits i;
 * element r·cols + s·nOut + j is alphas[r] when bit j of out is set, −alphas[r] otherwise.
 */
export function decodeFlexor(k: Kernels, stored: Uint8Array, rows: number, cols: number, nIn: number, nOut: number, colMasks: Uint32Array,
  alphas: Float32Array): Float32Array {
  const fn = 'decodeFlexor';
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (!Number.isInteger(nOut) || nOut < 1 || nOut > 32 || !Number.isInteger(nIn) || nIn < 1 || nIn > nOut) {
    throw new LowbitError('E_ARG', `${fn}: need 1 <= nIn <= nOut <= 32, got ${nIn}/${nOut}`);
  }
  if (colMasks.length !== nIn) throw new LowbitError('E_SHAPE', `${fn}: ${nIn} stored bits per slice need ${nIn} column masks, got ${colMasks.length}`);
  if (alphas.length !== rows) throw new LowbitError('E_SHAPE', `${fn}: ${rows} rows need ${rows} scales, got ${alphas.length}`);
  const need = Math.ceil((rows * Math.ceil(cols / nOut) * nIn) / 8);
  if (stored.length < need) throw new LowbitError('E_SHAPE', `${fn}: [${rows}, ${cols}] at ${nIn}/${nOut} needs ${need} stored bytes, got ${stored.length}`);
  const n = rows * cols;
  if (n === 0) return new Float32Array(0);
  const ex = k.exports as unknown as FlexorExports;
  return scoped(k, (put, alloc) => {
    const ps = put(stored.subarray(0, need));
    const pm = put(colMasks);
    const pa = put(alphas);
    const po = alloc(n * 4);
    ex.flexor_decode(ps, rows, cols, nIn, nOut, pm, pa, po);
    return new Float32Array(k.memory.buffer, po, n).slice();
  });
}
