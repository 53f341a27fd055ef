import { decodeDpredStream, type Kernels, LowbitError } from '@lowbit/kernels';
import { crc32 } from './checksum.js';
import { entropyBits } from './entropy-coder.js';

/**
 * Per-group dynamic precision (DPRed, Delmás Lascorz et al. 2019): integer codes stored in groups of
 * `group` values along each row, every group at the two's-complement width its widest value needs
 * (0 bits for an all-zero group) after a 4-bit header holding that width. Lossless on the codes.
 */
export interface DpredTensor {
  kind: 'dpred';
  shape: [number, number];
  group: number;
  /** Per-row scale: value = code · scale (1 when the input was already integers). */
  scales: Float32Array;
  codes: Int16Array;
}

/** Header bits of a group: widths 0..15. */
export const DPRED_HEADER_BITS = 4;
const MAX_CODE = 2 ** 14 - 1;

/** Two's-complement width of v: 0 for 0, else the bits of the magnitude (|v| or −v−1) plus a sign bit. */
export function twosBits(v: number): number {
  if (v === 0) return 0;
  const m = v < 0 ? -v - 1 : v;
  return 33 - Math.clz32(m);
}

/**
 * Float weights → symmetric INT-k codes (scale = max|w| / (2^(k−1) − 1) per row, or one for the
 * whole tensor with `scale: 'tensor'`, the fixed point per layer DPRed starts from; round half to
 * even). An input that is all integers below 2^14 in magnitude is kept as is (scale 1): lossless
 * except that −0 comes back as +0.
 */
export function quantizeDpred(data: Float32Array, shape: [number, number], o: { bits?: number; group?: number; scale?: 'row' | 'tensor' } = {}): DpredTensor {
  const fn = 'quantizeDpred';
  const [rows, cols] = shape;
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new LowbitError('E_SHAPE', `${fn}: shape [${rows}, ${cols}] does not match ${data.length} values`);
  }
  const group = o.group ?? 16;
  if (!Number.isInteger(group) || group < 1 || group > 65535) throw new LowbitError('E_ARG', `${fn}: group must be 1..65535, got ${group}`);
  const bits = o.bits ?? 8;
  if (!Number.isInteger(bits) || bits < 2 || bits > 15) throw new LowbitError('E_ARG', `${fn}: bits must be 2..15, got ${bits}`);
  const scaleMode = o.scale ?? 'row';
  if (scaleMode !== 'row' && scaleMode !== 'tensor') throw new LowbitError('E_ARG', `${fn}: scale must be 'row' or 'tensor', got ${String(scaleMode)}`);
  let integral = true;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isFinite(v)) throw new LowbitError('E_NAN', `${fn}: value at [${Math.floor(i / cols)}, ${i % cols}] is ${v}`);
    if (integral && (!Number.isInteger(v) || Math.abs(v) > MAX_CODE)) integral = false;
  }
  const codes = new Int16Array(data.length);
  const scales = new Float32Array(rows).fill(1);
  if (integral) {
    codes.set(data);
  } else {
    const qmax = 2 ** (bits - 1) - 1;
    let all = 0;
    for (let i = 0; i < data.length; i++) all = Math.max(all, Math.abs(data[i]));
    for (let r = 0; r < rows; r++) {
      let m = 0;
      for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(data[r * cols + c]));
      const s = Math.fround((scaleMode === 'tensor' ? all : m) / qmax);
      scales[r] = s;
      for (let c = 0; c < cols; c++) {
        const x = s > 0 ? data[r * cols + c] / s : 0;
        let q = Math.round(x);
        if (q - x === 0.5 && q % 2 !== 0) q -= 1; // half to even
        codes[r * cols + c] = Math.max(-qmax, Math.min(qmax, q));
      }
    }
  }
  return { kind: 'dpred', shape: [rows, cols], group, scales, codes };
}

export function dequantizeDpred(t: DpredTensor): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = t.codes[r * cols + c] * t.scales[r];
  return out;
}

