// llama.cpp's K-quant super-block types (ggml-common.h block_q2_K … block_q8_K: 256 weights per
// super-block, sub-block scales packed at 4, 6 or 8 bits under one or two f16 super-scales) and its
// MXFP4 block (ggml type 39: an E8M0 scale and 32 E2M1 codes), with their reference quantizers
// (ggml-quants.c `quantize_row_*_ref`). Written from the layouts, not translated code. Files must
// equal llama.cpp's bit for bit, so every operation is a single f32 operation (Math.fround) in C's
// order, and ggml's `nearest_int` (the 1.5·2^23 trick: round half to even) is reproduced exactly.
import { GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, GGML_MXFP4_BLOCK_BYTES, LowbitError, kScaleMinQ4K, kScaleQ3K } from '@lowbit/kernels';
import { f16ToF32, f32ToF16 } from './half.js';

const fr = Math.fround;
const QK = GGML_K_BLOCK_SIZE;

export type KQuantType = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K';

const nearBits = new Float32Array(1);
const nearInt = new Int32Array(nearBits.buffer);
/**
 * ggml's nearest_int: the f32 sum v + 1.5·2^23 read as bits (round half to even for |v| < 2^22;
 * beyond that, and for NaN, the same wrapped value C gets, since a fitted min can push v there).
 */
function nearestInt(v: number): number {
  nearBits[0] = v + 12582912;
  return (nearInt[0] & 0x007fffff) - 0x00400000;
}

/** GROUP_MAX_EPS of ggml-quants.c: a group whose largest |x| is below it quantizes to zeros. */
const GROUP_MAX_EPS = fr(1e-15);

/**
 * Decodes `nBlocks` super-blocks of `type` at byte `offset` into `out[outOffset..]`, element by
 * element in ggml's order (dequantize_row_*): 2- and 3-bit codes sit in four 2-bit planes of 32 bytes
 * per 128 weights, 4/5-bit ones in nibble halves of 32 bytes per 64, Q6_K splits 4 + 2 bits likewise.
 */
