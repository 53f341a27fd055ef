// llama.cpp's legacy block formats (ggml-common.h) and their reference quantizers
// (ggml-quants.c `quantize_row_*_ref`): lowbit's files must equal llama.cpp's bit for bit, so the
// arithmetic below is done in f32 (Math.fround) with C's rounding rules (roundf = half away from
// zero, (int8_t) cast = truncation).
import { GGML_BLOCK_BYTES, GGML_BLOCK_SIZE, LowbitError } from '@lowbit/kernels';
import { type GgmlTensorType, TENSOR_TYPES, type TensorType } from './ggml-types.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from './half.js';
import { dequantizeK, dequantizeMxfp4, quantizeRowK, quantizeRowMxfp4 } from './ggml-kquants.js';

const fr = Math.fround;
const QK = GGML_BLOCK_SIZE;
const { q8_0: Q8_0_BYTES, q4_0: Q4_0_BYTES, q4_1: Q4_1_BYTES } = GGML_BLOCK_BYTES;
const { Q5_0: { blockBytes: Q5_0_BYTES }, Q5_1: { blockBytes: Q5_1_BYTES }, IQ4_NL: { blockBytes: IQ4_NL_BYTES } } = TENSOR_TYPES;

/** IQ4_NL's 16 levels (ggml-common.h kvalues_iq4nl): w = d·level. */
export const IQ4_NL_LEVELS: readonly number[] = Object.freeze([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

/** C roundf: halves go away from zero (Math.round sends -2.5 to -2). */
function roundf(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** The value of largest magnitude among x[at..at+32) (the first of equals), as ggml's Q4_0 / Q5_0 find it. */
function signedAbsMax(x: Float32Array, at: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j];
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** min and max of x[at..at+32). */
function minMax(x: Float32Array, at: number): [number, number] {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < QK; j++) {
    const v = x[at + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

/** block_q8_0 { f16 d; i8 qs[32] }: d = amax/127, q = roundf(x/d). */
export function quantizeRowQ8_0(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * Q8_0_BYTES;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[b * QK + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(o + 2 + j, roundf(fr(x[b * QK + j] * id)));
  }
}

/** block_q4_0 { f16 d; u8 qs[16] }: d = (signed absmax)/−8, byte j = q[j] | q[j+16] << 4. */
export function quantizeRowQ4_0(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * Q4_0_BYTES;
    const max = signedAbsMax(x, b * QK);
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(x[b * QK + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[b * QK + 16 + j] * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
}

/** block_q4_1 { f16 d; f16 m; u8 qs[16] }: d = (max−min)/15, m = min, q = trunc((x−m)/d + 0.5). */
export function quantizeRowQ4_1(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * Q4_1_BYTES;
    const [min, max] = minMax(x, b * QK);
    const d = fr((max - min) / 15);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    view.setUint16(o + 2, f32ToF16(min), true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(fr(fr(fr(x[b * QK + j] - min) * id) + 0.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(fr(x[b * QK + 16 + j] - min) * id) + 0.5)));
      out[o + 4 + j] = q0 | (q1 << 4);
    }
  }
}

/**
 * block_q5_0 { f16 d; u8 qh[4]; u8 qs[16] }: Q4_0's rule with 5 bits, d = (signed absmax)/−16,
 * q = min(31, trunc(x/d + 16.5)); the low nibbles as Q4_0's, bit 4 of element j in bit j of qh.
 */
export function quantizeRowQ5_0(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const q = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * Q5_0_BYTES;
    const max = signedAbsMax(x, b * QK);
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < QK; j++) q[j] = Math.min(31, Math.trunc(fr(fr(x[b * QK + j] * id) + 16.5)));
    storeQ5Codes(out, o + 2, o + 6, q);
  }
}

/**
 * block_q5_1 { f16 d; f16 m; u8 qh[4]; u8 qs[16] }: d = (max−min)/31, m = min, q = (u8)((x−m)/d + 0.5)
 * (no clamp, as in C: a 32 keeps only its low five bits).
 */
export function quantizeRowQ5_1(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const q = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * Q5_1_BYTES;
    const [min, max] = minMax(x, b * QK);
    const d = fr((max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    view.setUint16(o, f32ToF16(d), true);
    view.setUint16(o + 2, f32ToF16(min), true);
    for (let j = 0; j < QK; j++) q[j] = Math.trunc(fr(fr(fr(x[b * QK + j] - min) * id) + 0.5));
    storeQ5Codes(out, o + 4, o + 8, q);
  }
}

/** ggml's best_index_int8: the index of the level nearest x (ties to the upper one) in ascending `levels`. */
function nearestLevel(levels: readonly number[], x: number): number {
  const n = levels.length;
  if (x <= levels[0]) return 0;
  if (x >= levels[n - 1]) return n - 1;
  let lo = 0;
  let hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < levels[mid]) hi = mid;
    else lo = mid;
  }
  return fr(x - levels[hi - 1]) < fr(levels[hi] - x) ? hi - 1 : hi;
}

/** The IQ4_NL scale llama-quantize picks for one block of 32 (quantize_iq4_nl without importance weights). */
function iq4nlScale(xb: Float32Array, max: number): number {
  const values = IQ4_NL_LEVELS;
  const ntry = 7;
  // sums over the block with each weight's x² as importance
  const sums = (id: number): [number, number] => {
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < QK; j++) {
      const q = values[nearestLevel(values, fr(id * xb[j]))];
      const w = fr(xb[j] * xb[j]);
      sumqx = fr(sumqx + fr(fr(w * q) * xb[j]));
      sumq2 = fr(sumq2 + fr(fr(w * q) * q));
    }
    return [sumqx, sumq2];
  };
  let d = fr(-max / values[0]);
  let [sumqx, sumq2] = sums(fr(1 / d));
  d = fr(sumqx / sumq2);
  let best = fr(d * sumqx);
  for (let itry = -ntry; itry <= ntry; itry++) {
    [sumqx, sumq2] = sums(fr((itry + values[0]) / max));
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      d = fr(sumqx / sumq2);
      best = fr(d * sumqx);
    }
  }
  return d;
}

