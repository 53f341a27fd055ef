import { decodeFcqStream, type Kernels, LowbitError } from '@lowbit/kernels';
import { kmeans1d } from '@lowbit/solvers';
import { crc32 } from './checksum.js';
import { crossEntropyBits, entropyBits, normalizeFrequencies, RANS_PRECISION, ransDecode, ransEncode } from './entropy-coder.js';

/**
 * Fibonacci codeword quantization: weights take k-bit codes restricted to the "fibbinary" words
 * (no two adjacent 1 bits), so F(k+2) levels instead of 2^k, in exchange for fewer 1 bits and
 * fewer bit transitions in the stored stream. Levels are a uniform min-max grid or learned by
 * optimal 1-D k-means; the code stream is then entropy-coded losslessly (static rANS).
 */
export interface FcqTensor {
  kind: 'fcq';
  /** Width k of each codeword. */
  bits: number;
  shape: [number, number];
  /** The F(k+2) levels, ascending; level i is stored as fibbinaryCodes(k)[i]. */
  levels: Float32Array;
  /** Level index of each element, row-major. */
  indices: Uint8Array;
}

export type FcqLevels = 'uniform' | 'kmeans';

/** The k-bit words with no two adjacent 1 bits, ascending (F(k+2) of them). */
export function fibbinaryCodes(k: number): Uint8Array {
  if (!Number.isInteger(k) || k < 1 || k > 8) throw new LowbitError('E_ARG', `fibbinaryCodes: 1 to 8 bits, got ${k}`);
  const out: number[] = [];
  for (let c = 0; c < 1 << k; c++) if ((c & (c >> 1)) === 0) out.push(c);
  return Uint8Array.from(out);
}

/** Values used to fit k-means: every value up to this many, a regular subsample beyond (O(n log n) per level). */
const KMEANS_SAMPLE = 1 << 16;

export function quantizeFcq(data: Float32Array, shape: [number, number], o: { bits: number; levels?: FcqLevels }): FcqTensor {
  const fn = 'quantizeFcq';
  const [rows, cols] = shape;
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new LowbitError('E_SHAPE', `${fn}: shape [${rows}, ${cols}] does not match ${data.length} values`);
  }
  const k = o.bits;
  if (!Number.isInteger(k) || k < 2 || k > 8) throw new LowbitError('E_ARG', `${fn}: 2 to 8 bits, got ${k}`);
  const nl = fibbinaryCodes(k).length;
  const n = data.length;
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new LowbitError('E_NAN', `${fn}: value at [${Math.floor(i / cols)}, ${i % cols}] is ${v}`);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const levels = new Float32Array(nl);
  if (n === 0) {
    // nothing to fit: an all-zero table keeps the serialized form well defined
  } else if ((o.levels ?? 'uniform') === 'kmeans') {
    const step = Math.max(1, Math.ceil(n / KMEANS_SAMPLE));
    const sample = new Float64Array(Math.ceil(n / step));
    for (let i = 0, j = 0; i < n; i += step) sample[j++] = data[i];
    const c = kmeans1d(sample, Math.min(nl, sample.length)).centroids;
    for (let i = 0; i < nl; i++) levels[i] = c[Math.min(i, c.length - 1)];
    levels.sort();
  } else if (o.levels === undefined || o.levels === 'uniform') {
    for (let i = 0; i < nl; i++) levels[i] = lo + ((hi - lo) * i) / (nl - 1);
    levels[nl - 1] = hi;
  } else {
    throw new LowbitError('E_ARG', `${fn}: levels must be 'uniform' or 'kmeans', got ${String(o.levels)}`);
  }
  const indices = new Uint8Array(n);
  for (let i = 0; i < n; i++) indices[i] = nearestLevel(levels, data[i]);
  return { kind: 'fcq', bits: k, shape: [rows, cols], levels, indices };
}

/** Index of the nearest level (ascending table; the lower one on a tie). */
function nearestLevel(levels: Float32Array, v: number): number {
  let a = 0;
  let b = levels.length - 1;
  while (a < b) {
    const m = (a + b) >> 1;
    if (v - levels[m] > levels[m + 1] - v) a = m + 1;
    else b = m;
  }
  return a;
}

export function dequantizeFcq(t: FcqTensor): Float32Array {
  const out = new Float32Array(t.indices.length);
  for (let i = 0; i < out.length; i++) out[i] = t.levels[t.indices[i]];
  return out;
}

