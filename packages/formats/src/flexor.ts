import { decodeFlexor, type Kernels, LowbitError } from '@lowbit/kernels';
import { crc32 } from './checksum.js';
import { entropyBits } from './entropy-coder.js';

/**
 * FleXOR (Lee et al., NeurIPS 2020): 1-bit binary codes w ≈ α_r·b (b = ±1) stored "encrypted":
 * every slice of nOut signs is reconstructed from nIn < nOut stored bits through a fixed XOR-gate
 * network, out = M·in over GF(2) with M a random nOut×nIn 0/1 matrix fixed by a seed. Storage is
 * nIn/nOut bits per weight (plus one f32 scale per row); the encoder picks, per slice, the stored
 * bits whose reconstruction costs least.
 */
export interface FlexorTensor {
  kind: 'flexor';
  shape: [number, number];
  nIn: number;
  nOut: number;
  /** Seed of the XOR network (flexorNetwork). */
  seed: number;
  /** Scale of each row. */
  alphas: Float32Array;
  /** Stored bits, row after row, slice after slice, nIn bits each, LSB first within bytes. */
  stored: Uint8Array;
}

/** Exhaustive search over all 2^nIn inputs up to this many stored bits per slice. */
export const FLEXOR_EXACT_MAX_IN = 16;

function checkDims(fn: string, nIn: number, nOut: number): void {
  if (!Number.isInteger(nOut) || nOut < 1 || nOut > 32) throw new LowbitError('E_ARG', `${fn}: nOut must be 1..32, got ${nOut}`);
  if (!Number.isInteger(nIn) || nIn < 1 || nIn > nOut) throw new LowbitError('E_ARG', `${fn}: nIn must be 1..nOut (${nOut}), got ${nIn}`);
}

/**
 * The network as nIn column masks: bit j of column i is M[j][i]. Drawn from an LCG on `seed`, so
 * the matrix costs 4 bytes to store; a column never comes out all zero (its stored bit would be dead).
 */
export function flexorNetwork(nIn: number, nOut: number, seed: number): Uint32Array {
  checkDims('flexorNetwork', nIn, nOut);
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const full = nOut === 32 ? 0xffffffff : (1 << nOut) - 1;
  const cols = new Uint32Array(nIn);
  for (let i = 0; i < nIn; i++) {
    let c = 0;
    while (c === 0) {
      c = 0;
      // one random bit per output from the high bits of the LCG (its low bits are poor)
      for (let j = 0; j < nOut; j++) if (next() >>> 31) c |= 1 << j;
      c = (c & full) >>> 0;
    }
    cols[i] = c;
  }
  return cols;
}

/** Slices per row. */
export function flexorSlices(cols: number, nOut: number): number {
  return Math.ceil(cols / nOut);
}

function storedBytes(rows: number, cols: number, nIn: number, nOut: number): number {
  return Math.ceil((rows * flexorSlices(cols, nOut) * nIn) / 8);
}

/** XOR of the columns selected by the bits of x. */
function apply(colMasks: Uint32Array, x: number): number {
  let out = 0;
  for (let i = 0; i < colMasks.length; i++) if ((x >>> i) & 1) out ^= colMasks[i];
  return out >>> 0;
}