/**
 * block_iq4_nl { f16 d; u8 qs[16] } as llama-quantize writes it (ggml's quantize_iq4_nl without
 * importance weights: each weight x², 7 tries either side; quantize_row_iq4_nl_ref does no search): the
 * least-squares scale for the nearest levels at d = max/127, then the best of the scales max/(t − 127)
 * for t = −7..7, the codes taken again at the one kept.
 */
export function quantizeRowIq4Nl(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const L = new Uint8Array(QK);
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * IQ4_NL_BYTES;
    const xb = x.subarray(b * QK, (b + 1) * QK);
    const max = signedAbsMax(x, b * QK);
    // blocks whose absmax is below 1e-15 keep d = 0: every code then is the level nearest 0
    const d = Math.abs(max) < fr(1e-15) ? 0 : iq4nlScale(xb, max);
    view.setUint16(o, f32ToF16(d), true);
    const id = d ? fr(1 / d) : 0;
    for (let j = 0; j < QK; j++) L[j] = nearestLevel(IQ4_NL_LEVELS, fr(id * xb[j]));
    for (let j = 0; j < 16; j++) out[o + 2 + j] = L[j] | (L[j + 16] << 4);
  }
}

/**
 * q[0..32)'s low five bits as a Q5_0 / Q5_1 block's codes: nibbles at `qs` (element j low, j + 16
 * high, as Q4_0's), bit 4 of element j in bit j of the u32 at `qh`. The inverse of q5Codes.
 */
export function storeQ5Codes(out: Uint8Array, qh: number, qs: number, q: ArrayLike<number>): void {
  let h = 0;
  for (let j = 0; j < 16; j++) {
    out[qs + j] = (q[j] & 15) | ((q[j + 16] & 15) << 4);
    h |= (((q[j] >> 4) & 1) << j) | (((q[j + 16] >> 4) & 1) << (j + 16));
  }
  out[qh] = h & 255;
  out[qh + 1] = (h >>> 8) & 255;
  out[qh + 2] = (h >>> 16) & 255;
  out[qh + 3] = h >>> 24;
}

/** The 5-bit codes of a Q5_0 / Q5_1 block at `o` (codes at `qs`, high bits at `qh`) into q[0..32). */
export function q5Codes(src: Uint8Array, qh: number, qs: number, q: Uint8Array): void {
  const h = src[qh] | (src[qh + 1] << 8) | (src[qh + 2] << 16) | (src[qh + 3] << 24);
  for (let j = 0; j < 16; j++) {
    q[j] = (src[qs + j] & 15) | (((h >>> j) & 1) << 4);
    q[j + 16] = (src[qs + j] >> 4) | (((h >>> (j + 16)) & 1) << 4);
  }
}

/**
 * Q5_0 / Q5_1 / IQ4_NL blocks of a [rows, cols] matrix as Q8_0 blocks holding the same values: the
 * same f16 d with int8 codes q − 16 (Q5_0), q (Q5_1) or the IQ4_NL level; Q5_1's m per block comes
 * back apart ([rows, cols/32] f32, exact: an f16), for the Q8_0 kernels' group term (linear.ts).
 */
