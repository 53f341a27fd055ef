// Learned attention spans (Sukhbaatar et al. 2019, arXiv 1905.07799, section 3.2): head h weighs the
// key at distance x = t − j from its query by the soft mask
//   m_z(x) = clamp((R + z_h − x)/R, 0, 1)
// and renormalises, p_tj = m(t−j)·e^{s_tj} / Σ_i m(t−i)·e^{s_ti}, so keys beyond z_h + R get no weight and
// z_h is a real number a gradient can move. The loss adds an L1 penalty λ/M·Σ_h z_h (M heads per layer,
// the sum over every layer's heads: the paper's eq., and its code's λ·Σ_layers mean_h z). Here the
// model is frozen and only z is trained (with `jointLr`, the weights too), on windows of the training
// text; the hard span the kernel runs is then ⌈z_h + R⌉ keys (the mask's support), every key inside
// at full weight.
//
// The mask enters the training path as its attention op (a TrainMath whose `attention` and
// `attentionBackward` wrap those of a base math), so trainForward/trainBackward run unchanged:
// - forward: scores as attentionForward, softmax of s + log m (m = 0: weight 0);
// - backward: the mask is an additive log term, so dq, dk, dv follow from the masked probs by the
//   unmasked formulas (the base's attentionBackward, kernel or loops); and for z,
//   ∂L/∂m_tj = (p_tj/m_tj)·(dP_tj − Σ_i p_ti dP_ti) with dP_tj = dO_t·v_j, times ∂m/∂z = 1/R on the
//   ramp z < x < z + R (0 where the clamp is flat).
import { LowbitError } from '@lowbit/kernels';
import { attentionBackward, trainBackward } from './backward.js';
import type { LlamaConfig, DecoderModel } from './model.js';
import { tokenizeDocuments } from './perplexity.js';
import { type TrainMath, type TrainParams, type Vec, attentionForward, gatherHead, trainForward, trainParams, wasmMath } from './train-forward.js';
import { AdamW, applyTrainParams } from './train.js';

/** m_z(x) = clamp((R + z − x)/R, 0, 1). */
export function softMask(x: number, z: number, ramp: number): number {
  return Math.min(1, Math.max(0, (ramp + z - x) / ramp));
}

/** The hard span of a learned z: the mask's support, ⌈z + R⌉ keys (the query's own included), at least 1. */
export function spanOf(z: number, ramp: number): number {
  return Math.max(1, Math.ceil(z + ramp));
}

/**
 * Causal GQA attention with head h's keys weighed by softMask(t − j, z[h], ramp) (z: this layer's
 * nHeads values): writes out (n, nHeads·headDim) and the masked softmax probs (nHeads, n, n).
 */
export function maskedAttentionForward(math: TrainMath, q: Vec, k: Vec, v: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, z: ArrayLike<number>, ramp: number, out: Vec, probs: Vec): void {
  // keys at distance ≥ z + R have m = 0; z ≥ 0 keeps the query's own key (x = 0, m = 1)
  attentionForward(math, q, k, v, n, nHeads, nKvHeads, headDim, out, probs, {
    firstKey: (h, t) => Math.max(0, t - spanOf(z[h], ramp) + 1),
    weight: (h, x) => softMask(x, z[h], ramp),
  });
}

/** Adds ∂L/∂z_h of one layer (see the file head) into dz (this layer's nHeads values). */
export function maskedAttentionSpanGrad(math: TrainMath, v: Vec, probs: Vec, dOut: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, z: ArrayLike<number>, ramp: number, dz: Float64Array): void {
  const group = nHeads / nKvHeads;
  const vh = math.alloc(n * headDim);
  const doh = math.alloc(n * headDim);
  const dpb = math.alloc(n * n);
  for (let g = 0; g < nKvHeads; g++) {
    gatherHead(v, n, nKvHeads, headDim, g, vh);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const p = probs.subarray(h * n * n, (h + 1) * n * n);
      const dp = math.matmul(vh, n, headDim, gatherHead(dOut, n, nHeads, headDim, h, doh), n, dpb); // dp[t, j] = dO_t·v_j
      let acc = 0;
      for (let t = 0; t < n; t++) {
        const o = t * n;
        let rowsum = 0;
        for (let j = 0; j <= t; j++) rowsum += p[o + j] * dp[o + j];
        // the ramp's interior: z < x < z + R, x = t − j
        const lo = Math.max(0, Math.floor(t - z[h] - ramp) + 1);
        const hi = Math.min(t, Math.ceil(t - z[h]) - 1);
        for (let j = lo; j <= hi; j++) {
          const m = softMask(t - j, z[h], ramp);
          if (m > 0 && m < 1) acc += (p[o + j] / m) * (dp[o + j] - rowsum);
        }
      }
      dz[h] += acc / ramp;
    }
  }
}

