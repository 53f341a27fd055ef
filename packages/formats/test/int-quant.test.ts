import { describe, expect, it } from 'vitest';
import { loadKernels } from '@lowbit/kernels';
import { deserializeTensor, dequantizeInt, quantizeInt, serializeTensor, type Granularity, type PackedIntTensor } from '../src/index.js';
import { errorCode, rng } from './helpers.js';

const randMat = (r: () => number, n: number) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * (r() < 0.02 ? 4 : 1));

describe('INT-k quantization', () => {
  const grans: [Granularity, number | undefined][] = [['tensor', undefined], ['per-oc', undefined], ['per-ic', undefined], ['group-cols', 32], ['group-cols', 48], ['group-rows', 16]];
  it.each([2, 3, 4, 8])('%i bits: error within half a step for every granularity, sym and asym', (bits) => {
    const r = rng(bits);
    const rows = 20;
    const cols = 100; // partial last groups along both axes
    const w = randMat(r, rows * cols);
    for (const [granularity, group] of grans) {
      for (const symmetric of [true, false]) {
        const t = quantizeInt(w, [rows, cols], { bits, symmetric, granularity, group });
        const d = dequantizeInt(t);
        for (let i = 0; i < w.length; i++) {
          const s = t.scales.length === 1 ? t.scales[0] : Math.max(...t.scales); // coarse bound
          expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(s * 0.5 * 1.0001 + (symmetric ? s : 0));
        }
        // Round trip through bytes is lossless.
        const back = deserializeTensor(serializeTensor(t));
        expect(Array.from(dequantizeInt(back as PackedIntTensor))).toEqual(Array.from(d));
      }
    }
  });

  it('asymmetric 8-bit reproduces the endpoints of each group', () => {
    const w = Float32Array.of(-1, 0.5, 3, 2, -2, 0, 7, 1);
    const d = dequantizeInt(quantizeInt(w, [2, 4], { bits: 8, symmetric: false, granularity: 'per-oc' }));
    expect(Math.abs(d[0] + 1)).toBeLessThan(0.01);
    expect(Math.abs(d[2] - 3)).toBeLessThan(0.01);
    expect(Math.abs(d[6] - 7)).toBeLessThan(0.02);
  });

  it('group-cols int4 packing is the kernels\' layout: gemvQ4 on the packed tensor = dequantize then f32 GEMV', async () => {
    const k = await loadKernels();
    const r = rng(9);
    const rows = 12;
    const cols = 160; // 5 groups of 32
    const w = randMat(r, rows * cols);
    const x = Float32Array.from({ length: cols }, () => r() * 2 - 1);
    for (const symmetric of [true, false]) {
      const t = quantizeInt(w, [rows, cols], { bits: 4, symmetric, granularity: 'group-cols', group: 32 });
      const viaKernel = k.gemvQ4(t.codes, t.scales, t.zeros, rows, cols, 32, x);
      const viaF32 = k.gemvF32(dequantizeInt(t), rows, cols, x);
      // The kernel quantizes x to int8 per group (relative error ~1/254 per element), so the two
      // agree to about 1% of the output scale, not bit for bit.
      const mag = Math.max(...viaF32.map(Math.abs));
      for (let i = 0; i < rows; i++) expect(Math.abs(viaKernel[i] - viaF32[i])).toBeLessThan(0.02 * mag);
    }
  });

  it('names bad input', () => {
    const err = errorCode;
    const w = new Float32Array(8);
    expect(err(() => quantizeInt(w, [2, 4], { bits: 9 }))).toBe('E_ARG');
    expect(err(() => quantizeInt(w, [2, 4], { bits: 4, granularity: 'group-cols', group: 0 }))).toBe('E_ARG');
    expect(err(() => quantizeInt(w, [3, 4], { bits: 4 }))).toBe('E_SHAPE');
    expect(err(() => quantizeInt(Float32Array.of(1, Number.NaN, 0, 0), [2, 2], { bits: 4 }))).toBe('E_NAN');
    const bytes = serializeTensor(quantizeInt(Float32Array.of(1, 2, 3, 4), [2, 2], { bits: 4 }));
    expect(err(() => deserializeTensor(bytes.subarray(0, bytes.length - 1)))).toBe('E_TRUNCATED');
    expect(err(() => deserializeTensor(bytes.subarray(0, 5)))).toBe('E_TRUNCATED');
    const bad = bytes.slice();
    bad[0] = 0;
    expect(err(() => deserializeTensor(bad))).toBe('E_BAD_FILE');
  });
});

describe('clipping search', () => {
  it('never does worse than min-max and clips groups with outliers', async () => {
    const { quantizeIntClipSearch } = await import('../src/index.js');
    const r = rng(4);
    const w = Float32Array.from({ length: 8 * 64 }, () => (r() * 2 - 1) * 0.1);
    w[5] = 1.5; // one outlier in row 0, group 0
    const se = (d: Float32Array) => d.reduce((s, v, i) => s + (v - w[i]) ** 2, 0);
    for (const bits of [3, 4]) {
      const base = quantizeInt(w, [8, 64], { bits, granularity: 'group-cols', group: 32 });
      const searched = quantizeIntClipSearch(w, [8, 64], { bits, granularity: 'group-cols', group: 32 });
      expect(se(dequantizeInt(searched))).toBeLessThanOrEqual(se(dequantizeInt(base)));
      expect(searched.clips.length).toBe(16);
    }
  });
});