export function quantizeFlexor(data: Float32Array, shape: [number, number], o: { nIn: number; nOut: number; seed?: number }): FlexorTensor {
  const fn = 'quantizeFlexor';
  const [rows, cols] = shape;
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new LowbitError('E_SHAPE', `${fn}: shape [${rows}, ${cols}] does not match ${data.length} values`);
  }
  const { nIn, nOut } = o;
  checkDims(fn, nIn, nOut);
  const seed = (o.seed ?? 1) >>> 0;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new LowbitError('E_NAN', `${fn}: value at [${Math.floor(i / cols)}, ${i % cols}] is ${data[i]}`);
  }
  const colMasks = flexorNetwork(nIn, nOut, seed);
  const S = flexorSlices(cols, nOut);
  const stored = new Uint8Array(storedBytes(rows, cols, nIn, nOut));
  const alphas = new Float32Array(rows);
  const search = flexorSearch(colMasks, nOut, nIn <= FLEXOR_EXACT_MAX_IN ? 'exact' : 'greedy');
  const mag = new Float64Array(nOut);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let s = 0; s < S; s++) {
      const c0 = s * nOut;
      const m = Math.min(nOut, cols - c0);
      let target = 0;
      for (let j = 0; j < nOut; j++) {
        const v = j < m ? data[r * cols + c0 + j] : 0;
        // padding positions weigh nothing: any reconstruction of them is free
        mag[j] = Math.abs(v);
        if (v >= 0) target |= 1 << j;
      }
      const x = search(mag, target >>> 0);
      const out = apply(colMasks, x);
      for (let j = 0; j < m; j++) dot += (out >>> j) & 1 ? data[r * cols + c0 + j] : -data[r * cols + c0 + j];
      const bit0 = (r * S + s) * nIn;
      for (let i = 0; i < nIn; i++) if ((x >>> i) & 1) stored[(bit0 + i) >> 3] |= 1 << ((bit0 + i) & 7);
    }
    // Least-squares scale for the chosen signs; the sign choice minimises Σ|w|·[mismatch], which is
    // the squared error for any α > 0, so it need not be revisited.
    alphas[r] = cols > 0 ? Math.max(0, dot / cols) : 0;
  }
  return { kind: 'flexor', shape: [rows, cols], nIn, nOut, seed, alphas, stored };
}

type Search = (mag: Float64Array, target: number) => number;

/**
 * A slice encoder for the network `colMasks`: given |w| of the nOut positions and the wanted sign
 * bits, the stored input (nIn bits) whose output mismatches the least total |w|.
 */
export function flexorSearch(colMasks: Uint32Array, nOut: number, mode: 'exact' | 'greedy'): Search {
  if (mode === 'exact' && colMasks.length > 24) throw new LowbitError('E_ARG', `flexorSearch: exhaustive search of ${colMasks.length} stored bits is too large`);
  return mode === 'exact' ? exactSearch(colMasks, nOut) : greedySearch(colMasks, nOut);
}

/** All 2^nIn inputs; the cost of a mismatch mask is summed bytewise from per-slice tables. */
function exactSearch(colMasks: Uint32Array, nOut: number): Search {
  const nIn = colMasks.length;
  const outs = new Uint32Array(1 << nIn);
  for (let x = 1; x < outs.length; x++) outs[x] = (outs[x & (x - 1)] ^ colMasks[31 - Math.clz32(x & -x)]) >>> 0;
  const nb = Math.ceil(nOut / 8);
  const tab = new Float64Array(nb * 256);
  return (mag, target) => {
    for (let b = 0; b < nb; b++) {
      tab[b * 256] = 0;
      for (let v = 1; v < 256; v++) {
        const j = 8 * b + (31 - Math.clz32(v & -v));
        tab[b * 256 + v] = tab[b * 256 + (v & (v - 1))] + (j < nOut ? mag[j] : 0);
      }
    }
    let best = 0;
    let bc = Number.POSITIVE_INFINITY;
    for (let x = 0; x < outs.length; x++) {
      const miss = outs[x] ^ target;
      let c = tab[miss & 255];
      if (nb > 1) c += tab[256 + ((miss >>> 8) & 255)];
      if (nb > 2) c += tab[512 + ((miss >>> 16) & 255)];
      if (nb > 3) c += tab[768 + ((miss >>> 24) & 255)];
      if (c < bc) {
        bc = c;
        best = x;
      }
    }
    return best;
  };
}

/**
 * For large nIn: Gaussian elimination over GF(2) satisfies the heaviest outputs first (each row
 * kept if consistent with those before it), then single-bit flips while any lowers the cost.
 */
