// ggml tensor types as GGUF stores them (ggml.h `enum ggml_type`). Ids of every type llama.cpp has
// defined are named, so an unsupported file says which type it holds instead of "type 12".
import { intSections } from '@lowbit/formats';
import { GGML_BLOCK_BYTES, GGML_BLOCK_SIZE, GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, GGML_MXFP4_BLOCK_BYTES, GGML_Q5_BLOCK_BYTES, LowbitError } from '@lowbit/kernels';

export const GGML_TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16',
  26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

/** The ggml tensor types lowbit reads and writes. */
export type GgmlTensorType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | Q5TensorType | KQuantTensorType | 'MXFP4';

/**
 * ggml block types of 32 that lowbit reads and runs as Q8_0 blocks, exactly (w = d·(q − 16), d·q + m,
 * d·level): Q5_0 and Q5_1 (llama.cpp's fallbacks for Q4_K / Q5_K rows that are not whole 256-blocks)
 * and IQ4_NL (the IQ types' fallback).
 */
export type Q5TensorType = 'Q5_0' | 'Q5_1' | 'IQ4_NL';

/** The 32-block types llama.cpp falls back to for rows that are not whole 256-blocks. */
export type KQuantFallback = Q5TensorType | 'Q8_0';

/** llama.cpp's fallback per K type (llama_tensor_get_type): Q2_K / Q3_K → IQ4_NL, Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0. */
export const KQUANT_FALLBACK: Readonly<Record<Exclude<KQuantTensorType, 'Q8_K'>, KQuantFallback>> = { Q2_K: 'IQ4_NL', Q3_K: 'IQ4_NL', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };

/** llama.cpp's K-quant super-block types (256 weights per block). */
export type KQuantTensorType = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K';

export function isKQuantType(t: TensorType): t is KQuantTensorType {
  return t in GGML_K_BLOCK_BYTES;
}

/**
 * lowbit's own GGUF tensor types, for formats ggml has no type for (INT-k groups of any width and
 * granularity, OCP MX). Their ids start at 1024, far past ggml's enum (GGML_TYPE_COUNT is 40 in
 * 2025 builds), so llama.cpp refuses the file by its own type check instead of misreading bytes.
 * Byte layouts: README "lowbit tensor types in GGUF" and `lowbit-tensors.ts`.
 */
export type LowbitTensorType =
  | 'LB_INT2' | 'LB_INT3' | 'LB_INT4' | 'LB_INT5' | 'LB_INT6' | 'LB_INT7' | 'LB_INT8'
  | 'LB_MXFP4' | 'LB_MXFP6_E2M3' | 'LB_MXFP6_E3M2' | 'LB_MXFP8_E4M3' | 'LB_MXFP8_E5M2' | 'LB_MXINT8'
  | 'LB_ANYPREC';

/** The tensor types lowbit reads and writes: ggml's and its own. */
export type TensorType = GgmlTensorType | LowbitTensorType;

/** MX element formats by lowbit type (the @lowbit/formats names). */
export type MxElementName = 'mxfp4' | 'mxfp6_e2m3' | 'mxfp6_e3m2' | 'mxfp8_e4m3' | 'mxfp8_e5m2' | 'mxint8';

export interface LowbitTypeInfo {
  id: number;
  kind: 'int' | 'mx' | 'anyprec';
  /** Bits per element code (LB_ANYPREC: the most a file may hold; its own width is in its parameters). */
  bits: number;
  mx?: MxElementName;
}

export const LOWBIT_TYPES: Record<LowbitTensorType, LowbitTypeInfo> = {
  LB_INT2: { id: 1026, kind: 'int', bits: 2 },
  LB_INT3: { id: 1027, kind: 'int', bits: 3 },
  LB_INT4: { id: 1028, kind: 'int', bits: 4 },
  LB_INT5: { id: 1029, kind: 'int', bits: 5 },
  LB_INT6: { id: 1030, kind: 'int', bits: 6 },
  LB_INT7: { id: 1031, kind: 'int', bits: 7 },
  LB_INT8: { id: 1032, kind: 'int', bits: 8 },
  LB_MXFP4: { id: 1040, kind: 'mx', bits: 4, mx: 'mxfp4' },
  LB_MXFP6_E2M3: { id: 1041, kind: 'mx', bits: 6, mx: 'mxfp6_e2m3' },
  LB_MXFP6_E3M2: { id: 1042, kind: 'mx', bits: 6, mx: 'mxfp6_e3m2' },
  LB_MXFP8_E4M3: { id: 1043, kind: 'mx', bits: 8, mx: 'mxfp8_e4m3' },
  LB_MXFP8_E5M2: { id: 1044, kind: 'mx', bits: 8, mx: 'mxfp8_e5m2' },
  LB_MXINT8: { id: 1045, kind: 'mx', bits: 8, mx: 'mxint8' },
  LB_ANYPREC: { id: 1050, kind: 'anyprec', bits: 8 },
};

