// INT-k group parameters as stored (LBPT blobs, the LB_INT* GGUF types): fp16 scales and, for
// asymmetric tensors, zero points packed at the code width, as GPTQ checkpoints and ggml store them.
// int3 g32: 3 + 16/32 = 3.5 bits/weight symmetric, 3.5 + 3/32 ≈ 3.59 asymmetric. A leaf module.
import { LowbitError } from '@lowbit/kernels';
import { readBits, rowBytes, writeBits } from './bits.js';
import { f16Bits, f16Value, isF16 } from './half.js';
import type { PackedIntTensor } from './tensor-types.js';

/**
 * Throws unless every scale is a finite binary16 value and every zero an integer in [0, 2^bits − 1].
 * `gptqV1` widens the zeros to [0, 2^bits]: GPTQ v1 checkpoints store zero − 1 in k bits, so a zero
 * of 0 reads back as 2^bits (AutoGPTQ's kernels compute with that value too); such a tensor runs and
 * decodes, and only a k-bit zero section cannot hold it.
 */
export function checkIntParams(fn: string, bits: number, scales: Float32Array, zeros: Float32Array | null, gptqV1 = false): void {
  for (let i = 0; i < scales.length; i++) {
    if (!isF16(scales[i])) throw new LowbitError('E_ARG', `${fn}: scale ${i} is ${scales[i]}, not a finite fp16 value (INT-k scales are stored as fp16: round them with f16Scale before choosing codes)`);
  }
  if (!zeros) return;
  const zmax = 2 ** bits - (gptqV1 ? 0 : 1);
  for (let i = 0; i < zeros.length; i++) {
    const z = zeros[i];
    if (!(Number.isInteger(z) && z >= 0 && z <= zmax)) throw new LowbitError('E_ARG', `${fn}: zero point ${i} is ${z}, not an integer in [0, ${zmax}] (zero points are stored at ${bits} bits)`);
  }
}

/** Bytes of `count` zero points packed at `bits` bits each. */
export function packedZeroBytes(count: number, bits: number): number {
  return rowBytes(count, bits);
}

/** fp16 bits of each scale (each must be exactly fp16: `checkIntParams`). */
export function scalesToF16(scales: Float32Array): Uint16Array {
  return Uint16Array.from(scales, f16Bits);
}

export function scalesFromF16(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, f16Value);
}

/** Zero points packed little-endian at `bits` bits each (the int-k convention, one run). */
export function packZeros(zeros: Float32Array, bits: number): Uint8Array {
  const out = new Uint8Array(packedZeroBytes(zeros.length, bits));
  for (let i = 0; i < zeros.length; i++) writeBits(out, i * bits, bits, zeros[i]);
  return out;
}

export function unpackZeros(packed: Uint8Array, count: number, bits: number): Float32Array {
  if (packed.length < packedZeroBytes(count, bits)) throw new LowbitError('E_SHAPE', `unpackZeros: ${count} zeros at ${bits} bits need ${packedZeroBytes(count, bits)} bytes, got ${packed.length}`);
  return Float32Array.from({ length: count }, (_, i) => readBits(packed, i * bits, bits));
}

/** Bits of one packed column → group index (act-order `gIdx`): enough for the ⌈cols/group⌉ groups. */
export function gIdxBits(cols: number, group: number): number {
  const ng = Math.ceil(cols / group);
  return Math.max(1, Math.ceil(Math.log2(Math.max(1, ng))));
}

/** Byte sections of a stored INT-k tensor (the LB_INT* GGUF types; byte offsets from its start). */
export interface IntSections {
  /** Bytes of codes: rows × ⌈cols·bits/8⌉. */
  codes: number;
  /** Offset of the fp16 scales (codes padded to 2 bytes). */
  scalesAt: number;
  /** Number of scales. */
  scales: number;
  /** Offset of the packed zero points, −1 when symmetric. */
  zerosAt: number;
  /** Offset of the packed column → group index, −1 without one. */
  gIdxAt: number;
  /** Bits per packed group index (0 without one). */
  gIdxBits: number;
  total: number;
}

