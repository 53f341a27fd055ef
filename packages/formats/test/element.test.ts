import { describe, expect, it } from 'vitest';
import { ELEMENT_FORMATS, getFormat } from '../src/index.js';
import { errorCode } from './helpers.js';

const f32 = (...v: number[]) => Float32Array.from(v);

// Values from the OCP 8-bit Floating Point Specification (OFP8) rev 1.0, Table 1, and the OCP
// Microscaling Formats (MX) v1.0 spec, Tables 2-3, written here independently of the codec.
const SPEC: Record<string, { max: number; maxCode: number; minNormal: number; minSub: number; count: number }> = {
  fp8_e4m3: { max: 448, maxCode: 0x7e, minNormal: 2 ** -6, minSub: 2 ** -9, count: 256 },
  fp8_e5m2: { max: 57344, maxCode: 0x7b, minNormal: 2 ** -14, minSub: 2 ** -16, count: 256 },
  fp6_e3m2: { max: 28, maxCode: 0x1f, minNormal: 0.25, minSub: 0.0625, count: 64 },
  fp6_e2m3: { max: 7.5, maxCode: 0x1f, minNormal: 1, minSub: 0.125, count: 64 },
  fp4_e2m1: { max: 6, maxCode: 0x7, minNormal: 1, minSub: 0.5, count: 16 },
  fp16: { max: 65504, maxCode: 0x7bff, minNormal: 2 ** -14, minSub: 2 ** -24, count: 65536 },
  bf16: { max: 3.3895313892515355e38, maxCode: 0x7f7f, minNormal: 2 ** -126, minSub: 2 ** -133, count: 65536 },
};