/** The stored k-bit fibbinary codewords, packed MSB first (the stream before entropy coding). */
export function packFcqCodes(t: FcqTensor): Uint8Array {
  const code = fibbinaryCodes(t.bits);
  const out = new Uint8Array(Math.ceil((t.indices.length * t.bits) / 8));
  let bit = 0;
  for (let i = 0; i < t.indices.length; i++) {
    const c = code[t.indices[i]];
    for (let b = t.bits - 1; b >= 0; b--, bit++) if ((c >> b) & 1) out[bit >> 3] |= 0x80 >> (bit & 7);
  }
  return out;
}

export interface FcqStats {
  elements: number;
  /** k: the fixed-width codewords as stored before entropy coding. */
  bitsPerWeightRaw: number;
  /** Everything in serializeFcq's output (header, levels, frequency table, stream, checksum), per weight. */
  bitsPerWeightCoded: number;
  /** Empirical order-0 entropy of the level indices: no lossless coder of i.i.d. symbols beats it. */
  entropyBitsPerWeight: number;
  /** Cross-entropy under the stored 12-bit frequency table: what the rANS stream approaches. */
  modelBitsPerWeight: number;
  /** Bit transitions (0→1 or 1→0 between neighbouring bits) of the k-bit stream, per weight. */
  transitionsPerWeight: number;
  /** The same levels stored as plain k-bit binary indices (same error): the baseline. */
  transitionsPerWeightBinary: number;
  onesPerWeight: number;
  onesPerWeightBinary: number;
}

function streamTransitions(codes: ArrayLike<number>, idx: Uint8Array, k: number): { transitions: number; ones: number } {
  let prev = -1;
  let transitions = 0;
  let ones = 0;
  for (let i = 0; i < idx.length; i++) {
    const c = codes[idx[i]];
    for (let b = k - 1; b >= 0; b--) {
      const v = (c >> b) & 1;
      ones += v;
      if (prev >= 0 && v !== prev) transitions++;
      prev = v;
    }
  }
  return { transitions, ones };
}

export function fcqStats(t: FcqTensor, serialized?: Uint8Array): FcqStats {
  const n = t.indices.length;
  const counts = levelCounts(t);
  const freqs = normalizeFrequencies(counts);
  const bytes = serialized ?? serializeFcq(t);
  const fib = streamTransitions(fibbinaryCodes(t.bits), t.indices, t.bits);
  const plain = streamTransitions(Array.from({ length: t.levels.length }, (_, i) => i), t.indices, t.bits);
  const per = (x: number) => (n === 0 ? 0 : x / n);
  return {
    elements: n,
    bitsPerWeightRaw: t.bits,
    bitsPerWeightCoded: per(bytes.length * 8),
    entropyBitsPerWeight: entropyBits(counts),
    modelBitsPerWeight: per(crossEntropyBits(counts, freqs)),
    transitionsPerWeight: per(fib.transitions),
    transitionsPerWeightBinary: per(plain.transitions),
    onesPerWeight: per(fib.ones),
    onesPerWeightBinary: per(plain.ones),
  };
}

function levelCounts(t: FcqTensor): Uint32Array {
  const counts = new Uint32Array(t.levels.length);
  for (let i = 0; i < t.indices.length; i++) counts[t.indices[i]]++;
  return counts;
}

const MAGIC = 0x5146424c; // "LBFQ" little-endian
const VERSION = 1;
const HEADER = 16;

/**
 * Layout (little-endian): "LBFQ", version u8, bits u8, level count u16, rows u32, cols u32,
 * levels f32[L], rANS frequencies u16[L], stream length u32, stream, CRC-32 of all before it.
 */