/** Stored bits of one group of `count` values at `width` bits: the width header plus the values. */
export function dpredGroupBits(width: number, count: number): number {
  return DPRED_HEADER_BITS + width * count;
}

/** Bits of the group stream: header plus width × values per group. */
export function dpredStreamBits(t: DpredTensor): { bits: number; groups: number; widthSum: number } {
  const [rows, cols] = t.shape;
  let bits = 0;
  let groups = 0;
  let widthSum = 0;
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += t.group) {
      const n = Math.min(t.group, cols - c0);
      let p = 0;
      for (let c = c0; c < c0 + n; c++) p = Math.max(p, twosBits(t.codes[r * cols + c]));
      bits += dpredGroupBits(p, n);
      widthSum += p;
      groups++;
    }
  }
  return { bits, groups, widthSum };
}

/**
 * The empirical entropy of the two-part model DPRed stores, in bits: the order-0 entropy of the
 * group widths once per group, plus that of each code given its group's width. It is a lower bound
 * of the group stream (4 header bits ≥ H(width); a p-bit code ≥ H(code | width p)) and of any coder
 * that sends a group's width and then its codes from a per-width table.
 */
export function dpredEntropyBits(t: DpredTensor): number {
  const [rows, cols] = t.shape;
  const widthCounts = new Float64Array(16);
  const byWidth = Array.from({ length: 16 }, () => new Map<number, number>());
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += t.group) {
      const n = Math.min(t.group, cols - c0);
      let p = 0;
      for (let c = c0; c < c0 + n; c++) p = Math.max(p, twosBits(t.codes[r * cols + c]));
      widthCounts[p]++;
      const m = byWidth[p];
      for (let c = c0; c < c0 + n; c++) m.set(t.codes[r * cols + c], (m.get(t.codes[r * cols + c]) ?? 0) + 1);
    }
  }
  let groups = 0;
  for (const w of widthCounts) groups += w;
  let bits = groups * entropyBits(widthCounts);
  for (const m of byWidth) {
    const counts = [...m.values()];
    bits += counts.reduce((a, b) => a + b, 0) * entropyBits(counts);
  }
  return bits;
}

const MAGIC = 0x5044424c; // "LBDP" little-endian
const VERSION = 1;
const HEADER = 24;

/**
 * Layout (little-endian): "LBDP", version u8, 0 u8, group u16, rows u32, cols u32, stream bytes u32,
 * 0 u32, scales f32[rows], the group stream (per group: 4-bit width p, then p-bit two's-complement
 * values; bits LSB first), CRC-32 of all before it.
 */
export function serializeDpred(t: DpredTensor): Uint8Array {
  const [rows, cols] = t.shape;
  const { bits } = dpredStreamBits(t);
  const sb = Math.ceil(bits / 8);
  const out = new Uint8Array(HEADER + 4 * rows + sb + 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint8(4, VERSION);
  dv.setUint16(6, t.group, true);
  dv.setUint32(8, rows, true);
  dv.setUint32(12, cols, true);
  dv.setUint32(16, sb, true);
  for (let r = 0; r < rows; r++) dv.setFloat32(HEADER + 4 * r, t.scales[r], true);
  const s = out.subarray(HEADER + 4 * rows, HEADER + 4 * rows + sb);
  let pos = 0;
  const put = (v: number, w: number) => {
    for (let b = 0; b < w; b++, pos++) if ((v >>> b) & 1) s[pos >> 3] |= 1 << (pos & 7);
  };
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += t.group) {
      const n = Math.min(t.group, cols - c0);
      let p = 0;
      for (let c = c0; c < c0 + n; c++) p = Math.max(p, twosBits(t.codes[r * cols + c]));
      put(p, DPRED_HEADER_BITS);
      for (let c = c0; c < c0 + n; c++) put(t.codes[r * cols + c], p);
    }
  }
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

interface DpredParts {
  shape: [number, number];
  group: number;
  scales: Float32Array;
  stream: Uint8Array;
}

