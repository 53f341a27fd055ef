// Block granularity and embedding-row buckets: the block program is the layer program restricted to
// one choice per block (checked on every block choice), and each measured bucket term is a loss
// difference that independent whole-model passes reproduce.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type DecoderModel, loadModel, perplexity, tokenizeDocuments } from '@lowbit/runtime';
import { oneHotValue } from '@lowbit/solvers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  allocate, applyEmbeddingChoice, blockMeasurement, type CladoMeasurement, cladoProblem, type EmbeddingMeasurement, expandBlockChoice, frequencyBuckets, measureBlocks, measureClado,
  measureEmbeddingBuckets, mergeMeasurements,
} from '../src/index.js';

/** Layers over two blocks plus one layer outside blocks, G with cross terms everywhere. */
function synthetic(seed: number, bits = [2, 4, 8]): CladoMeasurement {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const names = ['blk.0.attn_q.weight', 'blk.0.ffn_up.weight', 'blk.1.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.ffn_up.weight', 'output.weight'];
  const K = bits.length;
  const n = names.length * K;
  const G = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      if (i !== j && Math.floor(i / K) === Math.floor(j / K)) continue;
      G[i * n + j] = G[j * n + i] = i === j ? 1 + r() : r() - 0.5;
    }
  }
  return {
    layers: names, counts: names.map((_, l) => 64 * (l + 1)), bits, formats: bits.map((b) => `int${b}`),
    candidates: names.map((_, l) => bits.map((b) => ({ bits: b, format: `int${b}`, weights: new Float32Array(0), packed: null, sizeBits: 64 * (l + 1) * (b + 0.5) }))),
    single: Float64Array.from({ length: n }, (_, i) => G[i * n + i]), G,
  } as unknown as CladoMeasurement;
}

describe('blockMeasurement', () => {
  it('gives every block choice the loss and size of the same choice expanded to its layers', () => {
    const m = synthetic(3);
    const b = blockMeasurement(m);
    expect(b.measurement.layers).toEqual(['blk.0', 'blk.1', 'output.weight']);
    expect(b.members).toEqual([[0, 1], [2, 3, 4], [5]]);
    const [pl, pb] = [cladoProblem(m, 0), cladoProblem(b.measurement, 0)];
    for (let code = 0; code < 27; code++) {
      const choice = [code % 3, Math.floor(code / 3) % 3, Math.floor(code / 9)];
      const vb = oneHotValue(pb, choice);
      const vl = oneHotValue(pl, expandBlockChoice(b, choice));
      // the same sums in another order
      expect(vb.value).toBeCloseTo(vl.value, 12);
      expect(vb.size).toBe(vl.size);
    }
  });

  it('allocating blocks under a budget keeps every layer of a block at one width', async () => {
    const b = blockMeasurement(synthetic(5));
    const a = await allocate(b.measurement, { budgetBits: 5 });
    const layers = expandBlockChoice(b, a.choice);
    expect(layers.slice(0, 2).every((c) => c === a.choice[0])).toBe(true);
    expect(layers.slice(2, 5).every((c) => c === a.choice[1])).toBe(true);
    expect(a.bitsPerWeight).toBeLessThanOrEqual(5);
  });
});