export function isLowbitType(t: TensorType): t is LowbitTensorType {
  return t in LOWBIT_TYPES;
}

/** Block geometry: `blockSize` elements take `blockBytes` bytes (ggml-common.h); the block types' from @lowbit/kernels' one table. */
export const TENSOR_TYPES: Record<GgmlTensorType, { id: number; blockSize: number; blockBytes: number }> = {
  F32: { id: 0, blockSize: 1, blockBytes: 4 },
  F16: { id: 1, blockSize: 1, blockBytes: 2 },
  BF16: { id: 30, blockSize: 1, blockBytes: 2 },
  Q8_0: { id: 8, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_BLOCK_BYTES.q8_0 },
  Q4_0: { id: 2, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_BLOCK_BYTES.q4_0 },
  Q4_1: { id: 3, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_BLOCK_BYTES.q4_1 },
  Q5_0: { id: 6, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_Q5_BLOCK_BYTES.q5_0 },
  Q5_1: { id: 7, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_Q5_BLOCK_BYTES.q5_1 },
  IQ4_NL: { id: 20, blockSize: GGML_BLOCK_SIZE, blockBytes: GGML_Q5_BLOCK_BYTES.iq4_nl },
  Q2_K: { id: 10, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q2_K },
  Q3_K: { id: 11, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q3_K },
  Q4_K: { id: 12, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q4_K },
  Q5_K: { id: 13, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q5_K },
  Q6_K: { id: 14, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q6_K },
  Q8_K: { id: 15, blockSize: GGML_K_BLOCK_SIZE, blockBytes: GGML_K_BLOCK_BYTES.Q8_K },
  MXFP4: { id: 39, blockSize: 32, blockBytes: GGML_MXFP4_BLOCK_BYTES },
};

const BY_ID = new Map<number, TensorType>([
  ...Object.entries(TENSOR_TYPES).map(([name, t]) => [t.id, name as TensorType] as const),
  ...Object.entries(LOWBIT_TYPES).map(([name, t]) => [t.id, name as TensorType] as const),
]);

/** The GGUF type id of a tensor type. */
export function tensorTypeId(type: TensorType): number {
  return isLowbitType(type) ? LOWBIT_TYPES[type].id : TENSOR_TYPES[type].id;
}

/** The lowbit type of a ggml type id, or a LowbitError naming the type and where it was found. */
export function tensorTypeOf(id: number, where: string): TensorType {
  const t = BY_ID.get(id);
  if (t) return t;
  const name = GGML_TYPE_NAMES[id] ?? `unknown type id ${id}`;
  throw new LowbitError('E_UNSUPPORTED', `${where}: tensor type ${name} is not supported (lowbit reads ${[...Object.keys(TENSOR_TYPES), ...Object.keys(LOWBIT_TYPES)].join(', ')})`);
}

/**
 * Parameters of an LB_INT* tensor that its type and shape do not say, stored in the GGUF metadata
 * key `lowbit.tensor.<tensor name>` as JSON (`{"granularity":"group-cols","group":32,"symmetric":true,"g_idx":false}`).
 */
export interface LowbitIntParams {
  granularity: 'tensor' | 'per-oc' | 'per-ic' | 'group-cols' | 'group-rows';
  group: number;
  symmetric: boolean;
  g_idx: boolean;
}

/**
 * Parameters of an LB_ANYPREC tensor (nested any-precision bit-planes), in the same metadata key as
 * LB_INT*'s: `{"seedBits":3,"maxBits":8}`; every width seedBits..maxBits is served from the one tensor.
 */
export interface LowbitAnyPrecisionParams {
  seedBits: number;
  maxBits: number;
}

/** What a lowbit tensor's metadata key holds, by kind (MX types have none). */
export type LowbitParams = LowbitIntParams | LowbitAnyPrecisionParams;

function scaleCount(p: LowbitIntParams, rows: number, cols: number): number {
  switch (p.granularity) {
    case 'tensor': return 1;
    case 'per-oc': return rows;
    case 'per-ic': return cols;
    case 'group-cols': return rows * Math.ceil(cols / p.group);
    case 'group-rows': return Math.ceil(rows / p.group) * cols;
  }
}

