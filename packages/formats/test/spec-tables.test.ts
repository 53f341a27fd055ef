import { describe, expect, it } from 'vitest';
import { getFormat } from '../src/index.js';

const f32 = (...v: number[]) => Float32Array.from(v);
const decode1 = (name: string, code: number) => getFormat(name).decode(getFormat(name).bits > 8 ? Uint16Array.of(code) : Uint8Array.of(code))[0];

// Positive values of every code, typed in from the OCP MX v1.0 spec (section 5.3.2, FP6/FP4 tables)
// rather than computed, so a wrong bias or subnormal rule in the codec cannot hide.
const FP6_E2M3 = [
  0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, // subnormals: m/8
  1, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875,
  2, 2.25, 2.5, 2.75, 3, 3.25, 3.5, 3.75,
  4, 4.5, 5, 5.5, 6, 6.5, 7, 7.5,
];
const FP6_E3M2 = [
  0, 0.0625, 0.125, 0.1875, // subnormals: m/4 · 2^-2
  0.25, 0.3125, 0.375, 0.4375, 0.5, 0.625, 0.75, 0.875,
  1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5,
  4, 5, 6, 7, 8, 10, 12, 14,
  16, 20, 24, 28,
];
const FP4_E2M1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

describe('every code against the spec tables', () => {
  it.each([['fp6_e2m3', FP6_E2M3], ['fp6_e3m2', FP6_E3M2], ['fp4_e2m1', FP4_E2M1]] as const)('%s: all codes, both signs', (name, table) => {
    const f = getFormat(name);
    const half = table.length;
    const got = Array.from(f.decode(Uint8Array.from({ length: 2 * half }, (_, i) => i)));
    expect(got.slice(0, half)).toEqual(table);
    // The sign bit is the top bit; negative zero decodes to -0.
    expect(got.slice(half).map((v) => -v)).toEqual(table);
    expect(Object.is(got[half], -0)).toBe(true);
  });

  it('fp8_e4m3: specific codes of OFP8 Table 1', () => {
    const want: [number, number][] = [
      [0x00, 0], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x08, 2 ** -6], [0x38, 1], [0x3c, 1.5],
      [0x77, 240], [0x78, 256], [0x7e, 448], [0x80, -0], [0xfe, -448], [0xb8, -1],
    ];
    for (const [c, v] of want) expect(decode1('fp8_e4m3', c)).toBe(v);
    expect(decode1('fp8_e4m3', 0x7f)).toBeNaN();
    expect(decode1('fp8_e4m3', 0xff)).toBeNaN();
    // Exactly two NaN codes and no infinity among all 256.
    const all = Array.from(getFormat('fp8_e4m3').decode(Uint8Array.from({ length: 256 }, (_, i) => i)));
    expect(all.filter(Number.isNaN).length).toBe(2);
    expect(all.some((v) => v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY)).toBe(false);
  });

  it('fp8_e5m2: specific codes of OFP8 Table 1 (IEEE-style)', () => {
    const want: [number, number][] = [
      [0x01, 2 ** -16], [0x03, 3 * 2 ** -16], [0x04, 2 ** -14], [0x3c, 1], [0x3e, 1.5], [0x7b, 57344],
      [0x7c, Number.POSITIVE_INFINITY], [0xfc, Number.NEGATIVE_INFINITY], [0xfb, -57344],
    ];
    for (const [c, v] of want) expect(decode1('fp8_e5m2', c)).toBe(v);
    for (const c of [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]) expect(decode1('fp8_e5m2', c)).toBeNaN();
  });

  it('fp16 and bf16: IEEE landmarks', () => {
    expect(decode1('fp16', 0x3c00)).toBe(1);
    expect(decode1('fp16', 0x7bff)).toBe(65504);
    expect(decode1('fp16', 0x0001)).toBe(2 ** -24);
    expect(decode1('fp16', 0x7c00)).toBe(Number.POSITIVE_INFINITY);
    expect(decode1('bf16', 0x3f80)).toBe(1);
    expect(decode1('bf16', 0x7f80)).toBe(Number.POSITIVE_INFINITY);
    expect(decode1('bf16', 0x0001)).toBe(2 ** -133);
  });
});

describe('round half to even at midpoints, normal and subnormal', () => {
  const rt = (name: string, ...v: number[]) => Array.from(getFormat(name).decode(getFormat(name).encode(f32(...v))));
  it('fp8_e4m3 subnormals: 2^-10 → 0, 3·2^-10 → 2^-8, 5·2^-10 → 2^-8, 7·2^-10 → 2^-7', () => {
    expect(rt('fp8_e4m3', 2 ** -10, 3 * 2 ** -10, 5 * 2 ** -10, 7 * 2 ** -10)).toEqual([0, 2 ** -8, 2 ** -8, 2 ** -7]);
  });
  it('fp8_e5m2: 1.125 → 1, 1.375 → 1.5, 1.625 → 1.5, 1.875 → 2', () => {
    expect(rt('fp8_e5m2', 1.125, 1.375, 1.625, 1.875)).toEqual([1, 1.5, 1.5, 2]);
  });
  it('fp6_e2m3: 7.25 (between 7 and 7.5) → 7; 0.0625 → 0; 0.1875 → 0.25', () => {
    expect(rt('fp6_e2m3', 7.25, 0.0625, 0.1875)).toEqual([7, 0, 0.25]);
  });
  it('fp6_e3m2: 26 (between 24 and 28) → 24; 30 (above max, saturates) → 28', () => {
    expect(rt('fp6_e3m2', 26, 30, 1e9)).toEqual([24, 28, 28]);
  });
  it('bf16 and fp16: ties to even on the mantissa LSB', () => {
    // 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7: goes to 1 (even); 1 + 3·2^-8 → 1 + 2^-6.
    expect(rt('bf16', 1 + 2 ** -8, 1 + 3 * 2 ** -8)).toEqual([1, 1 + 2 ** -6]);
    expect(rt('fp16', 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519)).toEqual([1, 1 + 2 ** -9, Number.POSITIVE_INFINITY, 65504]);
  });
  it('non-saturating overflow: E4M3 → NaN with the sign kept, E5M2 → ±Inf; saturating → ±max', () => {
    const e4 = getFormat('fp8_e4m3');
    expect(Array.from(e4.encode(f32(1000, -1000)))).toEqual([0x7f, 0xff]);
    expect(Array.from(e4.encode(f32(1000, -1000), { saturate: true }))).toEqual([0x7e, 0xfe]);
    const e5 = getFormat('fp8_e5m2');
    expect(Array.from(e5.encode(f32(1e6, -1e6)))).toEqual([0x7c, 0xfc]);
    expect(Array.from(e5.encode(f32(1e6, -1e6, Number.POSITIVE_INFINITY), { saturate: true }))).toEqual([0x7b, 0xfb, 0x7b]);
    // NaN stays NaN in either mode.
    expect(e5.decode(e5.encode(f32(Number.NaN), { saturate: true }))[0]).toBeNaN();
    expect(e4.decode(e4.encode(f32(Number.NaN), { saturate: true }))[0]).toBeNaN();
  });
});
