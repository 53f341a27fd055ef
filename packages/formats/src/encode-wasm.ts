import { encodeIntGroups, type Kernels, LowbitError, quantizeAbsmaxLut, quantizeIntGroups, quantizeMxBlocks } from '@lowbit/kernels';
import { quantizeNf4 } from './codebook.js';
import { checkBits } from './integer.js';
import { checkMatrix, encodeIntWith, type IntQuantOptions, quantizeInt } from './int-quant.js';
import { checkIntParams } from './int-storage.js';
import { MX_FORMATS } from './mx-spec.js';
import { NF4_TABLE } from './nf4.js';
import type { Granularity, MxFormatName, MxTensor, Nf4Tensor, PackedIntTensor } from './tensor-types.js';

// WASM paths (through @lowbit/kernels) of this package's encoders. The kernels repeat the TypeScript
// encoders' f64 arithmetic operation by operation, so the results are the same objects, byte for byte.
// INT-k covers the layouts the WASM decoder and GEMV read (groups along cols, per-oc); BCQ's
// alternating least squares and codebook k-means stay in TypeScript.

function wasmGroup(fn: string, granularity: Granularity, group: number, cols: number): number {
  if (granularity === 'per-oc') return cols;
  if (granularity !== 'group-cols') throw new LowbitError('E_UNSUPPORTED', `${fn}: WASM INT-k encoding handles groups along cols (and per-oc); got ${granularity}`);
  return group;
}

/** quantizeInt (min-max scales shrunk by `clip`, then codes) in WASM, for 'group-cols' and 'per-oc'. */
export function quantizeIntWasm(k: Kernels, data: Float32Array, shape: [number, number], o: IntQuantOptions): PackedIntTensor {
  checkMatrix('quantizeIntWasm', data, shape);
  checkBits(o.bits);
  const [rows, cols] = shape;
  const granularity = o.granularity ?? 'per-oc';
  const group = o.group ?? (granularity === 'group-rows' ? rows : cols);
  if (granularity === 'group-cols' && (!Number.isInteger(group) || group <= 0)) throw new LowbitError('E_ARG', `group size must be a positive integer, got ${group}`);
  const clip = o.clip ?? 1;
  if (!(clip > 0 && clip <= 1)) throw new LowbitError('E_ARG', `clip must be in (0, 1], got ${clip}`);
  const symmetric = o.symmetric ?? true;
  const g = wasmGroup('quantizeIntWasm', granularity, group, cols);
  // An empty matrix still has per-oc scales (one per row); nothing to speed up there.
  if (rows * cols === 0) return quantizeInt(data, shape, o);
  const { scales, zeros, codes } = quantizeIntGroups(k, data, rows, cols, o.bits, g, symmetric, clip);
  return { kind: 'int', bits: o.bits, symmetric, shape: [rows, cols], granularity, group, scales, zeros, codes };
}

/** encodeIntWith (codes for given scales/zeros) in WASM, for 'group-cols' and 'per-oc'. */
export function encodeIntWithWasm(
  k: Kernels, data: Float32Array, shape: [number, number],
  p: { bits: number; symmetric: boolean; granularity: Granularity; group: number; scales: Float32Array; zeros: Float32Array | null },
): PackedIntTensor {
  checkMatrix('encodeIntWithWasm', data, shape);
  checkBits(p.bits);
  const [rows, cols] = shape;
  const g = wasmGroup('encodeIntWithWasm', p.granularity, p.group, cols);
  checkIntParams('encodeIntWithWasm', p.bits, p.scales, p.zeros);
  if (rows * cols === 0) return encodeIntWith(data, shape, p);
  const codes = encodeIntGroups(k, data, rows, cols, p.bits, g, p.scales, p.zeros);
  return { kind: 'int', bits: p.bits, symmetric: p.symmetric, shape: [rows, cols], granularity: p.granularity, group: p.group, scales: p.scales, zeros: p.zeros, codes };
}

/** quantizeMx in WASM. */
export function quantizeMxWasm(k: Kernels, values: Float32Array, options: { format: MxFormatName }): MxTensor {
  if (!(values instanceof Float32Array)) throw new LowbitError('E_DTYPE', 'quantizeMxWasm: values must be a Float32Array');
  if (!MX_FORMATS.includes(options.format)) throw new LowbitError('E_FORMAT', `unknown MX format "${options.format}"; known: ${MX_FORMATS.join(', ')}`);
  const { scales, codes } = quantizeMxBlocks(k, values, options.format);
  return { format: options.format, length: values.length, scales, codes };
}

/** quantizeNf4 (absmax per group of `group` along cols, nearest NF4 value) in WASM. */
export function quantizeNf4Wasm(k: Kernels, data: Float32Array, shape: [number, number], o: { group?: number } = {}): Nf4Tensor {
  checkMatrix('quantizeNf4Wasm', data, shape);
  const group = o.group ?? 64;
  if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `quantizeNf4Wasm: group size must be a positive integer, got ${group}`);
  const [rows, cols] = shape;
  if (rows * cols === 0) return quantizeNf4(data, shape, o);
  const { scales, codes } = quantizeAbsmaxLut(k, data, rows, cols, group, NF4_TABLE);
  return { kind: 'nf4', shape: [rows, cols], group, scales, codes };
}
