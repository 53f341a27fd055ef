import { type BcqTensor, dequantizeBcq, dequantizeCodebook, dequantizeNf4, quantizeBcq, quantizeCodebook, quantizeNf4 } from '@lowbit/formats';
import { loadKernels, lut4ActBlock } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Linear } from '../src/linear.js';
import { type Lut4Host, dequantizeLut4, permuteLut4Rows } from '../src/lut-fast.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile, spikyWeights, validLines } from './helpers.js';

/** Largest step/2 of the table a weight's (row, block) uses: how far lut4's 7-bit level may move it. */
function halfSteps(w: Lut4Host): Float32Array {
  const nb = w.cols / w.block;
  const per = w.loRatio ? 1 : 2;
  return Float32Array.from({ length: w.rows * w.cols }, (_, i) => Math.abs(w.params[(Math.floor(i / w.cols) * nb + Math.floor((i % w.cols) / w.block)) * per]) / 2);
}

describe('NF4, codebook and BCQ on lut4Gemv', () => {
  const rows = 37;
  const cols = 256;
  const data = spikyWeights(rows, cols, 5);
  const shape: [number, number] = [rows, cols];
  const cases: { name: string; t: Parameters<typeof linearWeightFromPacked>[0]; exact: Float32Array }[] = [];
  const nf = quantizeNf4(data, shape, { group: 64 });
  cases.push({ name: 'NF4 g64', t: nf, exact: dequantizeNf4(nf) });
  for (const bits of [4, 3, 2]) {
    const cb = quantizeCodebook(data, shape, { bits });
    cases.push({ name: `codebook ${bits}-bit`, t: cb, exact: dequantizeCodebook(cb) });
  }
  for (const bits of [2, 3, 4]) {
    const b = quantizeBcq(data, shape, { bits, group: 128, iterations: 2 });
    cases.push({ name: `BCQ ${bits}-bit g128`, t: b, exact: dequantizeBcq(b) });
  }

  for (const c of cases) {
    it(`${c.name}: within the written bound of the exact f32 product`, async () => {
      const k = await loadKernels();
      const w = linearWeightFromPacked(c.t);
      expect(w.format).toBe('lut4');
      const host = (w as { weights: Lut4Host }).weights;
      // each weight's level is within half a step of its value (7-bit rounding of the table)
      const deq = dequantizeLut4(host);
      const hs = halfSteps(host);
      for (let i = 0; i < deq.length; i++) expect(Math.abs(deq[i] - c.exact[i])).toBeLessThanOrEqual(hs[i] * (1 + 1e-5) + 1e-7);
      const lin = new Linear(k, c.name, w);
      const x = Float32Array.from({ length: 2 * cols }, (_, i) => Math.sin(i * 0.7) * (i % 11 === 0 ? 3 : 1));
      const y = lin.apply(x, 2);
      for (let b = 0; b < 2; b++) {
        const xb = x.subarray(b * cols, (b + 1) * cols);
        const ab = lut4ActBlock(host.block);
        const amax = Array.from({ length: cols / ab }, (_, j) => Math.max(...Array.from(xb.subarray(j * ab, j * ab + ab), Math.abs)));
        for (let r = 0; r < rows; r++) {
          let exact = 0;
          let bound = 1e-5;
          for (let col = 0; col < cols; col++) {
            const v = c.exact[r * cols + col];
            exact += v * xb[col];
            // weight moved by ≤ step/2, activation by ≤ amax/254 of its activation block (int8 rounding)
            bound += hs[r * cols + col] * Math.abs(xb[col]) + (Math.abs(v) + hs[r * cols + col]) * (amax[Math.floor(col / ab)] / 254);
          }
          expect(Math.abs(y[b * rows + r] - exact)).toBeLessThanOrEqual(bound);
        }
      }
      // `source` is the tensor it came from (BCQ: its f32 values, as before it had a GEMV)
      const src = lin.source;
      if (src.format === 'f32') expect(src.data).toEqual(c.exact);
      else expect(src).toEqual({ format: 'packed', shape, tensor: c.t });
      lin.free();
    });
  }

  it('codebooks of ≤ 4 entries and BCQ of ≤ 2 planes stream 2-bit codes, the others 4-bit', () => {
    for (const c of cases) {
      const w = linearWeightFromPacked(c.t) as { format: string; weights: Lut4Host };
      expect(w.format).toBe('lut4');
      const two = c.name === 'codebook 2-bit' || c.name === 'BCQ 2-bit g128';
      expect(w.weights.codeBits ?? 4).toBe(two ? 2 : 4);
      expect(w.weights.codes.byteLength).toBe((rows * cols) / (two ? 4 : 2));
      // rows reordered or picked (rope-order.ts) carry their codes, tables and steps at either code width
      const d = dequantizeLut4(w.weights);
      for (const src of [Int32Array.from({ length: rows }, (_, r) => rows - 1 - r), Int32Array.from([1, 2])]) {
        const p = dequantizeLut4(permuteLut4Rows(w.weights, src));
        expect(p.length).toBe(src.length * cols);
        src.forEach((s, r) => expect(Array.from(p.subarray(r * cols, (r + 1) * cols))).toEqual(Array.from(d.subarray(s * cols, (s + 1) * cols))));
      }
    }
  });

  it('keeps the old paths where lut4 does not fit or tableGemv asks', () => {
    expect(linearWeightFromPacked(nf, { tableGemv: true }).format).toBe('packed');
    expect(linearWeightFromPacked(quantizeNf4(data, shape, { group: 48 })).format).toBe('packed');
    expect(linearWeightFromPacked(quantizeCodebook(data.subarray(0, 4 * 48), [4, 48], { bits: 4 })).format).toBe('packed');
    expect(linearWeightFromPacked(quantizeCodebook(data.subarray(0, 4 * 64), [4, 64], { bits: 5 })).format).toBe('packed');
    const b = cases.find((c) => c.name.startsWith('BCQ 2'))?.t as BcqTensor;
    expect(linearWeightFromPacked(b, { tableGemv: true }).format).toBe('f32');
    expect(linearWeightFromPacked(quantizeBcq(data.subarray(0, 4 * 64), [4, 64], { bits: 5, iterations: 1 })).format).toBe('f32');
    const bad = { ...nf, scales: nf.scales.slice() };
    bad.scales[3] = Number.NaN;
    expect(linearWeightFromPacked(bad).format).toBe('packed'); // the non-finite scale stays where the loaders' checks see it
  });

  it('NF4 g64 (tiles and lut4Gemv) and BCQ 3-bit on the embedded model: perplexity within 1% of the table GEMV / f32 decode', async () => {
    const text = validLines.slice(0, 2).join('\n');
    const models = await Promise.all([0, 1, 2, 3, 4].map(() => loadModel(modelFile)));
    const [nfTiles, nfTable, bcqLut, bcqF32, nfLut] = models;
    let tileLayers = 0;
    let lutLayers = 0;
    for (const l of nfTiles.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      const n = quantizeNf4(src.data, src.shape, { group: src.shape[1] % 64 === 0 ? 64 : src.shape[1] });
      const b = quantizeBcq(src.data, src.shape, { bits: 3, iterations: 2 });
      const w = linearWeightFromPacked(n);
      nfTiles.setLinear(l.name, w);
      if (nfTiles.linears().find((m) => m.name === l.name)?.format === 'nf4') tileLayers++;
      // the same layers on lut4Gemv (the form builds without relaxed SIMD run)
      const fallback = w.format === 'nf4' ? Object.assign(w.fallback, { origin: (w as { origin?: unknown }).origin }) : w;
      nfLut.setLinear(l.name, fallback as typeof w);
      if (nfLut.linears().find((m) => m.name === l.name)?.format === 'lut4') lutLayers++;
      nfTable.setLinear(l.name, linearWeightFromPacked(n, { tableGemv: true }));
      bcqLut.setLinear(l.name, linearWeightFromPacked(b));
      bcqF32.setLinear(l.name, linearWeightFromPacked(b, { decode: true }));
    }
    // ffn_down's 172 columns are no whole 32-blocks: those stay on the table GEMV
    const fit = (nfTiles.linears().length - 1) * (6 / 7);
    expect(tileLayers).toBe(nfTiles.kernels.supportsMxfp4Tiles ? fit : 0);
    expect(lutLayers).toBe(fit);
    const ppl = models.map((m) => perplexity(m, text, { ctx: 64 }).perplexity);
    for (const m of models) m.free();
    // int8 activations and 7-bit table levels against f32 (whole validation file, `lowbit-types`
    // README: NF4 and BCQ within 0.3%)
    expect(Math.abs(ppl[0] / ppl[1] - 1)).toBeLessThan(0.01);
    expect(Math.abs(ppl[4] / ppl[1] - 1)).toBeLessThan(0.01);
    expect(Math.abs(ppl[2] / ppl[3] - 1)).toBeLessThan(0.01);
  });
});
