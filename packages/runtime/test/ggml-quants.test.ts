import { describe, expect, it } from 'vitest';
import { dequantize, fromF32, quantizeRowQ4_0, quantizeRowQ4_1, quantizeRowQ8_0, toF32 } from '../src/ggml-quants.js';
import { f16ToF32, f32ToF16 } from '../src/half.js';

function block(fn: (i: number) => number): Float32Array {
  return Float32Array.from({ length: 32 }, (_, i) => fn(i));
}

describe('llama.cpp reference quantizers', () => {
  it('Q8_0: d = amax/127 as f16, q = roundf(x/d) with halves away from zero', () => {
    const x = block((i) => (i - 16) * 0.25); // amax 4 at i = 0 (−4)
    const out = new Uint8Array(34);
    quantizeRowQ8_0(x, out);
    const view = new DataView(out.buffer);
    expect(view.getUint16(0, true)).toBe(f32ToF16(Math.fround(4 / 127)));
    const q = new Int8Array(out.buffer, 2, 32);
    expect(q[0]).toBe(-127);
    // x = −3.75 → −3.75·127/4 = −119.0625 → −119; x = 0.25 → 7.9375 → 8
    expect(q[1]).toBe(-119);
    expect(q[17]).toBe(8);
  });

  it('Q4_0: d = signed absmax / −8, nibbles j and j+16 share byte j, clamp at 15', () => {
    const x = block((i) => (i === 5 ? -8 : i === 20 ? 7.9 : 1)); // max |x| is −8 → d = 1
    const out = new Uint8Array(18);
    quantizeRowQ4_0(x, out);
    expect(f16ToF32(new DataView(out.buffer).getUint16(0, true))).toBe(1);
    // id = 1; q = min(15, trunc(x + 8.5)): −8 → 0, 1 → 9, 7.9 → 16 → clamped 15
    expect(out[2 + 5] & 15).toBe(0);
    expect(out[2 + 4] >> 4).toBe(15);
    expect(out[2 + 0] & 15).toBe(9);
    const y = toF32('Q4_0', out, 32);
    expect(y[5]).toBe(-8);
    expect(y[20]).toBe(7);
  });

  it('Q4_1: d = (max − min)/15, m = min, q = trunc((x − m)/d + 0.5)', () => {
    const x = block((i) => i / 31);
    const out = new Uint8Array(20);
    quantizeRowQ4_1(x, out);
    const view = new DataView(out.buffer);
    expect(view.getUint16(0, true)).toBe(f32ToF16(Math.fround(1 / 15)));
    expect(f16ToF32(view.getUint16(2, true))).toBe(0);
    const y = toF32('Q4_1', out, 32);
    for (let i = 0; i < 32; i++) expect(Math.abs(y[i] - x[i])).toBeLessThanOrEqual(0.5 / 15 + 1e-3); // half a step (+ f16 scale rounding)
  });

  it('all-zero blocks encode d = 0 and decode to zeros', () => {
    // Q4_0 stores d = 0/−8 = −0 (0x8000), as C does; values are ±0, equal to 0
    for (const t of ['Q8_0', 'Q4_0', 'Q4_1'] as const) expect(toF32(t, fromF32(t, new Float32Array(64), 32), 64).every((v) => v === 0)).toBe(true);
  });

  it('round-trip error is within one quantization step on random data', () => {
    const x = Float32Array.from({ length: 32 * 64 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)));
    for (const [t, steps] of [['Q8_0', 127], ['Q4_0', 8], ['Q4_1', 15]] as const) {
      const y = toF32(t, fromF32(t, x, 64), x.length);
      for (let b = 0; b < x.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
        const step = (t === 'Q4_1' ? 2 * amax : amax) / steps;
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b * 32 + j] - x[b * 32 + j])).toBeLessThanOrEqual(step * 1.01);
      }
    }
  });

  it('F16 and BF16 tensors decode through dequantize', () => {
    const x = Float32Array.of(1, -2, 0.5, 3.25);
    expect([...toF32('F16', fromF32('F16', x, 4), 4)]).toEqual([...x]);
    const out = new Float32Array(6);
    dequantize('BF16', fromF32('BF16', x, 4), 2, 3, out, 3);
    expect([...out]).toEqual([0, 0, 0, -2, 0.5, 3.25]);
  });
});

describe('bit-exact with llama.cpp', () => {
  it('Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 bytes equal ggml quantize_row_*_ref, IQ4_NL quantize_iq4_nl\'s, on 12 blocks with ties, zeros, outliers, tiny values', async () => {
    // fixture made by tools/ggml-quants-golden.py calling libggml-base.so (node-llama-cpp's llama.cpp build)
    const { readFileSync } = await import('node:fs');
    const g = JSON.parse(readFileSync(new URL('./fixtures/ggml-quants-golden.json', import.meta.url), 'utf8'));
    const x = Float32Array.from(g.x as number[]);
    for (const t of ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1'] as const) {
      expect(Buffer.from(fromF32(t, x, 32)).toString('hex'), t).toBe(g[t.toLowerCase()]);
    }
    // IQ4_NL as llama-quantize writes it (quantize_iq4_nl: a scale search per block), not the search-free _ref
    const iq = Buffer.from(fromF32('IQ4_NL', x, 32)).toString('hex');
    for (let b = 0; b < x.length / 32; b++) expect(iq.slice(36 * b, 36 * (b + 1)), `IQ4_NL block ${b}`).toBe((g.iq4_nl_quantize as string).slice(36 * b, 36 * (b + 1)));
  });

  it('Q5_0/Q5_1/IQ4_NL values equal ggml dequantize_row_* on its own quantizers\' bytes, bit for bit', async () => {
    const { readFileSync } = await import('node:fs');
    const g = JSON.parse(readFileSync(new URL('./fixtures/ggml-quants-golden.json', import.meta.url), 'utf8'));
    for (const t of ['Q5_0', 'Q5_1', 'IQ4_NL'] as const) {
      const key = t.toLowerCase();
      const y = toF32(t, Uint8Array.from(Buffer.from(g[key] as string, 'hex')), (g.x as number[]).length);
      expect(Array.from(y), t).toEqual(g[`${key}_dequant`]);
    }
  });

  it('Q5_1 round-trips within half a step', () => {
    const y = toF32('Q5_1', fromF32('Q5_1', Float32Array.from({ length: 32 }, (_, i) => i / 31), 32), 32);
    for (let i = 0; i < 32; i++) expect(Math.abs(y[i] - i / 31)).toBeLessThanOrEqual(0.5 / 31 + 1e-3);
  });
});
