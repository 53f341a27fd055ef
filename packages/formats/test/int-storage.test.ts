// INT-k storage: fp16 scales, zero points packed at the code width, packed group indices (LBPT and
// the LB_INT* GGUF types), and the honest bits per weight that follow.
import { describe, expect, it } from 'vitest';
import {
  F16_MAX, F16_MIN, decodeIntStorage, deserializeTensor, dequantizeInt, encodeIntStorage, encodeIntWith, f16Bits, f16Scale, f16Value, intBitsPerWeight,
  intSections, isF16, packZeros, quantizeInt, readBits, roundEven, rowBytes, serializeTensor, unpackZeros, validatePacked, type PackedIntTensor,
} from '../src/index.js';
import { errorCode, rng } from './helpers.js';

// Every positive finite binary16 value, ascending, from the bit layout (IEEE 754 §3.4) written out
// here: an independent table to round against.
const F16_VALUES = Float64Array.from({ length: 0x7c00 }, (_, h) => {
  const e = h >> 10;
  const m = h & 0x3ff;
  return e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
});

/** Nearest binary16 by search of the table, ties to the even code (even mantissa bit). */
function nearestF16(v: number): number {
  let lo = 0;
  let hi = F16_VALUES.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (F16_VALUES[mid] <= v) lo = mid;
    else hi = mid;
  }
  const a = F16_VALUES[lo];
  const b = F16_VALUES[hi];
  if (v - a < b - v) return a;
  if (b - v < v - a) return b;
  return lo % 2 === 0 ? a : b;
}

describe('fp16 scales', () => {
  it('f16Scale rounds to the nearest binary16 (ties to even), floor 2^-24, cap 65504', () => {
    const r = rng(5);
    const vs: number[] = [];
    for (let i = 0; i < 20000; i++) vs.push(2 ** (-26 + 43 * r()));
    // exact midpoints between neighbours, where ties to even decides
    for (let h = 1; h < 0x7bff; h += 37) vs.push((F16_VALUES[h] + F16_VALUES[h + 1]) / 2);
    const bad = vs.filter((v) => f16Scale(v) !== (v > F16_MAX ? F16_MAX : Math.max(F16_MIN, nearestF16(v))));
    expect(bad).toEqual([]);
    expect(f16Scale(1e-30)).toBe(F16_MIN);
    expect(f16Scale(1e9)).toBe(F16_MAX);
    expect(f16Scale(65519)).toBe(65504); // below the midpoint to 2^16
  });

  it('f16Bits / f16Value invert each other on every finite binary16; isF16 tells them apart', () => {
    const bad: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // Inf and NaN are no scale
      const v = f16Value(h);
      if (!isF16(v) || (v !== 0 && f16Bits(v) !== h)) bad.push(h);
    }
    expect(bad).toEqual([]);
    expect(f16Bits(-0)).toBe(0x8000);
    for (const v of [0.1, 65505, Number.POSITIVE_INFINITY, Number.NaN, 2 ** -25, 1 + 2 ** -11]) expect(isF16(v), String(v)).toBe(false);
    expect(errorCode(() => f16Bits(0.1))).toBe('E_ARG');
  });

  it('quantizeInt chooses its codes against the stored fp16 scale', () => {
    const r = rng(9);
    const [rows, cols] = [6, 70];
    const w = Float32Array.from({ length: rows * cols }, () => (r() - 0.5) * 0.3);
    for (const symmetric of [true, false]) {
      const t = quantizeInt(w, [rows, cols], { bits: 3, symmetric, granularity: 'group-cols', group: 32 });
      const ng = Math.ceil(cols / 32);
      const rb = rowBytes(cols, 3);
      for (let i = 0; i < t.scales.length; i++) expect(isF16(t.scales[i])).toBe(true);
      for (let row = 0; row < rows; row++) {
        for (let c = 0; c < cols; c++) {
          const i = row * ng + Math.floor(c / 32);
          const z = t.zeros ? t.zeros[i] : 4;
          const u = Math.min(7, Math.max(0, roundEven(w[row * cols + c] / t.scales[i]) + z));
          expect(readBits(t.codes, row * rb * 8 + c * 3, 3)).toBe(u);
        }
      }
    }
  });
});

function tensor(symmetric: boolean, gIdx: boolean): PackedIntTensor {
  const r = rng(3);
  const [rows, cols, group] = [5, 70, 16];
  const w = Float32Array.from({ length: rows * cols }, () => (r() - 0.5) * 2);
  const ng = Math.ceil(cols / group);
  const g = gIdx ? Int32Array.from({ length: cols }, (_, c) => Math.floor(c / group)).reverse() : null;
  const scales = Float32Array.from({ length: rows * ng }, () => f16Scale(0.05 + r() * 0.2));
  const zeros = symmetric ? null : Float32Array.from({ length: rows * ng }, () => Math.floor(r() * 8));
  return encodeIntWith(w, [rows, cols], { bits: 3, symmetric, granularity: 'group-cols', group, scales, zeros, gIdx: g });
}

