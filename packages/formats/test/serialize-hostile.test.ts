import { describe, expect, it } from 'vitest';
import { deserializeTensor, quantizeAnyPrecision, quantizeInt, quantizeMx, serializeTensor } from '../src/index.js';
import { errorCode } from './helpers.js';

// Hand-made LBPT containers (issue #13): the header is attacker-chosen JSON, so every field, name,
// dtype, length and index must be checked before it is used, and no name may reach a prototype.
function lbpt(header: unknown, blobBytes = 0): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const start = Math.ceil((8 + json.length) / 8) * 8;
  const out = new Uint8Array(start + blobBytes);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x5450424c, true);
  v.setUint32(4, json.length, true);
  out.set(json, 8);
  return out;
}

const protoKeys = () => [Object.prototype, Array.prototype, Function.prototype, Uint8Array.prototype].map((p) => Object.getOwnPropertyNames(p).sort().join());

describe('deserializeTensor on hostile headers', () => {
  it('a blob field named __proto__ or constructor is refused and pollutes nothing', () => {
    const before = protoKeys();
    const scalars = { format: 'mxfp8_e4m3', length: 0 };
    for (const field of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      for (const index of [undefined, 0, 'polluted']) {
        const blob = { field, dtype: 'Uint8Array', length: 0, ...(index === undefined ? {} : { index }) };
        expect(errorCode(() => deserializeTensor(lbpt({ scalars, blobs: [blob] })))).toBe('E_BAD_FILE');
      }
      // a scalar of that name too (JSON.parse makes "__proto__" an own key; it must not be copied)
      expect(errorCode(() => deserializeTensor(lbpt(`{"scalars":{"${field}":{"polluted":1}},"blobs":[]}`)))).toBe('E_BAD_FILE');
    }
    expect(protoKeys()).toEqual(before);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype.constructor).toBe(Object);
  });

  it('null header, missing or non-array blobs, non-object scalars → E_BAD_FILE', () => {
    for (const h of ['null', '[]', '1', '"x"', '{}', '{"scalars":{}}', '{"scalars":null,"blobs":[]}', '{"scalars":{},"blobs":{}}', '{"scalars":{},"blobs":[null]}', '{"scalars":[],"blobs":[]}']) {
      expect(errorCode(() => deserializeTensor(lbpt(h))), h).toBe('E_BAD_FILE');
    }
  });

  it('dtype "toString" or another unknown dtype → E_BAD_FILE', () => {
    for (const dtype of ['toString', 'constructor', '__proto__', 'Float64Array', 7, null]) {
      expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs: [{ field: 'codes', dtype, length: 0 }] })))).toBe('E_BAD_FILE');
    }
  });

  it('length -1, 1.5, "8", 2^53 → E_BAD_FILE; a length past the buffer → E_TRUNCATED without allocating it', () => {
    for (const length of [-1, 1.5, '8', 2 ** 53, null]) {
      expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs: [{ field: 'codes', dtype: 'Uint8Array', length }] }, 8)))).toBe('E_BAD_FILE');
    }
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs: [{ field: 'codes', dtype: 'Float32Array', length: 2 ** 40 }] }, 8)))).toBe('E_TRUNCATED');
  });

  it('an index on a scalar field, a huge index, a repeated index or a hole → E_BAD_FILE, at once', () => {
    const mx = { format: 'mxfp8_e4m3', length: 0 };
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: mx, blobs: [{ field: 'format', index: 0, dtype: 'Uint8Array', length: 0 }] })))).toBe('E_BAD_FILE');
    const t0 = performance.now();
    // an index of 1e9 on an MX tensor once cost ~20 s of CPU before failing
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: mx, blobs: [{ field: 'codes', index: 1e9, dtype: 'Uint8Array', length: 0 }] })))).toBe('E_BAD_FILE');
    expect(performance.now() - t0).toBeLessThan(1000); // ms; a generous bound, the check is O(1)
    const twice = [0, 0].map((index) => ({ field: 'luts', index, dtype: 'Float32Array', length: 0 }));
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs: twice })))).toBe('E_BAD_FILE');
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs: [{ field: 'luts', index: 1, dtype: 'Float32Array', length: 0 }] })))).toBe('E_BAD_FILE');
    // the same field as a scalar and a blob, or as two blobs
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: { codes: 1 }, blobs: [{ field: 'codes', dtype: 'Uint8Array', length: 0 }] })))).toBe('E_BAD_FILE');
  });

  it('a too long blob list → E_BAD_FILE', () => {
    const blobs = Array.from({ length: 100 }, (_, i) => ({ field: `f${i}`, dtype: 'Uint8Array', length: 0 }));
    expect(errorCode(() => deserializeTensor(lbpt({ scalars: {}, blobs })))).toBe('E_BAD_FILE');
  });

  it('real tensors still round-trip and come back as plain objects with own fields only', () => {
    const w = Float32Array.from({ length: 4 * 64 }, (_, i) => Math.cos(i));
    for (const t of [quantizeInt(w, [4, 64], { bits: 4, granularity: 'group-cols', group: 32 }), quantizeMx(w, { format: 'mxfp4' }), quantizeAnyPrecision(w, [4, 64], { maxBits: 4 })]) {
      const back = deserializeTensor(serializeTensor(t as never));
      expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
      expect(Object.keys(back).sort()).toEqual(Object.keys(t).sort());
      expect(serializeTensor(back)).toEqual(serializeTensor(t as never));
    }
  });
});