/** Byte offsets of the sections of a lowbit tensor [cols (shape[0]), rows (shape[1])]. */
export function lowbitSections(type: LowbitTensorType, shape: readonly number[], params: LowbitParams | undefined, where: string) {
  const info = LOWBIT_TYPES[type];
  if (shape.length !== 2) throw new LowbitError('E_SHAPE', `${where}: ${type} stores matrices, got shape [${shape}]`);
  const [cols, rows] = shape;
  if (info.kind === 'anyprec') {
    // planes [maxBits][rows, ⌈cols/8⌉] | f32 tables of seedBits..maxBits, [rows, 2^b] each
    const { seedBits, maxBits } = (params ?? {}) as Partial<LowbitAnyPrecisionParams>;
    if (!Number.isInteger(seedBits) || !Number.isInteger(maxBits) || (seedBits as number) < 1 || (maxBits as number) < (seedBits as number) || (maxBits as number) > 8) {
      throw new LowbitError('E_BAD_FILE', `${where}: LB_ANYPREC parameters seedBits ${JSON.stringify(seedBits)} / maxBits ${JSON.stringify(maxBits)} must satisfy 1 <= seedBits <= maxBits <= 8`);
    }
    const planes = (maxBits as number) * rows * Math.ceil(cols / 8);
    let tables = 0;
    for (let b = seedBits as number; b <= (maxBits as number); b++) tables += rows * 2 ** b * 4;
    return { codes: planes, scalesAt: planes, scales: tables, zerosAt: -1, gIdxAt: -1, total: planes + tables };
  }
  const codes = rows * Math.ceil((cols * info.bits) / 8);
  if (info.kind === 'mx') {
    const scales = rows * Math.ceil(cols / 32);
    return { codes, scalesAt: codes, scales, zerosAt: -1, gIdxAt: -1, total: codes + scales };
  }
  if (!params) throw new LowbitError('E_BAD_FILE', `${where}: ${type} needs its parameters in metadata lowbit.tensor.<name>`);
  const ip = params as LowbitIntParams;
  const groupLike = ip.granularity === 'group-cols' || ip.granularity === 'group-rows';
  if (groupLike && !(Number.isInteger(ip.group) && ip.group > 0)) throw new LowbitError('E_BAD_FILE', `${where}: group ${ip.group} is not a positive integer`);
  if (!['tensor', 'per-oc', 'per-ic', 'group-cols', 'group-rows'].includes(ip.granularity)) throw new LowbitError('E_BAD_FILE', `${where}: unknown granularity "${ip.granularity}"`);
  if (ip.g_idx && ip.granularity !== 'group-cols') throw new LowbitError('E_BAD_FILE', `${where}: g_idx needs granularity group-cols`);
  // formats' stored INT-k layout: fp16 scales, zeros packed at the code width, a packed group index
  const s = intSections({ rows, cols, bits: info.bits, count: scaleCount(ip, rows, cols), symmetric: ip.symmetric, group: ip.group, gIdx: ip.g_idx });
  return { codes, scalesAt: s.scalesAt, scales: s.scales, zerosAt: s.zerosAt, gIdxAt: s.gIdxAt, total: s.total };
}

/**
 * The lowbit format version whose LB_INT* layout this code reads (`lowbit.format_version`):
 * version 2 stores fp16 scales and packed zero points; version 1 stored f32 scales and f32 zeros.
 */
export const LOWBIT_INT_LAYOUT_VERSION = 2;

/** Throws unless a file's `lowbit.format_version` holds LB_INT* tensors in the layout this code reads. */
export function checkLowbitIntVersion(version: unknown, where: string): void {
  const v = typeof version === 'bigint' ? Number(version) : typeof version === 'string' ? Number(version) : version;
  if (v === LOWBIT_INT_LAYOUT_VERSION) return;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v < LOWBIT_INT_LAYOUT_VERSION) {
    throw new LowbitError('E_UNSUPPORTED', `${where}: written by lowbit format version ${v}, whose LB_INT* tensors hold f32 scales and f32 zero points; this lowbit reads version ${LOWBIT_INT_LAYOUT_VERSION} (fp16 scales, packed zero points): quantize the model again`);
  }
  throw new LowbitError('E_BAD_FILE', `${where}: LB_INT* tensors need lowbit.format_version ${LOWBIT_INT_LAYOUT_VERSION}, the file says ${JSON.stringify(typeof version === 'bigint' ? String(version) : version) ?? 'nothing'}`);
}

/** Bytes of a tensor of `shape` (ggml order: shape[0] is the row length) stored as `type`. */
export function tensorBytes(type: TensorType, shape: readonly number[], where = 'tensor', params?: LowbitParams): number {
  if (isLowbitType(type)) return lowbitSections(type, shape, params, where).total;
  const { blockSize, blockBytes } = TENSOR_TYPES[type];
  const row = shape[0] ?? 1;
  if (row % blockSize !== 0) {
    throw new LowbitError('E_SHAPE', `${where}: row length ${row} is not a multiple of the ${type} block size ${blockSize}`);
  }
  let n = 1;
  for (const d of shape) n *= d;
  return (n / blockSize) * blockBytes;
}

/** Bits of storage per weight, scales included (lowbit types: from their byte length). */
export function bitsPerWeight(type: TensorType, shape?: readonly number[], byteLength?: number): number {
  if (isLowbitType(type)) {
    const n = shape ? shape.reduce((a, b) => a * b, 1) : 0;
    return n && byteLength !== undefined ? (byteLength * 8) / n : Number.NaN;
  }
  const { blockSize, blockBytes } = TENSOR_TYPES[type];
  return (blockBytes * 8) / blockSize;
}
