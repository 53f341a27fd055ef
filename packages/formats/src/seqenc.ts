import { decodeSeqencPlanes, type Kernels, LowbitError, type SeqencMaskArgs } from '@lowbit/kernels';
import { crc32 } from './checksum.js';
import { entropyBits, normalizeFrequencies, ransDecode, ransEncode } from './entropy-coder.js';

/**
 * Sequential encryption of sparse weights (Kwon et al., "Sequential Encryption of Sparse Neural
 * Networks Toward Optimum Representation of Irregular Sparsity"): a bit-plane of n positions, of
 * which only the kept (care) positions matter, is produced nOut bits per step by a fixed XOR-gate
 * network from nIn fresh input bits and the nS·nIn input bits of the previous nS steps (a shift
 * register). Pruned positions are don't-care, so with nIn/nOut ≈ density almost every care bit can
 * be hit; the encoder picks the inputs by Viterbi over the shift-register state and the few care
 * bits it still misses are stored as patches, which makes the code lossless. The register is
 * cleared every `block` steps, so blocks decode independently (in parallel).
 */
export interface SeqencPlane {
  /** Positions in the plane. */
  n: number;
  nIn: number;
  nOut: number;
  nS: number;
  seed: number;
  /** Steps per independently decodable block. */
  block: number;
  /** Input bits, step after step, nIn bits each, LSB first within bytes. */
  inputs: Uint8Array;
  /** Positions (ascending) whose decoded bit must be flipped. */
  patches: Uint32Array;
}

export interface SeqencOptions {
  nIn: number;
  nOut: number;
  nS: number;
  seed?: number;
  block?: number;
}

/** Largest shift-register state the Viterbi search keeps (2^16 states). */
export const SEQENC_MAX_STATE_BITS = 16;

function checkDims(fn: string, nIn: number, nOut: number, nS: number, block: number, err: 'E_ARG' | 'E_FORMAT' = 'E_ARG'): void {
  if (!Number.isInteger(nOut) || nOut < 1 || nOut > 32) throw new LowbitError(err, `${fn}: nOut must be 1..32, got ${nOut}`);
  if (!Number.isInteger(nIn) || nIn < 1 || nIn > 8) throw new LowbitError(err, `${fn}: nIn must be 1..8, got ${nIn}`);
  if (!Number.isInteger(nS) || nS < 0 || nS * nIn > SEQENC_MAX_STATE_BITS) throw new LowbitError(err, `${fn}: nS·nIn must be 0..${SEQENC_MAX_STATE_BITS}, got nS ${nS}`);
  if (!Number.isInteger(block) || block < 1 || block > 1 << 20) throw new LowbitError(err, `${fn}: block must be 1..${1 << 20} steps, got ${block}`);
}

/** Steps to cover n positions. */
export function seqencSteps(n: number, nOut: number): number {
  return Math.ceil(n / nOut);
}

/**
 * The network as (nS+1)·nIn column masks: column d·nIn + i is the nOut-bit output contribution of
 * bit i of the input d steps back. Drawn from an LCG on `seed` (4 bytes stored); no column is zero.
 */
export function seqencNetwork(nIn: number, nOut: number, nS: number, seed: number): Uint32Array {
  checkDims('seqencNetwork', nIn, nOut, nS, 1);
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  const cols = new Uint32Array((nS + 1) * nIn);
  for (let i = 0; i < cols.length; i++) {
    let c = 0;
    // high LCG bits only: the low ones have short periods
    while (c === 0) for (let j = 0; j < nOut; j++) if (next() >>> 31) c |= 1 << j;
    cols[i] = c >>> 0;
  }
  return cols;
}

function xorOf(cols: Uint32Array, off: number, bits: number, x: number): number {
  let o = 0;
  for (let i = 0; i < bits; i++) if ((x >>> i) & 1) o ^= cols[off + i];
  return o >>> 0;
}

