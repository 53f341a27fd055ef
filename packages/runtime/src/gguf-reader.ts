// GGUF v2/v3 (ggml/docs/gguf.md): header, typed metadata, tensor index, aligned data section.
// Our own parser rather than @huggingface/gguf or hyllama: those parse metadata for display, while
// lowbit also needs typed values to round-trip through its writer, tensor-by-tensor reads from a
// file handle, and errors that name the file and tensor. The format is small enough to own.
import { LowbitError } from '@lowbit/kernels';
import { type ByteSource, fileSource } from './byte-source.js';
import { type LowbitIntParams, type LowbitParams, type TensorType, LOWBIT_TYPES, checkLowbitIntVersion, isLowbitType, tensorBytes, tensorTypeOf } from './ggml-types.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types (gguf.md `gguf_metadata_value_type`). */
export const GgufValueType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7,
  STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

export type GgufScalar = number | bigint | boolean | string;
/** A metadata value with its stored type, so a file re-written by lowbit keeps every key's type. */
export type GgufValue =
  | { type: Exclude<GgufValueType, 9>; value: GgufScalar }
  | { type: 9; itemType: Exclude<GgufValueType, 9>; value: GgufScalar[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: shape[0] is the row length (contiguous dimension). */
  shape: number[];
  type: TensorType;
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
  /** LB_INT* and LB_ANYPREC tensors: the parameters read from metadata `lowbit.tensor.<name>`. */
  params?: LowbitParams;
}

/** The metadata key holding an LB_INT* tensor's parameters (JSON). */
export function lowbitParamsKey(tensor: string): string {
  return `lowbit.tensor.${tensor}`;
}

function lowbitParams(metadata: Map<string, GgufValue>, type: TensorType, tensor: string, where: string): LowbitParams | undefined {
  if (isLowbitType(type) && LOWBIT_TYPES[type].kind === 'anyprec') {
    const v = metadata.get(lowbitParamsKey(tensor));
    if (!v || typeof v.value !== 'string') throw new LowbitError('E_BAD_FILE', `${where}: ${type} needs metadata ${lowbitParamsKey(tensor)} (a JSON string)`);
    try {
      // checked by lowbitSections before any size is taken from them
      const p = JSON.parse(v.value) as { seedBits: number; maxBits: number };
      return { seedBits: p?.seedBits, maxBits: p?.maxBits };
    } catch (e) {
      throw new LowbitError('E_BAD_FILE', `${where}: metadata ${lowbitParamsKey(tensor)} is not JSON (${(e as Error).message})`);
    }
  }
  if (!isLowbitType(type) || LOWBIT_TYPES[type].kind !== 'int') return undefined;
  checkLowbitIntVersion(metadata.get('lowbit.format_version')?.value, where);
  const v = metadata.get(lowbitParamsKey(tensor));
  if (!v || typeof v.value !== 'string') throw new LowbitError('E_BAD_FILE', `${where}: ${type} needs metadata ${lowbitParamsKey(tensor)} (a JSON string)`);
  try {
    const p = JSON.parse(v.value) as LowbitIntParams;
    return { granularity: p.granularity, group: p.group, symmetric: p.symmetric, g_idx: Boolean(p.g_idx) };
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `${where}: metadata ${lowbitParamsKey(tensor)} is not JSON (${(e as Error).message})`);
  }
}

export interface GgufFile {
  source: ByteSource;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: Map<string, GgufTensorInfo>;
  dataOffset: number;
}

/** Thrown inside the parser when the header runs past the bytes read so far. */
class NeedMore extends Error {}

