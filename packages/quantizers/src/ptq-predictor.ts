// A PTQ quality predictor: the whole-model loss change of a mixed configuration predicted from the
// cheap per-layer features of `ptq-features.ts`, fitted on a few measured configurations.
//
// Model: ΔL(x) = Σ_f β_f·Σ_ℓ φ_f(ℓ, x_ℓ) + γ·(Σ_ℓ u(ℓ, x_ℓ))², u the relative output error, all
// coefficients ≥ 0, so the prediction is monotone in every feature. The squared term is the
// smallest model of compounding errors (quantizing every layer at 2 bits costs far more than the
// layers' single losses add up to); it is a rank-one quadratic form, so the same one-hot IQP that
// solves CLADO solves the predictor's allocation exactly (G = diag(β·φ) + γ·u·uᵀ).
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, perplexity } from '@lowbit/runtime';
import { leastSquares } from '@lowbit/solvers';
import type { CladoMeasurement } from './clado.js';
import { type PtqFeatures, rng } from './ptq-features.js';
import { f32Weights } from './source-weights.js';

export interface PredictorFit {
  /** β per feature (features.names), then γ of the squared output-error term. */
  coefficients: number[];
  names: string[];
  /** Configurations the fit saw. */
  trainCount: number;
}

export interface PredictorPoint {
  /** Choice per layer. */
  choice: number[];
  bitsPerWeight: number;
  measured: number;
  predicted: number;
  heldOut: boolean;
}

export interface PredictorReport {
  fit: PredictorFit;
  points: PredictorPoint[];
  trainCount: number;
  heldOutCount: number;
  /** Spearman rank correlation of predicted and measured ΔL on the held-out configurations. */
  spearman: number;
  /** Mean |predicted − measured| (nats) on the held-out configurations. */
  meanAbsError: number;
  /** Median |predicted − measured| / measured on the held-out configurations. */
  medianRelativeError: number;
  seconds: number;
}

/**
 * `count` random configurations spread over the whole size range: each draws a level τ uniform over
 * the candidate indices (ordered by size) and gives every layer round(τ + u), u uniform in ±1.5,
 * clamped, so both near-uniform and mixed configurations at every size are seen.
 */
export function sampleConfigurations(layers: number, choices: number, count: number, seed = 7): number[][] {
  if (!Number.isInteger(count) || count < 1) throw new LowbitError('E_ARG', `predictor: configurations must be a positive integer, got ${count}`);
  const r = rng(seed);
  return Array.from({ length: count }, () => {
    const tau = r() * (choices - 1);
    return Array.from({ length: layers }, () => Math.min(choices - 1, Math.max(0, Math.round(tau + 3 * r() - 1.5))));
  });
}

/** Candidate indices of `m` ordered by stored size (the first layer's sizes; every layer orders them alike). */
function bySize(m: CladoMeasurement): number[] {
  return m.bits.map((_, c) => c).sort((a, b) => m.candidates[0][a].sizeBits - m.candidates[0][b].sizeBits);
}

/** The loss change of each configuration on the measurement's windows (one forward pass over them per configuration). */
export function measureConfigurations(model: DecoderModel, m: CladoMeasurement, calibration: string, configs: number[][], onProgress?: (done: number, total: number) => void): Float64Array {
  const originals = m.layers.map((name) => {
    const lin = model.linear(name);
    return { shape: [lin.rows, lin.cols] as [number, number], data: Float32Array.from(f32Weights(name, lin.source).data) };
  });
  const out = new Float64Array(configs.length);
  try {
    configs.forEach((choice, i) => {
      if (choice.length !== m.layers.length) throw new LowbitError('E_SHAPE', `predictor: configuration ${i} has ${choice.length} choices for ${m.layers.length} layers`);
      m.layers.forEach((name, l) => model.setLinear(name, { format: 'f32', shape: originals[l].shape, data: m.candidates[l][choice[l]].weights }));
      // the same windows as the measurement, so baseLoss is their full-precision NLL bit for bit
      out[i] = perplexity(model, calibration, { ctx: m.ctx, maxWindows: m.windows }).nll - m.baseLoss;
      onProgress?.(i + 1, configs.length);
    });
  } finally {
    m.layers.forEach((name, l) => model.setLinear(name, { format: 'f32', shape: originals[l].shape, data: originals[l].data }));
  }
  return out;
}

/** The fit's regressors of one configuration: Σ_ℓ φ_f(ℓ, c_ℓ) per feature, then (Σ_ℓ u)². */
function regressors(f: PtqFeatures, choice: readonly number[]): number[] {
  const F = f.names.length;
  const s = new Array<number>(F).fill(0);
  choice.forEach((c, l) => {
    for (let j = 0; j < F; j++) s[j] += f.values[(l * f.choices + c) * F + j];
  });
  const u = s[f.names.indexOf('output')];
  return [...s, u * u];
}

export function predictDeltaLoss(fit: PredictorFit, f: PtqFeatures, choice: readonly number[]): number {
  return regressors(f, choice).reduce((t, v, j) => t + v * fit.coefficients[j], 0);
}

/**
 * Weighted least squares with non-negative coefficients: the residuals are divided by |ΔL| + 0.02
 * nats, so configurations from 0.01 to 5 nats weigh by relative error; a negative coefficient is
 * dropped (set to 0) and the rest refitted until none is negative (an active-set NNLS without the
 * re-entry step; with five columns it ends in at most five fits).
 */
