import { LowbitError } from '@lowbit/kernels';
import type { AnyPrecisionTensor } from './any-precision.js';
import type { BcqTensor } from './bcq.js';
import type { CodebookTensor, Nf4Tensor } from './codebook.js';
import type { PackedIntTensor } from './int-quant.js';
import type { MxTensor } from './mx.js';
import { validatePacked } from './validate.js';

/** Every packed tensor of this package; `kind` (or `format` for MX) says which. */
export type PackedTensor = PackedIntTensor | CodebookTensor | Nf4Tensor | BcqTensor | AnyPrecisionTensor | (MxTensor & { kind?: 'mx' });

// Byte layout: "LBPT" | u32 header length | UTF-8 JSON header | zero padding to 8 | blobs, each
// padded to 8. The header holds every scalar field and, for each typed-array field, its dtype and
// length (arrays of typed arrays, such as any-precision tables, as name[i]). Self-describing: the
// bytes alone rebuild the tensor, and every length is checked against what is there.
const MAGIC = 0x5450424c; // "LBPT" little-endian
const DTYPES = { Float32Array, Uint8Array, Int8Array, Uint16Array, Int32Array } as const;
type DtypeName = keyof typeof DTYPES;
type Typed = Float32Array | Uint8Array | Int8Array | Uint16Array | Int32Array;

interface BlobInfo {
  field: string;
  index?: number;
  dtype: DtypeName;
  length: number;
}

function dtypeOf(a: unknown): DtypeName | null {
  for (const [name, ctor] of Object.entries(DTYPES)) if (a instanceof ctor) return name as DtypeName;
  return null;
}

export function serializeTensor(t: PackedTensor): Uint8Array {
  const scalars: Record<string, unknown> = {};
  const blobs: { info: BlobInfo; data: Typed }[] = [];
  for (const [field, v] of Object.entries(t)) {
    const dt = dtypeOf(v);
    if (dt) blobs.push({ info: { field, dtype: dt, length: (v as Typed).length }, data: v as Typed });
    else if (Array.isArray(v) && v.length > 0 && v.every((x) => dtypeOf(x))) {
      v.forEach((x: Typed, index) => blobs.push({ info: { field, index, dtype: dtypeOf(x)!, length: x.length }, data: x }));
    } else scalars[field] = v;
  }
  const json = new TextEncoder().encode(JSON.stringify({ scalars, blobs: blobs.map((b) => b.info) }));
  const pad8 = (n: number) => Math.ceil(n / 8) * 8;
  let total = pad8(8 + json.length);
  for (const b of blobs) total += pad8(b.data.byteLength);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, json.length, true);
  out.set(json, 8);
  let o = pad8(8 + json.length);
  for (const b of blobs) {
    // Little-endian on every host lowbit runs on (wasm is little-endian too).
    out.set(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), o);
    o += pad8(b.data.byteLength);
  }
  return out;
}

export function deserializeTensor(bytes: Uint8Array): PackedTensor {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_DTYPE', 'deserializeTensor: expected a Uint8Array');
  if (bytes.length < 8) throw new LowbitError('E_TRUNCATED', `packed tensor: ${bytes.length} bytes is shorter than its 8-byte preamble`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new LowbitError('E_BAD_FILE', 'packed tensor: wrong magic (expected "LBPT")');
  const jlen = view.getUint32(4, true);
  if (8 + jlen > bytes.length) throw new LowbitError('E_TRUNCATED', `packed tensor: header of ${jlen} bytes runs past the end (${bytes.length} bytes)`);
  let h: { scalars: Record<string, unknown>; blobs: BlobInfo[] };
  try {
    h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + jlen)));
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', 'packed tensor: header is not valid JSON', { cause: e });
  }
  const pad8 = (n: number) => Math.ceil(n / 8) * 8;
  const t: Record<string, unknown> = { ...h.scalars };
  let o = pad8(8 + jlen);
  for (const b of h.blobs) {
    const ctor = DTYPES[b.dtype];
    if (!ctor) throw new LowbitError('E_BAD_FILE', `packed tensor: unknown dtype ${b.dtype} for field ${b.field}`);
    const n = b.length * ctor.BYTES_PER_ELEMENT;
    // The writer always pads blobs to 8 bytes, so a buffer that ends inside the padding was cut.
    if (o + pad8(n) > bytes.length) throw new LowbitError('E_TRUNCATED', `packed tensor: field ${b.field} needs ${pad8(n)} bytes at offset ${o}, the buffer has ${bytes.length}`);
    const copy = bytes.slice(o, o + n);
    const arr = new ctor(copy.buffer, 0, b.length);
    if (b.index === undefined) t[b.field] = arr;
    else ((t[b.field] ??= []) as Typed[])[b.index] = arr;
    o += pad8(n);
  }
  // The header's lengths must agree with its own shape and parameters (a hand-edited or corrupt header).
  try {
    validatePacked('packed tensor', t as unknown as PackedTensor);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', (e as Error).message, { cause: e });
  }
  return t as unknown as PackedTensor;
}
