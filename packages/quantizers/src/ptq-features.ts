// Cheap per-layer × per-configuration features for predicting post-quantization quality (the PTQ
// scaling-law idea: quality after quantization follows local loss-landscape statistics). Everything
// here costs a handful of forward/backward passes, never a forward pass per configuration.
//
// Hessian trace: Hutchinson's estimator of the loss Hessian's block trace, tr(H_ℓℓ) = E[vᵀ H_ℓℓ v]
// over Rademacher v, with H·v from central differences of the runtime's gradients (lossAndGrad):
// H·v ≈ (∇L(W + εv) − ∇L(W − εv)) / 2ε, error O(ε²). One perturbation of every allocated layer at
// once gives every layer's block trace (the cross-layer terms vanish in expectation since the
// layers' v are independent). The layer-local Hessian XᵀX that GPTQ uses enters separately, through
// the output error ‖(W − Ŵ)Xᵀ‖².
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, lossAndGrad, trainForward, trainParams, wasmMath } from '@lowbit/runtime';
import { calibrationWindows } from './calibrate.js';
import type { CladoMeasurement } from './clado.js';
import { gramMatrix, outputError } from './layer-error.js';

export interface PtqFeatureOptions {
  /** Text the statistics are taken on (the calibration text, never the validation text). */
  calibration: string;
  /** Window length in tokens. Default 128. */
  ctx?: number;
  /** Windows for the activation statistics and the Hessian trace. Default 8. */
  windows?: number;
  /** Hutchinson probe vectors per window. Default 8 (64 probes in all: on stories260K 16 left standard errors as large as the traces). */
  samples?: number;
  /** Finite-difference step, relative to each layer's weight RMS. Default 1e-2 (see `hutchinsonTraces`). */
  epsilon?: number;
  seed?: number;
}

/** Per-layer statistics that do not depend on the configuration. */
export interface LayerStatistics {
  name: string;
  count: number;
  /** Pearson kurtosis E[(w − μ)⁴]/σ⁴ of the weights (3 for a Gaussian). */
  weightKurtosis: number;
  /** Fraction of weights farther than 3σ from the mean (0.0027 for a Gaussian). */
  weightOutlierRatio: number;
  /** Kurtosis of the layer's input activations over every token and channel of the windows. */
  activationKurtosis: number;
  /** Fraction of input activations farther than 3σ from the mean. */
  activationOutlierRatio: number;
  /** Hutchinson estimate of tr(∂²L/∂W²) for this layer's weights (L: mean next-token NLL, nats). */
  hessianTrace: number;
  /** Its standard error over the probes. */
  hessianTraceStderr: number;
  /** Mean squared layer output ‖W·xᵀ‖² per token (the scale of the output error). */
  outputEnergy: number;
}

/** Named columns of the feature matrix, one row per (layer, configuration). */
export const PTQ_FEATURES = [
  // ½·(tr H/n)·‖W − Ŵ‖²: the second-order loss change under an isotropic Hessian (HAWQ-V2's measure)
  'hessian',
  // ‖(W − Ŵ)Xᵀ‖² / ‖WXᵀ‖²: the layer's relative quantization output error (GPTQ's objective)
  'output',
  // the relative output error weighted by the input's kurtosis / 3 (outlier-heavy inputs amplify it)
  'output×act-kurtosis',
  // ‖W − Ŵ‖²/‖W‖² weighted by the weight kurtosis / 3
  'weight×weight-kurtosis',
] as const;

export interface PtqFeatures {
  layers: LayerStatistics[];
  /** Candidate configurations per layer (the measurement's). */
  choices: number;
  /** values[(l·K + c)·F + f] for feature f of layer l at configuration c. */
  values: Float64Array;
  names: readonly string[];
  windows: number;
  samples: number;
  seconds: number;
}

const INPUT_OF: Record<string, 'xb' | 'xa' | 'xb2' | 'h'> = { attn_q: 'xb', attn_k: 'xb', attn_v: 'xb', attn_output: 'xa', ffn_gate: 'xb2', ffn_up: 'xb2', ffn_down: 'h' };

/** Moments of a sample: kurtosis and the fraction beyond 3σ. */
export function moments(x: ArrayLike<number>): { kurtosis: number; outlierRatio: number } {
  const n = x.length;
  if (n < 2) throw new LowbitError('E_ARG', `moments: ${n} values (at least 2)`);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let m2 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = (x[i] - mean) ** 2;
    m2 += d;
    m4 += d * d;
  }
  m2 /= n;
  m4 /= n;
  if (!(m2 > 0)) return { kurtosis: 0, outlierRatio: 0 };
  const cut = 9 * m2;
  let out = 0;
  for (let i = 0; i < n; i++) if ((x[i] - mean) ** 2 > cut) out++;
  return { kurtosis: m4 / (m2 * m2), outlierRatio: out / n };
}

/** Deterministic xorshift32 stream in [0, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * Hutchinson block traces of the loss Hessian for the named layers, with their standard errors.
 * ε is relative to each layer's weight RMS (1e-2: the f32 gradients' rounding, ~1e-7 relative,
 * stays far below the difference, and the O(ε²) truncation is small; checked against a quadratic
 * whose trace is known in the tests).
 */