describe.each(Object.keys(SPEC))('%s against the spec', (name) => {
  const f = getFormat(name);
  const s = SPEC[name];
  const table = f.table();

  it('has the spec size, maximum, smallest normal and smallest subnormal', () => {
    expect(table.length).toBe(s.count);
    expect(f.max).toBe(s.max);
    expect(table[s.maxCode].value).toBe(s.max);
    const positives = table.map((t) => t.value).filter((v) => v > 0 && Number.isFinite(v));
    expect(Math.max(...positives)).toBe(s.max);
    expect(Math.min(...positives)).toBe(s.minSub);
    expect(table[1].value).toBe(s.minSub);
    expect(table[1 << (name === 'fp16' ? 10 : name === 'bf16' ? 7 : name.endsWith('m3') ? 3 : name.endsWith('m2') ? 2 : 1)].value).toBe(s.minNormal);
  });

  it('round-trips every non-NaN code exactly', () => {
    const values = Float32Array.from(table.map((t) => t.value).filter((v) => !Number.isNaN(v)));
    const codes = Array.from(table.filter((t) => !Number.isNaN(t.value)).map((t) => t.code));
    const enc = Array.from(f.encode(values));
    expect(enc).toEqual(codes);
    expect(Array.from(f.decode(f.encode(values)))).toEqual(Array.from(values));
  });

  it('saturates on request and clamps ±Inf to ±max', () => {
    const big = f32(s.max * 4, -s.max * 4, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
    expect(Array.from(f.decode(f.encode(big, { saturate: true })))).toEqual([s.max, -s.max, s.max, -s.max]);
  });
});

describe('special values and rounding', () => {
  it('fp8_e4m3: no infinities; overflow gives NaN (S.1111.111) unless saturating', () => {
    const f = getFormat('fp8_e4m3');
    expect(f.table().filter((t) => Number.isNaN(t.value)).map((t) => t.code)).toEqual([0x7f, 0xff]);
    expect(f.table().some((t) => !Number.isFinite(t.value) && !Number.isNaN(t.value))).toBe(false);
    expect(Array.from(f.encode(f32(480, -1e6, Number.POSITIVE_INFINITY)))).toEqual([0x7f, 0xff, 0x7f]);
    // 464 is the midpoint of 448 and the (unrepresentable) 480: ties to even gives 448.
    expect(Array.from(f.decode(f.encode(f32(464, 463.9, 464.1))))).toEqual([448, 448, Number.NaN]);
  });

  it('fp8_e5m2: IEEE infinities; overflow rounds to Inf unless saturating', () => {
    const f = getFormat('fp8_e5m2');
    expect(f.decode(Uint8Array.of(0x7c, 0xfc))).toEqual(f32(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY));
    expect(Array.from(f.decode(Uint8Array.of(0x7d, 0x7e, 0x7f))).every(Number.isNaN)).toBe(true);
    expect(Array.from(f.decode(f.encode(f32(61440, 61439, 1e9))))).toEqual([Number.POSITIVE_INFINITY, 57344, Number.POSITIVE_INFINITY]);
  });

  it('rounds to nearest even at midpoints (fp8_e4m3 between 16 and 32 steps by 2)', () => {
    const f = getFormat('fp8_e4m3');
    expect(Array.from(f.decode(f.encode(f32(17, 19, 21, 23, 17.01, -17))))).toEqual([16, 20, 20, 24, 18, -16]);
  });

  it('rounds subnormals to nearest even (fp4: 0.25 → 0, 0.75 → 1, 1.25 → 1, 1.75 → 2)', () => {
    const f = getFormat('fp4_e2m1');
    expect(Array.from(f.decode(f.encode(f32(0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5, 0.2500001))))).toEqual([0, 1, 1, 2, 2, 4, 4, 0.5]);
    expect(f.table().map((t) => t.value).slice(0, 8)).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  });

  it('keeps the sign of zero', () => {
    const f = getFormat('bf16');
    expect(Array.from(f.encode(f32(-0, 0)))).toEqual([0x8000, 0]);
  });

  it('bf16 is the top half of the f32 bits rounded to nearest even; fp16 rounds 3.14159 to 3.140625', () => {
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: an ordinary value near π, not π
    const vals = f32(1, -2.5, 3.14159, 65504, 1e-5, 6.1e-5, 123456.789);
    const f16 = getFormat('fp16');
    const bf = getFormat('bf16');
    // bf16 is the top half of the f32 bits, rounded to nearest even.
    const u32 = new Uint32Array(vals.buffer);
    const want = Array.from(u32, (b) => ((b + 0x7fff + ((b >> 16) & 1)) >>> 16) & 0xffff);
    expect(Array.from(bf.encode(vals))).toEqual(want);
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: an ordinary value near π, not π
    expect(f16.decode(f16.encode(f32(3.14159)))[0]).toBe(3.140625);
  });

  it('int4 is two\'s complement with saturation; nf4 snaps to its table', () => {
    const i4 = getFormat('int4');
    expect(Array.from(i4.decode(i4.encode(f32(-9, -8, -0.5, 0.5, 1.5, 2.5, 7.4, 100))))).toEqual([-8, -8, 0, 0, 2, 2, 7, 7]);
    const n = getFormat('nf4');
    expect(Array.from(n.decode(n.encode(f32(-2, 0.01, 0.9, 0.7, 1))))).toEqual([-1, 0, 1, Math.fround(0.7229568362236023), 1]);
  });

  it('lists every promised format', () => {
    for (const name of ELEMENT_FORMATS) expect(getFormat(name).name).toBe(name);
  });
});

describe('bad input', () => {
  const code = errorCode;
  it('names unknown formats and out-of-range bits', () => {
    expect(code(() => getFormat('fp7'))).toBe('E_FORMAT');
    expect(code(() => getFormat('int9'))).toBe('E_ARG');
    expect(code(() => getFormat('int1'))).toBe('E_ARG');
  });
  it('refuses NaN where the format has none, and wrong array types', () => {
    expect(code(() => getFormat('fp4_e2m1').encode(f32(Number.NaN)))).toBe('E_NAN');
    expect(code(() => getFormat('int8').encode(f32(Number.NaN)))).toBe('E_NAN');
    expect(code(() => getFormat('fp8_e4m3').encode([1, 2] as unknown as Float32Array))).toBe('E_DTYPE');
    expect(code(() => getFormat('fp4_e2m1').decode(Uint8Array.of(16)))).toBe('E_ARG');
  });
});