function popcount(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** Bits of positions step·nOut .. step·nOut+nOut-1 of a 0/1 array as a mask (0 past the end). */
function stepBits(a: Uint8Array, step: number, nOut: number): number {
  let m = 0;
  const p0 = step * nOut;
  const end = Math.min(nOut, a.length - p0);
  for (let j = 0; j < end; j++) if (a[p0 + j]) m |= 1 << j;
  return m >>> 0;
}

/** The raw network output (no patches), one 0/1 byte per position. */
function runNetwork(p: SeqencPlane, cols: Uint32Array): Uint8Array {
  const out = new Uint8Array(p.n);
  const { nIn, nOut, nS } = p;
  const steps = seqencSteps(p.n, nOut);
  const stateMask = nS * nIn >= 32 ? 0xffffffff : (1 << (nS * nIn)) - 1;
  let state = 0;
  for (let t = 0; t < steps; t++) {
    if (t % p.block === 0) state = 0;
    let x = 0;
    for (let i = 0; i < nIn; i++) {
      const b = t * nIn + i;
      if ((p.inputs[b >> 3] >> (b & 7)) & 1) x |= 1 << i;
    }
    const o = xorOf(cols, 0, nIn, x) ^ xorOf(cols, nIn, nS * nIn, state);
    const end = Math.min(nOut, p.n - t * nOut);
    for (let j = 0; j < end; j++) out[t * nOut + j] = (o >>> j) & 1;
    state = ((state << nIn) | x) & stateMask;
  }
  return out;
}

/**
 * Encodes `target` (0/1 per position) where `care` is 1; returns the inputs that minimise the
 * number of mismatched care bits within each block (Viterbi, exact) and those mismatches as patches.
 */
export function encodeSeqencBits(target: Uint8Array, care: Uint8Array, o: SeqencOptions): SeqencPlane {
  const fn = 'encodeSeqencBits';
  const { nIn, nOut, nS } = o;
  const seed = (o.seed ?? 1) >>> 0;
  const block = o.block ?? 64;
  checkDims(fn, nIn, nOut, nS, block);
  if (!(target instanceof Uint8Array) || !(care instanceof Uint8Array) || target.length !== care.length) {
    throw new LowbitError('E_SHAPE', `${fn}: target and care must be Uint8Arrays of one length`);
  }
  const n = target.length;
  const cols = seqencNetwork(nIn, nOut, nS, seed);
  const X = 1 << nIn;
  const S = 1 << (nS * nIn);
  const outX = new Uint32Array(X);
  for (let x = 0; x < X; x++) outX[x] = xorOf(cols, 0, nIn, x);
  const outS = new Uint32Array(S);
  for (let s = 0; s < S; s++) outS[s] = xorOf(cols, nIn, nS * nIn, s);
  const steps = seqencSteps(n, nOut);
  const inputs = new Uint8Array(Math.ceil((steps * nIn) / 8));
  const INF = 0x7fffffff;
  let cur = new Int32Array(S);
  let nxt = new Int32Array(S);
  const bl = Math.min(block, steps);
  const bpS = new Uint32Array(bl * S);
  const bpX = new Uint8Array(bl * S);
  const chosen = new Uint8Array(bl);
  for (let b0 = 0; b0 < steps; b0 += block) {
    const len = Math.min(block, steps - b0);
    cur.fill(INF);
    cur[0] = 0;
    for (let k = 0; k < len; k++) {
      const t = b0 + k;
      const tgt = stepBits(target, t, nOut);
      const cm = stepBits(care, t, nOut);
      nxt.fill(INF);
      for (let s = 0; s < S; s++) {
        const cs = cur[s];
        if (cs === INF) continue;
        const os = outS[s] ^ tgt;
        const base = (s << nIn) & (S - 1);
        for (let x = 0; x < X; x++) {
          const c = cs + popcount((os ^ outX[x]) & cm);
          const ns = S === 1 ? 0 : base | x;
          // strict <: the first (smallest s, x) of equal-cost paths wins, so the result is deterministic
          if (c < nxt[ns]) {
            nxt[ns] = c;
            bpS[k * S + ns] = s;
            bpX[k * S + ns] = x;
          }
        }
      }
      [cur, nxt] = [nxt, cur];
    }
    let s = 0;
    for (let q = 1; q < S; q++) if (cur[q] < cur[s]) s = q;
    for (let k = len - 1; k >= 0; k--) {
      chosen[k] = bpX[k * S + s];
      s = bpS[k * S + s];
    }
    for (let k = 0; k < len; k++) {
      const b = (b0 + k) * nIn;
      for (let i = 0; i < nIn; i++) if ((chosen[k] >>> i) & 1) inputs[(b + i) >> 3] |= 1 << ((b + i) & 7);
    }
  }
  const plane: SeqencPlane = { n, nIn, nOut, nS, seed, block, inputs, patches: new Uint32Array(0) };
  const raw = runNetwork(plane, cols);
  const patches: number[] = [];
  for (let i = 0; i < n; i++) if (care[i] && raw[i] !== (target[i] ? 1 : 0)) patches.push(i);
  plane.patches = Uint32Array.from(patches);
  return plane;
}

/** Decoded bits (0/1 per position): the network output with the patches applied. */
export function decodeSeqencBits(p: SeqencPlane): Uint8Array {
  checkDims('decodeSeqencBits', p.nIn, p.nOut, p.nS, p.block);
  if (!Number.isInteger(p.n) || p.n < 0 || p.n > 2 ** 31 - 1) throw new LowbitError('E_SHAPE', `decodeSeqencBits: n: ${p.n} positions`);
  const ib = Math.ceil((seqencSteps(p.n, p.nOut) * p.nIn) / 8);
  if (p.inputs.length !== ib) throw new LowbitError('E_SHAPE', `decodeSeqencBits: inputs: ${p.inputs.length} bytes, ${p.n} positions at ${p.nIn}/${p.nOut} need ${ib}`);
  const out = runNetwork(p, seqencNetwork(p.nIn, p.nOut, p.nS, p.seed));
  for (const i of p.patches) {
    if (i >= p.n) throw new LowbitError('E_SHAPE', `decodeSeqencBits: patch position ${i} is past ${p.n} positions`);
    out[i] ^= 1;
  }
  return out;
}

/** LEB128 bytes of the gaps between ascending patch positions (the first gap from -1). */
function patchBytes(patches: Uint32Array): number[] {
  const out: number[] = [];
  let prev = -1;
  for (const p of patches) {
    let g = p - prev - 1;
    prev = p;
    while (g >= 0x80) {
      out.push((g & 0x7f) | 0x80);
      g = Math.floor(g / 128);
    }
    out.push(g);
  }
  return out;
}

/** Stored bits of one plane: inputs + patch count (32) + the LEB128 patch gaps. */
export function seqencPlaneBits(p: SeqencPlane): number {
  return 8 * p.inputs.length + 32 + 8 * patchBytes(p.patches).length;
}

/**
 * A magnitude-pruned matrix: the keep mask is a bitmap (its order-0 bound H(density) is reported
 * beside it), the kept values' bit-planes (two's-complement INT-k codes of one per-tensor scale,
 * or, with bits 32, the exact f32 bit patterns) are each sequentially encrypted with the pruned
 * positions as don't-care.
 */
export interface SeqencTensor {
  kind: 'seqenc';
  shape: [number, number];
  /** 2..16 for INT-k codes, 32 for exact f32 values. */
  bits: number;
  scale: number;
  /** Keep mask, one bit per position, LSB first. */
  mask: Uint8Array;
  planes: SeqencPlane[];
}

/**
 * Keep mask of magnitude pruning: drops the `drop` smallest |w| (the lower index first among equal
 * magnitudes) and every +0. Found through the drop-th smallest magnitude (a typed-array sort), not
 * a sort of indices: the same set, in a fraction of the time on 16M weights.
 */
function pruneMask(data: Float32Array, drop: number): Uint8Array {
  const n = data.length;
  const keep = new Uint8Array(n).fill(1);
  if (drop > 0) {
    const mag = new Float32Array(n);
    for (let i = 0; i < n; i++) mag[i] = Math.abs(data[i]);
    const t = mag.slice().sort()[drop - 1];
    let below = 0;
    for (let i = 0; i < n; i++) if (mag[i] < t) below++;
    let ties = drop - below;
    for (let i = 0; i < n; i++) {
      if (mag[i] < t) keep[i] = 0;
      else if (mag[i] === t && ties > 0) {
        keep[i] = 0;
        ties--;
      }
    }
  }
  for (let i = 0; i < n; i++) if (data[i] === 0 && !Object.is(data[i], -0)) keep[i] = 0;
  return keep;
}

export function quantizeSeqenc(data: Float32Array, shape: [number, number], o: SeqencOptions & { bits: number; sparsity?: number }): SeqencTensor {
  const fn = 'quantizeSeqenc';
  const [rows, cols] = shape;
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0 || data.length !== rows * cols) {
    throw new LowbitError('E_SHAPE', `${fn}: shape [${rows}, ${cols}] does not match ${data.length} values`);
  }
  const bits = o.bits;
  if (bits !== 32 && (!Number.isInteger(bits) || bits < 2 || bits > 16)) throw new LowbitError('E_ARG', `${fn}: bits must be 2..16 or 32, got ${bits}`);
  const sp = o.sparsity ?? 0;
  if (!(sp >= 0 && sp <= 1)) throw new LowbitError('E_ARG', `${fn}: sparsity must be in [0, 1], got ${sp}`);
  const n = data.length;
  for (let i = 0; i < n; i++) if (!Number.isFinite(data[i])) throw new LowbitError('E_NAN', `${fn}: value at [${Math.floor(i / cols)}, ${i % cols}] is ${data[i]}`);
  // magnitude pruning: drop the round(s·n) smallest |w| (index order breaks ties), and exact zeros
  const keep = pruneMask(data, Math.round(sp * n));
  let scale = 1;
  const codes = new Uint32Array(n);
  if (bits === 32) {
    const u = new Uint32Array(data.buffer, data.byteOffset, n);
    for (let i = 0; i < n; i++) if (keep[i]) codes[i] = u[i];
  } else {
    const qmax = 2 ** (bits - 1) - 1;
    let amax = 0;
    for (let i = 0; i < n; i++) if (keep[i]) amax = Math.max(amax, Math.abs(data[i]));
    scale = Math.fround(amax > 0 ? amax / qmax : 1);
    for (let i = 0; i < n; i++) if (keep[i]) codes[i] = (Math.max(-qmax, Math.min(qmax, Math.round(data[i] / scale))) >>> 0) & ((1 << bits) - 1);
  }
  const mask = new Uint8Array(Math.ceil(n / 8));
  for (let i = 0; i < n; i++) if (keep[i]) mask[i >> 3] |= 1 << (i & 7);
  const planes: SeqencPlane[] = [];
  const target = new Uint8Array(n);
  for (let b = 0; b < bits; b++) {
    for (let i = 0; i < n; i++) target[i] = (codes[i] >>> b) & 1;
    planes.push(encodeSeqencBits(target, keep, { ...o, seed: ((o.seed ?? 1) + b) >>> 0 }));
  }
  return { kind: 'seqenc', shape: [rows, cols], bits, scale, mask, planes };
}