export function dequantizeK(type: KQuantType, src: Uint8Array, offset: number, nBlocks: number, out: Float32Array, outOffset = 0): void {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const bytes = GGML_K_BLOCK_BYTES[type];
  for (let b = 0; b < nBlocks; b++) {
    const o = offset + b * bytes;
    const y = outOffset + b * QK;
    switch (type) {
      case 'Q2_K': {
        // { u8 scales[16] (scale | min << 4); u8 qs[64]; f16 d; f16 dmin }
        const d = f16ToF32(view.getUint16(o + 80, true));
        const dmin = f16ToF32(view.getUint16(o + 82, true));
        for (let g = 0; g < 16; g++) {
          const sc = src[o + g];
          const dl = fr(d * (sc & 0xf));
          const ml = fr(dmin * (sc >> 4));
          for (let i = 16 * g; i < 16 * g + 16; i++) {
            const q = (src[o + 16 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
            out[y + i] = fr(fr(dl * q) - ml);
          }
        }
        break;
      }
      case 'Q3_K': {
        // { u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d }: q = low 2 bits − (high bit ? 0 : 4)
        const d = f16ToF32(view.getUint16(o + 108, true));
        for (let g = 0; g < 16; g++) {
          const dl = fr(d * kScaleQ3K(g, src, o + 96));
          for (let i = 16 * g; i < 16 * g + 16; i++) {
            const lo = (src[o + 32 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
            const hi = (src[o + (i & 31)] >> (i >> 5)) & 1;
            out[y + i] = fr(dl * (lo - (hi ? 0 : 4)));
          }
        }
        break;
      }
      case 'Q4_K':
      case 'Q5_K': {
        // { f16 d; f16 dmin; u8 scales[12]; [u8 qh[32]]; u8 qs[128] }
        const q5 = type === 'Q5_K';
        const d = f16ToF32(view.getUint16(o, true));
        const dmin = f16ToF32(view.getUint16(o + 2, true));
        const qs = o + (q5 ? 48 : 16);
        for (let s = 0; s < 8; s++) {
          const [sc, m] = kScaleMinQ4K(s, src, o + 4);
          const d1 = fr(d * sc);
          const m1 = fr(dmin * m);
          const high = s & 1;
          for (let l = 0; l < 32; l++) {
            const byte = src[qs + 32 * (s >> 1) + l];
            let q = high ? byte >> 4 : byte & 0xf;
            if (q5 && (src[o + 16 + l] >> s) & 1) q += 16;
            out[y + 32 * s + l] = fr(fr(d1 * q) - m1);
          }
        }
        break;
      }
      case 'Q6_K': {
        // { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d }
        const d = f16ToF32(view.getUint16(o + 208, true));
        for (let i = 0; i < QK; i++) {
          const h = i >> 7;
          const s = (i >> 5) & 3;
          const l = i & 31;
          const lbyte = src[o + 64 * h + 32 * (s & 1) + l];
          const lo = s < 2 ? lbyte & 0xf : lbyte >> 4;
          const hi = (src[o + 128 + 32 * h + l] >> (2 * s)) & 3;
          out[y + i] = fr(fr(d * view.getInt8(o + 192 + (i >> 4))) * ((lo | (hi << 4)) - 32));
        }
        break;
      }
      case 'Q8_K': {
        // { f32 d; i8 qs[256]; i16 bsums[16] } (an activation type; bsums are derived)
        const d = view.getFloat32(o, true);
        for (let i = 0; i < QK; i++) out[y + i] = fr(d * view.getInt8(o + 4 + i));
        break;
      }
    }
  }
}

/** E2M1 values doubled (ggml's kvalues_mxfp4), indexed by the 4-bit code (sign in bit 3). */
const KVALUES_MXFP4 = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/**
 * ggml's E8M0 scale for the doubled E2M1 values: 2^(e−128), half the OCP scale 2^(e−127), so that
 * value = kvalues[code]·2^(e−128) = e2m1(code)·2^(e−127) exactly as OCP MX defines it.
 * e = 0xFF is 2^127 here, not the OCP NaN (ggml does not special-case it).
 */
function e8m0Half(e: number): number {
  return 2 ** (e - 128);
}

/** MXFP4 blocks { u8 e; u8 qs[16] }: byte j holds element j (low nibble) and element j + 16 (high). */
export function dequantizeMxfp4(src: Uint8Array, offset: number, nBlocks: number, out: Float32Array, outOffset = 0): void {
  for (let b = 0; b < nBlocks; b++) {
    const o = offset + b * GGML_MXFP4_BLOCK_BYTES;
    const d = e8m0Half(src[o]);
    const y = outOffset + 32 * b;
    for (let j = 0; j < 16; j++) {
      out[y + j] = fr(KVALUES_MXFP4[src[o + 1 + j] & 0xf] * d);
      out[y + j + 16] = fr(KVALUES_MXFP4[src[o + 1 + j] >> 4] * d);
    }
  }
}

/**
 * MXFP4 blocks from OCP E2M1 codes (one per weight) and E8M0 scales (one per 32): a repacking, no
 * rounding, since ggml's element code is the OCP code and its scale byte the OCP scale byte.
 */
export function packMxfp4(codes: Uint8Array, scales: Uint8Array, out: Uint8Array, outOffset = 0): void {
  const nBlocks = codes.length / 32;
  if (!Number.isInteger(nBlocks) || scales.length !== nBlocks) throw new LowbitError('E_SHAPE', `packMxfp4: ${codes.length} codes and ${scales.length} scales are not whole 32-blocks with one scale each`);
  for (let b = 0; b < nBlocks; b++) {
    const o = outOffset + b * GGML_MXFP4_BLOCK_BYTES;
    out[o] = scales[b];
    for (let j = 0; j < 16; j++) out[o + 1 + j] = (codes[32 * b + j] & 0xf) | ((codes[32 * b + j + 16] & 0xf) << 4);
  }
}

/** OCP codes (one per weight) and E8M0 scales of `nBlocks` MXFP4 blocks: the inverse of packMxfp4. */
export function unpackMxfp4(src: Uint8Array, nBlocks: number): { codes: Uint8Array; scales: Uint8Array } {
  if (src.byteLength !== nBlocks * GGML_MXFP4_BLOCK_BYTES) throw new LowbitError('E_SHAPE', `unpackMxfp4: ${src.byteLength} bytes are not ${nBlocks} blocks of ${GGML_MXFP4_BLOCK_BYTES}`);
  const codes = new Uint8Array(nBlocks * 32);
  const scales = new Uint8Array(nBlocks);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * GGML_MXFP4_BLOCK_BYTES;
    scales[b] = src[o];
    for (let j = 0; j < 16; j++) {
      codes[32 * b + j] = src[o + 1 + j] & 0xf;
      codes[32 * b + j + 16] = src[o + 1 + j] >> 4;
    }
  }
  return { codes, scales };
}

/** quantize_row_mxfp4_ref: e = floor(log2 amax) − 2 + 127, each element the nearest doubled E2M1 (first on ties). */
export function quantizeRowMxfp4(x: Float32Array, out: Uint8Array, outOffset = 0): void {
  for (let b = 0; b < x.length / 32; b++) {
    const o = outOffset + b * GGML_MXFP4_BLOCK_BYTES;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[32 * b + j]));
    // floorf(log2f(amax)) of an f32 is its binary exponent; Math.log2 can round up just below a power of 2
    const e = amax > 0 ? (floorLog2(amax) - 2 + 127) & 0xff : 0;
    const d = fr(e8m0Half(e));
    out[o] = e;
    const best = (v: number) => {
      let bi = 0;
      let be = Math.abs(fr(fr(KVALUES_MXFP4[0] * d) - v));
      for (let i = 1; i < 16; i++) {
        const err = Math.abs(fr(fr(KVALUES_MXFP4[i] * d) - v));
        if (err < be) {
          bi = i;
          be = err;
        }
      }
      return bi;
    };
    for (let j = 0; j < 16; j++) out[o + 1 + j] = best(x[32 * b + j]) | (best(x[32 * b + j + 16]) << 4);
  }
}

const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);
function floorLog2(v: number): number {
  f32Bits[0] = v;
  const exp = (u32Bits[0] >>> 23) & 0xff;
  if (exp > 0) return exp - 127;
  return Math.floor(Math.log2(v)); // subnormal f32: exact in f64
}

