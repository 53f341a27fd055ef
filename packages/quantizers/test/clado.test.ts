// CLADO's measurement checked against independent forward passes: every figure in G is a loss
// difference that `perplexity` (whole-model passes over the same windows) reproduces.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type DecoderModel, loadModel, perplexity } from '@lowbit/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocate, allocationRange, applyAllocation, blockMasked, withPredictorCrossTerms, budgetRange, type CladoMeasurement, isLowbitError, measureClado, predictDeltaLoss, predictorMatrix, ptqFeatures, trainPredictor } from '../src/index.js';

const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const CUT = { ctx: 64, maxWindows: 4 };
let model: DecoderModel;
let m: CladoMeasurement;

beforeAll(async () => {
  model = await loadModel(fileURLToPath(defaultModelUrl));
  // two widths keep the pairs few: 35 layers × 2, 5 blocks × 21 pairs × 4
  m = measureClado(model, { calibration, bits: [2, 4], ...CUT, pairs: 'block' });
}, 300_000);

const nll = (): number => perplexity(model, calibration, CUT).nll;

function withLayers(set: [string, Float32Array][], fn: () => number): number {
  const saved = set.map(([name]) => {
    const lin = model.linear(name);
    return { name, shape: [lin.rows, lin.cols] as [number, number], data: (lin.source as { data: Float32Array }).data };
  });
  for (const [name, w] of set) {
    const lin = model.linear(name);
    model.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data: w });
  }
  try {
    return fn();
  } finally {
    for (const s of saved) model.setLinear(s.name, { format: 'f32', shape: s.shape, data: s.data });
  }
}

describe('measureClado', () => {
  it('base loss, single-layer ΔL and pair terms match whole-model perplexity passes', () => {
    const K = 2;
    const n = m.layers.length * K;
    // BlockCalibration's loss is perplexity's NLL bit for bit; the differences are float sums of the same terms
    expect(m.baseLoss).toBe(nll());
    expect(m.evaluations).toBe(1 + 70 + 420);
    const l = m.layers.indexOf('blk.2.attn_v.weight');
    const j = m.layers.indexOf('blk.2.ffn_up.weight');
    expect(m.single[l * K]).toBeCloseTo(withLayers([[m.layers[l], m.candidates[l][0].weights]], nll) - m.baseLoss, 12);
    const joint = withLayers([[m.layers[l], m.candidates[l][0].weights], [m.layers[j], m.candidates[j][1].weights]], nll) - m.baseLoss;
    expect(m.G[l * K * n + j * K + 1]).toBeCloseTo((joint - m.single[l * K] - m.single[j * K + 1]) / 2, 12);
    expect(m.G[(j * K + 1) * n + l * K]).toBe(m.G[l * K * n + j * K + 1]);
    // pairs: 'block' leaves pairs across blocks at zero; the diagonal holds the singles
    const other = m.layers.indexOf('blk.3.ffn_up.weight');
    expect(m.G[l * K * n + other * K]).toBe(0);
    for (let i = 0; i < n; i++) expect(m.G[i * n + i]).toBe(m.single[i]);
    // int2 hurts more than int4 on every layer of this model (by at least the noise of 256 tokens)
    expect(m.layers.filter((_, t) => m.single[t * K] > m.single[t * K + 1]).length).toBeGreaterThan(30);
    // the model is left in full precision
    expect(nll()).toBe(m.baseLoss);
  });

  it("pairs 'all': a cross-block term uses the later layer's single ΔL, measured on its own block's turn", () => {
    // one width keeps it to 595 pairs; each costs the blocks from the first layer's on
    const a = measureClado(model, { calibration, bits: [2], ...CUT, pairs: 'all' });
    const n = a.layers.length;
    expect(a.pairEvaluations).toBe((n * (n - 1)) / 2);
    const l = a.layers.indexOf('blk.0.attn_q.weight');
    const j = a.layers.indexOf('blk.4.ffn_down.weight');
    expect(a.single[j]).toBeCloseTo(withLayers([[a.layers[j], a.candidates[j][0].weights]], nll) - a.baseLoss, 12);
    const joint = withLayers([[a.layers[l], a.candidates[l][0].weights], [a.layers[j], a.candidates[j][0].weights]], nll) - a.baseLoss;
    expect(a.G[l * n + j]).toBeCloseTo((joint - a.single[l] - a.single[j]) / 2, 12);
    expect(a.G[j * n + l]).toBe(a.G[l * n + j]);
    expect(nll()).toBe(a.baseLoss);
  }, 300_000);

  it('sizes are the stored INT-k tensors, and budgetRange gives the same range before measuring', () => {
    const r = allocationRange(m);
    const b = budgetRange(model, { bits: [2, 4], group: 32 });
    expect(b.minBits).toBeCloseTo(r.minBits, 12);
    expect(b.maxBytes).toBeCloseTo(r.maxBytes, 9);
    // 64-column layers: 2 bits + one f16 scale per 32 = 2.5; ffn_down's 172 columns end in a partial group
    expect(r.minBits).toBeGreaterThan(2.5);
    expect(r.minBits).toBeLessThan(2.52);
  });
});