/**
 * A TrainMath whose attention is the soft-masked one (z: nLayers × nHeads spans in tokens), on
 * `base`'s matmuls. trainForward calls `attention` once per layer in layer order; the layer of each
 * backward call is found by its probs array. `dz` collects ∂(cross-entropy)/∂z over the backward.
 */
export function softMaskMath(base: TrainMath, c: LlamaConfig, z: ArrayLike<number>, ramp: number): TrainMath & { dz: Float64Array } {
  const { nHeads, nLayers } = c;
  const layerOf = new Map<Vec, number>();
  const dz = new Float64Array(nLayers * nHeads);
  const zOf = (l: number) => Array.from({ length: nHeads }, (_, h) => z[l * nHeads + h]);
  return {
    precision: base.precision,
    alloc: (n) => base.alloc(n),
    matmul: (w, rows, cols, x, batch, out) => base.matmul(w, rows, cols, x, batch, out),
    dz,
    attention(q, k, v, n, nh, nkv, headDim, out, probs) {
      const l = layerOf.size;
      if (l >= nLayers) throw new LowbitError('E_ARG', `soft-mask attention: a pass called attention more than ${nLayers} times (one math object per pass)`);
      layerOf.set(probs, l);
      maskedAttentionForward(base, q, k, v, n, nh, nkv, headDim, zOf(l), ramp, out, probs);
    },
    attentionBackward(q, k, v, probs, dOut, n, nh, nkv, headDim, dq, dk, dv) {
      const l = layerOf.get(probs);
      if (l === undefined) throw new LowbitError('E_ARG', 'soft-mask attention: backward of probs this math did not make');
      attentionBackward(base, q, k, v, probs, dOut, n, nh, nkv, headDim, dq, dk, dv);
      maskedAttentionSpanGrad(base, v, probs, dOut, n, nh, nkv, headDim, zOf(l), ramp, dz.subarray(l * nHeads, (l + 1) * nHeads));
    },
  };
}

/** Checks z (nLayers × nHeads, each in [0, maxSpan]), the ramp (> 0) and the penalty (≥ 0). */
export function checkSoftMask(c: LlamaConfig, z: ArrayLike<number>, ramp: number, penalty: number, maxSpan = c.contextLength): void {
  if (!(Number.isFinite(ramp) && ramp > 0 && ramp <= c.contextLength)) throw new LowbitError('E_RANGE', `spans: ramp ${ramp} is outside (0, ${c.contextLength}] (the model's context)`);
  if (!(Number.isFinite(penalty) && penalty >= 0)) throw new LowbitError('E_RANGE', `spans: penalty ${penalty} must be a finite number ≥ 0`);
  if (z.length !== c.nLayers * c.nHeads) throw new LowbitError('E_SHAPE', `spans: z has ${z.length} values, the model has nLayers × nHeads = ${c.nLayers * c.nHeads}`);
  for (let i = 0; i < z.length; i++) {
    if (!(z[i] >= 0 && z[i] <= maxSpan)) throw new LowbitError('E_RANGE', `spans: z of layer ${Math.floor(i / c.nHeads)} head ${i % c.nHeads} is ${z[i]}, outside [0, ${maxSpan}]`);
  }
}

export interface SoftMaskLoss {
  /** Mean next-token cross-entropy (nats) of the window under the soft mask. */
  loss: number;
  /** loss + λ/M·Σ z. */
  objective: number;
  /** ∂objective/∂z, nLayers × nHeads. */
  dz: Float64Array;
  /** ∂loss/∂weight under the mask, by tensor name (joint training). */
  grads: Map<string, Vec>;
}

/**
 * The soft-masked loss of one window and its gradients w.r.t. z and every weight. `math`:
 * wasmMath(kernels) (f32) or f64Math() (checks).
 */
export function softMaskLossAndGrad(c: LlamaConfig, params: TrainParams, tokens: readonly number[], z: ArrayLike<number>, ramp: number, penalty: number, math: TrainMath): SoftMaskLoss {
  checkSoftMask(c, z, ramp, penalty);
  const mm = softMaskMath(math, c, z, ramp);
  const act = trainForward(c, params, tokens, mm);
  const grads = trainBackward(c, params, act, mm);
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += z[i];
  const dz = mm.dz;
  for (let i = 0; i < dz.length; i++) dz[i] += penalty / c.nHeads;
  return { loss: act.loss, objective: act.loss + (penalty / c.nHeads) * sum, dz, grads };
}

export interface LearnSpansOptions {
  /** Optimizer steps (default 200). */
  steps?: number;
  /** λ of the L1 penalty λ/M·Σ z (nats per token of span; default 5e-5). */
  penalty?: number;
  /** Ramp R of the soft mask, in tokens (default 32, the paper's). */
  ramp?: number;
  /** Window length (default 256); z lies in [0, ctx], starting at ctx (full attention). */
  ctx?: number;
  /** Windows averaged per step (default 1). */
  windows?: number;
  /** Adam's peak learning rate on z/ctx (default 0.02: ~5 tokens a step at ctx 256), cosine-decayed to a tenth. */
  lr?: number;
  /**
   * Also fine-tune every weight with the mask on (AdamW at this peak learning rate, cosine to a
   * tenth, gradient clip 1), written back into the model at the end; absent: the model stays frozen.
   */
  jointLr?: number;
  onStep?: (s: { step: number; loss: number; meanZ: number }) => void;
}