export function dequantizeSeqenc(t: SeqencTensor): Float32Array {
  const n = t.shape[0] * t.shape[1];
  if (t.mask.length !== Math.ceil(n / 8) || t.planes.length !== t.bits || t.planes.some((p) => p.n !== n)) {
    throw new LowbitError('E_SHAPE', `dequantizeSeqenc: mask (${t.mask.length} bytes) or planes (${t.planes.length} for ${t.bits} bits) do not match the shape [${t.shape.join(', ')}]`);
  }
  const codes = new Uint32Array(n);
  t.planes.forEach((p, b) => {
    const d = decodeSeqencBits(p);
    for (let i = 0; i < n; i++) if (d[i]) codes[i] |= 1 << b;
  });
  const out = new Float32Array(n);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < n; i++) {
    if (!((t.mask[i >> 3] >> (i & 7)) & 1)) continue;
    if (t.bits === 32) u[i] = codes[i] >>> 0;
    else out[i] = ((codes[i] << (32 - t.bits)) >> (32 - t.bits)) * t.scale;
  }
  return out;
}

/** The keep mask as stored: a plain bitmap, or a static rANS stream of one 0/1 symbol per position. */
interface MaskCoding {
  mode: 0 | 1;
  /** Bytes of the mask section: the bitmap, or freqs u16[2] + stream length u32 + stream. */
  bytes: Uint8Array;
}