// ---- reference quantizers (ggml-quants.c), f32 arithmetic in C's evaluation order ----

/** make_qkx2_quants: an affine fit x ≈ scale·L − min (min ≥ 0 returned), searched over nstep iscales. */
function makeQkx2(n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number, laux: Uint8Array, rmin: number, rdelta: number, nstep: number, useMad: boolean): [number, number] {
  let min = x[xo];
  let max = x[xo];
  let sumW = w[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i];
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]);
    sumX = fr(sumX + fr(w[i] * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[xo + i] - min)));
    L[lo + i] = Math.max(0, Math.min(nmax, l));
    let diff = fr(fr(fr(scale * L[lo + i]) + min) - x[xo + i]);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(w[i] * diff));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far, so the range moves with it as in ggml
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i] - min)))));
      laux[i] = l;
      const wl = fr(w[i] * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let cur = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        cur = fr(cur + fr(w[i] * diff));
      }
      if (cur < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i];
        bestError = cur;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** The value of largest magnitude in x[xo..xo+n) (ggml's `max`: the first one on a tie). */
function signedAbsMax(n: number, x: Float32Array, xo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  return max;
}

/**
 * Symmetric codes l = clamp(round(iscale·x), -nmax, nmax-1) under weights x², summed in f32 in ggml's
 * order: returns [Σ w·x·l, Σ w·l²]; with L given, stores l + offset at L[lo + i].
 */
function weightedSums(n: number, nmax: number, x: Float32Array, xo: number, iscale: number, L?: Int8Array | Uint8Array, lo = 0, offset = 0): [number, number] {
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * v))));
    if (L) L[lo + i] = l + offset;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  return [sumlx, suml2];
}

/** make_qx_quants with rmse_type 1 and no importance: symmetric codes L + nmax, weights x², 19 trial scales. */
function makeQx(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array | Uint8Array, lo: number): number {
  const max = signedAbsMax(n, x, xo);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let [sumlx, suml2] = weightedSums(n, nmax, x, xo, fr(-nmax / max), L, lo, nmax);
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    [sumlx, suml2] = weightedSums(n, nmax, x, xo, iscale);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      weightedSums(n, nmax, x, xo, iscale, L, lo, nmax);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants with do_rmse: symmetric codes refined by 5 passes of coordinate descent, weights x². */
function makeQ3(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const max = signedAbsMax(n, x, xo);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const clamp = (l: number) => Math.max(-nmax, Math.min(nmax - 1, l));
  let [sumlx, suml2] = weightedSums(n, nmax, x, xo, fr(-nmax / max), L, lo);
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i];
      const w = fr(v * v);
      let slx = fr(sumlx - fr(fr(w * v) * L[lo + i]));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * L[lo + i]) * L[lo + i]));
        const nl = clamp(nearestInt(fr(fr(v * sl2) / slx)));
        if (nl !== L[lo + i]) {
          slx = fr(slx + fr(fr(w * v) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** Packs 2-bit codes L[0..256) as ggml's Q2_K/Q3_K qs: 4 planes of 32 bytes per 128 weights. */
function pack2(L: ArrayLike<number>, out: Uint8Array, o: number): void {
  for (let j = 0; j < QK; j += 128) {
    for (let l = 0; l < 32; l++) out[o + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
  }
}

/** Codes for x + m ≈ d·q, q in [0, nmax] (the requantization pass of the affine K types). */
function requantAffine(x: Float32Array, xo: number, n: number, d: number, dm: number, nmax: number, L: Uint8Array, lo: number): void {
  for (let i = 0; i < n; i++) L[lo + i] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[xo + i] + dm) / d))));
}

