import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../src/half.js';

describe('binary16', () => {
  it('round-trips every finite half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      expect(f32ToF16(f16ToF32(h))).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });
  it('rounds to nearest even, overflows to Inf, keeps subnormals', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1+2^-10 → even (1)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (1+2^-9)
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway past the largest half: rounds to Inf
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(2 ** -24)).toBe(1);
    expect(f32ToF16(2 ** -26)).toBe(0);
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Number.NaN) & 0x7c00).toBe(0x7c00);
  });
});

describe('bfloat16', () => {
  it('rounds to nearest even and round-trips', () => {
    expect(f32ToBf16(1)).toBe(0x3f80);
    expect(bf16ToF32(0x3f80)).toBe(1);
    expect(f32ToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(bf16ToF32(f32ToBf16(-2.5))).toBe(-2.5);
  });
});