/**
 * The smaller of the bitmap and a binary rANS stream of the mask: rANS reaches the mask's order-0
 * entropy H(density) bits per position plus ~8 bytes, so it wins below about 45% or above 55% density.
 */
function codeMask(mask: Uint8Array, n: number): MaskCoding {
  const bits = new Uint8Array(n);
  let ones = 0;
  for (let i = 0; i < n; i++) ones += bits[i] = (mask[i >> 3] >> (i & 7)) & 1;
  if (n > 0) {
    const freqs = normalizeFrequencies([n - ones, ones]);
    const stream = ransEncode(bits, freqs);
    if (8 + stream.length < mask.length) {
      const out = new Uint8Array(8 + stream.length);
      const dv = new DataView(out.buffer);
      dv.setUint16(0, freqs[0], true);
      dv.setUint16(2, freqs[1], true);
      dv.setUint32(4, stream.length, true);
      out.set(stream, 8);
      return { mode: 1, bytes: out };
    }
  }
  return { mode: 0, bytes: mask };
}

const MAGIC = 0x5153424c; // "LBSQ" little-endian
const VERSION = 2;
const HEADER = 32;

/**
 * Layout (little-endian): "LBSQ", version u8, bits u8, nIn u8, nOut u8, nS u8, mask coding u8
 * (0 bitmap, 1 rANS), 0 u8 ×2, rows u32, cols u32, block u32, seed u32, scale f32, the mask
 * (a bitmap of ceil(n/8) bytes, or rANS frequencies u16[2], stream length u32, stream), then per
 * plane: patch count u32, patch-gap byte count u32, input bits (ceil(steps·nIn/8) bytes), LEB128
 * gaps; CRC-32 of all before it. Version 1 (still read) is version 2 with a bitmap mask.
 */
