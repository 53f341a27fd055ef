import { LowbitError } from '@lowbit/kernels';
import { decodeInt, encodeInt } from './integer.js';
import { type EncodeOptions, MINIFLOATS, type MinifloatName, decodeMinifloat, encodeMinifloat, minifloatLimits } from './minifloat.js';
import { NF4_TABLE, nearestIndex } from './nf4.js';

export type ElementFormatName = MinifloatName | 'int2' | 'int3' | 'int4' | 'int5' | 'int6' | 'int7' | 'int8' | 'nf4';

/** One code per element: encode rounds to nearest even under the format's overflow rule; decode is exact. */
export interface ElementCodec {
  readonly name: ElementFormatName;
  readonly bits: number;
  readonly family: 'minifloat' | 'int' | 'codebook';
  /** Largest finite magnitude. */
  readonly max: number;
  encode(values: Float32Array, options?: EncodeOptions): Uint8Array | Uint16Array;
  decode(codes: Uint8Array | Uint16Array): Float32Array;
  /** Every code and its value, in code order. */
  table(): { code: number; value: number }[];
}

export const ELEMENT_FORMATS: readonly ElementFormatName[] = [
  'fp8_e4m3', 'fp8_e5m2', 'fp6_e3m2', 'fp6_e2m3', 'fp4_e2m1', 'bf16', 'fp16',
  'int2', 'int3', 'int4', 'int5', 'int6', 'int7', 'int8', 'nf4',
];

function codeArray(bits: number, n: number): Uint8Array | Uint16Array {
  return bits > 8 ? new Uint16Array(n) : new Uint8Array(n);
}

function checkValues(fn: string, values: unknown): asserts values is Float32Array {
  if (!(values instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: values must be a Float32Array`);
}

function makeCodec(
  name: ElementFormatName, bits: number, family: ElementCodec['family'], max: number,
  enc: (v: number, saturate: boolean) => number, dec: (c: number) => number, defaultSaturate: boolean,
): ElementCodec {
  const size = 2 ** bits;
  // Decoding goes through a table: every code of every format here has at most 2^16 entries.
  const lut = new Float32Array(size);
  for (let c = 0; c < size; c++) lut[c] = dec(c);
  return {
    name, bits, family, max,
    encode(values, options = {}) {
      checkValues(`${name}.encode`, values);
      const saturate = options.saturate ?? defaultSaturate;
      const out = codeArray(bits, values.length);
      for (let i = 0; i < values.length; i++) out[i] = enc(values[i], saturate);
      return out;
    },
    decode(codes) {
      if (!(codes instanceof Uint8Array || codes instanceof Uint16Array)) throw new LowbitError('E_DTYPE', `${name}.decode: codes must be a Uint8Array or Uint16Array`);
      const out = new Float32Array(codes.length);
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i];
        if (c >= size) throw new LowbitError('E_ARG', `${name}.decode: code ${c} at index ${i} does not fit ${bits} bits`);
        out[i] = lut[c];
      }
      return out;
    },
    table() {
      return Array.from(lut, (value, code) => ({ code, value }));
    },
  };
}

const cache = new Map<string, ElementCodec>();

/** The element codec of a named format (see ELEMENT_FORMATS). */
export function getFormat(name: string): ElementCodec {
  const hit = cache.get(name);
  if (hit) return hit;
  let codec: ElementCodec;
  if (name in MINIFLOATS) {
    const s = MINIFLOATS[name as MinifloatName];
    const lim = minifloatLimits(s);
    codec = makeCodec(name as MinifloatName, lim.bits, 'minifloat', lim.maxNormal, (v, sat) => encodeMinifloat(s, v, sat), (c) => decodeMinifloat(s, c), false);
  } else if (/^int[2-8]$/.test(name)) {
    const bits = Number(name.slice(3));
    codec = makeCodec(name as ElementFormatName, bits, 'int', 2 ** (bits - 1) - 1, (v) => encodeInt(bits, v), (c) => decodeInt(bits, c), true);
  } else if (name === 'nf4') {
    codec = makeCodec('nf4', 4, 'codebook', 1, (v) => {
      if (Number.isNaN(v)) throw new LowbitError('E_NAN', 'nf4 has no NaN: cannot encode NaN');
      return nearestIndex(NF4_TABLE, v);
    }, (c) => NF4_TABLE[c], true);
  } else {
    const bits = /^int(\d+)$/.exec(name);
    if (bits) throw new LowbitError('E_ARG', `integer formats have 2 to 8 bits, got ${name}`);
    throw new LowbitError('E_FORMAT', `unknown element format "${name}"; known: ${ELEMENT_FORMATS.join(', ')}`);
  }
  cache.set(name, codec);
  return codec;
}
