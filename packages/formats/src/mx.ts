import { LowbitError } from '@lowbit/kernels';
import { decodeInt } from './integer.js';
import { MINIFLOATS, decodeMinifloat, encodeMinifloat, minifloatLimits } from './minifloat.js';
import { E8M0_BIAS, E8M0_NAN, MX_BLOCK, MX_FORMATS } from './mx-spec.js';
import { roundEven } from './round.js';
import type { MxFormatName, MxTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

export { E8M0_NAN, MX_BLOCK, MX_FORMATS };
export type { MxFormatName, MxTensor };

/**
 * OCP Microscaling (MX) v1.0: blocks of 32 elements share one E8M0 scale X = 2^e. Section 6.3's
 * conversion: e = floor(log2(max |v|)) − emax_elem, clamped to E8M0's range; elements are v / X
 * rounded to nearest even in the element format and clamped to its largest normal.
 */
interface MxElement {
  bits: number;
  /** Exponent of the largest power of two the element format holds (spec Table 1: emax_elem). */
  emax: number;
  encode(v: number): number;
  decode(c: number): number;
}

function minifloatElement(name: keyof typeof MINIFLOATS): MxElement {
  const s = MINIFLOATS[name];
  const lim = minifloatLimits(s);
  return { bits: lim.bits, emax: lim.emax, encode: (v) => encodeMinifloat(s, v, true), decode: (c) => decodeMinifloat(s, c) };
}

// MXINT8 elements: 8-bit two's complement with an implicit scale of 2^-6 (values in (-2, 2)),
// kept symmetric at ±127/64 as the reference implementation does.
const int8Element: MxElement = {
  bits: 8,
  emax: 0,
  encode: (v) => Math.min(127, Math.max(-127, roundEven(v * 64))) & 0xff,
  decode: (c) => decodeInt(8, c) / 64,
};

const ELEMENTS: Record<MxFormatName, MxElement> = {
  mxfp8_e4m3: minifloatElement('fp8_e4m3'),
  mxfp8_e5m2: minifloatElement('fp8_e5m2'),
  mxfp6_e3m2: minifloatElement('fp6_e3m2'),
  mxfp6_e2m3: minifloatElement('fp6_e2m3'),
  mxfp4: minifloatElement('fp4_e2m1'),
  mxint8: int8Element,
};

function element(format: string): MxElement {
  const e = ELEMENTS[format as MxFormatName];
  if (!e) throw new LowbitError('E_FORMAT', `unknown MX format "${format}"; known: ${MX_FORMATS.join(', ')}`);
  return e;
}

/** E8M0 code → scale value (2^(code − 127); 0xFF is NaN). */
export function e8m0ToScale(code: number): number {
  return code === E8M0_NAN ? Number.NaN : 2 ** (code - E8M0_BIAS);
}

export function quantizeMx(values: Float32Array, options: { format: MxFormatName }): MxTensor {
  if (!(values instanceof Float32Array)) throw new LowbitError('E_DTYPE', 'quantizeMx: values must be a Float32Array');
  const el = element(options.format);
  const n = values.length;
  const nb = Math.ceil(n / MX_BLOCK);
  const scales = new Uint8Array(nb);
  const codes = new Uint8Array(n);
  for (let b = 0; b < nb; b++) {
    const start = b * MX_BLOCK;
    const end = Math.min(n, start + MX_BLOCK);
    let amax = 0;
    let special = false;
    for (let i = start; i < end; i++) {
      const v = values[i];
      if (!Number.isFinite(v)) special = true;
      else amax = Math.max(amax, Math.abs(v));
    }
    if (special) {
      // NaN or Inf in a block: E8M0 has no Inf and most element formats neither, so the block's scale
      // is NaN and every value decodes to NaN (spec: a NaN scale makes the whole block NaN).
      scales[b] = E8M0_NAN;
      continue;
    }
    // All-zero block: the smallest scale; every element encodes to zero.
    let e = amax === 0 ? -E8M0_BIAS : Math.floor(Math.log2(amax)) - el.emax;
    if (amax !== 0 && 2 ** (e + el.emax) > amax) e--; // guard log2 rounding near powers of two
    e = Math.min(127, Math.max(-127, e));
    scales[b] = e + E8M0_BIAS;
    const inv = 2 ** -e;
    for (let i = start; i < end; i++) codes[i] = el.encode(values[i] * inv);
  }
  return { format: options.format, length: n, scales, codes };
}

const valueTables = new Map<MxFormatName, Float64Array>();

/** The value of every element code of an MX format (decoding is a lookup). */
function valueTable(format: MxFormatName, el: MxElement): Float64Array {
  let v = valueTables.get(format);
  if (!v) {
    v = new Float64Array(2 ** el.bits);
    for (let c = 0; c < v.length; c++) v[c] = el.decode(c);
    valueTables.set(format, v);
  }
  return v;
}

export function dequantizeMx(t: MxTensor): Float32Array {
  validatePacked('dequantizeMx', t);
  const el = element(t.format);
  const table = valueTable(t.format, el);
  const nb = Math.ceil(t.length / MX_BLOCK);
  if (t.scales.length !== nb) throw new LowbitError('E_SHAPE', `dequantizeMx: ${t.length} values need ${nb} scales, got ${t.scales.length}`);
  if (t.codes.length !== t.length) throw new LowbitError('E_SHAPE', `dequantizeMx: ${t.length} values need ${t.length} codes, got ${t.codes.length}`);
  const out = new Float32Array(t.length);
  const limit = 2 ** el.bits;
  for (let b = 0; b < t.length; b += MX_BLOCK) {
    const x = e8m0ToScale(t.scales[b / MX_BLOCK]);
    const end = Math.min(t.length, b + MX_BLOCK);
    for (let i = b; i < end; i++) {
      const c = t.codes[i];
      if (c >= limit) throw new LowbitError('E_ARG', `dequantizeMx: code ${c} at index ${i} does not fit ${el.bits} bits`);
      out[i] = x * table[c];
    }
  }
  return out;
}