export function serializeSeqenc(t: SeqencTensor): Uint8Array {
  const [rows, cols] = t.shape;
  const n = rows * cols;
  const p0 = t.planes[0];
  if (t.planes.length !== t.bits || !p0) throw new LowbitError('E_SHAPE', `serializeSeqenc: ${t.planes.length} planes for ${t.bits} bits`);
  if (t.mask.length !== Math.ceil(n / 8)) throw new LowbitError('E_SHAPE', `serializeSeqenc: mask of ${t.mask.length} bytes for [${rows}, ${cols}]`);
  const gaps = t.planes.map((p) => patchBytes(p.patches));
  const mask = codeMask(t.mask, n);
  let size = HEADER + mask.bytes.length + 4;
  t.planes.forEach((p, b) => (size += 8 + p.inputs.length + gaps[b].length));
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  out.set([VERSION, t.bits, p0.nIn, p0.nOut, p0.nS, mask.mode], 4);
  dv.setUint32(12, rows, true);
  dv.setUint32(16, cols, true);
  dv.setUint32(20, p0.block, true);
  dv.setUint32(24, p0.seed, true);
  dv.setFloat32(28, t.scale, true);
  let at = HEADER;
  out.set(mask.bytes, at);
  at += mask.bytes.length;
  t.planes.forEach((p, b) => {
    dv.setUint32(at, p.patches.length, true);
    dv.setUint32(at + 4, gaps[b].length, true);
    out.set(p.inputs, at + 8);
    out.set(gaps[b], at + 8 + p.inputs.length);
    at += 8 + p.inputs.length + gaps[b].length;
  });
  dv.setUint32(at, crc32(out.subarray(0, at)), true);
  return out;
}

