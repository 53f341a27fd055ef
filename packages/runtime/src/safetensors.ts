// safetensors (huggingface/safetensors format spec): u64 little-endian header length N, N bytes of
// JSON { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": {…} }, then the data,
// offsets relative to byte 8 + N. Read tensor by tensor through a ByteSource like GGUF.
import { LowbitError } from '@lowbit/kernels';
import { writeFileAtomic } from './atomic-file.js';
import { type ByteSource, fileSource } from './byte-source.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I32';
const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, I32: 4 };
const KNOWN = ['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I32', 'U32', 'F32', 'F64', 'I64', 'U64'];

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  /** Row-major, outermost first (PyTorch order: a Linear weight is [out, in]). */
  shape: number[];
  offset: number; // absolute
  byteLength: number;
}

export interface SafetensorsFile {
  source: ByteSource;
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensorInfo>;
}

export async function readSafetensors(input: string | ByteSource): Promise<SafetensorsFile> {
  const source = typeof input === 'string' ? await fileSource(input) : input;
  const name = source.name;
  try {
    if (source.size < 8) throw new LowbitError('E_TRUNCATED', `${name}: ${source.size} bytes, too short for a safetensors header`);
    const n = new DataView((await source.read(0, 8)).slice().buffer).getBigUint64(0, true);
    if (n > BigInt(source.size - 8)) throw new LowbitError('E_TRUNCATED', `${name}: header length ${n} runs past the end of the file (${source.size} bytes); not safetensors or truncated`);
    const text = new TextDecoder().decode(await source.read(8, Number(n)));
    let header: unknown;
    try {
      header = JSON.parse(text);
    } catch (e) {
      throw new LowbitError('E_BAD_FILE', `${name}: safetensors header is not JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) {
      throw new LowbitError('E_BAD_FILE', `${name}: safetensors header is ${header === null ? 'null' : Array.isArray(header) ? 'an array' : `a ${typeof header}`}, not a JSON object`);
    }
    const base = 8 + Number(n);
    const dataBytes = source.size - base;
    const tensors = new Map<string, SafetensorsTensorInfo>();
    // null prototype: a key such as "__proto__" or "toString" is just a key, never an inherited value
    const metadata: Record<string, string> = Object.create(null);
    const ranges: [number, number, string][] = [];
    for (const [key, v] of Object.entries(header)) {
      if (key === '__metadata__') {
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LowbitError('E_BAD_FILE', `${name}: __metadata__ is ${v === null ? 'null' : typeof v}, not an object of strings`);
        for (const [mk, mv] of Object.entries(v)) {
          if (typeof mv !== 'string') throw new LowbitError('E_BAD_FILE', `${name}: __metadata__ value ${JSON.stringify(mk)} is ${mv === null ? 'null' : typeof mv}, not a string`);
          metadata[mk] = mv;
        }
        continue;
      }
      const where = `${name}: tensor ${key}`;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new LowbitError('E_BAD_FILE', `${where}: entry is ${v === null ? 'null' : typeof v}, not an object { dtype, shape, data_offsets }`);
      const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof t.dtype !== 'string' || !KNOWN.includes(t.dtype)) throw new LowbitError('E_BAD_FILE', `${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
      if (!(t.dtype in DTYPE_BYTES)) throw new LowbitError('E_UNSUPPORTED', `${where}: dtype ${t.dtype} is not supported (lowbit reads F32, F16, BF16, I8, U8, I32)`);
      const dtype = t.dtype as SafetensorsDtype;
      const shape = t.shape;
      if (!Array.isArray(shape) || shape.length > 8) throw new LowbitError('E_BAD_FILE', `${where}: shape ${JSON.stringify(shape)} is not an array of at most 8 dimensions`);
      // every element takes at least a byte, so a product beyond the data section is refused
      // before it can overflow or size an allocation
      if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new LowbitError('E_BAD_FILE', `${where}: shape [${shape.map((x) => JSON.stringify(x))}] has a dimension that is not a non-negative integer`);
      let count = shape.includes(0) ? 0 : 1;
      for (const d of shape) {
        count *= d;
        if (count > dataBytes) throw new LowbitError('E_BAD_FILE', `${where}: shape [${shape}] holds more elements than the file's ${dataBytes} data bytes`);
      }
      const off = t.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0)) {
        throw new LowbitError('E_BAD_FILE', `${where}: data_offsets ${JSON.stringify(off)} is not a pair [begin, end] of non-negative integers`);
      }
      const [b, e] = off as [number, number];
      if (e < b) throw new LowbitError('E_BAD_FILE', `${where}: data_offsets [${b}, ${e}] ends before it begins`);
      const want = count * DTYPE_BYTES[dtype];
      if (e - b !== want) throw new LowbitError('E_SHAPE', `${where} has ${e - b} bytes, shape [${shape}] as ${dtype} needs ${want}`);
      if (e > dataBytes) throw new LowbitError('E_TRUNCATED', `${where} ends at byte ${base + e} but the file has ${source.size} bytes`);
      tensors.set(key, { name: key, dtype, shape: shape as number[], offset: base + b, byteLength: want });
      if (want > 0) ranges.push([b, e, key]);
    }
    // two tensors over the same bytes: one write would silently change the other (the format spec forbids it)
    ranges.sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < ranges.length; i++) {
      if (ranges[i][0] < ranges[i - 1][1]) throw new LowbitError('E_BAD_FILE', `${name}: tensors ${ranges[i - 1][2]} and ${ranges[i][2]} overlap (data_offsets [${ranges[i - 1].slice(0, 2)}] and [${ranges[i].slice(0, 2)}])`);
    }
    return { source, metadata, tensors };
  } catch (e) {
    if (typeof input === 'string') await source.close();
    throw e;
  }
}

