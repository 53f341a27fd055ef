import { LowbitError } from '@lowbit/kernels';
import { roundEven } from './round.js';

/**
 * A sign/exponent/mantissa format, described by parameters alone (one codec for all of them, as in
 * microxcaling's ElemFormat table).
 *  - `specials`: 'ieee' = all-ones exponent holds Inf (mantissa 0) and NaN (else);
 *    'e4m3' = OCP FP8 E4M3: no Inf, only S.1111.111 is NaN, so the top binade keeps 7 finite values;
 *    'none' = OCP MX FP6/FP4: every code is a finite number.
 */
export interface MinifloatSpec {
  name: string;
  ebits: number;
  mbits: number;
  bias: number;
  specials: 'ieee' | 'e4m3' | 'none';
}

export const MINIFLOATS = {
  // OCP 8-bit Floating Point Specification (OFP8) rev 1.0
  fp8_e4m3: { name: 'fp8_e4m3', ebits: 4, mbits: 3, bias: 7, specials: 'e4m3' },
  fp8_e5m2: { name: 'fp8_e5m2', ebits: 5, mbits: 2, bias: 15, specials: 'ieee' },
  // OCP Microscaling Formats (MX) v1.0, section 5.3
  fp6_e3m2: { name: 'fp6_e3m2', ebits: 3, mbits: 2, bias: 3, specials: 'none' },
  fp6_e2m3: { name: 'fp6_e2m3', ebits: 2, mbits: 3, bias: 1, specials: 'none' },
  fp4_e2m1: { name: 'fp4_e2m1', ebits: 2, mbits: 1, bias: 1, specials: 'none' },
  // IEEE 754 binary16 and bfloat16
  fp16: { name: 'fp16', ebits: 5, mbits: 10, bias: 15, specials: 'ieee' },
  bf16: { name: 'bf16', ebits: 8, mbits: 7, bias: 127, specials: 'ieee' },
} as const satisfies Record<string, MinifloatSpec>;

export type MinifloatName = keyof typeof MINIFLOATS;

export interface EncodeOptions {
  /**
   * true: values beyond the largest finite value (and ±Inf) become ±max.
   * false (default for formats with Inf or NaN): they become Inf (IEEE, E5M2) or NaN (E4M3).
   * Formats without Inf/NaN (FP6, FP4) always saturate.
   */
  saturate?: boolean;
}

type Limits = { bits: number; emin: number; emax: number; maxNormal: number; minNormal: number; minSubnormal: number };
const limitsCache = new WeakMap<MinifloatSpec, Limits>();

/** Derived constants of a minifloat (memoized: encoders ask once per element). */
export function minifloatLimits(s: MinifloatSpec): Limits {
  let l = limitsCache.get(s);
  if (!l) {
    l = computeLimits(s);
    limitsCache.set(s, l);
  }
  return l;
}

function computeLimits(s: MinifloatSpec): Limits {
  const bits = 1 + s.ebits + s.mbits;
  const emin = 1 - s.bias;
  const topField = (1 << s.ebits) - 1;
  // IEEE reserves the top exponent field; E4M3 keeps it but loses its all-ones mantissa to NaN.
  const emax = (s.specials === 'ieee' ? topField - 1 : topField) - s.bias;
  const topMant = s.specials === 'e4m3' ? (1 << s.mbits) - 2 : (1 << s.mbits) - 1;
  return {
    bits,
    emin,
    emax,
    maxNormal: (1 + topMant / (1 << s.mbits)) * 2 ** emax,
    minNormal: 2 ** emin,
    minSubnormal: 2 ** (emin - s.mbits),
  };
}

export function decodeMinifloat(s: MinifloatSpec, code: number): number {
  const { mbits, ebits, bias } = s;
  const sign = (code >> (ebits + mbits)) & 1 ? -1 : 1;
  const e = (code >> mbits) & ((1 << ebits) - 1);
  const m = code & ((1 << mbits) - 1);
  const topField = (1 << ebits) - 1;
  if (s.specials === 'ieee' && e === topField) return m === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  if (s.specials === 'e4m3' && e === topField && m === (1 << mbits) - 1) return Number.NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - mbits);
  return sign * (1 + m / (1 << mbits)) * 2 ** (e - bias);
}

/** The code of the largest-magnitude NaN-free value, or of NaN, with the sign bit of `neg`. */
function nanCode(s: MinifloatSpec, neg: boolean): number {
  const signBit = neg ? 1 << (s.ebits + s.mbits) : 0;
  // Quiet NaN: all-ones exponent, top mantissa bit set (IEEE); S.1111.111 (E4M3).
  const m = s.specials === 'e4m3' ? (1 << s.mbits) - 1 : 1 << (s.mbits - 1);
  return signBit | (((1 << s.ebits) - 1) << s.mbits) | m;
}

/** Encodes one finite-or-not number with round-to-nearest-even and the format's overflow rule. */
export function encodeMinifloat(s: MinifloatSpec, v: number, saturate: boolean): number {
  const lim = minifloatLimits(s);
  const neg = v < 0 || Object.is(v, -0);
  const signBit = neg ? 1 << (s.ebits + s.mbits) : 0;
  if (Number.isNaN(v)) {
    if (s.specials === 'none') throw new LowbitError('E_NAN', `${s.name} has no NaN: cannot encode NaN`);
    return nanCode(s, false);
  }
  const a = Math.abs(v);
  let r: number;
  if (a === Number.POSITIVE_INFINITY) r = a;
  else {
    // Quantum of a's binade (the subnormal quantum below the normal range), then RNE on the grid.
    const e = Math.max(Math.floor(Math.log2(a)), lim.emin);
    let q = 2 ** (e - s.mbits);
    // log2 can be off by one ulp near powers of two; fix the binade exactly.
    if (a >= 2 ** (e + 1)) q *= 2;
    r = roundEven(a / q) * q;
  }
  if (r > lim.maxNormal) {
    if (saturate || s.specials === 'none') r = lim.maxNormal;
    else if (s.specials === 'ieee') return signBit | (((1 << s.ebits) - 1) << s.mbits);
    else return nanCode(s, neg);
  }
  if (r === 0) return signBit;
  if (r < lim.minNormal) return signBit | Math.round(r / lim.minSubnormal);
  let e = Math.floor(Math.log2(r));
  if (r >= 2 ** (e + 1)) e++;
  if (r < 2 ** e) e--;
  const m = Math.round((r / 2 ** e - 1) * (1 << s.mbits));
  return signBit | ((e + s.bias) << s.mbits) | m;
}
