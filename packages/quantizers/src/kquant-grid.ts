// The K-quant grid as GPTQ needs it: for one super-block of 256 weights that ggml's reference
// quantizer (`quantizeRowK`) has chosen scales for, the value of every code of every weight, the
// code nearest a given weight, and the codes read from and written into the block bytes. Layouts
// are ggml-common.h's block_q2_K … block_q6_K; values are computed as dequantize_row_* computes them
// (one f32 operation at a time), so a block holding these codes decodes to exactly these values.
import { GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, LowbitError, f16ToF32, kScaleMinQ4K, kScaleQ3K } from '@lowbit/kernels';
import type { KQuantWritable } from '@lowbit/runtime';

const fr = Math.fround;
const QK = GGML_K_BLOCK_SIZE;

export const KQUANT_WRITABLE: readonly KQuantWritable[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

/** Per type: sub-blocks per super-block, the largest code, and whether a code's value is d·q − m (affine) or d·(q − offset). */
interface KLayout {
  subBlocks: number;
  nmax: number;
  /** Symmetric types: the code of value 0 (q − offset is the signed level). 0 for the affine types. */
  offset: number;
}

const LAYOUT: Readonly<Record<KQuantWritable, KLayout>> = {
  Q2_K: { subBlocks: 16, nmax: 3, offset: 0 },
  Q3_K: { subBlocks: 16, nmax: 7, offset: 4 },
  Q4_K: { subBlocks: 8, nmax: 15, offset: 0 },
  Q5_K: { subBlocks: 8, nmax: 31, offset: 0 },
  Q6_K: { subBlocks: 16, nmax: 63, offset: 32 },
};

export function kquantLayout(type: KQuantWritable): KLayout {
  const l = LAYOUT[type];
  if (!l) throw new LowbitError('E_ARG', `K-quant grid: type ${String(type)} is not one of ${KQUANT_WRITABLE.join(', ')}`);
  return l;
}

const nearBits = new Float32Array(1);
const nearInt = new Int32Array(nearBits.buffer);
/** ggml's nearest_int (f32 v + 1.5·2^23 read as bits): what its final requantization pass rounds with. */
function nearestInt(v: number): number {
  nearBits[0] = v + 12582912;
  return (nearInt[0] & 0x007fffff) - 0x00400000;
}

/**
 * Sub-block scales of one super-block: the value of code q in sub-block j is fr(fr(a[j]·q) − b[j])
 * (Q2_K, Q4_K, Q5_K: a = d·scale, b = dmin·min) or fr(a[j]·(q − offset)) (Q3_K, Q6_K: a = d·scale).
 */
export interface KSubGrid {
  a: Float32Array;
  b: Float32Array;
}

/** Reads the sub-block scales of the super-block at byte `o` into `g` (at sub-block index `go`). */
export function readSubGrid(type: KQuantWritable, src: Uint8Array, o: number, g: KSubGrid, go = 0): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const f16 = (at: number) => f16ToF32(view.getUint16(at, true));
  switch (type) {
    case 'Q2_K': {
      const d = f16(o + 80);
      const dmin = f16(o + 82);
      for (let j = 0; j < 16; j++) {
        g.a[go + j] = fr(d * (src[o + j] & 0xf));
        g.b[go + j] = fr(dmin * (src[o + j] >> 4));
      }
      return;
    }
    case 'Q3_K': {
      const d = f16(o + 108);
      for (let j = 0; j < 16; j++) g.a[go + j] = fr(d * kScaleQ3K(j, src, o + 96));
      g.b.fill(0, go, go + 16);
      return;
    }
    case 'Q4_K':
    case 'Q5_K': {
      const d = f16(o);
      const dmin = f16(o + 2);
      for (let j = 0; j < 8; j++) {
        const [s, m] = kScaleMinQ4K(j, src, o + 4);
        g.a[go + j] = fr(d * s);
        g.b[go + j] = fr(dmin * m);
      }
      return;
    }
    case 'Q6_K': {
      const d = f16(o + 208);
      for (let j = 0; j < 16; j++) g.a[go + j] = fr(d * view.getInt8(o + 192 + j));
      g.b.fill(0, go, go + 16);
    }
  }
}