interface SeqencParts {
  shape: [number, number];
  bits: number;
  scale: number;
  mask: SeqencMaskArgs;
  /** Bytes of the mask section as stored. */
  maskBytes: number;
  planes: SeqencPlane[];
}

/** Header, mask section and planes of a serialized seqenc tensor, every size and the checksum verified. */
function parseSeqenc(fn: string, bytes: Uint8Array): SeqencParts {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_ARG', `${fn}: expected a Uint8Array`);
  if (bytes.length < HEADER + 4) throw new LowbitError('E_TRUNCATED', `${fn}: ${bytes.length} bytes is shorter than the ${HEADER}-byte header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) throw new LowbitError('E_FORMAT', `${fn}: magic: not a seqenc stream`);
  if (bytes[4] !== 1 && bytes[4] !== VERSION) throw new LowbitError('E_UNSUPPORTED', `${fn}: version ${bytes[4]} (this reader knows 1 and ${VERSION})`);
  if (crc32(bytes.subarray(0, bytes.length - 4)) !== dv.getUint32(bytes.length - 4, true)) throw new LowbitError('E_BAD_FILE', `${fn}: checksum mismatch (corrupted or truncated)`);
  const bits = bytes[5];
  if (bits !== 32 && (bits < 2 || bits > 16)) throw new LowbitError('E_FORMAT', `${fn}: bits: ${bits} (need 2..16 or 32)`);
  const [nIn, nOut, nS, mode] = [bytes[6], bytes[7], bytes[8], bytes[9]];
  if (mode > (bytes[4] === 1 ? 0 : 1)) throw new LowbitError('E_FORMAT', `${fn}: mask coding: ${mode} (0 bitmap, 1 rANS)`);
  const block = dv.getUint32(20, true);
  checkDims(fn, nIn, nOut, nS, block, 'E_FORMAT');
  const rows = dv.getUint32(12, true);
  const cols = dv.getUint32(16, true);
  const n = rows * cols;
  if (n > 2 ** 31 - 1) throw new LowbitError('E_FORMAT', `${fn}: shape [${rows}, ${cols}] is too large`);
  const seed = dv.getUint32(24, true);
  const scale = dv.getFloat32(28, true);
  if (!Number.isFinite(scale)) throw new LowbitError('E_FORMAT', `${fn}: scale is ${scale}`);
  const end = bytes.length - 4;
  const ib = Math.ceil((seqencSteps(n, nOut) * nIn) / 8);
  let mb: number;
  let mask: SeqencMaskArgs;
  if (mode === 0) {
    mb = Math.ceil(n / 8);
    if (HEADER + mb > end) throw new LowbitError('E_TRUNCATED', `${fn}: byte length: a [${rows}, ${cols}] mask bitmap needs ${mb} bytes after the header, got ${end - HEADER}`);
    mask = { bitmap: bytes.slice(HEADER, HEADER + mb) };
  } else {
    if (HEADER + 8 > end) throw new LowbitError('E_TRUNCATED', `${fn}: the mask section runs past the end`);
    const sl = dv.getUint32(HEADER + 4, true);
    if (sl > end - HEADER - 8) throw new LowbitError('E_TRUNCATED', `${fn}: mask stream length: ${sl} bytes declared, ${end - HEADER - 8} left`);
    mb = 8 + sl;
    mask = { freqs: Uint16Array.of(dv.getUint16(HEADER, true), dv.getUint16(HEADER + 2, true)), rans: bytes.slice(HEADER + 8, HEADER + mb) };
    if (mask.freqs[0] + mask.freqs[1] !== 1 << 12) throw new LowbitError('E_FORMAT', `${fn}: mask frequencies ${mask.freqs[0]} + ${mask.freqs[1]} do not sum to 4096`);
  }
  if (HEADER + mb + bits * (8 + ib) > end) throw new LowbitError('E_TRUNCATED', `${fn}: byte length: [${rows}, ${cols}] × ${bits} planes needs at least ${HEADER + mb + bits * (8 + ib) + 4} bytes, got ${bytes.length}`);
  let at = HEADER + mb;
  const planes: SeqencPlane[] = [];
  for (let b = 0; b < bits; b++) {
    if (at + 8 + ib > end) throw new LowbitError('E_TRUNCATED', `${fn}: plane ${b}: runs past the end`);
    const count = dv.getUint32(at, true);
    const gb = dv.getUint32(at + 4, true);
    if (count > n || gb > end - at - 8 - ib || count > gb) throw new LowbitError('E_FORMAT', `${fn}: plane ${b}: patch count ${count} / gap bytes ${gb} do not fit ${n} positions and the stream`);
    const inputs = bytes.slice(at + 8, at + 8 + ib);
    const patches = new Uint32Array(count);
    let q = at + 8 + ib;
    const qEnd = q + gb;
    let prev = -1;
    for (let k = 0; k < count; k++) {
      let g = 0;
      let mul = 1;
      for (;;) {
        if (q >= qEnd || mul > 2 ** 28) throw new LowbitError('E_FORMAT', `${fn}: plane ${b}: patch gap ${k} is malformed`);
        const v = bytes[q++];
        g += (v & 0x7f) * mul;
        mul *= 128;
        if (!(v & 0x80)) break;
      }
      prev += g + 1;
      if (prev >= n) throw new LowbitError('E_FORMAT', `${fn}: plane ${b}: patch position ${prev} is past ${n} positions`);
      patches[k] = prev;
    }
    if (q !== qEnd) throw new LowbitError('E_FORMAT', `${fn}: plane ${b}: ${qEnd - q} stray patch bytes`);
    planes.push({ n, nIn, nOut, nS, seed: (seed + b) >>> 0, block, inputs, patches });
    at = qEnd;
  }
  if (at !== end) throw new LowbitError('E_FORMAT', `${fn}: ${end - at} trailing bytes`);
  return { shape: [rows, cols], bits, scale, mask, maskBytes: mb, planes };
}

export function deserializeSeqenc(bytes: Uint8Array): SeqencTensor {
  const p = parseSeqenc('deserializeSeqenc', bytes);
  const n = p.shape[0] * p.shape[1];
  let mask: Uint8Array;
  if ('bitmap' in p.mask) mask = p.mask.bitmap;
  else {
    const sym = ransDecode(p.mask.rans, p.mask.freqs, n);
    mask = new Uint8Array(Math.ceil(n / 8));
    for (let i = 0; i < n; i++) mask[i >> 3] |= sym[i] << (i & 7);
  }
  return { kind: 'seqenc', shape: p.shape, bits: p.bits, scale: p.scale, mask, planes: p.planes };
}

/** Serialized seqenc bytes → values, mask, planes and values decoded in WASM; equal to dequantizeSeqenc(deserializeSeqenc(bytes)) bit for bit. */
export function decodeSeqencWasm(k: Kernels, bytes: Uint8Array): { shape: [number, number]; values: Float32Array } {
  const p = parseSeqenc('decodeSeqencWasm', bytes);
  const p0 = p.planes[0];
  const values = decodeSeqencPlanes(k, {
    n: p0.n, nIn: p0.nIn, nOut: p0.nOut, nS: p0.nS, block: p0.block, bits: p.bits, scale: p.scale, mask: p.mask,
    planes: p.planes.map((q) => ({ inputs: q.inputs, patches: q.patches, columns: seqencNetwork(q.nIn, q.nOut, q.nS, q.seed) })),
  });
  return { shape: p.shape, values };
}

export interface SeqencStats {
  elements: number;
  /** Kept fraction. */
  density: number;
  /** Everything serialized, per weight. */
  bitsPerWeight: number;
  /** The mask section as stored (bitmap or rANS), per position. */
  maskBitsPerWeight: number;
  maskCoding: 'bitmap' | 'rans';
  /** H(density): the bound for an i.i.d. pattern of this density (the mask's order-0 empirical entropy). */
  maskEntropyIid: number;
  /** H(bit | previous bit in row-major order), empirical: ≤ maskEntropyIid, lower when kept weights cluster. */
  maskEntropyOrder1: number;
  /** Value planes (inputs + patch counts + gaps), per plane position. */
  planeBitsPerPosition: number;
  /** Order-0 entropy of the kept codes, bits per kept weight (≤ bits). */
  codeEntropy: number;
  /** maskEntropyOrder1 + density · codeEntropy: the empirical bound reported against bitsPerWeight. */
  entropyBoundBitsPerWeight: number;
}

/**
 * Size accounting of a seqenc tensor against its empirical entropy bound: the keep mask at its
 * order-1 empirical entropy plus the kept codes at their order-0 entropy. The planes can go below
 * the codes' entropy only through structure the XOR network happens to reproduce, and the stored
 * mask (rANS at ≈ H(density) or a 1-bit bitmap) cannot go below order-1: tested on random and real data.
 */
export function seqencStats(t: SeqencTensor, serialized?: Uint8Array): SeqencStats {
  const bytes = serialized ?? serializeSeqenc(t);
  const parts = parseSeqenc('seqencStats', bytes);
  const n = t.shape[0] * t.shape[1];
  const ctx = new Float64Array(4);
  const codes = new Map<number, number>();
  const planeCodes = new Uint32Array(n);
  t.planes.forEach((p, b) => {
    const d = decodeSeqencBits(p);
    for (let i = 0; i < n; i++) if (d[i]) planeCodes[i] |= 1 << b;
  });
  let kept = 0;
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const m = (t.mask[i >> 3] >> (i & 7)) & 1;
    ctx[prev * 2 + m]++;
    prev = m;
    if (m) {
      kept++;
      codes.set(planeCodes[i], (codes.get(planeCodes[i]) ?? 0) + 1);
    }
  }
  const per = (x: number) => (n === 0 ? 0 : x / n);
  const order1 = per((ctx[0] + ctx[1]) * entropyBits([ctx[0], ctx[1]]) + (ctx[2] + ctx[3]) * entropyBits([ctx[2], ctx[3]]));
  const codeEntropy = entropyBits([...codes.values()]);
  const planeBits = t.planes.reduce((a, p) => a + seqencPlaneBits(p), 0);
  return {
    elements: n,
    density: per(kept),
    bitsPerWeight: per(8 * bytes.length),
    maskBitsPerWeight: per(8 * parts.maskBytes),
    maskCoding: 'bitmap' in parts.mask ? 'bitmap' : 'rans',
    maskEntropyIid: entropyBits([n - kept, kept]),
    maskEntropyOrder1: order1,
    planeBitsPerPosition: n === 0 ? 0 : planeBits / (n * t.bits),
    codeEntropy,
    entropyBoundBitsPerWeight: order1 + per(kept) * codeEntropy,
  };
}