describe('allocate', () => {
  it('every method stays within the budget; clado has the least predicted ΔL, diagonal the least additive ΔL', async () => {
    const budget = 3.2;
    const a = { clado: await allocate(m, { method: 'clado', budgetBits: budget }), diagonal: await allocate(m, { method: 'diagonal', budgetBits: budget }), greedy: await allocate(m, { method: 'greedy', budgetBits: budget }) };
    for (const x of [a.clado, a.diagonal, a.greedy]) expect(x.bitsPerWeight).toBeLessThanOrEqual(budget + 1e-12);
    expect(a.clado.solver?.status).toBe('Optimal');
    expect(a.clado.predictedDeltaLoss).toBeLessThanOrEqual(a.diagonal.predictedDeltaLoss + 1e-12);
    expect(a.clado.predictedDeltaLoss).toBeLessThanOrEqual(a.greedy.predictedDeltaLoss + 1e-12);
    expect(a.diagonal.additiveDeltaLoss).toBeLessThanOrEqual(a.greedy.additiveDeltaLoss + 1e-12);
    expect(a.greedy.solver).toBeNull();
  }, 120_000);

  it('uniform exists only at the uniform sizes; budgets outside the range name it', async () => {
    const r = allocationRange(m);
    const u = await allocate(m, { method: 'uniform', budgetBits: r.minBits });
    expect(Object.values(u.layers).every((b) => b === 2)).toBe(true);
    await expect(allocate(m, { method: 'uniform', budgetBits: (r.minBits + r.maxBits) / 2 - 0.5 })).resolves.toMatchObject({ bitsPerWeight: r.minBits });
    const err = await allocate(m, { method: 'clado', budgetBits: 2 }).catch((e: unknown) => e);
    expect(isLowbitError(err) && err.code).toBe('E_RANGE');
    expect((err as Error).message).toContain(`below the smallest configuration, ${r.minBits.toFixed(4)} bits/weight`);
    await expect(allocate(m, { method: 'clado', budgetBits: 5 })).rejects.toThrow(/above the largest configuration/);
  });

  it('applyAllocation puts the chosen candidates into the model; the predicted ΔL is within 10× of the measured one', async () => {
    const a = await allocate(m, { method: 'clado', budgetBits: 3 });
    const saved = m.layers.map((name) => ({ name, lin: model.linear(name), data: (model.linear(name).source as { data: Float32Array }).data }));
    applyAllocation(model, m, a.choice);
    const measured = nll() - m.baseLoss;
    for (const s of saved) model.setLinear(s.name, { format: 'f32', shape: [s.lin.rows, s.lin.cols], data: s.data });
    // the quadratic model is a model: report how far it is, and require only the sign and order of magnitude
    expect(measured).toBeGreaterThan(0);
    expect(a.predictedDeltaLoss).toBeGreaterThan(measured / 10);
    expect(a.predictedDeltaLoss).toBeLessThan(measured * 10);
  });

  it('blockMasked zeroes exactly the cross-block entries', () => {
    const mb = blockMasked(m);
    const K = 2;
    const n = m.layers.length * K;
    let kept = 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const same = m.layers[Math.floor(i / K)].split('.')[1] === m.layers[Math.floor(j / K)].split('.')[1];
        expect(mb.G[i * n + j]).toBe(same ? m.G[i * n + j] : 0);
        if (same && mb.G[i * n + j] !== 0) kept++;
      }
    }
    expect(kept).toBeGreaterThan(0);
  });

  it('withPredictorCrossTerms keeps the measured block entries and takes the predictor’s between blocks', () => {
    const n = m.layers.length * 2;
    const P = Float64Array.from({ length: n * n }, (_, t) => 1 + t);
    const h = withPredictorCrossTerms(m, P);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const same = m.layers[Math.floor(i / 2)].split('.')[1] === m.layers[Math.floor(j / 2)].split('.')[1];
        expect(h.G[i * n + j]).toBe(same ? m.G[i * n + j] : P[i * n + j]);
      }
    }
    expect(() => withPredictorCrossTerms(m, new Float64Array(4))).toThrow(/expected/);
  });

  it('a HiGHS time-out is flagged: the allocation found (or the greedy one when none was) within the budget, no proof of optimality', async () => {
    const a = await allocate(m, { method: 'clado', budgetBits: 3.2, timeLimit: 1e-9 });
    expect(a.timedOut).toBe(true);
    expect(a.solver?.status).toBe('Time limit reached');
    expect(a.bitsPerWeight).toBeLessThanOrEqual(3.2 + 1e-12);
    // with no incumbent the greedy allocation stands in and no gap can be given
    if (a.fallback === 'greedy') expect(a.solver?.gap).toBeNaN();
    else expect(a.solver?.gap).toBeGreaterThanOrEqual(0);
    const done = await allocate(m, { method: 'clado', budgetBits: 3.2 });
    expect(done.timedOut).toBe(false);
    expect(done.fallback).toBeNull();
  });

  it('the predictor allocates by its own fitted model: its IQP optimum is what it predicts, within the budget', async () => {
    const f = ptqFeatures(model, m, { calibration, ctx: 64, windows: 1, samples: 1 });
    expect(f.layers.map((l) => l.name)).toEqual(m.layers);
    for (const l of f.layers) expect(l.weightKurtosis).toBeGreaterThan(1);
    const r = trainPredictor(model, m, f, calibration, { configurations: 12 });
    expect(r.trainCount + r.heldOutCount).toBe(12);
    expect(r.heldOutCount).toBe(4);
    const a = await allocate(m, { method: 'predictor', budgetBits: 3.2, objective: predictorMatrix(r.fit, f) });
    expect(a.bitsPerWeight).toBeLessThanOrEqual(3.2 + 1e-12);
    expect(a.predictorDeltaLoss).toBeCloseTo(predictDeltaLoss(r.fit, f, a.choice), 12);
    await expect(allocate(m, { method: 'predictor', budgetBits: 3.2 })).rejects.toThrow(/objective matrix/);
  });
});
