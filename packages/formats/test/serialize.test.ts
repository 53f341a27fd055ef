import { describe, expect, it } from 'vitest';
import {
  deserializeTensor, dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, isLowbitError, quantizeAnyPrecision, quantizeBcq, quantizeCodebook,
  quantizeInt, quantizeMx, quantizeNf4, readAnyPrecision, serializeTensor,
} from '../src/index.js';

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