export function hutchinsonTraces(model: DecoderModel, windows: number[][], names: string[], o: { samples?: number; epsilon?: number; seed?: number } = {}): { trace: number[]; stderr: number[] } {
  const samples = o.samples ?? 4;
  if (!Number.isInteger(samples) || samples < 1) throw new LowbitError('E_ARG', `hutchinson: samples must be a positive integer, got ${samples}`);
  const base = trainParams(model);
  const rand = rng(o.seed ?? 1);
  const eps = names.map((name) => {
    const w = base.get(name);
    if (!w) throw new LowbitError('E_MISSING', `hutchinson: the model has no trainable tensor ${name}`);
    let s = 0;
    for (let i = 0; i < w.length; i++) s += w[i] * w[i];
    return (o.epsilon ?? 1e-2) * Math.sqrt(s / w.length);
  });
  const est: number[][] = names.map(() => []);
  for (const win of windows) {
    for (let s = 0; s < samples; s++) {
      const v = names.map((name) => Float32Array.from({ length: (base.get(name) as Float32Array).length }, () => (rand() < 0.5 ? -1 : 1)));
      const shifted = (sign: number) => new Map([...base].map(([k, w]) => {
        const l = names.indexOf(k);
        return [k, l < 0 ? w : Float32Array.from(w, (x, i) => x + sign * eps[l] * v[l][i])];
      }));
      const gp = lossAndGrad(model, win, shifted(1)).grads;
      const gm = lossAndGrad(model, win, shifted(-1)).grads;
      names.forEach((name, l) => {
        const [a, b] = [gp.get(name) as Float32Array, gm.get(name) as Float32Array];
        let t = 0;
        for (let i = 0; i < a.length; i++) t += v[l][i] * (a[i] - b[i]);
        est[l].push(t / (2 * eps[l]));
      });
    }
  }
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  return {
    trace: est.map(mean),
    stderr: est.map((x) => {
      const m = mean(x);
      return x.length > 1 ? Math.sqrt(x.reduce((s, y) => s + (y - m) ** 2, 0) / (x.length - 1) / x.length) : Number.NaN;
    }),
  };
}

/**
 * The features of every (layer, configuration) of a CLADO measurement: one training forward per
 * window for the activation statistics and the Gram matrices, 2·samples forward+backward passes per
 * window for the Hessian traces. The model must hold its full-precision weights (as `measureClado`
 * leaves it).
 */
export function ptqFeatures(model: DecoderModel, m: CladoMeasurement, o: PtqFeatureOptions): PtqFeatures {
  const t0 = performance.now();
  const { windows } = calibrationWindows(model, o.calibration, { ctx: o.ctx ?? 128, maxWindows: o.windows ?? 8 });
  const params = trainParams(model);
  const math = wasmMath(model.kernels);
  const L = m.layers.length;
  const K = m.bits.length;
  const shapes = m.layers.map((name) => {
    const lin = model.linear(name);
    return [lin.rows, lin.cols] as [number, number];
  });
  const kinds = m.layers.map((name) => {
    const k = INPUT_OF[/^blk\.\d+\.(\w+)\.weight$/.exec(name)?.[1] ?? ''];
    if (!k) throw new LowbitError('E_UNSUPPORTED', `ptq features: ${name} is not a linear inside a Llama block`);
    return k;
  });
  const grams = shapes.map(([, cols]) => new Float64Array(cols * cols));
  // every input activation is kept (f32) for its kurtosis and 3σ count: windows × tokens × cols per layer
  const capacity = windows.reduce((s, w) => s + w.length - 1, 0);
  const inputs = shapes.map(([, cols]) => new Float32Array(capacity * cols));
  let tokens = 0;
  for (const win of windows) {
    const act = trainForward(model.config, params, win, math);
    m.layers.forEach((name, l) => {
      const blk = Number(/^blk\.(\d+)\./.exec(name)?.[1]);
      const x = act.layers[blk][kinds[l]];
      const g = gramMatrix(x, act.n, shapes[l][1]);
      for (let i = 0; i < g.length; i++) grams[l][i] += g[i];
      inputs[l].set(x, tokens * shapes[l][1]);
    });
    tokens += act.n;
  }
  for (const g of grams) for (let i = 0; i < g.length; i++) g[i] /= tokens;
  const samples = o.samples ?? 8;
  const ht = hutchinsonTraces(model, windows, m.layers, { samples, epsilon: o.epsilon, seed: o.seed });
  const F = PTQ_FEATURES.length;
  const values = new Float64Array(L * K * F);
  const layers: LayerStatistics[] = m.layers.map((name, l) => {
    const w = params.get(name) as Float32Array;
    const wm = moments(w);
    const am = moments(inputs[l]);
    const zero = new Float32Array(w.length);
    const energy = outputError(w, zero, shapes[l], grams[l]);
    let wNorm = 0;
    for (let i = 0; i < w.length; i++) wNorm += w[i] * w[i];
    for (let c = 0; c < K; c++) {
      const wq = m.candidates[l][c].weights;
      let d2 = 0;
      for (let i = 0; i < w.length; i++) d2 += (w[i] - wq[i]) ** 2;
      const rel = outputError(w, wq, shapes[l], grams[l]) / energy;
      const row = (l * K + c) * F;
      // the Hessian at a trained minimum is PSD: a negative block trace is estimator noise, read as 0
      values[row] = 0.5 * (Math.max(0, ht.trace[l]) / w.length) * d2;
      values[row + 1] = rel;
      values[row + 2] = (rel * am.kurtosis) / 3;
      values[row + 3] = ((d2 / wNorm) * wm.kurtosis) / 3;
    }
    return {
      name, count: w.length, weightKurtosis: wm.kurtosis, weightOutlierRatio: wm.outlierRatio,
      activationKurtosis: am.kurtosis, activationOutlierRatio: am.outlierRatio,
      hessianTrace: ht.trace[l], hessianTraceStderr: ht.stderr[l], outputEnergy: energy,
    };
  });
  return { layers, choices: K, values, names: PTQ_FEATURES, windows: windows.length, samples, seconds: (performance.now() - t0) / 1000 };
}
