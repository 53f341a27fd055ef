import { describe, expect, it } from 'vitest';
import {
  deserializeTensor, dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, isLowbitError, quantizeAnyPrecision, quantizeBcq, quantizeCodebook,
  quantizeInt, quantizeMx, quantizeNf4, readAnyPrecision, serializeTensor,
} from '../src/index.js';
import { errorCode } from './helpers.js';

const w = Float32Array.from({ length: 5 * 70 }, (_, i) => Math.sin(i * 0.7) * 0.3);
const shape: [number, number] = [5, 70];

describe('every packed tensor serializes to bytes and back losslessly', () => {
  const cases: [string, () => unknown, (t: never) => Float32Array][] = [
    ['int3 group-rows asym', () => quantizeInt(w, shape, { bits: 3, granularity: 'group-rows', group: 2, symmetric: false }), dequantizeInt],
    ['mxfp6_e2m3', () => quantizeMx(w, { format: 'mxfp6_e2m3' }), dequantizeMx],
    ['codebook 3-bit', () => quantizeCodebook(w, shape, { bits: 3 }), dequantizeCodebook],
    ['nf4 g32', () => quantizeNf4(w, shape, { group: 32 }), dequantizeNf4],
    ['bcq 2 g16', () => quantizeBcq(w, shape, { bits: 2, group: 16 }), dequantizeBcq],
    ['any-precision 3..5 read at 4', () => quantizeAnyPrecision(w, shape, { maxBits: 5 }), (t) => readAnyPrecision(t, 4)],
  ];
  it.each(cases)('%s', (_n, make, decode) => {
    const t = make() as never;
    const bytes = serializeTensor(t);
    const back = deserializeTensor(bytes) as never;
    expect(Array.from(decode(back))).toEqual(Array.from(decode(t)));
    expect(serializeTensor(back)).toEqual(bytes);
    // Any cut of the bytes is reported, never decoded into garbage.
    for (const cut of [1, 9, bytes.length - 1]) {
      try {
        deserializeTensor(bytes.subarray(0, cut));
        throw new Error(`cut at ${cut} was accepted`);
      } catch (e) {
        expect(isLowbitError(e)).toBe(true);
        expect((e as { code: string }).code).toBe('E_TRUNCATED');
      }
    }
  });
});

describe('every decoder checks the lengths a packed tensor implies', () => {
  const code = errorCode;
  const w = Float32Array.from({ length: 4 * 40 }, (_, i) => Math.sin(i) * 0.1);
  const s: [number, number] = [4, 40];

  it('wrong scales, zeros, codes, tables or planes → E_SHAPE; bad parameters → E_ARG', () => {
    const i4 = quantizeInt(w, s, { bits: 4, granularity: 'group-cols', group: 16, symmetric: false });
    expect(code(() => dequantizeInt({ ...i4, scales: i4.scales.subarray(1) }))).toBe('E_SHAPE');
    expect(code(() => dequantizeInt({ ...i4, zeros: new Float32Array(1) }))).toBe('E_SHAPE');
    expect(code(() => dequantizeInt({ ...i4, codes: i4.codes.subarray(1) }))).toBe('E_SHAPE');
    expect(code(() => dequantizeInt({ ...i4, group: 0 }))).toBe('E_ARG');
    expect(code(() => dequantizeInt({ ...i4, bits: 9 }))).toBe('E_ARG');
    const n = quantizeNf4(w, s, { group: 16 });
    expect(code(() => dequantizeNf4({ ...n, scales: new Float32Array(3) }))).toBe('E_SHAPE');
    expect(code(() => dequantizeNf4({ ...n, group: -1 }))).toBe('E_ARG');
    const b = quantizeBcq(w, s, { bits: 2, group: 16 });
    expect(code(() => dequantizeBcq({ ...b, alphas: b.alphas.subarray(2) }))).toBe('E_SHAPE');
    const c = quantizeCodebook(w, s, { bits: 2 });
    expect(code(() => dequantizeCodebook({ ...c, lut: c.lut.subarray(1) }))).toBe('E_SHAPE');
    const a = quantizeAnyPrecision(w, s, { maxBits: 4 });
    expect(code(() => readAnyPrecision({ ...a, luts: a.luts.slice(1) }, 3))).toBe('E_SHAPE');
    const m = quantizeMx(w, { format: 'mxfp6_e2m3' });
    expect(code(() => dequantizeMx({ ...m, codes: m.codes.subarray(1) }))).toBe('E_SHAPE');
  });

  it('a header whose lengths disagree with its shape is a bad file, not a short read', () => {
    const t = quantizeInt(w, s, { bits: 3, granularity: 'per-oc' });
    const bytes = serializeTensor({ ...t, scales: t.scales.subarray(0, 3) });
    expect(code(() => deserializeTensor(bytes))).toBe('E_BAD_FILE');
  });
});