/**
 * Layout of a stored INT-k tensor: codes (rows × ⌈cols·bits/8⌉, the int-k convention) | pad to 2 |
 * fp16 scales [count] | zero points packed at `bits` bits (asymmetric) | column → group index packed
 * at gIdxBits bits (act-order without static groups). Little-endian.
 */
export function intSections(p: { rows: number; cols: number; bits: number; count: number; symmetric: boolean; group: number; gIdx: boolean }): IntSections {
  const codes = p.rows * rowBytes(p.cols, p.bits);
  const scalesAt = codes + (codes & 1);
  let at = scalesAt + 2 * p.count;
  const zerosAt = p.symmetric ? -1 : at;
  if (!p.symmetric) at += packedZeroBytes(p.count, p.bits);
  const gb = p.gIdx ? gIdxBits(p.cols, p.group) : 0;
  const gIdxAt = p.gIdx ? at : -1;
  if (p.gIdx) at += rowBytes(p.cols, gb);
  return { codes, scalesAt, scales: p.count, zerosAt, gIdxAt, gIdxBits: gb, total: at };
}

function sectionsOf(t: Pick<PackedIntTensor, 'bits' | 'shape' | 'scales' | 'zeros' | 'gIdx' | 'group'>): IntSections {
  const [rows, cols] = t.shape;
  return intSections({ rows, cols, bits: t.bits, count: t.scales.length, symmetric: t.zeros === null, group: t.group, gIdx: Boolean(t.gIdx) });
}

/** Bytes of an INT-k tensor as stored (`intSections`). */
export function intStorageBytes(t: Pick<PackedIntTensor, 'bits' | 'shape' | 'scales' | 'zeros' | 'gIdx' | 'group'>): number {
  return sectionsOf(t).total;
}

/**
 * Storage bits per weight of an INT-k tensor as stored (`intSections`): codes, fp16 scales, packed
 * zeros and packed group indices. int3 g32 on 64-wide rows: 3.5 symmetric, 3.59375 asymmetric.
 */
export function intBitsPerWeight(t: Pick<PackedIntTensor, 'bits' | 'shape' | 'scales' | 'zeros' | 'gIdx' | 'group'>): number {
  const n = t.shape[0] * t.shape[1];
  return n === 0 ? Number.NaN : (intStorageBytes(t) * 8) / n;
}

/** The bytes of an INT-k tensor in the `intSections` layout (validate it first). */
export function encodeIntStorage(t: PackedIntTensor): Uint8Array {
  checkIntParams('encodeIntStorage', t.bits, t.scales, t.zeros);
  const s = sectionsOf(t);
  const out = new Uint8Array(s.total);
  const view = new DataView(out.buffer);
  out.set(t.codes.subarray(0, s.codes), 0);
  t.scales.forEach((v, i) => view.setUint16(s.scalesAt + 2 * i, f16Bits(v), true));
  if (t.zeros) t.zeros.forEach((z, i) => writeBits(out.subarray(s.zerosAt), i * t.bits, t.bits, z));
  if (t.gIdx) t.gIdx.forEach((g, c) => writeBits(out.subarray(s.gIdxAt), c * s.gIdxBits, s.gIdxBits, g));
  return out;
}

/**
 * An INT-k tensor from its bytes in the `intSections` layout; `bytes` must be exactly `total` long.
 * The caller validates the result (group indices and lengths) with validatePacked.
 */
