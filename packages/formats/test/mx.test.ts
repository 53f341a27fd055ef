import { describe, expect, it } from 'vitest';
import { dequantizeMx, E8M0_NAN, getFormat, MX_FORMATS, quantizeMx } from '../src/index.js';
import { errorCode, rng } from './helpers.js';

describe('OCP MX block quantization', () => {
  it('chooses the shared scale floor(log2(amax)) − emax_elem (spec 6.3)', () => {
    const v = new Float32Array(32).fill(0.1);
    v[5] = 5; // log2(5) = 2.32 → floor 2
    // emax_elem: E2M1 2, E3M2 4, E2M3 2, E4M3 8, E5M2 15, INT8 0.
    const want = { mxfp4: 0, mxfp6_e3m2: -2, mxfp6_e2m3: 0, mxfp8_e4m3: -6, mxfp8_e5m2: -13, mxint8: 2 } as const;
    for (const [f, e] of Object.entries(want)) expect(quantizeMx(v, { format: f as never }).scales[0]).toBe(127 + e);
  });

  it('round-trips exactly what the element grid holds, and the largest value within one step', () => {
    const r = rng(1);
    for (const format of MX_FORMATS) {
      const v = Float32Array.from({ length: 100 }, () => (r() * 2 - 1) * 10 ** (r() * 6 - 3));
      const t = quantizeMx(v, { format });
      expect(t.scales.length).toBe(4); // 100 values: 3 full blocks and a partial one of 4
      const d = dequantizeMx(t);
      // Dequantized values re-quantize to themselves (idempotence on the grid).
      expect(Array.from(dequantizeMx(quantizeMx(d, { format })))).toEqual(Array.from(d));
      // Relative error of each block's largest element is at most half a mantissa step of the
      // element format (E2M1: 1 bit → 25%), the maximum being inside the normal range.
      const mbits = { mxfp4: 1, mxfp6_e3m2: 2, mxfp6_e2m3: 3, mxfp8_e4m3: 3, mxfp8_e5m2: 2, mxint8: 6 }[format];
      for (let b = 0; b < 4; b++) {
        let iMax = b * 32;
        for (let i = b * 32; i < Math.min(100, b * 32 + 32); i++) if (Math.abs(v[i]) > Math.abs(v[iMax])) iMax = i;
        expect(Math.abs(d[iMax] - v[iMax]) / Math.abs(v[iMax])).toBeLessThanOrEqual(2 ** -(mbits + 1) * 1.0001 + (format === 'mxfp4' ? 0.25 : 0));
      }
    }
  });

  it('matches the element codec on the scaled values (one rule for blocks and elements)', () => {
    const v = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.37);
    const t = quantizeMx(v, { format: 'mxfp8_e4m3' });
    const scale = 2 ** (t.scales[0] - 127);
    const codes = getFormat('fp8_e4m3').encode(v.map((x) => x / scale), { saturate: true });
    expect(Array.from(t.codes)).toEqual(Array.from(codes));
  });

  it('all-zero block: zero codes and a finite scale', () => {
    const t = quantizeMx(new Float32Array(40), { format: 'mxfp4' });
    expect(Array.from(dequantizeMx(t))).toEqual(new Array(40).fill(0));
    expect(t.scales[0]).not.toBe(E8M0_NAN);
  });

  it('a block with NaN or Inf gets the NaN scale and decodes to NaN; other blocks are untouched', () => {
    const v = new Float32Array(64).fill(1);
    v[3] = Number.NaN;
    v[40] = Number.POSITIVE_INFINITY;
    const v2 = new Float32Array(64).fill(1);
    v2[3] = Number.NaN;
    for (const vv of [v, v2]) {
      const t = quantizeMx(vv, { format: 'mxfp6_e2m3' });
      const d = dequantizeMx(t);
      expect(t.scales[0]).toBe(E8M0_NAN);
      expect(d.slice(0, 32).every(Number.isNaN)).toBe(true);
      if (vv === v2) expect(Array.from(d.slice(32))).toEqual(new Array(32).fill(1));
    }
  });

  it('tiny values use the element subnormals and the scale floor', () => {
    const v = Float32Array.of(1e-40, -3e-39, 0, 2e-38);
    const d = dequantizeMx(quantizeMx(v, { format: 'mxfp8_e4m3' }));
    for (let i = 0; i < 4; i++) expect(Math.abs(d[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 0.07 + 1e-45);
  });

  it('rejects unknown formats, wrong scales length and wrong types', () => {
    const err = errorCode;
    expect(err(() => quantizeMx(new Float32Array(4), { format: 'mxfp3' as never }))).toBe('E_FORMAT');
    const t = quantizeMx(new Float32Array(64), { format: 'mxfp4' });
    expect(err(() => dequantizeMx({ ...t, scales: new Uint8Array(1) }))).toBe('E_SHAPE');
    expect(err(() => quantizeMx([1, 2] as never, { format: 'mxfp4' }))).toBe('E_DTYPE');
  });
});