export interface LearnedSpans {
  /** Learned z, nLayers × nHeads, in tokens. */
  z: Float64Array;
  /** ⌈z + R⌉, capped at the model's context (Session's `spans`). */
  spans: Int32Array;
  /** Cross-entropy of each step's windows under the soft mask, before its update. */
  losses: number[];
  tokens: number;
  seconds: number;
}

/**
 * Learns z per head on `text` (the model frozen, f32 on its kernels): AdamW (no decay, no clip) on
 * u = z/ctx, clamped to [0, 1] after every step as the paper's code does, windows of the text's
 * documents (BOS per line, as `perplexity`) taken in order and cycled.
 */
export function learnSpans(model: DecoderModel, text: string, options: LearnSpansOptions = {}): LearnedSpans {
  const c = model.config;
  const steps = options.steps ?? 200;
  const penalty = options.penalty ?? 5e-5;
  const ramp = options.ramp ?? 32;
  const ctx = options.ctx ?? Math.min(256, c.contextLength);
  const windows = options.windows ?? 1;
  if (!(Number.isSafeInteger(steps) && steps >= 1 && steps <= 1e6)) throw new LowbitError('E_RANGE', `learnSpans: steps ${steps} is outside 1..1000000`);
  if (!(Number.isSafeInteger(ctx) && ctx >= 2 && ctx <= c.contextLength)) throw new LowbitError('E_RANGE', `learnSpans: ctx ${ctx} is outside 2..${c.contextLength}`);
  if (!(Number.isSafeInteger(windows) && windows >= 1 && windows <= 4096)) throw new LowbitError('E_RANGE', `learnSpans: windows ${windows} is outside 1..4096`);
  const u = new Float32Array(c.nLayers * c.nHeads).fill(1);
  checkSoftMask(c, u, ramp, penalty);
  const ids = tokenizeDocuments(model, text);
  if (ids.length < ctx + 1) throw new LowbitError('E_ARG', `learnSpans: the text gives ${ids.length} tokens, fewer than one window of ${ctx} + 1`);
  const params = trainParams(model);
  const math = wasmMath(model.kernels);
  const opt = new AdamW(new Map([['z', u]]), { lr: options.lr ?? 0.02, steps, weightDecay: 0, clip: 0 });
  // AdamW checks the rate (0, 1]
  const wopt = options.jointLr === undefined ? undefined : new AdamW(params, { lr: options.jointLr, steps, weightDecay: 0, clip: 1 });
  const wgrads = wopt && new Map([...params].map(([k, p]) => [k, new Float32Array(p.length)]));
  const z = new Float64Array(u.length);
  const losses: number[] = [];
  const t0 = performance.now();
  let at = 0;
  let tokens = 0;
  for (let s = 0; s < steps; s++) {
    for (let i = 0; i < u.length; i++) z[i] = u[i] * ctx;
    const grad = new Float32Array(u.length);
    for (const g of wgrads?.values() ?? []) g.fill(0);
    let loss = 0;
    for (let w = 0; w < windows; w++) {
      if (at + ctx + 1 > ids.length) at = 0;
      const r = softMaskLossAndGrad(c, params, ids.slice(at, at + ctx + 1), z, ramp, penalty, math);
      if (!Number.isFinite(r.loss)) throw new LowbitError('E_NAN', `learnSpans: step ${s} gave loss ${r.loss}`);
      at += ctx;
      tokens += ctx;
      loss += r.loss / windows;
      // ∂/∂u = ctx·∂/∂z
      for (let i = 0; i < grad.length; i++) grad[i] += (ctx * r.dz[i]) / windows;
      if (wgrads) {
        for (const [name, g] of r.grads) {
          const a = wgrads.get(name) as Float32Array;
          for (let i = 0; i < g.length; i++) a[i] += g[i] / windows;
        }
      }
    }
    opt.step(new Map([['z', grad]]));
    if (wopt && wgrads) wopt.step(wgrads);
    for (let i = 0; i < u.length; i++) u[i] = Math.min(1, Math.max(0, u[i]));
    losses.push(loss);
    options.onStep?.({ step: s, loss, meanZ: (u.reduce((a, b) => a + b, 0) / u.length) * ctx });
  }
  for (let i = 0; i < u.length; i++) z[i] = u[i] * ctx;
  if (wopt) applyTrainParams(model, params);
  const spans = Int32Array.from(z, (zi) => Math.min(c.contextLength, spanOf(zi, ramp)));
  return { z, spans, losses, tokens, seconds: (performance.now() - t0) / 1000 };
}