export function q8BlocksOf(type: 'Q5_0' | 'Q5_1' | 'IQ4_NL', src: Uint8Array, rows: number, cols: number): { q8: Uint8Array; m: Float32Array | null } {
  const n = (rows * cols) / QK;
  const per = TENSOR_TYPES[type].blockBytes;
  const q8 = new Uint8Array(n * Q8_0_BYTES);
  const m = type === 'Q5_1' ? new Float32Array(n) : null;
  const q = new Uint8Array(QK);
  for (let b = 0; b < n; b++) {
    const o = b * per;
    const w = b * Q8_0_BYTES;
    q8[w] = src[o];
    q8[w + 1] = src[o + 1];
    if (type === 'IQ4_NL') {
      for (let j = 0; j < 16; j++) {
        q8[w + 2 + j] = IQ4_NL_LEVELS[src[o + 2 + j] & 15] & 0xff;
        q8[w + 18 + j] = IQ4_NL_LEVELS[src[o + 2 + j] >> 4] & 0xff;
      }
      continue;
    }
    const q51 = type === 'Q5_1';
    if (m) m[b] = f16ToF32(src[o + 2] | (src[o + 3] << 8));
    q5Codes(src, o + (q51 ? 4 : 2), o + (q51 ? 8 : 6), q);
    for (let j = 0; j < QK; j++) q8[w + 2 + j] = (q51 ? q[j] : q[j] - 16) & 0xff;
  }
  return { q8, m };
}

/**
 * Q5_1 blocks (d·q + m) as Q5_0 blocks (d·(q − 16): the same d, qh and qs) and a term per block,
 * m + 16·d in f32, for the kernels' Q5_0 tiles plus a group term; null where some m does not come back
 * exactly as term − 16·d (the stored blocks must be recoverable byte for byte), the Q8_0 form then.
 */
export function q5TilesOfQ5_1(src: Uint8Array, rows: number, cols: number): { q5: Uint8Array; term: Float32Array } | null {
  const n = (rows * cols) / QK;
  const q5 = new Uint8Array(n * Q5_0_BYTES);
  const term = new Float32Array(n);
  for (let b = 0; b < n; b++) {
    const o = b * Q5_1_BYTES;
    const d = f16ToF32(src[o] | (src[o + 1] << 8));
    const m = f16ToF32(src[o + 2] | (src[o + 3] << 8));
    term[b] = m + 16 * d;
    if (fr(term[b] - 16 * d) !== m) return null;
    q5[b * Q5_0_BYTES] = src[o];
    q5[b * Q5_0_BYTES + 1] = src[o + 1];
    q5.set(src.subarray(o + 4, o + Q5_1_BYTES), b * Q5_0_BYTES + 2);
  }
  return { q5, term };
}

/** The inverse of q5TilesOfQ5_1: the Q5_1 blocks back, byte for byte. */
export function q5_1FromTiles(q5: Uint8Array, term: Float32Array, rows: number, cols: number): Uint8Array {
  const n = (rows * cols) / QK;
  const out = new Uint8Array(n * Q5_1_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < n; b++) {
    const o = b * Q5_1_BYTES;
    out[o] = q5[b * Q5_0_BYTES];
    out[o + 1] = q5[b * Q5_0_BYTES + 1];
    const d = f16ToF32(out[o] | (out[o + 1] << 8));
    view.setUint16(o + 2, f32ToF16(fr(term[b] - 16 * d)), true);
    out.set(q5.subarray(b * Q5_0_BYTES + 2, (b + 1) * Q5_0_BYTES), o + 4);
  }
  return out;
}

/** The inverse of q8BlocksOf: the stored blocks back from their Q8_0 form (and Q5_1's m), byte for byte. */
export function blocksFromQ8(type: 'Q5_0' | 'Q5_1' | 'IQ4_NL', q8: Uint8Array, m: Float32Array | null, rows: number, cols: number): Uint8Array {
  const n = (rows * cols) / QK;
  const per = TENSOR_TYPES[type].blockBytes;
  const out = new Uint8Array(n * per);
  const view = new DataView(out.buffer);
  const level = new Map(IQ4_NL_LEVELS.map((v, i) => [v & 0xff, i]));
  const q = new Uint8Array(QK);
  for (let b = 0; b < n; b++) {
    const o = b * per;
    const w = b * Q8_0_BYTES;
    out[o] = q8[w];
    out[o + 1] = q8[w + 1];
    if (type === 'IQ4_NL') {
      for (let j = 0; j < 16; j++) out[o + 2 + j] = (level.get(q8[w + 2 + j]) ?? 0) | ((level.get(q8[w + 18 + j]) ?? 0) << 4);
      continue;
    }
    const q51 = type === 'Q5_1';
    if (q51) view.setUint16(o + 2, f32ToF16((m as Float32Array)[b]), true);
    // int8 codes back to 5-bit ones (Q5_0's less 16)
    for (let j = 0; j < QK; j++) q[j] = ((q8[w + 2 + j] << 24) >> 24) + (q51 ? 0 : 16);
    storeQ5Codes(out, o + (q51 ? 4 : 2), o + (q51 ? 8 : 6), q);
  }
  return out;
}