/** Header, scales and group stream of a serialized DPRed tensor, every size and the checksum verified. */
function parseDpred(fn: string, bytes: Uint8Array): DpredParts {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_ARG', `${fn}: expected a Uint8Array`);
  if (bytes.length < HEADER + 4) throw new LowbitError('E_TRUNCATED', `${fn}: ${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new LowbitError('E_FORMAT', `${fn}: magic: not a DPRed stream`);
  if (dv.getUint8(4) !== VERSION) throw new LowbitError('E_UNSUPPORTED', `${fn}: version ${dv.getUint8(4)} (this reader knows ${VERSION})`);
  const group = dv.getUint16(6, true);
  if (group < 1) throw new LowbitError('E_FORMAT', `${fn}: group: 0`);
  const rows = dv.getUint32(8, true);
  const cols = dv.getUint32(12, true);
  const sb = dv.getUint32(16, true);
  const want = HEADER + 4 * rows + sb + 4;
  if (bytes.length !== want) throw new LowbitError('E_TRUNCATED', `${fn}: byte length: ${rows} rows and a ${sb}-byte stream need ${want} bytes, got ${bytes.length}`);
  // every group holds at least its 4-bit header, so the stream bounds the element count
  const groups = rows * Math.ceil(cols / group);
  if (groups * DPRED_HEADER_BITS > sb * 8 || rows * cols > 2 ** 31 - 1) throw new LowbitError('E_FORMAT', `${fn}: shape [${rows}, ${cols}] cannot fit in a ${sb}-byte stream`);
  if (crc32(bytes.subarray(0, want - 4)) !== dv.getUint32(want - 4, true)) throw new LowbitError('E_BAD_FILE', `${fn}: checksum mismatch (corrupted)`);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    scales[r] = dv.getFloat32(HEADER + 4 * r, true);
    // a NaN/Inf scale would make NaNs whose sign bits WebAssembly leaves to the CPU; no encoder writes one
    if (!Number.isFinite(scales[r])) throw new LowbitError('E_FORMAT', `${fn}: scale of row ${r} is ${scales[r]}`);
  }
  return { shape: [rows, cols], group, scales, stream: bytes.subarray(HEADER + 4 * rows, HEADER + 4 * rows + sb) };
}

export function deserializeDpred(bytes: Uint8Array): DpredTensor {
  const fn = 'deserializeDpred';
  const { shape, group, scales, stream: s } = parseDpred(fn, bytes);
  const [rows, cols] = shape;
  const limit = s.length * 8;
  let pos = 0;
  const get = (w: number) => {
    if (pos + w > limit) throw new LowbitError('E_TRUNCATED', `${fn}: group stream ends at bit ${limit}, needs ${pos + w}`);
    let v = 0;
    for (let b = 0; b < w; b++, pos++) v |= ((s[pos >> 3] >> (pos & 7)) & 1) << b;
    return v;
  };
  const codes = new Int16Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c0 = 0; c0 < cols; c0 += group) {
      const n = Math.min(group, cols - c0);
      const p = get(DPRED_HEADER_BITS);
      for (let c = c0; c < c0 + n; c++) {
        const u = get(p);
        codes[r * cols + c] = p > 0 && (u >>> (p - 1)) & 1 ? u - (1 << p) : u;
      }
    }
  }
  if (limit - pos >= 8) throw new LowbitError('E_FORMAT', `${fn}: ${limit - pos} stream bits left over`);
  return { kind: 'dpred', shape: [rows, cols], group, scales, codes };
}

/** Serialized DPRed bytes → values, the group stream decoded in WASM; equal to dequantizeDpred(deserializeDpred(bytes)) bit for bit. */
export function decodeDpredWasm(k: Kernels, bytes: Uint8Array): { shape: [number, number]; values: Float32Array } {
  const p = parseDpred('decodeDpredWasm', bytes);
  return { shape: p.shape, values: decodeDpredStream(k, p.stream, p.shape[0], p.shape[1], p.group, p.scales) };
}
