// The PTQ quality predictor's parts against independent references: Spearman against hand-ranked
// data, moments against closed forms, the fit against planted coefficients, the IQP matrix against
// the predictor itself, and Hutchinson's gradient-difference probe against a loss-only second difference.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type DecoderModel, loadModel, lossAndGrad, trainParams } from '@lowbit/runtime';
import { oneHotValue } from '@lowbit/solvers';
import { beforeAll, describe, expect, it } from 'vitest';
import { calibrationWindows, fitPredictor, hutchinsonTraces, moments, predictDeltaLoss, predictorMatrix, type PtqFeatures, sampleConfigurations, spearman } from '../src/index.js';
import { rng } from '../src/ptq-features.js';

describe('spearman', () => {
  it('is ±1 for monotone data and matches a hand-ranked example with ties', () => {
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 1000])).toBeCloseTo(1, 15);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 15);
    // ranks a = [1, 2.5, 2.5, 4], b = [1, 2, 3, 4]: Pearson of the ranks = 4.5 / sqrt(4.5 · 5)
    expect(spearman([1, 2, 2, 3], [1, 2, 3, 4])).toBeCloseTo(4.5 / Math.sqrt(4.5 * 5), 15);
  });
});

describe('moments', () => {
  it('gives the closed-form kurtosis and the 3σ outlier fraction', () => {
    // ±1 equally often: every value at exactly one σ, kurtosis 1, no outlier
    expect(moments([1, -1, 1, -1])).toEqual({ kurtosis: 1, outlierRatio: 0 });
    // one spike among n − 1 zeros: kurtosis n − 2 + 1/(n − 1), the spike is the only value beyond 3σ
    const n = 100;
    const x = new Float64Array(n);
    x[0] = 5;
    const r = moments(x);
    expect(r.kurtosis).toBeCloseTo(n - 2 + 1 / (n - 1), 9);
    expect(r.outlierRatio).toBe(1 / n);
  });
});

/** Random features for L layers × K configurations, F = 4 columns as PTQ_FEATURES ('output' second). */
function syntheticFeatures(L: number, K: number): PtqFeatures {
  const r = rng(3);
  const names = ['hessian', 'output', 'output×act-kurtosis', 'weight×weight-kurtosis'];
  return { layers: [], choices: K, values: Float64Array.from({ length: L * K * names.length }, () => r()), names, windows: 0, samples: 0, seconds: 0 };
}

describe('fitPredictor', () => {
  const L = 6;
  const K = 3;
  const f = syntheticFeatures(L, K);
  const configs = sampleConfigurations(L, K, 40, 5);

  it('recovers planted non-negative coefficients exactly from noise-free loss changes', () => {
    const truth = { coefficients: [0.5, 0.2, 0, 0.1, 0.05], names: [], trainCount: 0 };
    const y = configs.map((c) => predictDeltaLoss(truth, f, c));
    const fit = fitPredictor(f, configs, y);
    // exact but for the fit's 1e-9 ridge on the scaled normal equations (~1e-7 relative)
    fit.coefficients.forEach((c, i) => expect(c).toBeCloseTo(truth.coefficients[i], 6));
    expect(fit.trainCount).toBe(40);
  });

  it('never returns a negative coefficient, and the IQP matrix reproduces every prediction', () => {
    const truth = { coefficients: [0.5, -0.3, 0.2, 0, 0.05], names: [], trainCount: 0 };
    const fit = fitPredictor(f, configs, configs.map((c) => predictDeltaLoss(truth, f, c)));
    for (const c of fit.coefficients) expect(c).toBeGreaterThanOrEqual(0);
    const G = predictorMatrix(fit, f);
    const p = { choices: Array(L).fill(K), G, sizes: new Float64Array(L * K), budget: 0 };
    for (const c of configs) expect(oneHotValue(p, c).value).toBeCloseTo(predictDeltaLoss(fit, f, c), 12);
  });

  it('samples configurations over every level', () => {
    const c = sampleConfigurations(35, 4, 64, 7);
    const means = c.map((x) => x.reduce((a, b) => a + b, 0) / x.length);
    expect(Math.min(...means)).toBeLessThan(0.7);
    expect(Math.max(...means)).toBeGreaterThan(2.3);
    for (const x of c) for (const k of x) expect(k === 0 || k === 1 || k === 2 || k === 3).toBe(true);
  });
});

describe('hutchinsonTraces', () => {
  let model: DecoderModel;
  beforeAll(async () => {
    model = await loadModel(fileURLToPath(defaultModelUrl));
  });

  it("one probe's gradient difference vᵀHv equals the loss's second difference along v", () => {
    const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const win = calibrationWindows(model, calibration, { ctx: 32, maxWindows: 1 }).windows[0];
    const name = 'blk.2.attn_v.weight';
    const est = hutchinsonTraces(model, [win], [name], { samples: 1, seed: 11 }).trace[0];
    // the same probe, drawn as hutchinsonTraces draws it
    const r = rng(11);
    const base = trainParams(model);
    const w = base.get(name) as Float32Array;
    const v = Float32Array.from(w, () => (r() < 0.5 ? -1 : 1));
    const rms = Math.sqrt(w.reduce((s, x) => s + x * x, 0) / w.length);
    // a larger step than the estimator's: the loss difference must stand well above f32 rounding of the loss
    const t = 0.05 * rms;
    const loss = (s: number) => lossAndGrad(model, win, new Map([...base, [name, Float32Array.from(w, (x, i) => x + s * t * v[i])]])).loss;
    const second = (loss(1) + loss(-1) - 2 * loss(0)) / (t * t);
    // both are vᵀHv up to O(step²) truncation (third/fourth derivatives) and f32 rounding: 10%
    expect(est).toBeGreaterThan(0);
    expect(Math.abs(est - second) / Math.abs(second)).toBeLessThan(0.1);
  });
});