// Whole F32/F16/BF16 tensors decode through typed-array views where the bytes are aligned (host byte
// order: little-endian wherever the WASM kernels run, as the kernels' uploads assume), F16 through a
// 65536-entry table of f16ToF32: the per-element DataView reads and bit arithmetic were most of the
// CPU time of loading a 1B-class F16 model (~70 s). Unaligned bytes take the DataView loops.
let F16_TABLE: Float32Array | null = null;
function f16Table(): Float32Array {
  if (!F16_TABLE) {
    F16_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) F16_TABLE[h] = f16ToF32(h);
  }
  return F16_TABLE;
}

function halfRun(table: Float32Array, h: Uint16Array, out: Float32Array, outOffset: number): void {
  for (let i = 0; i < h.length; i++) out[outOffset + i] = table[h[i]];
}

/** Dequantizes `n` values of `type` starting at byte `offset` of `src` into `out[outOffset..]`. */
export function dequantize(type: TensorType, src: Uint8Array, offset: number, n: number, out: Float32Array, outOffset = 0): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (type) {
    case 'F32':
      if ((src.byteOffset + offset) % 4 === 0) return out.set(new Float32Array(src.buffer, src.byteOffset + offset, n), outOffset);
      for (let i = 0; i < n; i++) out[outOffset + i] = view.getFloat32(offset + 4 * i, true);
      return;
    case 'F16':
      if ((src.byteOffset + offset) % 2 === 0) return halfRun(f16Table(), new Uint16Array(src.buffer, src.byteOffset + offset, n), out, outOffset);
      for (let i = 0; i < n; i++) out[outOffset + i] = f16ToF32(view.getUint16(offset + 2 * i, true));
      return;
    case 'BF16':
      if ((src.byteOffset + offset) % 2 === 0 && (out.byteOffset + 4 * outOffset) % 4 === 0) {
        // bf16 is the top half of the f32's bits (bf16ToF32): shifted into place, bit for bit
        const h = new Uint16Array(src.buffer, src.byteOffset + offset, n);
        const o = new Uint32Array(out.buffer, out.byteOffset + 4 * outOffset, n);
        for (let i = 0; i < n; i++) o[i] = h[i] << 16;
        return;
      }
      for (let i = 0; i < n; i++) out[outOffset + i] = bf16ToF32(view.getUint16(offset + 2 * i, true));
      return;
    case 'Q8_0':
      for (let b = 0; b < n / QK; b++) {
        const o = offset + b * Q8_0_BYTES;
        const d = f16ToF32(view.getUint16(o, true));
        for (let j = 0; j < QK; j++) out[outOffset + b * QK + j] = fr(view.getInt8(o + 2 + j) * d);
      }
      return;
    case 'Q4_0':
    case 'Q4_1': {
      const q41 = type === 'Q4_1';
      const bytes = q41 ? Q4_1_BYTES : Q4_0_BYTES;
      for (let b = 0; b < n / QK; b++) {
        const o = offset + b * bytes;
        const d = f16ToF32(view.getUint16(o, true));
        const m = q41 ? f16ToF32(view.getUint16(o + 2, true)) : 0;
        const qs = o + (q41 ? 4 : 2);
        const base = outOffset + b * QK;
        for (let j = 0; j < 16; j++) {
          const byte = src[qs + j];
          if (q41) {
            out[base + j] = fr(fr((byte & 15) * d) + m);
            out[base + j + 16] = fr(fr((byte >> 4) * d) + m);
          } else {
            out[base + j] = fr(((byte & 15) - 8) * d);
            out[base + j + 16] = fr(((byte >> 4) - 8) * d);
          }
        }
      }
      return;
    }
    case 'Q5_0':
    case 'Q5_1': {
      const q51 = type === 'Q5_1';
      const bytes = q51 ? Q5_1_BYTES : Q5_0_BYTES;
      const q = new Uint8Array(QK);
      for (let b = 0; b < n / QK; b++) {
        const o = offset + b * bytes;
        const d = f16ToF32(view.getUint16(o, true));
        const m = q51 ? f16ToF32(view.getUint16(o + 2, true)) : 0;
        q5Codes(src, o + (q51 ? 4 : 2), o + (q51 ? 8 : 6), q);
        const base = outOffset + b * QK;
        for (let j = 0; j < QK; j++) out[base + j] = q51 ? fr(fr(q[j] * d) + m) : fr((q[j] - 16) * d);
      }
      return;
    }
    case 'IQ4_NL':
      for (let b = 0; b < n / QK; b++) {
        const o = offset + b * IQ4_NL_BYTES;
        const d = f16ToF32(view.getUint16(o, true));
        const base = outOffset + b * QK;
        for (let j = 0; j < 16; j++) {
          out[base + j] = fr(d * IQ4_NL_LEVELS[src[o + 2 + j] & 15]);
          out[base + j + 16] = fr(d * IQ4_NL_LEVELS[src[o + 2 + j] >> 4]);
        }
      }
      return;
    case 'Q2_K':
    case 'Q3_K':
    case 'Q4_K':
    case 'Q5_K':
    case 'Q6_K':
    case 'Q8_K':
      return dequantizeK(type, src, offset, checkWhole(type, n, 256), out, outOffset);
    case 'MXFP4':
      return dequantizeMxfp4(src, offset, checkWhole(type, n, 32), out, outOffset);
    default:
      // lowbit's packed types (LB_INT*, LB_MX*) are whole matrices with per-tensor parameters
      throw new LowbitError('E_UNSUPPORTED', `tensor type ${type} has no element-wise decoding; it loads only as a linear layer`);
  }
}

