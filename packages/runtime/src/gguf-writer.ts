// GGUF v3 writer. Files appear whole or not at all: bytes go to `<out>.tmp-<pid>`, which is renamed
// over `out` only after the last tensor is written (a crash leaves at most the temp file).
import { LowbitError } from '@lowbit/kernels';
import { type ByteSink, writeFileAtomic } from './atomic-file.js';
import { type LowbitParams, type TensorType, tensorBytes, tensorTypeId } from './ggml-types.js';
import { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, type GgufScalar, type GgufValue, lowbitParamsKey } from './gguf-reader.js';

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: shape[0] is the row length. */
  shape: number[];
  type: TensorType;
  /** LB_INT* tensors: their parameters, written to metadata `lowbit.tensor.<name>` by the writer. */
  params?: LowbitParams;
  /** The encoded bytes, or a function producing them when the writer reaches this tensor. */
  data: Uint8Array | (() => Promise<Uint8Array> | Uint8Array);
}

class Bytes {
  private chunks: Uint8Array[] = [];
  length = 0;
  private push(b: Uint8Array) {
    this.chunks.push(b);
    this.length += b.byteLength;
  }
  private num(n: number, set: (v: DataView) => void) {
    const b = new Uint8Array(n);
    set(new DataView(b.buffer));
    this.push(b);
  }
  u8(v: number) { this.num(1, (d) => d.setUint8(0, v)); }
  i8(v: number) { this.num(1, (d) => d.setInt8(0, v)); }
  u16(v: number) { this.num(2, (d) => d.setUint16(0, v, true)); }
  i16(v: number) { this.num(2, (d) => d.setInt16(0, v, true)); }
  u32(v: number) { this.num(4, (d) => d.setUint32(0, v, true)); }
  i32(v: number) { this.num(4, (d) => d.setInt32(0, v, true)); }
  f32(v: number) { this.num(4, (d) => d.setFloat32(0, v, true)); }
  f64(v: number) { this.num(8, (d) => d.setFloat64(0, v, true)); }
  u64(v: number | bigint) { this.num(8, (d) => d.setBigUint64(0, BigInt(v), true)); }
  i64(v: number | bigint) { this.num(8, (d) => d.setBigInt64(0, BigInt(v), true)); }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.byteLength);
    this.push(b);
  }
  pad(alignment: number) {
    const n = (alignment - (this.length % alignment)) % alignment;
    if (n) this.push(new Uint8Array(n));
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }
}

function writeScalar(b: Bytes, type: number, v: GgufScalar, key: string): void {
  const num = () => {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new LowbitError('E_ARG', `metadata ${key}: expected a number, got ${typeof v}`);
    return Number(v);
  };
  switch (type) {
    case 0: return b.u8(num());
    case 1: return b.i8(num());
    case 2: return b.u16(num());
    case 3: return b.i16(num());
    case 4: return b.u32(num());
    case 5: return b.i32(num());
    case 6: return b.f32(num());
    case 7: return b.u8(v ? 1 : 0);
    case 8:
      if (typeof v !== 'string') throw new LowbitError('E_ARG', `metadata ${key}: expected a string`);
      return b.str(v);
    case 10: return b.u64(typeof v === 'bigint' ? v : num());
    case 11: return b.i64(typeof v === 'bigint' ? v : num());
    case 12: return b.f64(num());
    default: throw new LowbitError('E_ARG', `metadata ${key}: unknown value type ${type}`);
  }
}

/** The header bytes (through the padding before tensor data) and each tensor's data offset. */
export function encodeGgufHeader(meta: Map<string, GgufValue>, tensors: readonly Omit<GgufTensorToWrite, 'data'>[]): { header: Uint8Array; offsets: number[]; alignment: number } {
  // the parameters of lowbit tensors live in metadata: written from the tensors so they always agree
  const metadata = new Map(meta);
  for (const t of tensors) {
    const p = t.params;
    if (p) {
      const json = 'seedBits' in p ? { seedBits: p.seedBits, maxBits: p.maxBits } : { granularity: p.granularity, group: p.group, symmetric: p.symmetric, g_idx: p.g_idx };
      metadata.set(lowbitParamsKey(t.name), { type: 8, value: JSON.stringify(json) });
    }
  }
  const align = metadata.get('general.alignment');
  const alignment = align ? Number(align.value) : GGUF_DEFAULT_ALIGNMENT;
  // The reader accepts any positive multiple of 8; a writer that took 2^32 - 1 would pad a 4 GB
  // header, so it also caps the value at 64 KiB (ggml writes 32).
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0 || alignment > 65536) {
    throw new LowbitError('E_ARG', `general.alignment ${String(align?.value)} is not a multiple of 8 between 8 and 65536`);
  }
  const b = new Bytes();
  b.u32(GGUF_MAGIC);
  b.u32(3);
  b.u64(tensors.length);
  b.u64(metadata.size);
  for (const [key, v] of metadata) {
    b.str(key);
    b.u32(v.type);
    if (v.type === 9) {
      b.u32(v.itemType);
      b.u64(v.value.length);
      for (const x of v.value) writeScalar(b, v.itemType, x, key);
    } else writeScalar(b, v.type, v.value, key);
  }
  const offsets: number[] = [];
  let rel = 0;
  for (const t of tensors) {
    b.str(t.name);
    b.u32(t.shape.length);
    for (const d of t.shape) b.u64(d);
    b.u32(tensorTypeId(t.type));
    b.u64(rel);
    offsets.push(rel);
    rel += Math.ceil(tensorBytes(t.type, t.shape, `tensor ${t.name}`, t.params) / alignment) * alignment;
  }
  b.pad(alignment);
  return { header: b.concat(), offsets, alignment };
}

/**
 * Writes a GGUF v3 file atomically (temp file + rename), or streams it into a ByteSink (browsers and
 * workers, which have no file system: the caller collects the bytes).
 */
export async function writeGguf(target: string | ByteSink, metadata: Map<string, GgufValue>, tensors: readonly GgufTensorToWrite[]): Promise<void> {
  const { header, alignment } = encodeGgufHeader(metadata, tensors);
  const path = typeof target === 'string' ? target : '<GGUF bytes>';
  const body = async (out: ByteSink) => {
    await out.write(header);
    for (const t of tensors) {
      const data = typeof t.data === 'function' ? await t.data() : t.data;
      const want = tensorBytes(t.type, t.shape, `tensor ${t.name}`, t.params);
      if (data.byteLength !== want) {
        throw new LowbitError('E_SHAPE', `${path}: tensor ${t.name} has ${data.byteLength} bytes, shape [${t.shape}] as ${t.type} needs ${want}`);
      }
      await out.write(data);
      const pad = (alignment - (data.byteLength % alignment)) % alignment;
      if (pad) await out.write(new Uint8Array(pad));
    }
  };
  if (typeof target === 'string') await writeFileAtomic(target, body);
  else await body(target);
}

/** Convenience constructors for metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: 4, value }),
  i32: (value: number): GgufValue => ({ type: 5, value }),
  f32: (value: number): GgufValue => ({ type: 6, value }),
  bool: (value: boolean): GgufValue => ({ type: 7, value }),
  str: (value: string): GgufValue => ({ type: 8, value }),
  strs: (value: string[]): GgufValue => ({ type: 9, itemType: 8, value }),
  f32s: (value: number[]): GgufValue => ({ type: 9, itemType: 6, value }),
  i32s: (value: number[]): GgufValue => ({ type: 9, itemType: 5, value }),
};