/** The value of code q under sub-block scales (a, b), as ggml's dequantizer computes it. */
export function kValue(type: KQuantWritable, q: number, a: number, b: number): number {
  const { offset } = LAYOUT[type];
  return offset ? fr(a * (q - offset)) : fr(fr(a * q) - b);
}

/**
 * The code of x under sub-block scales (a, b), by ggml's final requantization pass (so round to
 * nearest reproduces quantize_row_*_ref's codes from its own scales); −1 where a = 0: every code then
 * has the same value and the caller keeps the one the block already holds.
 */
export function kCode(type: KQuantWritable, x: number, a: number, b: number): number {
  if (a === 0) return -1;
  const { nmax, offset } = LAYOUT[type];
  const v = fr(x);
  if (offset) return Math.max(-offset, Math.min(nmax - offset, nearestInt(fr(v / a)))) + offset;
  return Math.max(0, Math.min(nmax, nearestInt(fr(fr(v + b) / a))));
}

/** Codes (0..nmax) of the 256 weights of the super-block at byte `o` into L[lo..lo + 256). */
export function readCodes(type: KQuantWritable, src: Uint8Array, o: number, L: Uint8Array, lo = 0): void {
  for (let i = 0; i < QK; i++) {
    const h = i >> 7;
    const l = i & 31;
    const s = (i >> 5) & 3;
    let q: number;
    switch (type) {
      case 'Q2_K':
        q = (src[o + 16 + 32 * h + l] >> (2 * s)) & 3;
        break;
      case 'Q3_K':
        q = ((src[o + 32 + 32 * h + l] >> (2 * s)) & 3) | (((src[o + l] >> (i >> 5)) & 1) << 2);
        break;
      case 'Q4_K':
      case 'Q5_K': {
        const sb = i >> 5;
        const byte = src[o + (type === 'Q5_K' ? 48 : 16) + 32 * (sb >> 1) + l];
        q = sb & 1 ? byte >> 4 : byte & 0xf;
        if (type === 'Q5_K') q |= ((src[o + 16 + l] >> sb) & 1) << 4;
        break;
      }
      default: {
        const lbyte = src[o + 64 * h + 32 * (s & 1) + l];
        q = (s < 2 ? lbyte & 0xf : lbyte >> 4) | (((src[o + 128 + 32 * h + l] >> (2 * s)) & 3) << 4);
      }
    }
    L[lo + i] = q;
  }
}

/** Writes codes L[lo..lo + 256) into the code bytes of the super-block at `o` (its scale bytes are kept). */
export function writeCodes(type: KQuantWritable, L: Uint8Array, lo: number, out: Uint8Array, o: number): void {
  // the code bytes of each layout: Q2_K qs; Q3_K hmask + qs; Q4_K qs; Q5_K qh + qs; Q6_K ql + qh
  const [c0, c1] = ({ Q2_K: [16, 80], Q3_K: [0, 96], Q4_K: [16, 144], Q5_K: [16, 176], Q6_K: [0, 192] } as const)[type];
  out.fill(0, o + c0, o + c1);
  for (let i = 0; i < QK; i++) {
    const q = L[lo + i];
    const h = i >> 7;
    const l = i & 31;
    const s = (i >> 5) & 3;
    switch (type) {
      case 'Q2_K':
        out[o + 16 + 32 * h + l] |= q << (2 * s);
        break;
      case 'Q3_K':
        out[o + 32 + 32 * h + l] |= (q & 3) << (2 * s);
        out[o + l] |= (q >> 2) << (i >> 5);
        break;
      case 'Q4_K':
      case 'Q5_K': {
        const sb = i >> 5;
        out[o + (type === 'Q5_K' ? 48 : 16) + 32 * (sb >> 1) + l] |= (q & 0xf) << (4 * (sb & 1));
        if (type === 'Q5_K') out[o + 16 + l] |= (q >> 4) << sb;
        break;
      }
      default:
        out[o + 64 * h + 32 * (s & 1) + l] |= (q & 0xf) << (4 * (s >> 1));
        out[o + 128 + 32 * h + l] |= (q >> 4) << (2 * s);
    }
  }
}

/** Bytes of one row of `cols` weights (whole super-blocks) in `type`. */
export function kRowBytes(type: KQuantWritable, cols: number): number {
  return (cols / QK) * GGML_K_BLOCK_BYTES[type];
}
