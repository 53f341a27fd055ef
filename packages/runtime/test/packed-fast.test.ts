import { type MxFormatName, dequantizeInt, dequantizeMx, quantizeInt, quantizeMx } from '@lowbit/formats';
import { loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Linear } from '../src/linear.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { dequantizeLinear } from '../src/qdec.js';
import { modelFile, validLines } from './helpers.js';

function weights(rows: number, cols: number, seed: number): Float32Array {
  let s = seed;
  // xorshift + a few large values per row so groups get different scales
  return Float32Array.from({ length: rows * cols }, (_, i) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2 ** 32 - 0.5;
    return i % 37 === 0 ? 4 * u : u * 0.1;
  });
}

describe('INT-k and MX on the integer kernels (packed-fast)', () => {
  it('INT-k repacks exactly: the weights the kernel multiplies equal the decoded tensor bit for bit', () => {
    const cases: [number, boolean, 'group-cols' | 'per-oc' | 'tensor', number, number, string][] = [
      [2, true, 'group-cols', 32, 64, 'q4_0'],
      [3, true, 'group-cols', 32, 64, 'q4_0'],
      [3, true, 'group-cols', 128, 256, 'q4_0'],
      [3, true, 'per-oc', 0, 96, 'q4_0'],
      [3, true, 'tensor', 0, 64, 'q4_0'],
      [3, false, 'group-cols', 32, 64, 'q4_0'], // u − z in [−7, 7]
      [6, false, 'group-cols', 64, 64, 'q8_0'], // u − z up to ±63
      [7, false, 'group-cols', 32, 64, 'q8_0'],
      [3, true, 'group-cols', 32, 172, 'int4'], // rows not whole 32-blocks
      [2, false, 'per-oc', 0, 172, 'int4'],
      [5, true, 'group-cols', 32, 64, 'q8_0'],
      [6, true, 'group-cols', 64, 128, 'q8_0'],
      [8, true, 'per-oc', 0, 64, 'q8_0'],
    ];
    for (const [bits, symmetric, granularity, group, cols, format] of cases) {
      const rows = 12;
      const t = quantizeInt(weights(rows, cols, bits * 1000 + cols), [rows, cols], { bits, granularity, group: group || undefined, symmetric });
      const w = linearWeightFromPacked(t);
      expect(w.format, `int${bits} ${symmetric ? 'sym' : 'asym'} ${granularity} ${group} cols ${cols}`).toBe(format);
      // exact: every value is scale·(small integer), which f32 holds exactly on both sides
      expect(dequantizeLinear('w', w)).toEqual(dequantizeInt(t));
    }
  });

  it('MX formats whose elements are int8 after a power of two run as Q8_0, exactly; FP8 and FP6 E3M2 keep the table GEMV', () => {
    const rows = 8;
    const cols = 96;
    const want: Record<MxFormatName, string> = { mxfp4: 'q8_0', mxfp6_e2m3: 'q8_0', mxint8: 'q8_0', mxfp6_e3m2: 'packed', mxfp8_e4m3: 'packed', mxfp8_e5m2: 'packed' };
    for (const [format, f] of Object.entries(want) as [MxFormatName, string][]) {
      const m = quantizeMx(weights(rows, cols, 7), { format });
      const w = linearWeightFromPacked(m, { shape: [rows, cols] });
      expect(w.format, format).toBe(f);
      // exact up to the sign of zero (MX has a −0 code, int8 has none; ±0·x adds the same)
      if (f === 'q8_0') expect(dequantizeLinear('w', w).map((v) => v + 0)).toEqual(dequantizeMx(m).map((v) => v + 0));
      // a block scale outside fp16's range (2^-24..2^15 after the element factor) keeps the exact table path
      const big = { ...m, scales: m.scales.slice() };
      big.scales[3] = 127 + 30;
      expect(linearWeightFromPacked(big, { shape: [rows, cols] }).format).toBe('packed');
    }
  });

  it('a layer on the int4 kernel and on Q4_0 tiles gives the table GEMV outputs up to int8 activation rounding', async () => {
    const k = await loadKernels();
    const rows = 16;
    for (const [symmetric, cols] of [[true, 128], [false, 172]] as const) {
      const t = quantizeInt(weights(rows, cols, 5), [rows, cols], { bits: 3, granularity: 'group-cols', group: 32, symmetric });
      const fast = new Linear(k, 'fast', linearWeightFromPacked(t));
      const table = new Linear(k, 'table', linearWeightFromPacked(t, { tableGemv: true }));
      expect(table.format).toBe('packed');
      const x = weights(1, cols, 99).map((v) => v * 10);
      const a = fast.apply(x, 1);
      const b = table.apply(x, 1);
      // activations rounded to int8 per 32 columns: each product off by ≤ |w|·amax(x)/254, so the
      // output by ≤ Σ|w|·amax/254 over the row; we allow that bound
      const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const dq = dequantizeInt(t);
      for (let r = 0; r < rows; r++) {
        let l1 = 0;
        for (let c = 0; c < cols; c++) l1 += Math.abs(dq[r * cols + c]);
        expect(Math.abs(a[r] - b[r])).toBeLessThanOrEqual((l1 * amax) / 254 + 1e-5);
      }
      fast.free();
      table.free();
    }
  });

  it('int3 g32 on the embedded model: perplexity within 1% of the table GEMV (f32 activations)', async () => {
    const text = validLines.slice(0, 2).join('\n');
    const fast = await loadModel(modelFile);
    const table = await loadModel(modelFile);
    for (const l of fast.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      const t = quantizeInt(src.data, src.shape, { bits: 3, granularity: 'group-cols', group: 32, symmetric: true });
      fast.setLinear(l.name, linearWeightFromPacked(t));
      table.setLinear(l.name, linearWeightFromPacked(t, { tableGemv: true }));
    }
    const p = perplexity(fast, text, { ctx: 64 }).perplexity;
    const q = perplexity(table, text, { ctx: 64 }).perplexity;
    // same weights, int8 activations on one side (the whole model file: 14.0693 -> 14.0896, 0.14%)
    expect(Math.abs(p / q - 1)).toBeLessThan(0.01);
  });
});