/** Blocks in `n` values, which must be whole blocks (a K-quant row of 64 is a format error, not a partial block). */
function checkWhole(type: TensorType, n: number, block: number): number {
  if (n % block !== 0) throw new LowbitError('E_SHAPE', `tensor type ${type}: ${n} values are not whole ${block}-value blocks`);
  return n / block;
}

/** A whole tensor's values as f32 (small tensors: norms, embeddings rows, tests). */
export function toF32(type: TensorType, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n);
  dequantize(type, bytes, 0, n, out);
  return out;
}

/** Encodes f32 values as `type`; `rowLength` must be a multiple of 32 for block types. */
export function fromF32(type: TensorType, x: Float32Array, rowLength: number, where = 'tensor'): Uint8Array {
  const geo = TENSOR_TYPES[type as GgmlTensorType];
  if (!geo) throw new LowbitError('E_UNSUPPORTED', `${where}: fromF32 encodes ggml types only, not ${type}`);
  const { blockSize, blockBytes } = geo;
  if (rowLength % blockSize !== 0 || x.length % blockSize !== 0) {
    throw new LowbitError('E_SHAPE', `${where}: row length ${rowLength} is not a multiple of the ${type} block size ${blockSize}`);
  }
  const out = new Uint8Array((x.length / blockSize) * blockBytes);
  const view = new DataView(out.buffer);
  switch (type) {
    case 'F32':
      out.set(new Uint8Array(x.buffer.slice(x.byteOffset, x.byteOffset + x.byteLength)));
      break;
    case 'F16':
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, f32ToF16(x[i]), true);
      break;
    case 'BF16':
      for (let i = 0; i < x.length; i++) view.setUint16(2 * i, f32ToBf16(x[i]), true);
      break;
    case 'Q8_0':
      quantizeRowQ8_0(x, out);
      break;
    case 'Q4_0':
      quantizeRowQ4_0(x, out);
      break;
    case 'Q4_1':
      quantizeRowQ4_1(x, out);
      break;
    case 'Q5_0':
      quantizeRowQ5_0(x, out);
      break;
    case 'Q5_1':
      quantizeRowQ5_1(x, out);
      break;
    case 'IQ4_NL':
      quantizeRowIq4Nl(x, out);
      break;
    case 'Q2_K':
    case 'Q3_K':
    case 'Q4_K':
    case 'Q5_K':
    case 'Q6_K':
      quantizeRowK(type, x, out);
      break;
    case 'MXFP4':
      quantizeRowMxfp4(x, out);
      break;
    case 'Q8_K':
      throw new LowbitError('E_UNSUPPORTED', `${where}: Q8_K is ggml's activation type; weights are not stored in it`);
  }
  return out;
}
