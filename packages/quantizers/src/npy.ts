import { LowbitError, isLowbitError } from '@lowbit/kernels';
import { writeFileAtomic } from '@lowbit/runtime';

/**
 * NumPy `.npy` files (format versions 1.0, 2.0, 3.0; numpy/lib/format.py documents them):
 * magic "\x93NUMPY", major, minor, header length (u16 for v1, u32 for v2/v3), then a Python dict
 * literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), } padded with spaces to a
 * multiple of 64 bytes and ended by '\n', then the raw C-order data.
 */
export type NpyDtype = '<f4' | '<f8' | '<f2' | '|i1' | '|u1' | '<i2' | '<u2' | '<i4' | '<u4';
export type NpyData = Float32Array | Float64Array | Uint16Array | Int8Array | Uint8Array | Int16Array | Int32Array | Uint32Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** C-order values; '<f2' stays as raw half bits (Uint16Array). */
  data: NpyData;
}

const DTYPES: Record<NpyDtype, { bytes: number; make: (b: ArrayBuffer, n: number) => NpyData }> = {
  '<f4': { bytes: 4, make: (b, n) => new Float32Array(b, 0, n) },
  '<f8': { bytes: 8, make: (b, n) => new Float64Array(b, 0, n) },
  '<f2': { bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  '|i1': { bytes: 1, make: (b, n) => new Int8Array(b, 0, n) },
  '|u1': { bytes: 1, make: (b, n) => new Uint8Array(b, 0, n) },
  '<i2': { bytes: 2, make: (b, n) => new Int16Array(b, 0, n) },
  '<u2': { bytes: 2, make: (b, n) => new Uint16Array(b, 0, n) },
  '<i4': { bytes: 4, make: (b, n) => new Int32Array(b, 0, n) },
  '<u4': { bytes: 4, make: (b, n) => new Uint32Array(b, 0, n) },
};
const ALIASES: Record<string, NpyDtype> = { '<i1': '|i1', '<u1': '|u1', '|b1': '|u1' };
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses a .npy byte buffer; `name` (a file path) is used in error messages. */
export function parseNpy(bytes: Uint8Array, name = '.npy data'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw new LowbitError('E_BAD_FILE', `${name}: not a .npy file (magic \\x93NUMPY missing)`);
  const major = bytes[6];
  if (major < 1 || major > 3) throw new LowbitError('E_UNSUPPORTED', `${name}: .npy format version ${major}.${bytes[7]} is not supported (1.0, 2.0, 3.0 are)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) throw new LowbitError('E_TRUNCATED', `${name}: header length field is cut off`);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenBytes;
  if (bytes.length < start + hlen) throw new LowbitError('E_TRUNCATED', `${name}: header says ${hlen} bytes but the file ends at ${bytes.length}`);
  // v3 allows UTF-8 in the header (structured dtypes with non-latin1 names); v1/v2 are latin1.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + hlen));
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]*)['"]/.exec(header)?.[1];
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new LowbitError('E_BAD_FILE', `${name}: header ${JSON.stringify(header.trim())} lacks descr, fortran_order or shape`);
  }
  if (fortran === 'True') {
    throw new LowbitError('E_UNSUPPORTED', `${name}: array is in Fortran (column-major) order; save it with np.save(f, np.ascontiguousarray(a))`);
  }
  const dtype = (ALIASES[descr] ?? descr) as NpyDtype;
  if (!(dtype in DTYPES)) {
    const hint = descr.startsWith('>') ? ' (big-endian: convert with a.astype(a.dtype.newbyteorder("<")))' : '';
    throw new LowbitError('E_DTYPE', `${name}: dtype '${descr}' is not supported${hint}; supported: ${Object.keys(DTYPES).join(', ')}`);
  }
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => Number(s.replace(/L$/, '')));
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new LowbitError('E_BAD_FILE', `${name}: bad shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const { bytes: esize, make } = DTYPES[dtype];
  const offset = start + hlen;
  const need = count * esize;
  if (bytes.length - offset < need) throw new LowbitError('E_TRUNCATED', `${name}: shape (${shape.join(', ')}) of ${dtype} needs ${need} data bytes, file has ${bytes.length - offset}`);
  // Copy into a fresh, aligned buffer: the data offset need not be a multiple of the element size.
  const buf = new ArrayBuffer(need);
  new Uint8Array(buf).set(bytes.subarray(offset, offset + need));
  return { dtype, shape, data: make(buf, count) };
}

function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof Uint32Array) return '<u4';
  throw new LowbitError('E_DTYPE', 'npy: unsupported typed array');
}

/** Serializes a C-order array as .npy (version 1.0 unless the header needs more than 65535 bytes). */
export function formatNpy(data: NpyData, shape: number[], dtype: NpyDtype = dtypeOf(data)): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new LowbitError('E_SHAPE', `npy: shape (${shape.join(', ')}) needs ${count} values, got ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const major = dict.length + 11 > 65535 ? 2 : 1;
  const pre = 8 + (major === 1 ? 2 : 4);
  // Pad so the data starts on a 64-byte boundary, as numpy does (lets readers mmap aligned data).
  const hlen = Math.ceil((pre + dict.length + 1) / 64) * 64 - pre;
  const header = dict.padEnd(hlen - 1, ' ') + '\n';
  const out = new Uint8Array(pre + hlen + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (major === 1) dv.setUint16(8, hlen, true);
  else dv.setUint32(8, hlen, true);
  for (let i = 0; i < hlen; i++) out[pre + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pre + hlen);
  return out;
}

/** Node only (the fs module is imported on demand so browsers can use the parser). */
export async function readNpy(path: string): Promise<NpyArray> {
  const { readFile } = await import('node:fs/promises');
  const bytes = await readFile(path).catch((e: Error) => {
    throw new LowbitError('E_IO', `${path}: cannot read (${e.message})`);
  });
  return parseNpy(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}

/** Writes atomically (runtime's `writeFileAtomic`), so a failed write leaves no partial file. */
export async function writeNpy(path: string, data: NpyData, shape: number[]): Promise<void> {
  const bytes = formatNpy(data, shape);
  await writeFileAtomic(path, async (out) => {
    await out.write(bytes);
  }).catch((e: Error) => {
    throw isLowbitError(e) ? e : new LowbitError('E_IO', `${path}: cannot write (${e.message})`);
  });
}

/** A 2-D float32 matrix from an .npy array (f64 and f16 are not silently narrowed: say so). */
export function npyMatrix(a: NpyArray, name: string, what: string): { data: Float32Array; shape: [number, number] } {
  if (a.shape.length !== 2) throw new LowbitError('E_SHAPE', `${name}: ${what} must be 2-D, got shape (${a.shape.join(', ')})`);
  if (a.dtype === '<f4') return { data: a.data as Float32Array, shape: [a.shape[0], a.shape[1]] };
  if (a.dtype === '<f8') return { data: Float32Array.from(a.data as Float64Array), shape: [a.shape[0], a.shape[1]] };
  throw new LowbitError('E_DTYPE', `${name}: ${what} must be float32 ('<f4') or float64, got '${a.dtype}'`);
}