function quantizeQ2K(x: Float32Array, xo: number, out: Uint8Array, o: number, view: DataView): void {
  const L = new Uint8Array(QK);
  const laux = new Uint8Array(16);
  const w = new Float32Array(16);
  const scales = new Float32Array(16);
  const mins = new Float32Array(16);
  const q4scale = 15;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) w[l] = Math.abs(x[xo + 16 * j + l]);
    [scales[j], mins[j]] = makeQkx2(16, 3, x, xo + 16 * j, w, L, 16 * j, laux, fr(-0.5), fr(0.1), 15, true);
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  if (maxScale > 0) {
    const iscale = fr(q4scale / maxScale);
    for (let j = 0; j < 16; j++) out[o + j] = nearestInt(fr(iscale * scales[j]));
    view.setUint16(o + 80, f32ToF16(fr(maxScale / q4scale)), true);
  } else {
    out.fill(0, o, o + 16);
    view.setUint16(o + 80, f32ToF16(0), true);
  }
  if (maxMin > 0) {
    const iscale = fr(q4scale / maxMin);
    for (let j = 0; j < 16; j++) out[o + j] |= nearestInt(fr(iscale * mins[j])) << 4;
    view.setUint16(o + 82, f32ToF16(fr(maxMin / q4scale)), true);
  } else {
    view.setUint16(o + 82, f32ToF16(0), true);
  }
  const dAll = f16ToF32(view.getUint16(o + 80, true));
  const mAll = f16ToF32(view.getUint16(o + 82, true));
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * (out[o + j] & 0xf));
    if (!d) continue;
    requantAffine(x, xo + 16 * j, 16, d, fr(mAll * (out[o + j] >> 4)), 3, L, 16 * j);
  }
  pack2(L, out, o + 16);
}

function quantizeQ3K(x: Float32Array, xo: number, out: Uint8Array, o: number, view: DataView): void {
  const L = new Int8Array(QK);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3(16, 4, x, xo + 16 * j, L, 16 * j);
    const s = Math.abs(scales[j]);
    if (s > amax) {
      amax = s;
      maxScale = scales[j];
    }
  }
  const sc = o + 96;
  out.fill(0, sc, sc + 12);
  if (maxScale) {
    const iscale = fr(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = Math.max(-32, Math.min(31, nearestInt(fr(iscale * scales[j])))) + 32;
      if (j < 8) out[sc + j] = l & 0xf;
      else out[sc + j - 8] |= (l & 0xf) << 4;
      l >>= 4;
      out[sc + 8 + (j % 4)] |= l << (2 * (j >> 2));
    }
    view.setUint16(o + 108, f32ToF16(fr(1 / iscale)), true);
  } else {
    view.setUint16(o + 108, f32ToF16(0), true);
  }
  const dAll = f16ToF32(view.getUint16(o + 108, true));
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * kScaleQ3K(j, out, sc));
    if (!d) continue;
    for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = Math.max(-4, Math.min(3, nearestInt(fr(x[xo + i] / d)))) + 4;
  }
  // high bit of weight i goes to hmask[i % 32], bit i / 32
  out.fill(0, o, o + 32);
  for (let i = 0; i < QK; i++) {
    if (L[i] > 3) {
      out[o + (i & 31)] |= 1 << (i >> 5);
      L[i] -= 4;
    }
  }
  pack2(L, out, o + 32);
}