function greedySearch(colMasks: Uint32Array, nOut: number): Search {
  const nIn = colMasks.length;
  const rowMasks = new Uint32Array(nOut);
  for (let j = 0; j < nOut; j++) for (let i = 0; i < nIn; i++) if ((colMasks[i] >>> j) & 1) rowMasks[j] |= 1 << i;
  const order = new Int32Array(nOut);
  const basisV = new Uint32Array(32);
  const basisR = new Uint8Array(32);
  const has = new Uint8Array(32);
  const cost = (mag: Float64Array, target: number, x: number) => {
    const miss = apply(colMasks, x) ^ target;
    let c = 0;
    for (let j = 0; j < nOut; j++) if ((miss >>> j) & 1) c += mag[j];
    return c;
  };
  return (mag, target) => {
    for (let j = 0; j < nOut; j++) order[j] = j;
    order.sort((a, b) => mag[b] - mag[a] || a - b);
    has.fill(0);
    for (const j of order) {
      let v = rowMasks[j];
      let r = (target >>> j) & 1;
      for (let p = 31; p >= 0 && v; p--) {
        if ((v >>> p) & 1 && has[p]) {
          v = (v ^ basisV[p]) >>> 0;
          r ^= basisR[p];
        }
      }
      if (v) {
        const p = 31 - Math.clz32(v);
        basisV[p] = v;
        basisR[p] = r;
        has[p] = 1;
      }
    }
    let x = 0;
    for (let p = 0; p < 32; p++) {
      if (!has[p]) continue;
      let par = basisR[p];
      let lower = basisV[p] & x & ((1 << p) - 1);
      while (lower) {
        par ^= 1;
        lower &= lower - 1;
      }
      if (par) x |= 1 << p;
    }
    x >>>= 0;
    let c = cost(mag, target, x);
    for (let pass = 0; pass < 8; pass++) {
      let improved = false;
      for (let i = 0; i < nIn; i++) {
        const y = (x ^ (1 << i)) >>> 0;
        const cy = cost(mag, target, y);
        if (cy < c) {
          c = cy;
          x = y;
          improved = true;
        }
      }
      if (!improved) break;
    }
    return x;
  };
}

/** Reference decoder: every slice through the XOR network, each bit to ±α of its row. */
export function dequantizeFlexor(t: FlexorTensor): Float32Array {
  const [rows, cols] = t.shape;
  const colMasks = flexorNetwork(t.nIn, t.nOut, t.seed);
  const S = flexorSlices(cols, t.nOut);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const a = t.alphas[r];
    for (let s = 0; s < S; s++) {
      const bit0 = (r * S + s) * t.nIn;
      let o = 0;
      for (let i = 0; i < t.nIn; i++) if ((t.stored[(bit0 + i) >> 3] >> ((bit0 + i) & 7)) & 1) o ^= colMasks[i];
      const m = Math.min(t.nOut, cols - s * t.nOut);
      for (let j = 0; j < m; j++) out[r * cols + s * t.nOut + j] = (o >>> j) & 1 ? a : -a;
    }
  }
  return out;
}

/** dequantizeFlexor through the WASM kernel; equal to it bit for bit. */
export function dequantizeFlexorWasm(k: Kernels, t: FlexorTensor): Float32Array {
  return decodeFlexor(k, t.stored, t.shape[0], t.shape[1], t.nIn, t.nOut, flexorNetwork(t.nIn, t.nOut, t.seed), t.alphas);
}

/**
 * Order-0 entropy of the stored bits, in bits per weight: H(fraction of 1 bits) · nIn stored bits
 * per nOut weights. The least an entropy coder of the stored stream as i.i.d. bits could store them
 * in; the search leaves them near-uniform, so it sits close to the payload nIn / nOut. It bounds the
 * lossless re-coding of what FleXOR stores, not the error a given size allows (FleXOR is lossy).
 */