describe('stored INT-k layout', () => {
  it('zero points are packed little-endian at the code width', () => {
    const z = Float32Array.of(1, 2, 3, 4, 5, 6, 7, 0, 5);
    const p = packZeros(z, 3);
    // LSB first: 100 010 110 001 101 011 111 000 101, read back in bytes from bit 0 up
    expect([...p]).toEqual([0b11010001, 0b01011000, 0b00011111, 0b00000101]);
    expect([...unpackZeros(p, 9, 3)]).toEqual([...z]);
    expect(errorCode(() => unpackZeros(p.subarray(0, 3), 9, 3))).toBe('E_SHAPE');
  });

  it('bits per weight: int3 g32 on 64-wide rows is 3.5 symmetric, 3 + 19/32 asymmetric', () => {
    const base = { bits: 3, shape: [64, 64] as [number, number], group: 32, scales: new Float32Array(128), gIdx: null };
    expect(intBitsPerWeight({ ...base, zeros: null })).toBe(3.5);
    expect(intBitsPerWeight({ ...base, zeros: new Float32Array(128) })).toBe(3 + 19 / 32);
    // an act-order group index: 1 bit per column (2 groups), 1/64 bit per weight
    expect(intBitsPerWeight({ ...base, zeros: null, gIdx: new Int32Array(64) })).toBe(3.5 + 1 / 64);
    // int4 g32: 4.5, as ggml's Q4_0
    expect(intBitsPerWeight({ ...base, bits: 4, zeros: null })).toBe(4.5);
  });

  for (const symmetric of [true, false]) {
    for (const gIdx of [false, true]) {
      it(`${symmetric ? 'sym' : 'asym'}${gIdx ? ' with gIdx' : ''}: bytes round trip exactly (GGUF layout and LBPT), sizes as intSections says`, () => {
        const t = tensor(symmetric, gIdx);
        const bytes = encodeIntStorage(t);
        const s = intSections({ rows: 5, cols: 70, bits: 3, count: t.scales.length, symmetric, group: 16, gIdx });
        expect(bytes.byteLength).toBe(s.total);
        expect(s.total).toBe(5 * 27 + 1 + 2 * 25 + (symmetric ? 0 : 10) + (gIdx ? 27 : 0)); // 70·3 bits → 27 B a row, pad to 2; 25 scales; 25·3 bits; 70 columns·3 bits (5 groups)
        const p = { rows: 5, cols: 70, bits: 3, granularity: 'group-cols' as const, group: 16, count: t.scales.length, symmetric, gIdx };
        const back = decodeIntStorage(p, bytes, 't');
        expect(dequantizeInt(back)).toEqual(dequantizeInt(t));
        expect(back.scales).toEqual(t.scales);
        expect(back.zeros).toEqual(t.zeros);
        if (gIdx) expect(back.gIdx).toEqual(t.gIdx);
        expect(errorCode(() => decodeIntStorage(p, bytes.subarray(0, bytes.length - 1), 't'))).toBe('E_SHAPE');
        const lbpt = deserializeTensor(serializeTensor(t)) as PackedIntTensor;
        expect(lbpt.scales).toEqual(t.scales);
        expect(lbpt.zeros).toEqual(t.zeros);
        expect(lbpt.codes).toEqual(t.codes);
        expect(lbpt.gIdx ?? null).toEqual(t.gIdx ?? null);
      });
    }
  }

  it('a zero point of 2^bits (GPTQ v1 reading zero − 1 = −1) decodes, but no k-bit section stores it', () => {
    const t = tensor(false, false);
    const z = Float32Array.from(t.zeros!);
    z[3] = 8; // 3 bits: 2^3
    const v1: PackedIntTensor = { ...t, zeros: z };
    expect(() => validatePacked('t', v1)).not.toThrow();
    expect(dequantizeInt(v1)[3 * 16]).toBe(Math.fround(t.scales[3] * (readBits(t.codes, 3 * 16 * 3, 3) - 8)));
    expect(errorCode(() => encodeIntStorage(v1))).toBe('E_ARG');
    expect(errorCode(() => serializeTensor(v1))).toBe('E_ARG');
    z[3] = 9;
    expect(errorCode(() => validatePacked('t', v1))).toBe('E_ARG');
    z[3] = 2.5;
    expect(errorCode(() => validatePacked('t', v1))).toBe('E_ARG');
  });

  it('LBPT: an INT-k tensor with f32 scales (the layout before fp16 scales) is refused by name', () => {
    const t = tensor(false, false);
    // the old writer wrote the in-memory fields as they are: rebuild such a file by hand
    const json = new TextEncoder().encode(JSON.stringify({
      scalars: { kind: 'int', bits: 3, symmetric: false, shape: [5, 70], granularity: 'group-cols', group: 16 },
      blobs: [{ field: 'scales', dtype: 'Float32Array', length: 25 }, { field: 'zeros', dtype: 'Float32Array', length: 25 }, { field: 'codes', dtype: 'Uint8Array', length: t.codes.length }],
    }));
    const pad8 = (n: number) => Math.ceil(n / 8) * 8;
    const out = new Uint8Array(pad8(8 + json.length) + 2 * pad8(100) + pad8(t.codes.length));
    const v = new DataView(out.buffer);
    v.setUint32(0, 0x5450424c, true);
    v.setUint32(4, json.length, true);
    out.set(json, 8);
    let e: unknown;
    try {
      deserializeTensor(out);
    } catch (x) {
      e = x;
    }
    expect((e as { code: string }).code).toBe('E_BAD_FILE');
    expect((e as Error).message).toMatch(/f32.*re-quantize/);
  });
});
