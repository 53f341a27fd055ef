// lowbit's packed tensor types as bytes in a model file (GGUF types LB_INT*, LB_MX*; the safetensors
// lowbit layout uses the same sections). Layouts are in the README ("lowbit tensor types in GGUF"):
// INT-k (format version 2, @lowbit/formats intSections): codes (rows × ⌈cols·k/8⌉, int-k convention,
// rows byte-aligned) | pad to 2 | fp16 scales | zeros packed at k bits (asymmetric) | g_idx packed at
// ⌈log2 ⌈cols/group⌉⌉ bits (act-order groups). MX: codes at the element width (rows × ⌈cols·bits/8⌉)
// | E8M0 scales (rows × ⌈cols/32⌉). Little-endian throughout.
import { LowbitError } from '@lowbit/kernels';
import { type MxFormatName, type MxTensor, type PackedIntTensor, decodeIntStorage, dequantizeMx, encodeIntStorage, readBits, rowBytes, validatePacked, writeBits } from '@lowbit/formats';
import { LOWBIT_TYPES, type LowbitIntParams, type LowbitTensorType, lowbitSections } from './ggml-types.js';

/**
 * OCP MX with blocks of 32 along each row (a partial last block when cols % 32 ≠ 0), as the
 * quantizers' MX grid fits them. `@lowbit/formats`' MxTensor runs its blocks over the flattened
 * tensor, which is the same thing only when cols % 32 = 0.
 */
export interface MxRowsTensor {
  kind: 'mx-rows';
  format: MxFormatName;
  /** [rows, cols] */
  shape: [number, number];
  /** One E8M0 code per block: rows × ⌈cols/32⌉, row-major (0xFF = NaN). */
  scales: Uint8Array;
  /** One element code per weight (low `bits` bits used), rows × cols. */
  codes: Uint8Array;
}

/** A quantized layer as a model file stores it. */
export type StoredLayer = PackedIntTensor | MxRowsTensor;

const MX_TYPE: Record<MxFormatName, LowbitTensorType> = {
  mxfp4: 'LB_MXFP4', mxfp6_e2m3: 'LB_MXFP6_E2M3', mxfp6_e3m2: 'LB_MXFP6_E3M2', mxfp8_e4m3: 'LB_MXFP8_E4M3', mxfp8_e5m2: 'LB_MXFP8_E5M2', mxint8: 'LB_MXINT8',
};

const MX_BITS: Record<MxFormatName, number> = { mxfp4: 4, mxfp6_e2m3: 6, mxfp6_e3m2: 6, mxfp8_e4m3: 8, mxfp8_e5m2: 8, mxint8: 8 };

export function checkMxRows(where: string, t: MxRowsTensor): void {
  const bits = MX_BITS[t.format];
  if (!bits) throw new LowbitError('E_FORMAT', `${where}: unknown MX format "${t.format}"`);
  const [rows, cols] = t.shape;
  if (!(t.codes instanceof Uint8Array) || t.codes.length !== rows * cols) throw new LowbitError('E_SHAPE', `${where}: MX codes must be a Uint8Array of ${rows * cols} entries`);
  const nb = rows * Math.ceil(cols / 32);
  if (!(t.scales instanceof Uint8Array) || t.scales.length !== nb) throw new LowbitError('E_SHAPE', `${where}: MX scales must be a Uint8Array of ${nb} E8M0 codes`);
  for (let i = 0; i < t.codes.length; i++) if (t.codes[i] >> bits) throw new LowbitError('E_ARG', `${where}: MX code ${t.codes[i]} at ${i} does not fit ${bits} bits`);
}

/** The lowbit GGUF type (and, for INT-k, the parameters) of a stored layer. */
export function lowbitTypeOf(t: StoredLayer): { type: LowbitTensorType; params?: LowbitIntParams } {
  if (t.kind === 'mx-rows') return { type: MX_TYPE[t.format] };
  return {
    type: `LB_INT${t.bits}` as LowbitTensorType,
    params: { granularity: t.granularity, group: t.group, symmetric: t.zeros === null, g_idx: Boolean(t.gIdx) },
  };
}