export function flexorStoredEntropy(t: FlexorTensor): number {
  const [rows, cols] = t.shape;
  const nBits = rows * flexorSlices(cols, t.nOut) * t.nIn;
  if (rows * cols === 0) return 0;
  let ones = 0;
  for (let b = 0; b < nBits; b++) ones += (t.stored[b >> 3] >> (b & 7)) & 1;
  return (entropyBits([ones, nBits - ones]) * nBits) / (rows * cols);
}

const MAGIC = 0x5846424c; // "LBFX" little-endian
const VERSION = 1;
const HEADER = 20;

/**
 * Layout (little-endian): "LBFX", version u8, nIn u8, nOut u8, 0 u8, rows u32, cols u32, seed u32,
 * alphas f32[rows], stored bits (ceil(rows·slices·nIn / 8) bytes), CRC-32 of all before it.
 */
export function serializeFlexor(t: FlexorTensor): Uint8Array {
  const [rows, cols] = t.shape;
  checkDims('serializeFlexor', t.nIn, t.nOut);
  const sb = storedBytes(rows, cols, t.nIn, t.nOut);
  if (t.stored.length !== sb || t.alphas.length !== rows) throw new LowbitError('E_SHAPE', 'serializeFlexor: stored bits or alphas do not match the shape');
  const out = new Uint8Array(HEADER + 4 * rows + sb + 4);
  const dv = new DataView(out.buffer);
  out.set([0x4c, 0x42, 0x46, 0x58], 0);
  dv.setUint8(4, VERSION);
  dv.setUint8(5, t.nIn);
  dv.setUint8(6, t.nOut);
  dv.setUint32(8, rows, true);
  dv.setUint32(12, cols, true);
  dv.setUint32(16, t.seed, true);
  for (let r = 0; r < rows; r++) dv.setFloat32(HEADER + 4 * r, t.alphas[r], true);
  out.set(t.stored, HEADER + 4 * rows);
  dv.setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

export function deserializeFlexor(bytes: Uint8Array): FlexorTensor {
  const fn = 'deserializeFlexor';
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_ARG', `${fn}: expected a Uint8Array`);
  if (bytes.length < HEADER + 4) throw new LowbitError('E_TRUNCATED', `${fn}: ${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new LowbitError('E_FORMAT', `${fn}: magic: not a FleXOR stream`);
  if (dv.getUint8(4) !== VERSION) throw new LowbitError('E_UNSUPPORTED', `${fn}: version ${dv.getUint8(4)} (this reader knows ${VERSION})`);
  const nIn = dv.getUint8(5);
  const nOut = dv.getUint8(6);
  if (nOut < 1 || nOut > 32 || nIn < 1 || nIn > nOut) throw new LowbitError('E_FORMAT', `${fn}: nIn/nOut: ${nIn}/${nOut} (need 1 <= nIn <= nOut <= 32)`);
  const rows = dv.getUint32(8, true);
  const cols = dv.getUint32(12, true);
  if (rows * cols > 2 ** 31 - 1) throw new LowbitError('E_FORMAT', `${fn}: shape [${rows}, ${cols}] is too large`);
  const sb = storedBytes(rows, cols, nIn, nOut);
  const want = HEADER + 4 * rows + sb + 4;
  if (bytes.length !== want) throw new LowbitError('E_TRUNCATED', `${fn}: byte length: [${rows}, ${cols}] at ${nIn}/${nOut} needs ${want} bytes, got ${bytes.length}`);
  if (crc32(bytes.subarray(0, want - 4)) !== dv.getUint32(want - 4, true)) throw new LowbitError('E_BAD_FILE', `${fn}: checksum mismatch (corrupted)`);
  const alphas = new Float32Array(rows);
  for (let r = 0; r < rows; r++) alphas[r] = dv.getFloat32(HEADER + 4 * r, true);
  const stored = bytes.slice(HEADER + 4 * rows, HEADER + 4 * rows + sb);
  return { kind: 'flexor', shape: [rows, cols], nIn, nOut, seed: dv.getUint32(16, true), alphas, stored };
}