export function serializeFcq(t: FcqTensor): Uint8Array {
  const nl = t.levels.length;
  if (nl !== fibbinaryCodes(t.bits).length) throw new LowbitError('E_FORMAT', `serializeFcq: ${t.bits}-bit FCQ has ${fibbinaryCodes(t.bits).length} levels, got ${nl}`);
  const counts = levelCounts(t);
  const freqs = normalizeFrequencies(counts);
  if (t.indices.length === 0) freqs[0] = 1 << RANS_PRECISION; // a valid model for an empty stream
  const stream = ransEncode(t.indices, freqs);
  const size = HEADER + 6 * nl + 4 + stream.length + 4;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, VERSION);
  dv.setUint8(5, t.bits);
  dv.setUint16(6, nl, true);
  dv.setUint32(8, t.shape[0], true);
  dv.setUint32(12, t.shape[1], true);
  let p = HEADER;
  for (let i = 0; i < nl; i++, p += 4) dv.setFloat32(p, t.levels[i], true);
  for (let i = 0; i < nl; i++, p += 2) dv.setUint16(p, freqs[i], true);
  dv.setUint32(p, stream.length, true);
  p += 4;
  out.set(stream, p);
  p += stream.length;
  dv.setUint32(p, crc32(out.subarray(0, p)), true);
  return out;
}

interface FcqParts {
  bits: number;
  shape: [number, number];
  levels: Float32Array;
  freqs: Uint16Array;
  stream: Uint8Array;
}

/** Header, tables and stream of a serialized FCQ tensor, every size and the checksum verified. */
function parseFcq(fn: string, bytes: Uint8Array): FcqParts {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_ARG', `${fn}: expected a Uint8Array`);
  if (bytes.length < HEADER + 4) throw new LowbitError('E_TRUNCATED', `${fn}: ${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new LowbitError('E_FORMAT', `${fn}: magic: not an FCQ stream`);
  if (dv.getUint8(4) !== VERSION) throw new LowbitError('E_UNSUPPORTED', `${fn}: version ${dv.getUint8(4)} (this reader knows ${VERSION})`);
  const k = dv.getUint8(5);
  if (k < 2 || k > 8) throw new LowbitError('E_FORMAT', `${fn}: bits: ${k} is outside 2..8`);
  const nl = dv.getUint16(6, true);
  const expectL = fibbinaryCodes(k).length;
  if (nl !== expectL) throw new LowbitError('E_FORMAT', `${fn}: level count: ${nl}, but ${k}-bit FCQ has ${expectL}`);
  const rows = dv.getUint32(8, true);
  const cols = dv.getUint32(12, true);
  if (rows * cols > 2 ** 31 - 1) throw new LowbitError('E_FORMAT', `${fn}: shape [${rows}, ${cols}] is too large`);
  const tableEnd = HEADER + 6 * nl;
  if (bytes.length < tableEnd + 8) throw new LowbitError('E_TRUNCATED', `${fn}: ${bytes.length} bytes ends inside the level/frequency tables`);
  const streamLen = dv.getUint32(tableEnd, true);
  if (bytes.length !== tableEnd + 4 + streamLen + 4) {
    throw new LowbitError('E_TRUNCATED', `${fn}: stream length: ${streamLen} bytes declared, ${bytes.length - tableEnd - 8} present`);
  }
  const body = bytes.length - 4;
  if (crc32(bytes.subarray(0, body)) !== dv.getUint32(body, true)) throw new LowbitError('E_BAD_FILE', `${fn}: checksum mismatch (corrupted)`);
  const levels = new Float32Array(nl);
  const freqs = new Uint16Array(nl);
  for (let i = 0; i < nl; i++) levels[i] = dv.getFloat32(HEADER + 4 * i, true);
  for (let i = 0; i < nl; i++) freqs[i] = dv.getUint16(HEADER + 4 * nl + 2 * i, true);
  return { bits: k, shape: [rows, cols], levels, freqs, stream: bytes.subarray(tableEnd + 4, tableEnd + 4 + streamLen) };
}

export function deserializeFcq(bytes: Uint8Array): FcqTensor {
  const p = parseFcq('deserializeFcq', bytes);
  const indices = ransDecode(p.stream, p.freqs, p.shape[0] * p.shape[1]);
  return { kind: 'fcq', bits: p.bits, shape: p.shape, levels: p.levels, indices };
}

/** Serialized FCQ bytes → values, the rANS decoding in WASM; equal to dequantizeFcq(deserializeFcq(bytes)) bit for bit. */
export function decodeFcqWasm(k: Kernels, bytes: Uint8Array): { shape: [number, number]; values: Float32Array } {
  const p = parseFcq('decodeFcqWasm', bytes);
  return { shape: p.shape, values: decodeFcqStream(k, p.stream, p.freqs, p.levels, p.shape[0] * p.shape[1]) };
}
