import { dequantizeInt, type PackedIntTensor } from '@lowbit/formats';
import { describe, expect, it } from 'vitest';
import { Gptq, createQuantizer } from '../src/index.js';
import { errorText, rng } from './helpers.js';

// Synthetic layer (unit test): 24 × 96 weights, 200 correlated samples with unequal channel scales.
function layer() {
  const r = rng(5);
  const [rows, cols, n] = [24, 96, 200];
  const w = Float32Array.from({ length: rows * cols }, r);
  const x = new Float32Array(n * cols);
  for (let s = 0; s < n; s++) {
    let a = 0;
    for (let c = 0; c < cols; c++) x[s * cols + c] = (a = 0.8 * a + r()) * (1 + (c % 6));
  }
  const stats = new Gptq(cols);
  stats.addBatch(x, n);
  return { w, shape: [rows, cols] as [number, number], stats };
}

describe('the Quantizer interface', () => {
  it('GPTQ and RTN behind one call: packed tensors that decode to Ŵ, GPTQ below RTN in output error', () => {
    const { w, shape, stats } = layer();
    const gptq = createQuantizer({ method: 'gptq', bits: 4, group: 32 });
    const rtn = createQuantizer({ method: 'rtn', bits: 4, group: 32 });
    expect([gptq.name, gptq.needsStats, rtn.name, rtn.needsStats]).toEqual(['gptq int4 g32', true, 'rtn int4 g32', false]);
    const g = gptq.quantize({ weights: w, shape, stats });
    const q = rtn.quantize({ weights: w, shape, stats });
    for (const r of [g, q]) {
      expect((r.packed as PackedIntTensor).kind).toBe('int');
      expect(dequantizeInt(r.packed as PackedIntTensor)).toEqual(r.weights);
    }
    expect(g.errOutput).toBeLessThan(q.errOutput);
    // RTN needs no statistics; without them there is no output error to report
    expect(Number.isNaN(rtn.quantize({ weights: w, shape }).errOutput)).toBe(true);
  });

  it('act-order without static groups keeps its column → group map in the packed tensor', () => {
    const { w, shape, stats } = layer();
    const r = createQuantizer({ method: 'gptq', bits: 3, group: 32, actOrder: true }).quantize({ weights: w, shape, stats });
    const p = r.packed as PackedIntTensor;
    expect(p.gIdx?.length).toBe(shape[1]);
    expect(dequantizeInt(p)).toEqual(r.weights);
  });

  it('MX: E8M0 blocks per row', () => {
    const { w, shape, stats } = layer();
    const r = createQuantizer({ method: 'gptq', format: 'mxfp4', group: 32 }).quantize({ weights: w, shape, stats });
    expect(r.packed).toMatchObject({ kind: 'mx-rows', format: 'mxfp4', shape });
  });

  it('AdaDim and clipping searches keep the candidate with the lowest score (a caller-given score too)', () => {
    const { w, shape, stats } = layer();
    const clips = [1, 0.9, 0.8, 0.7];
    const q = createQuantizer({ method: 'rtn', bits: 3, group: 0, adaDim: true, clips });
    expect(q.needsStats).toBe(true);
    const byErr = q.quantize({ weights: w, shape, stats });
    // every candidate scored by output error: the chosen one is no worse than plain per-OC RTN
    const plain = createQuantizer({ method: 'rtn', bits: 3, group: 0 }).quantize({ weights: w, shape, stats });
    expect(byErr.errOutput).toBeLessThanOrEqual(plain.errOutput);
    const seen: number[] = [];
    // Σ|ŵ| shrinks as the clipping ratio does, so this score must pick the smallest ratio
    const byScore = q.quantize({
      weights: w, shape, score: (wq) => {
        seen.push(0);
        return wq.reduce((a, v) => a + Math.abs(v), 0);
      },
    });
    expect(seen.length).toBe(2 * clips.length);
    expect(byScore.clip).toBe(0.7);
  });

  it('bad input: GPTQ without statistics, unsupported bits, wrong shape, a non-INT grid with clipping', () => {
    const { w, shape } = layer();
    expect(errorText(() => createQuantizer({ method: 'gptq', bits: 4 }).quantize({ weights: w, shape }))).toMatch(/^E_ARG gptq int4 per-channel needs the layer's calibration statistics/);
    expect(errorText(() => createQuantizer({ method: 'rtn', bits: 9 }))).toMatch(/^E_ARG INT-k quantizers take 2\.\.8 bits, got 9/);
    expect(errorText(() => createQuantizer({ method: 'rtn', bits: 4 }).quantize({ weights: w, shape: [24, 95] }))).toMatch(/^E_SHAPE .*do not fill shape \[24,95\]/);
    expect(errorText(() => createQuantizer({ method: 'rtn', format: 'mxfp4', group: 32, clips: [1, 0.9] }))).toMatch(/^E_ARG mxfp4: clipping search is for INT-k grids/);
  });
});