export function fitPredictor(f: PtqFeatures, configs: number[][], deltas: ArrayLike<number>): PredictorFit {
  const m = configs.length;
  if (m !== deltas.length) throw new LowbitError('E_SHAPE', `predictor: ${m} configurations but ${deltas.length} loss changes`);
  const X = configs.map((c) => regressors(f, c));
  const n = X[0]?.length ?? 0;
  if (m < n) throw new LowbitError('E_ARG', `predictor: ${m} configurations cannot fit ${n} coefficients`);
  const w = Array.from(deltas, (y) => 1 / (Math.abs(y) + 0.02));
  // columns scaled to unit RMS so the normal equations stay well conditioned
  const scale = Array.from({ length: n }, (_, j) => Math.sqrt(X.reduce((s, r, i) => s + (r[j] * w[i]) ** 2, 0) / m) || 1);
  let free = Array.from({ length: n }, (_, j) => j);
  let coef = new Array<number>(n).fill(0);
  while (free.length > 0) {
    const M = new Float64Array(m * free.length);
    X.forEach((r, i) => free.forEach((j, k) => {
      M[i * free.length + k] = (r[j] * w[i]) / scale[j];
    }));
    const b = leastSquares(M, m, free.length, Array.from(deltas, (y, i) => y * w[i]), 1e-9);
    coef = new Array<number>(n).fill(0);
    free.forEach((j, k) => {
      coef[j] = b[k] / scale[j];
    });
    const worst = free.reduce((a, j) => (coef[j] < coef[a] ? j : a), free[0]);
    if (coef[worst] >= 0) break;
    free = free.filter((j) => j !== worst);
    coef[worst] = 0;
  }
  return { coefficients: coef, names: [...f.names, '(Σ output)²'], trainCount: m };
}

/** The predictor as the IQP's n×n matrix: xᵀGx = predictDeltaLoss for every one-hot x. */
export function predictorMatrix(fit: PredictorFit, f: PtqFeatures): Float64Array {
  const F = f.names.length;
  const n = f.values.length / F;
  const u = f.names.indexOf('output');
  const gamma = fit.coefficients[F];
  const G = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let d = 0;
    for (let j = 0; j < F; j++) d += fit.coefficients[j] * f.values[i * F + j];
    for (let j = 0; j < n; j++) G[i * n + j] = gamma * f.values[i * F + u] * f.values[j * F + u];
    G[i * n + i] += d;
  }
  return G;
}

/** Ranks with ties averaged (1-based). */
function ranks(x: ArrayLike<number>): number[] {
  const idx = Array.from(x, (_, i) => i).sort((a, b) => x[a] - x[b]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && x[idx[j + 1]] === x[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman's rank correlation (Pearson correlation of the tie-averaged ranks). */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length || a.length < 2) throw new LowbitError('E_SHAPE', `spearman: ${a.length} and ${b.length} values (equal, at least 2)`);
  const [ra, rb] = [ranks(a), ranks(b)];
  const mean = (ra.length + 1) / 2;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < ra.length; i++) {
    sab += (ra[i] - mean) * (rb[i] - mean);
    saa += (ra[i] - mean) ** 2;
    sbb += (rb[i] - mean) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

export interface PredictorOptions {
  /** Random configurations measured. Default 96. */
  configurations?: number;
  /** Fraction held out of the fit for the report. Default 1/3. */
  heldOut?: number;
  seed?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Samples and measures configurations, fits the predictor on all but the held-out ones and reports
 * its rank correlation and error on those. The configurations are measured on the CLADO
 * measurement's calibration windows (loss change in nats = change of log perplexity there).
 */
export function trainPredictor(model: DecoderModel, m: CladoMeasurement, f: PtqFeatures, calibration: string, o: PredictorOptions = {}): PredictorReport {
  const t0 = performance.now();
  const count = o.configurations ?? 96;
  const frac = o.heldOut ?? 1 / 3;
  if (!(frac >= 0 && frac < 1)) throw new LowbitError('E_ARG', `predictor: heldOut must be in [0, 1), got ${frac}`);
  const order = bySize(m);
  const configs = sampleConfigurations(m.layers.length, m.bits.length, count, o.seed).map((c) => c.map((k) => order[k]));
  const deltas = measureConfigurations(model, m, calibration, configs, o.onProgress);
  // evenly spaced held-out configurations (the sampling is random already, so no second shuffle)
  const isHeld = configs.map((_, i) => Math.floor((i + 1) * frac) > Math.floor(i * frac));
  const train = configs.map((_, i) => i).filter((i) => !isHeld[i]);
  const fit = fitPredictor(f, train.map((i) => configs[i]), train.map((i) => deltas[i]));
  const total = m.counts.reduce((a, b) => a + b, 0);
  const points: PredictorPoint[] = configs.map((choice, i) => ({
    choice, heldOut: isHeld[i], measured: deltas[i], predicted: predictDeltaLoss(fit, f, choice),
    bitsPerWeight: choice.reduce((s, c, l) => s + m.candidates[l][c].sizeBits, 0) / total,
  }));
  const test = points.filter((p) => p.heldOut);
  const abs = test.map((p) => Math.abs(p.predicted - p.measured));
  const rel = test.map((p) => Math.abs(p.predicted - p.measured) / Math.abs(p.measured)).sort((a, b) => a - b);
  return {
    fit, points, trainCount: train.length, heldOutCount: test.length,
    spearman: test.length >= 2 ? spearman(test.map((p) => p.predicted), test.map((p) => p.measured)) : Number.NaN,
    meanAbsError: abs.length ? abs.reduce((a, b) => a + b, 0) / abs.length : Number.NaN,
    medianRelativeError: rel.length ? rel[Math.floor(rel.length / 2)] : Number.NaN,
    seconds: (performance.now() - t0) / 1000,
  };
}