class Cursor {
  pos = 0;
  private readonly view: DataView;
  private readonly text = new TextDecoder('utf-8', { fatal: false });
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  need(n: number): void {
    if (this.pos + n > this.buf.byteLength) throw new NeedMore();
  }
  u8() { this.need(1); return this.view.getUint8(this.pos++); }
  i8() { this.need(1); return this.view.getInt8(this.pos++); }
  u16() { this.need(2); const v = this.view.getUint16(this.pos, true); this.pos += 2; return v; }
  i16() { this.need(2); const v = this.view.getInt16(this.pos, true); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  i32() { this.need(4); const v = this.view.getInt32(this.pos, true); this.pos += 4; return v; }
  f32() { this.need(4); const v = this.view.getFloat32(this.pos, true); this.pos += 4; return v; }
  f64() { this.need(8); const v = this.view.getFloat64(this.pos, true); this.pos += 8; return v; }
  u64() { this.need(8); const v = this.view.getBigUint64(this.pos, true); this.pos += 8; return v; }
  i64() { this.need(8); const v = this.view.getBigInt64(this.pos, true); this.pos += 8; return v; }
  /** A u64 that must fit a JS number (counts, lengths, offsets). */
  size(what: string, limit: number): number {
    const v = this.u64();
    // every entry takes at least a byte, so a count above the file size means a cut or corrupt file
    if (v > BigInt(limit)) throw new LowbitError('E_TRUNCATED', `${what} is ${v}, more than the file's ${limit} bytes can hold (truncated or corrupt)`);
    return Number(v);
  }
  str(limit: number): string {
    const n = this.size('string length', limit);
    this.need(n);
    const s = this.text.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

function readScalar(c: Cursor, type: number, limit: number): GgufScalar {
  switch (type) {
    case 0: return c.u8();
    case 1: return c.i8();
    case 2: return c.u16();
    case 3: return c.i16();
    case 4: return c.u32();
    case 5: return c.i32();
    case 6: return c.f32();
    case 7: return c.u8() !== 0;
    case 8: return c.str(limit);
    case 10: return c.u64();
    case 11: return c.i64();
    case 12: return c.f64();
    default: throw new LowbitError('E_BAD_FILE', `unknown metadata value type ${type}`);
  }
}

/** Smallest encoded size of one array item by value type (strings: their u64 length). */
const ITEM_BYTES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 8: 8, 10: 8, 11: 8, 12: 8 };

function readValue(c: Cursor, limit: number): GgufValue {
  const type = c.u32();
  if (type !== GgufValueType.ARRAY) return { type: type as Exclude<GgufValueType, 9>, value: readScalar(c, type, limit) };
  const itemType = c.u32();
  if (itemType === GgufValueType.ARRAY) throw new LowbitError('E_UNSUPPORTED', 'nested metadata arrays are not supported');
  const n = c.size('array length', limit);
  // every item takes at least its fixed size (a string its 8-byte length): a count the rest of the
  // file cannot hold is refused before the loop, and nothing is sized by the count itself
  const min = ITEM_BYTES[itemType] ?? 1;
  if (n * min > limit - c.pos) throw new LowbitError('E_TRUNCATED', `array of ${n} items of type ${itemType} needs ${n * min} bytes, more than the file's remaining ${limit - c.pos} (truncated or corrupt)`);
  const value: GgufScalar[] = [];
  for (let i = 0; i < n; i++) value.push(readScalar(c, itemType, limit));
  return { type: 9, itemType: itemType as Exclude<GgufValueType, 9>, value };
}

function parseHeader(buf: Uint8Array, name: string, fileSize: number): Omit<GgufFile, 'source'> {
  const c = new Cursor(buf);
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) {
    const shown = [...buf.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new LowbitError('E_BAD_FILE', `${name}: not a GGUF file (magic bytes ${shown}, expected 47 47 55 46 "GGUF")`);
  }
  const version = c.u32();
  if (version !== 2 && version !== 3) throw new LowbitError('E_UNSUPPORTED', `${name}: GGUF version ${version} is not supported (2 or 3)`);
  const nTensors = c.size('tensor count', fileSize);
  const nKv = c.size('metadata count', fileSize);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.str(fileSize);
    metadata.set(key, readValue(c, fileSize));
  }
  const align = metadata.get('general.alignment');
  const alignment = align ? Number(align.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw new LowbitError('E_BAD_FILE', `${name}: general.alignment ${alignment} is not a positive multiple of 8`);
  }
  const raw: { name: string; shape: number[]; typeId: number; rel: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const tname = c.str(fileSize);
    const nd = c.u32();
    if (nd > 4) throw new LowbitError('E_BAD_FILE', `${name}: tensor ${tname} has ${nd} dimensions (ggml allows 4)`);
    const shape: number[] = [];
    for (let d = 0; d < nd; d++) shape.push(c.size(`tensor ${tname} dimension`, 2 ** 53));
    const typeId = c.u32();
    const rel = c.size(`tensor ${tname} offset`, 2 ** 53);
    raw.push({ name: tname, shape, typeId, rel });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const tensors = new Map<string, GgufTensorInfo>();
  for (const t of raw) {
    const where = `${name}: tensor ${t.name}`;
    const type = tensorTypeOf(t.typeId, where);
    const params = lowbitParams(metadata, type, t.name, where);
    const byteLength = tensorBytes(type, t.shape, where, params);
    const offset = dataOffset + t.rel;
    if (t.rel % alignment !== 0) throw new LowbitError('E_BAD_FILE', `${where}: offset ${t.rel} is not aligned to ${alignment}`);
    if (offset + byteLength > fileSize) {
      throw new LowbitError('E_TRUNCATED', `${where}: data ends at byte ${offset + byteLength} but the file has ${fileSize} bytes (truncated?)`);
    }
    if (tensors.has(t.name)) throw new LowbitError('E_BAD_FILE', `${where}: appears twice in the tensor index`);
    tensors.set(t.name, { name: t.name, shape: t.shape, type, offset, byteLength, ...(params ? { params } : {}) });
  }
  return { version, alignment, metadata, tensors, dataOffset };
}

/**
 * Reads a GGUF header (metadata + tensor index) from a file path or a ByteSource; tensor data stays
 * on disk until `readTensorBytes`. The header is read in growing chunks because vocabularies make
 * it anywhere from a few KB to tens of MB.
 */
export async function readGguf(input: string | ByteSource): Promise<GgufFile> {
  const source = typeof input === 'string' ? await fileSource(input) : input;
  try {
    let want = Math.min(source.size, 1 << 20);
    for (;;) {
      const buf = await source.read(0, want);
      try {
        return { source, ...parseHeader(buf, source.name, source.size) };
      } catch (e) {
        if (e instanceof LowbitError && !e.message.startsWith(source.name)) {
          throw new LowbitError(e.code, `${source.name}: ${e.message}`, { cause: e });
        }
        if (!(e instanceof NeedMore)) throw e;
        if (want >= source.size) throw new LowbitError('E_TRUNCATED', `${source.name}: file ends inside the GGUF header (${source.size} bytes)`);
        want = Math.min(source.size, want * 4);
      }
    }
  } catch (e) {
    if (typeof input === 'string') await source.close();
    throw e;
  }
}

export async function readTensorBytes(file: GgufFile, name: string): Promise<Uint8Array> {
  const t = file.tensors.get(name);
  if (!t) throw new LowbitError('E_MISSING', `${file.source.name}: tensor ${name} is missing`);
  return file.source.read(t.offset, t.byteLength);
}

/**
 * Tensor `name`'s stored bytes straight into `dst` (exactly its byte length): the loaders pass a view
 * of WebAssembly memory, so hundreds of MB per tensor skip a JS array and a second copy.
 */
export async function readTensorInto(file: GgufFile, name: string, dst: Uint8Array): Promise<void> {
  const t = file.tensors.get(name);
  if (!t) throw new LowbitError('E_MISSING', `${file.source.name}: tensor ${name} is missing`);
  if (dst.byteLength !== t.byteLength) throw new LowbitError('E_ARG', `${file.source.name}: tensor ${name} has ${t.byteLength} bytes, the destination ${dst.byteLength}`);
  if (file.source.readInto) await file.source.readInto(t.offset, dst);
  else dst.set(await file.source.read(t.offset, t.byteLength));
}

/** A metadata value as a plain JS value (bigints that fit become numbers), or undefined. */
export function metaValue(file: GgufFile, key: string): GgufScalar | GgufScalar[] | undefined {
  const v = file.metadata.get(key);
  if (!v) return undefined;
  const plain = (x: GgufScalar) => (typeof x === 'bigint' && x <= BigInt(Number.MAX_SAFE_INTEGER) && x >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x);
  return Array.isArray(v.value) ? v.value.map(plain) : plain(v.value);
}