describe('embedding-row buckets on the embedded model', () => {
  let model: DecoderModel;
  let e: EmbeddingMeasurement;
  let before: number;
  const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
  const CUT = { ctx: 32, maxWindows: 1 };
  beforeAll(async () => {
    model = await loadModel(fileURLToPath(defaultModelUrl));
    before = perplexity(model, calibration, CUT).nll;
    e = measureEmbeddingBuckets(model, { calibration, bits: [2, 8], buckets: 2, ...CUT });
  }, 60_000);

  it('buckets partition the vocabulary, most frequent tokens first', () => {
    const { rows, share } = frequencyBuckets(model, calibration, 4);
    const all = rows.flatMap((r) => [...r]).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: model.config.vocabSize }, (_, i) => i));
    const count = new Map<number, number>();
    for (const id of tokenizeDocuments(model, calibration)) count.set(id, (count.get(id) ?? 0) + 1);
    for (let b = 0; b + 1 < rows.length; b++) {
      const least = Math.min(...[...rows[b]].map((id) => count.get(id) ?? 0));
      const most = Math.max(...[...rows[b + 1]].map((id) => count.get(id) ?? 0));
      expect(least).toBeGreaterThanOrEqual(most);
    }
    // shares are counts over the total: they add up to 1 (f64 rounding)
    expect(share.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
    expect(rows[0].length).toBeLessThan(rows[3].length);
  });

  it('singles and pair terms match whole-model passes with the chosen rows; the model is left as it was', () => {
    expect(e.baseLoss).toBe(before);
    expect(perplexity(model, calibration, CUT).nll).toBe(before);
    expect(e.evaluations).toBe(1 + 4 + 4);
    const saved = model.weights.tokenEmbd;
    try {
      for (const [c0, c1] of [[0, 0], [0, 1], [1, 0]]) {
        applyEmbeddingChoice(model, e, [c0, c1]);
        const joint = perplexity(model, calibration, CUT).nll - before;
        const n = 4;
        const predicted = e.single[c0] + e.single[2 + c1] + 2 * e.G[c0 * n + 2 + c1];
        // a pair term is defined from this very joint loss: equal up to f64 rounding of the sums
        expect(joint).toBeCloseTo(predicted, 10);
      }
    } finally {
      model.weights.tokenEmbd = saved;
    }
    // stored bits: int2 g32 with f16 scales is 2.5 bits per weight, int8 8.5
    expect(e.candidates[0][0].sizeBits / e.counts[0]).toBeCloseTo(2.5, 12);
    expect(e.candidates[0][1].sizeBits / e.counts[0]).toBeCloseTo(8.5, 12);
  }, 60_000);

  it('measured block terms are whole-model loss differences with those blocks quantized', () => {
    const m = measureClado(model, { calibration, bits: [2, 8], pairs: 'none', ...CUT });
    const b = measureBlocks(model, m, { calibration });
    expect(b.measurement.layers).toEqual(['blk.0', 'blk.1', 'blk.2', 'blk.3', 'blk.4']);
    expect(perplexity(model, calibration, CUT).nll).toBe(before);
    const nb = 10;
    const G = b.measurement.G;
    const saved = m.layers.map((name) => ({ name, w: model.linear(name).source }));
    try {
      // blk.1 at int2 and blk.3 at int8, by hand
      b.members[1].forEach((l) => model.setLinear(m.layers[l], { format: 'f32', shape: [model.linear(m.layers[l]).rows, model.linear(m.layers[l]).cols], data: m.candidates[l][0].weights }));
      b.members[3].forEach((l) => model.setLinear(m.layers[l], { format: 'f32', shape: [model.linear(m.layers[l]).rows, model.linear(m.layers[l]).cols], data: m.candidates[l][1].weights }));
      const joint = perplexity(model, calibration, CUT).nll - before;
      // BlockCalibration's loss equals perplexity's bit for bit; the pair term is defined from this joint loss
      expect(joint).toBeCloseTo(G[2 * nb + 2] + G[7 * nb + 7] + 2 * G[2 * nb + 7], 10);
    } finally {
      for (const { name, w } of saved) model.setLinear(name, w);
    }
  }, 120_000);

  it('merges with a layer measurement block-diagonally; different windows are refused', () => {
    const m = { ...synthetic(7, [2, 8]), baseLoss: e.baseLoss, windows: e.windows, ctx: e.ctx };
    const merged = mergeMeasurements(m, e);
    // 6 layers × 2 choices, then 2 buckets × 2
    const [na, n] = [12, 16];
    expect(merged.layers.length).toBe(8);
    expect(merged.G[2 * n + 5]).toBe(m.G[2 * na + 5]);
    expect(merged.G[(na + 1) * n + na + 3]).toBe(e.G[1 * 4 + 3]);
    expect(merged.G[1 * n + na + 1]).toBe(0);
    expect(() => mergeMeasurements({ ...m, baseLoss: m.baseLoss + 1 }, e)).toThrow(/base losses differ/);
  }, 60_000);
});