/** A tensor's values as f32 (F32/F16/BF16 converted; I8/U8/I32 as their integer values). */
export async function readSafetensorsF32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const t = file.tensors.get(name);
  if (!t) throw new LowbitError('E_MISSING', `${file.source.name}: tensor ${name} is missing`);
  const b = await file.source.read(t.offset, t.byteLength);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = t.byteLength / DTYPE_BYTES[t.dtype];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (t.dtype) {
      case 'F32': out[i] = v.getFloat32(4 * i, true); break;
      case 'F16': out[i] = f16ToF32(v.getUint16(2 * i, true)); break;
      case 'BF16': out[i] = bf16ToF32(v.getUint16(2 * i, true)); break;
      case 'I8': out[i] = v.getInt8(i); break;
      case 'U8': out[i] = v.getUint8(i); break;
      case 'I32': out[i] = v.getInt32(4 * i, true); break;
    }
  }
  return out;
}

/** A tensor's raw bytes (packed integer tensors: GPTQ qweight / qzeros, lowbit's packed blobs). */
export async function readSafetensorsBytes(file: SafetensorsFile, name: string): Promise<Uint8Array> {
  const t = file.tensors.get(name);
  if (!t) throw new LowbitError('E_MISSING', `${file.source.name}: tensor ${name} is missing`);
  return (await file.source.read(t.offset, t.byteLength)).slice();
}

export interface SafetensorsTensorToWrite {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** f32 values (encoded to dtype) or the raw data already in dtype (little-endian). */
  data: Float32Array | Uint8Array | Int8Array | Int32Array | Uint16Array;
}

function encode(t: SafetensorsTensorToWrite): Uint8Array {
  const n = t.shape.reduce((a, d) => a * d, 1);
  if (!(t.data instanceof Float32Array)) {
    if (t.data.byteLength !== n * DTYPE_BYTES[t.dtype]) throw new LowbitError('E_SHAPE', `tensor ${t.name}: ${t.data.byteLength} bytes for shape [${t.shape}] as ${t.dtype}`);
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  if (t.data.length !== n) throw new LowbitError('E_SHAPE', `tensor ${t.name}: ${t.data.length} values for shape [${t.shape}]`);
  const out = new Uint8Array(n * DTYPE_BYTES[t.dtype]);
  const v = new DataView(out.buffer);
  for (let i = 0; i < n; i++) {
    const x = t.data[i];
    switch (t.dtype) {
      case 'F32': v.setFloat32(4 * i, x, true); break;
      case 'F16': v.setUint16(2 * i, f32ToF16(x), true); break;
      case 'BF16': v.setUint16(2 * i, f32ToBf16(x), true); break;
      case 'I8': v.setInt8(i, Math.max(-128, Math.min(127, Math.round(x)))); break;
      case 'U8': v.setUint8(i, Math.max(0, Math.min(255, Math.round(x)))); break;
      case 'I32': v.setInt32(4 * i, Math.round(x), true); break;
    }
  }
  return out;
}

/** Writes a safetensors file atomically (temp + rename); the header is space-padded to 8 bytes. */
export async function writeSafetensors(path: string, tensors: readonly SafetensorsTensorToWrite[], metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  const blobs: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const b = encode(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + b.byteLength] };
    blobs.push(b);
    off += b.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).byteLength) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(hb.byteLength), true);
  await writeFileAtomic(path, async (out) => {
    await out.write(len);
    await out.write(hb);
    for (const b of blobs) await out.write(b);
  });
}