export function decodeIntStorage(
  p: { rows: number; cols: number; bits: number; granularity: PackedIntTensor['granularity']; group: number; count: number; symmetric: boolean; gIdx: boolean },
  bytes: Uint8Array, where: string,
): PackedIntTensor {
  const s = intSections(p);
  if (bytes.byteLength !== s.total) throw new LowbitError('E_SHAPE', `${where}: ${bytes.byteLength} bytes, INT${p.bits} [${p.rows}, ${p.cols}] with ${p.count} fp16 scales${p.symmetric ? '' : ' and packed zeros'}${p.gIdx ? ' and a packed group index' : ''} needs ${s.total}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const t: PackedIntTensor = {
    kind: 'int', bits: p.bits, symmetric: p.symmetric, shape: [p.rows, p.cols], granularity: p.granularity, group: p.group,
    scales: Float32Array.from({ length: p.count }, (_, i) => f16Value(view.getUint16(s.scalesAt + 2 * i, true))),
    zeros: p.symmetric ? null : unpackZeros(bytes.subarray(s.zerosAt), p.count, p.bits),
    codes: bytes.slice(0, s.codes),
  };
  if (p.gIdx) {
    const g = bytes.subarray(s.gIdxAt);
    t.gIdx = Int32Array.from({ length: p.cols }, (_, c) => readBits(g, c * s.gIdxBits, s.gIdxBits));
  }
  return t;
}

/**
 * The LBPT fields of an INT-k tensor: scales as fp16 bits (Uint16Array), zero points packed at
 * `bits` bits (Uint8Array), the column → group index packed at gIdxBits bits (Uint8Array).
 */
export function intToStoredFields(t: PackedIntTensor): Record<string, unknown> {
  checkIntParams('serializeTensor', t.bits, t.scales, t.zeros);
  const out: Record<string, unknown> = { ...t, scales: scalesToF16(t.scales), zeros: t.zeros && packZeros(t.zeros, t.bits) };
  if (t.gIdx) {
    const gb = gIdxBits(t.shape[1], t.group);
    const g = new Uint8Array(rowBytes(t.gIdx.length, gb));
    t.gIdx.forEach((v, c) => writeBits(g, c * gb, gb, v));
    out.gIdx = g;
  }
  return out;
}

function field(where: string, name: string, v: unknown, ctor: typeof Uint8Array | typeof Uint16Array, n: number): void {
  if (!(v instanceof ctor)) throw new LowbitError('E_BAD_FILE', `${where}: INT-k field ${name} must be a ${ctor.name}, got ${(v as object)?.constructor?.name ?? typeof v}`);
  if (v.length !== n) throw new LowbitError('E_BAD_FILE', `${where}: INT-k field ${name} has ${v.length} entries, expected ${n}`);
}

/** The inverse of intToStoredFields, in place on the fields read back; checks every length first. */
export function intFromStoredFields(f: Record<string, unknown>, where: string): void {
  if (f.scales instanceof Float32Array) {
    throw new LowbitError('E_BAD_FILE', `${where}: INT-k scales stored as f32 (an LBPT written before lowbit stored fp16 scales and packed zero points); this version reads only the fp16 layout: re-quantize the tensor`);
  }
  const bits = f.bits;
  const shape = f.shape;
  if (!Number.isInteger(bits) || (bits as number) < 2 || (bits as number) > 8) throw new LowbitError('E_BAD_FILE', `${where}: bits must be an integer in [2, 8], got ${JSON.stringify(bits)}`);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new LowbitError('E_BAD_FILE', `${where}: shape must be [rows, cols], got ${JSON.stringify(shape)}`);
  const b = bits as number;
  const scales = f.scales as Uint16Array;
  field(where, 'scales', scales, Uint16Array, (scales as Uint16Array | undefined)?.length ?? 0);
  f.scales = scalesFromF16(scales);
  if (f.zeros !== null) {
    field(where, 'zeros', f.zeros, Uint8Array, packedZeroBytes(scales.length, b));
    f.zeros = unpackZeros(f.zeros as Uint8Array, scales.length, b);
  }
  if (f.gIdx !== undefined && f.gIdx !== null) {
    const cols = shape[1] as number;
    if (!Number.isSafeInteger(f.group) || (f.group as number) <= 0) throw new LowbitError('E_BAD_FILE', `${where}: a group index needs a positive integer group, got ${JSON.stringify(f.group)}`);
    const gb = gIdxBits(cols, f.group as number);
    field(where, 'gIdx', f.gIdx, Uint8Array, rowBytes(cols, gb));
    const g = f.gIdx as Uint8Array;
    f.gIdx = Int32Array.from({ length: cols }, (_, c) => readBits(g, c * gb, gb));
  }
}
