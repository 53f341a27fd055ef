import { LowbitError } from '@lowbit/kernels';
import { intFromStoredFields, intToStoredFields } from './int-storage.js';
import type { PackedTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export type { PackedTensor };

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
  // INT-k parameters are stored as fp16 scales and packed zeros (int-storage.ts), not as held in memory
  const stored = 'kind' in t && t.kind === 'int' ? intToStoredFields(t) : t;
  for (const [field, v] of Object.entries(stored)) {
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

// Limits on what a header may ask for, checked before anything is allocated: no packed tensor has
// more than a handful of fields, and the only array-of-arrays field (any-precision luts) holds at
// most 8 tables.
const MAX_BLOBS = 64;
const MAX_INDEX = 16;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

function bad(msg: string): never {
  throw new LowbitError('E_BAD_FILE', `packed tensor: ${msg}`);
}

/** A field name from the header: an identifier that is not a member of Object.prototype (`__proto__`, `constructor`, `toString`…). */
function fieldName(v: unknown, where: string): string {
  if (typeof v !== 'string' || !FIELD_NAME.test(v) || v in Object.prototype) bad(`${where}: field name ${JSON.stringify(v)} is not allowed`);
  return v;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function deserializeTensor(bytes: Uint8Array): PackedTensor {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_DTYPE', 'deserializeTensor: expected a Uint8Array');
  if (bytes.length < 8) throw new LowbitError('E_TRUNCATED', `packed tensor: ${bytes.length} bytes is shorter than its 8-byte preamble`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new LowbitError('E_BAD_FILE', 'packed tensor: wrong magic (expected "LBPT")');
  const jlen = view.getUint32(4, true);
  if (8 + jlen > bytes.length) throw new LowbitError('E_TRUNCATED', `packed tensor: header of ${jlen} bytes runs past the end (${bytes.length} bytes)`);
  let h: unknown;
  try {
    h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + jlen)));
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', 'packed tensor: header is not valid JSON', { cause: e });
  }
  if (!isRecord(h)) bad('header is not a JSON object');
  const { scalars, blobs } = h;
  if (!isRecord(scalars)) bad('header field "scalars" is not an object');
  if (!Array.isArray(blobs)) bad('header field "blobs" is not an array');
  if (blobs.length > MAX_BLOBS) bad(`header lists ${blobs.length} blobs (at most ${MAX_BLOBS})`);
  const pad8 = (n: number) => Math.ceil(n / 8) * 8;
  // Attacker-chosen names go into a null-prototype map first, so no name can reach a prototype;
  // the tensor handed back is built from it with defineProperty (own data properties only).
  const fields: Record<string, unknown> = Object.create(null);
  for (const k of Object.keys(scalars)) fields[fieldName(k, 'scalars')] = scalars[k];
  const arrays = new Set<string>();
  let o = pad8(8 + jlen);
  for (let i = 0; i < blobs.length; i++) {
    const b: unknown = blobs[i];
    if (!isRecord(b)) bad(`blobs[${i}] is not an object`);
    const field = fieldName(b.field, `blobs[${i}]`);
    const where = `blobs[${i}] (field ${field})`;
    if (typeof b.dtype !== 'string' || !Object.hasOwn(DTYPES, b.dtype)) bad(`${where}: unknown dtype ${JSON.stringify(b.dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    const ctor = DTYPES[b.dtype as DtypeName];
    const length = b.length;
    if (!Number.isSafeInteger(length) || (length as number) < 0) bad(`${where}: length ${JSON.stringify(length)} is not a non-negative integer`);
    const n = (length as number) * ctor.BYTES_PER_ELEMENT;
    // The writer always pads blobs to 8 bytes, so a buffer that ends inside the padding was cut.
    if (n > bytes.length || o + pad8(n) > bytes.length) throw new LowbitError('E_TRUNCATED', `packed tensor: ${where} needs ${pad8(n)} bytes at offset ${o}, the buffer has ${bytes.length}`);
    const arr = new ctor(bytes.slice(o, o + n).buffer, 0, length as number);
    if (b.index === undefined) {
      if (field in fields) bad(`${where}: the field is given twice`);
      fields[field] = arr;
    } else {
      const index = b.index;
      if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= MAX_INDEX) bad(`${where}: index ${JSON.stringify(index)} is not an integer in [0, ${MAX_INDEX})`);
      if (field in fields && !arrays.has(field)) bad(`${where}: an indexed blob for a field that is already a scalar or a single blob`);
      arrays.add(field);
      if (!(field in fields)) fields[field] = [];
      const list = fields[field] as Typed[];
      if (list[index as number] !== undefined) bad(`${where}: index ${index} is given twice`);
      list[index as number] = arr;
    }
    o += pad8(n);
  }
  for (const f of arrays) {
    const list = fields[f] as Typed[];
    for (let i = 0; i < list.length; i++) if (list[i] === undefined) bad(`field ${f}: entry ${i} is missing (indices must run 0..${list.length - 1})`);
  }
  const t = {} as Record<string, unknown>;
  for (const k of Object.keys(fields)) Object.defineProperty(t, k, { value: fields[k], enumerable: true, writable: true, configurable: true });
  // The header's lengths must agree with its own shape and parameters (a hand-edited or corrupt header).
  try {
    if (t.kind === 'int') intFromStoredFields(t, 'packed tensor');
    validatePacked('packed tensor', t as unknown as PackedTensor);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', (e as Error).message, { cause: e });
  }
  return t as unknown as PackedTensor;
}
