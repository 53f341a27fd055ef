// ggml tensor types as GGUF stores them (ggml.h `enum ggml_type`). Ids of every type llama.cpp has
// defined are named, so an unsupported file says which type it holds instead of "type 12".
import { LowbitError } from '@lowbit/kernels';

export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16',
  26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** The tensor types lowbit reads and writes. */
export type TensorType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1';

/** Block geometry: `blockSize` elements take `blockBytes` bytes (ggml-common.h). */
export const TENSOR_TYPES: Record<TensorType, { id: number; blockSize: number; blockBytes: number }> = {
  F32: { id: 0, blockSize: 1, blockBytes: 4 },
  F16: { id: 1, blockSize: 1, blockBytes: 2 },
  BF16: { id: 30, blockSize: 1, blockBytes: 2 },
  Q8_0: { id: 8, blockSize: 32, blockBytes: 34 },
  Q4_0: { id: 2, blockSize: 32, blockBytes: 18 },
  Q4_1: { id: 3, blockSize: 32, blockBytes: 20 },
};

const BY_ID = new Map(Object.entries(TENSOR_TYPES).map(([name, t]) => [t.id, name as TensorType]));

/** The lowbit type of a ggml type id, or a LowbitError naming the type and where it was found. */
export function tensorTypeOf(id: number, where: string): TensorType {
  const t = BY_ID.get(id);
  if (t) return t;
  const name = GGML_TYPE_NAMES[id] ?? `unknown type id ${id}`;
  throw new LowbitError('E_UNSUPPORTED', `${where}: tensor type ${name} is not supported (lowbit reads ${Object.keys(TENSOR_TYPES).join(', ')})`);
}

/** Bytes of a tensor of `shape` (ggml order: shape[0] is the row length) stored as `type`. */
export function tensorBytes(type: TensorType, shape: readonly number[], where = 'tensor'): number {
  const { blockSize, blockBytes } = TENSOR_TYPES[type];
  const row = shape[0] ?? 1;
  if (row % blockSize !== 0) {
    throw new LowbitError('E_SHAPE', `${where}: row length ${row} is not a multiple of the ${type} block size ${blockSize}`);
  }
  let n = 1;
  for (const d of shape) n *= d;
  return (n / blockSize) * blockBytes;
}

/** Bits of storage per weight, scales included. */
export function bitsPerWeight(type: TensorType): number {
  const { blockSize, blockBytes } = TENSOR_TYPES[type];
  return (blockBytes * 8) / blockSize;
}