/** Q4_K and Q5_K (quantize_row_q{4,5}_K_ref): 8 affine sub-blocks of 32, 6-bit scales and mins. */
function quantizeQ45K(five: boolean, x: Float32Array, xo: number, out: Uint8Array, o: number, view: DataView): void {
  const nmax = five ? 31 : 15;
  const L = new Uint8Array(QK);
  const laux = new Uint8Array(32);
  const w = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[xo + 32 * j + l] * x[xo + 32 * j + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[xo + 32 * j + l]));
    [scales[j], mins[j]] = five
      ? makeQkx2(32, 31, x, xo + 32 * j, w, L, 32 * j, laux, fr(-0.5), fr(0.1), 15, false)
      : makeQkx2(32, 15, x, xo + 32 * j, w, L, 32 * j, laux, -1, fr(0.1), 20, false);
    if (scales[j] > maxScale) maxScale = scales[j];
    if (mins[j] > maxMin) maxMin = mins[j];
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = o + 4;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] |= (ls >> 4) << 6;
      out[sc + j] |= (lm >> 4) << 6;
    }
  }
  view.setUint16(o, f32ToF16(fr(maxScale / 63)), true);
  view.setUint16(o + 2, f32ToF16(fr(maxMin / 63)), true);
  const dAll = f16ToF32(view.getUint16(o, true));
  const mAll = f16ToF32(view.getUint16(o + 2, true));
  for (let j = 0; j < 8; j++) {
    const [s, m] = kScaleMinQ4K(j, out, sc);
    const d = fr(dAll * s);
    if (!d) continue;
    requantAffine(x, xo + 32 * j, 32, d, fr(mAll * m), nmax, L, 32 * j);
  }
  const qh = o + 16;
  const ql = o + (five ? 48 : 16);
  if (five) out.fill(0, qh, qh + 32);
  for (let n = 0, c = 0; n < QK; n += 64, c++) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j];
      let l2 = L[n + j + 32];
      if (five && l1 > 15) {
        l1 -= 16;
        out[qh + j] |= 1 << (2 * c);
      }
      if (five && l2 > 15) {
        l2 -= 16;
        out[qh + j] |= 2 << (2 * c);
      }
      out[ql + 32 * c + j] = l1 | (l2 << 4);
    }
  }
}

function quantizeQ6K(x: Float32Array, xo: number, out: Uint8Array, o: number, view: DataView): void {
  const L = new Int8Array(QK);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    scales[ib] = makeQx(16, 32, x, xo + 16 * ib, L, 16 * ib);
    const a = Math.abs(scales[ib]);
    if (a > maxAbs) {
      maxAbs = a;
      maxScale = scales[ib];
    }
  }
  if (maxAbs < GROUP_MAX_EPS) {
    out.fill(0, o, o + GGML_K_BLOCK_BYTES.Q6_K);
    return;
  }
  const iscale = fr(-128 / maxScale);
  view.setUint16(o + 208, f32ToF16(fr(1 / iscale)), true);
  for (let ib = 0; ib < 16; ib++) view.setInt8(o + 192 + ib, Math.min(127, nearestInt(fr(iscale * scales[ib]))));
  const dAll = f16ToF32(view.getUint16(o + 208, true));
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * view.getInt8(o + 192 + j));
    if (!d) continue;
    for (let i = 16 * j; i < 16 * j + 16; i++) L[i] = Math.max(-32, Math.min(31, nearestInt(fr(x[xo + i] / d)))) + 32;
  }
  for (let j = 0, h = 0; j < QK; j += 128, h++) {
    for (let l = 0; l < 32; l++) {
      const q1 = L[j + l] & 0xf;
      const q2 = L[j + l + 32] & 0xf;
      const q3 = L[j + l + 64] & 0xf;
      const q4 = L[j + l + 96] & 0xf;
      out[o + 64 * h + l] = q1 | (q3 << 4);
      out[o + 64 * h + l + 32] = q2 | (q4 << 4);
      out[o + 128 + 32 * h + l] = (L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6);
    }
  }
}

/** The K types lowbit writes (Q8_K is an activation type: llama.cpp never stores weights in it). */
export type KQuantWritable = Exclude<KQuantType, 'Q8_K'>;

/** quantize_row_<type>_ref over `x` (a multiple of 256 values) into `out[outOffset..]`. */
export function quantizeRowK(type: KQuantWritable, x: Float32Array, out: Uint8Array, outOffset = 0): void {
  if (x.length % QK !== 0) throw new LowbitError('E_SHAPE', `quantizeRowK: ${x.length} values are not whole ${QK}-value super-blocks`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const bytes = GGML_K_BLOCK_BYTES[type];
  for (let b = 0; b < x.length / QK; b++) {
    const o = outOffset + b * bytes;
    const xo = b * QK;
    if (type === 'Q2_K') quantizeQ2K(x, xo, out, o, view);
    else if (type === 'Q3_K') quantizeQ3K(x, xo, out, o, view);
    else if (type === 'Q4_K' || type === 'Q5_K') quantizeQ45K(type === 'Q5_K', x, xo, out, o, view);
    else quantizeQ6K(x, xo, out, o, view);
  }
}