/** The bytes of a stored layer in its lowbit type's layout. */
export function encodeLowbit(t: StoredLayer, where = 'tensor'): { type: LowbitTensorType; params?: LowbitIntParams; bytes: Uint8Array } {
  const { type, params } = lowbitTypeOf(t);
  const [rows, cols] = t.shape;
  const s = lowbitSections(type, [cols, rows], params, where);
  const out = new Uint8Array(s.total);
  if (t.kind === 'mx-rows') {
    checkMxRows(where, t);
    const bits = MX_BITS[t.format];
    const rb = rowBytes(cols, bits);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) writeBits(out, r * rb * 8 + c * bits, bits, t.codes[r * cols + c]);
    out.set(t.scales, s.scalesAt);
    return { type, bytes: out };
  }
  validatePacked(where, t);
  const bytes = encodeIntStorage(t);
  if (bytes.byteLength !== s.total) throw new LowbitError('E_SHAPE', `${where}: ${type} layout needs ${s.total} bytes, the tensor encodes to ${bytes.byteLength}`);
  return { type, params, bytes };
}

/** A stored layer from its bytes; `shape` in ggml order ([cols, rows]). Every length is checked. */
export function decodeLowbit(type: LowbitTensorType, shape: readonly number[], params: LowbitIntParams | undefined, bytes: Uint8Array, where = 'tensor'): StoredLayer {
  const info = LOWBIT_TYPES[type];
  if (!info) throw new LowbitError('E_UNSUPPORTED', `${where}: ${type} is not a lowbit tensor type`);
  const s = lowbitSections(type, shape, params, where);
  if (bytes.byteLength !== s.total) throw new LowbitError('E_SHAPE', `${where}: ${bytes.byteLength} bytes, shape [${shape}] as ${type} needs ${s.total}`);
  const [cols, rows] = shape;
  if (info.kind === 'mx') {
    const rb = rowBytes(cols, info.bits);
    const codes = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) codes[r * cols + c] = readBits(bytes, r * rb * 8 + c * info.bits, info.bits);
    return { kind: 'mx-rows', format: info.mx as MxFormatName, shape: [rows, cols], scales: bytes.slice(s.scalesAt, s.scalesAt + s.scales), codes };
  }
  const p = params as LowbitIntParams;
  const t = decodeIntStorage({ rows, cols, bits: info.bits, granularity: p.granularity, group: p.group, count: s.scales, symmetric: p.symmetric, gIdx: p.g_idx }, bytes, where);
  try {
    validatePacked(where, t);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', (e as Error).message, { cause: e });
  }
  return t;
}

/** Each row decoded with its own blocks (a row's last block may be partial). */
export function dequantizeMxRows(t: MxRowsTensor): Float32Array {
  checkMxRows('dequantizeMxRows', t);
  const [rows, cols] = t.shape;
  const nb = Math.ceil(cols / 32);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const row: MxTensor = { format: t.format, length: cols, scales: t.scales.subarray(r * nb, (r + 1) * nb), codes: t.codes.subarray(r * cols, (r + 1) * cols) };
    out.set(dequantizeMx(row), r * cols);
  }
  return out;
}

/** The same tensor as `@lowbit/formats`' flat MxTensor; only when every row is whole blocks. */
export function mxRowsAsFlat(t: MxRowsTensor): MxTensor & { shape: [number, number] } {
  const [rows, cols] = t.shape;
  if (cols % 32 !== 0) throw new LowbitError('E_SHAPE', `mxRowsAsFlat: rows of ${cols} values are not whole 32-blocks`);
  return { format: t.format, length: rows * cols, scales: t.scales, codes: t.codes, shape: [rows, cols] };
}
