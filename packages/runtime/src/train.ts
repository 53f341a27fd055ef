// AdamW with a warmup + cosine learning-rate schedule, and a plain fine-tuning loop over windows of
// a training text (lossAndGrad each step, weights written back into the model at the end).
//
// Schedule (step s = 0, 1, …, steps−1):
//   s < warmup:  lr·(s+1)/warmup                                   (linear warmup)
//   otherwise:   minLr + (lr − minLr)·½(1 + cos(π·(s − warmup)/(steps − warmup)))   (cosine decay)
// Update (Loshchilov & Hutter, decoupled weight decay), per tensor:
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  m̂ = m/(1−β1^t);  v̂ = v/(1−β2^t)
//   w −= lr_s·(m̂/(√v̂ + ε) + λ·w)   with λ only on matrices (linears, embeddings), not on norm gains.
// Gradients are first clipped to a global L2 norm of `clip` (if > 0).
import { LowbitError } from '@lowbit/kernels';
import { lossAndGrad } from './backward.js';
import { fromF32 } from './ggml-quants.js';
import { saveModel } from './gguf-convert.js';
import { type SafetensorsTensorToWrite, readSafetensors, readSafetensorsF32, writeSafetensors } from './safetensors.js';
import type { DecoderModel } from './model.js';
import { trainParams } from './train-forward.js';

export interface AdamWOptions {
  /** Peak learning rate, in (0, 1]. */
  lr: number;
  /** Total steps of the schedule (≥ 1). */
  steps: number;
  /** Linear-warmup steps, 0..steps. Default 0. */
  warmup?: number;
  /** Floor of the cosine decay. Default lr/10. */
  minLr?: number;
  beta1?: number; // default 0.9
  beta2?: number; // default 0.95
  eps?: number; // default 1e-8
  /** Decoupled weight decay λ on matrices. Default 0. */
  weightDecay?: number;
  /** Global gradient-norm clip; 0 = none. Default 1. */
  clip?: number;
}

export class AdamW {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private t = 0;
  readonly o: Required<AdamWOptions>;

  constructor(
    readonly params: Map<string, Float32Array>,
    options: AdamWOptions,
  ) {
    const o = { warmup: 0, minLr: options.lr / 10, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0, clip: 1, ...options };
    const inRange = (what: string, v: number, lo: number, hi: number, loOpen = false) => {
      if (!(Number.isFinite(v) && (loOpen ? v > lo : v >= lo) && v <= hi)) throw new LowbitError('E_RANGE', `AdamW: ${what} is ${v}, outside ${loOpen ? '(' : '['}${lo}, ${hi}]`);
    };
    inRange('learning rate', o.lr, 0, 1, true);
    if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new LowbitError('E_RANGE', `AdamW: steps is ${o.steps}, not a positive integer`);
    if (!Number.isSafeInteger(o.warmup) || o.warmup < 0 || o.warmup > o.steps) throw new LowbitError('E_RANGE', `AdamW: warmup is ${o.warmup}, not an integer in [0, ${o.steps}]`);
    inRange('minLr', o.minLr, 0, o.lr);
    inRange('beta1', o.beta1, 0, 1 - 1e-12);
    inRange('beta2', o.beta2, 0, 1 - 1e-12);
    inRange('eps', o.eps, 0, 1, true);
    inRange('weightDecay', o.weightDecay, 0, 1);
    inRange('clip', o.clip, 0, Number.MAX_VALUE);
    this.o = o;
    for (const [name, p] of params) {
      this.m.set(name, new Float32Array(p.length));
      this.v.set(name, new Float32Array(p.length));
    }
  }

  /** Steps taken so far. */
  get stepsTaken(): number {
    return this.t;
  }

  /** The moments and step count, for a checkpoint (copies). */
  state(): { t: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> } {
    const copy = (x: Map<string, Float32Array>) => new Map([...x].map(([k, a]) => [k, Float32Array.from(a)]));
    return { t: this.t, m: copy(this.m), v: copy(this.v) };
  }

  /** Restores state() output: every tensor's moments at its size, 0 ≤ t ≤ steps. */
  load(st: { t: number; m: Map<string, Float32Array>; v: Map<string, Float32Array> }): void {
    if (!Number.isSafeInteger(st.t) || st.t < 0 || st.t > this.o.steps) throw new LowbitError('E_RANGE', `AdamW: checkpoint step ${st.t} is outside 0..${this.o.steps}`);
    for (const [name, p] of this.params) {
      for (const [what, src, dst] of [['m', st.m, this.m], ['v', st.v, this.v]] as const) {
        const a = src.get(name);
        if (!a || a.length !== p.length) throw new LowbitError('E_SHAPE', `AdamW: checkpoint moment ${what} of ${name} is ${a ? `${a.length} values, the tensor has ${p.length}` : 'missing'}`);
        (dst.get(name) as Float32Array).set(a);
      }
    }
    this.t = st.t;
  }

  /** The learning rate of step s (0-based) under the schedule above. */
  lrAt(s: number): number {
    const { lr, minLr, warmup, steps } = this.o;
    if (s < warmup) return (lr * (s + 1)) / warmup;
    const span = steps - warmup;
    const f = span <= 1 ? 0 : Math.min(1, (s - warmup) / (span - 1));
    return minLr + (lr - minLr) * 0.5 * (1 + Math.cos(Math.PI * f));
  }

  /** Applies one update with `grads` (same names and sizes as params); returns the pre-clip gradient norm. */
  step(grads: Map<string, Float32Array>): number {
    const { beta1: b1, beta2: b2, eps, weightDecay, clip } = this.o;
    let ss = 0;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g || g.length !== p.length) throw new LowbitError('E_SHAPE', `AdamW: gradient of ${name} is ${g ? `${g.length} values, the tensor has ${p.length}` : 'missing'}`);
      for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
    }
    const norm = Math.sqrt(ss);
    if (!Number.isFinite(norm)) throw new LowbitError('E_NAN', `AdamW: the gradient norm is ${norm}; the weights are left as they were`);
    const gs = clip > 0 && norm > clip ? clip / norm : 1;
    const lr = this.lrAt(this.t);
    this.t++;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (const [name, p] of this.params) {
      const g = grads.get(name) as Float32Array;
      const m = this.m.get(name) as Float32Array;
      const v = this.v.get(name) as Float32Array;
      const decay = name.endsWith('_norm.weight') ? 0 : weightDecay;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * gs;
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        p[i] -= lr * (m[i] / c1 / (Math.sqrt(v[i] / c2) + eps) + decay * p[i]);
      }
    }
    return norm;
  }
}

/** Writes trained params (trainParams' names and layout) back into the model's weights. */
export function applyTrainParams(model: DecoderModel, params: Map<string, Float32Array>): void {
  const c = model.config;
  const w = model.weights;
  for (const lin of model.linears()) {
    const p = params.get(lin.name);
    if (p) model.setLinear(lin.name, { format: 'f32', shape: [lin.rows, lin.cols], data: Float32Array.from(p) });
  }
  w.layers.forEach((l, i) => {
    l.attnNorm.set(params.get(`blk.${i}.attn_norm.weight`) as Float32Array);
    l.ffnNorm.set(params.get(`blk.${i}.ffn_norm.weight`) as Float32Array);
  });
  w.outputNorm.set(params.get('output_norm.weight') as Float32Array);
  const emb = params.get('token_embd.weight') as Float32Array;
  // trained rows leave a bucketed (per-row INT-k) embedding's grid: they are kept as F32
  const type = w.tokenEmbd.type === 'buckets' ? 'F32' : w.tokenEmbd.type;
  w.tokenEmbd = { type, data: fromF32(type, emb, c.dim, `${model.name}: token_embd.weight`), rowBytes: w.tokenEmbd.type === 'buckets' ? c.dim * 4 : w.tokenEmbd.rowBytes };
  // a tied output layer is the embedding: rebuild it from the trained rows
  if (!params.has('output.weight')) model.setLinear('output.weight', { format: 'f32', shape: [c.vocabSize, c.dim], data: Float32Array.from(emb) });
}

export interface FinetuneOptions extends Omit<AdamWOptions, 'steps'> {
  /** Optimizer steps (the schedule's length). */
  steps: number;
  /** Tokens per window (predictions per window). Default 256, at most the model's context. */
  ctx?: number;
  /** Windows whose gradients are averaged into each step (gradient accumulation). Default 1. */
  accumulate?: number;
  /**
   * Every `every` steps (and after the last), write the model as GGUF to `path` and the optimizer
   * state (AdamW moments, step, text position) to `path`.adamw.safetensors, each atomically.
   */
  checkpoint?: { path: string; every: number };
  /** An optimizer-state file a checkpoint wrote: continue from its step (pass the checkpoint's model). */
  resume?: string;
  /** Called after each step with its loss (mean over its windows, before the update) and learning rate. */
  onStep?: (s: { step: number; loss: number; lr: number; gradNorm: number }) => void;
  /** Hooks that turn the loop into a quantization method (QAT, INQ, AlphaTuning, projections). */
  hooks?: TrainHooks;
  /** Checked after each step: once aborted, the loop writes a checkpoint (if configured) and returns with `stopped`. */
  signal?: AbortSignal;
}

/**
 * What a quantization method changes in the loop. Without hooks every weight is trained as is.
 * With them AdamW updates `params` (any tensors: latent weights, per-group scales), the forward and
 * backward run on `forward(params)`, and `backward` maps the gradients of those weights back to
 * params (the straight-through estimator is the identity; AlphaTuning sums over bit-planes).
 */
export interface TrainHooks {
  /** The tensors AdamW updates. Default trainParams(model). */
  params?: Map<string, Float32Array>;
  /** The model weights (trainParams' names and layout) the forward sees at step s. Default: params. */
  forward?(params: Map<string, Float32Array>, step: number): Map<string, Float32Array>;
  /** Gradients w.r.t. the forward's weights → gradients w.r.t. params (same names and sizes as params). Default identity. */
  backward?(grads: Map<string, Float32Array>, step: number): Map<string, Float32Array>;
  /** After each update (step s done): projections onto a grid, frozen weights put back. */
  afterStep?(params: Map<string, Float32Array>, step: number): void;
  /** The model weights written into the model and its checkpoints. Default: params. */
  weights?(params: Map<string, Float32Array>): Map<string, Float32Array>;
  /**
   * The method's own state beyond params that a resumed run needs (INQ's pretrained weights that
   * fix its partition, AlphaTuning's sign planes): checkpoints store it in the optimizer-state file
   * as `h.<name>`, and `resume` hands it to loadState before the first step.
   */
  state?(): Map<string, Float32Array>;
  loadState?(state: Map<string, Float32Array>): void;
}

export interface FinetuneResult {
  /** Loss of each step taken in this call. */
  losses: number[];
  tokens: number;
  seconds: number;
  /** True when `signal` stopped the loop before `steps`. */
  stopped: boolean;
}

async function writeOptimizerState(path: string, opt: AdamW, at: number, hooks: TrainHooks): Promise<void> {
  const st = opt.state();
  const tensors: SafetensorsTensorToWrite[] = [];
  for (const [name, t] of hooks.state?.() ?? []) tensors.push({ name: `h.${name}`, dtype: 'F32', shape: [t.length], data: t });
  for (const [name, m] of st.m) {
    // the trained tensors themselves too: with hooks they are not what the model file holds (latent weights, scales)
    tensors.push({ name: `p.${name}`, dtype: 'F32', shape: [m.length], data: opt.params.get(name) as Float32Array });
    tensors.push({ name: `m.${name}`, dtype: 'F32', shape: [m.length], data: m });
    tensors.push({ name: `v.${name}`, dtype: 'F32', shape: [m.length], data: st.v.get(name) as Float32Array });
  }
  await writeSafetensors(path, tensors, { 'lowbit.adamw.step': String(st.t), 'lowbit.adamw.text_position': String(at) });
}

async function readOptimizerState(path: string, opt: AdamW, hooks: TrainHooks): Promise<number> {
  const f = await readSafetensors(path);
  const meta = (key: string) => {
    const v = Number(f.metadata?.[key]);
    if (!Number.isSafeInteger(v) || v < 0) throw new LowbitError('E_BAD_FILE', `${path}: metadata ${key} is ${f.metadata?.[key]}, not a non-negative integer`);
    return v;
  };
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  for (const name of opt.params.keys()) {
    m.set(name, await readSafetensorsF32(f, `m.${name}`));
    v.set(name, await readSafetensorsF32(f, `v.${name}`));
  }
  opt.load({ t: meta('lowbit.adamw.step'), m, v });
  if (hooks.loadState) {
    const want = hooks.state?.() ?? new Map<string, Float32Array>();
    const st = new Map<string, Float32Array>();
    for (const [name, t] of want) {
      if (!f.tensors.has(`h.${name}`)) throw new LowbitError('E_BAD_FILE', `${path}: the method's state tensor h.${name} is missing (a checkpoint of another method or grid?)`);
      const a = await readSafetensorsF32(f, `h.${name}`);
      if (a.length !== t.length) throw new LowbitError('E_SHAPE', `${path}: tensor h.${name} has ${a.length} values, the method needs ${t.length}`);
      st.set(name, a);
    }
    hooks.loadState(st);
  }
  for (const [name, p] of opt.params) {
    if (!f.tensors.has(`p.${name}`)) continue; // a state file from before the params were stored: the model holds them
    const a = await readSafetensorsF32(f, `p.${name}`);
    if (a.length !== p.length) throw new LowbitError('E_SHAPE', `${path}: tensor p.${name} has ${a.length} values, the trained tensor has ${p.length}`);
    p.set(a);
  }
  return meta('lowbit.adamw.text_position');
}

/**
 * Fine-tunes every weight of `model` with AdamW on consecutive windows of `text` (cycling when the
 * text runs out), `accumulate` windows per step, then writes the weights back into the model. A
 * NaN/Inf loss stops with E_NAN before it reaches the weights: the model keeps its weights from
 * before this call, or those of the last checkpoint written (each checkpoint also updates the
 * model), and that checkpoint's files stay whole.
 */
export async function finetune(model: DecoderModel, text: string, options: FinetuneOptions): Promise<FinetuneResult> {
  const ctx = options.ctx ?? Math.min(256, model.config.contextLength);
  if (!Number.isSafeInteger(ctx) || ctx < 1 || ctx > model.config.contextLength) throw new LowbitError('E_RANGE', `finetune: ctx ${ctx} is outside 1..${model.config.contextLength}`);
  const acc = options.accumulate ?? 1;
  if (!Number.isSafeInteger(acc) || acc < 1 || acc > 65536) throw new LowbitError('E_RANGE', `finetune: accumulate ${acc} is outside 1..65536`);
  const cp = options.checkpoint;
  if (cp && (!Number.isSafeInteger(cp.every) || cp.every < 1)) throw new LowbitError('E_RANGE', `finetune: checkpoint every ${cp.every} steps is not a positive integer`);
  const ids = model.tokenizer.encode(text, { bos: true });
  if (ids.length < 2) throw new LowbitError('E_ARG', `finetune: the training text gives ${ids.length} token(s); at least 2 are needed`);
  const h = options.hooks ?? {};
  const params = h.params ?? trainParams(model);
  const forward = h.forward ?? ((p: Map<string, Float32Array>) => p);
  const backward = h.backward ?? ((g: Map<string, Float32Array>) => g);
  const weights = h.weights ?? ((p: Map<string, Float32Array>) => p);
  const opt = new AdamW(params, options);
  let at = options.resume ? await readOptimizerState(options.resume, opt, h) : 0;
  if (at >= ids.length) throw new LowbitError('E_RANGE', `finetune: the checkpoint's text position ${at} is past this text's ${ids.length} tokens (resume with the same text)`);
  const t0 = performance.now();
  const losses: number[] = [];
  let tokens = 0;
  let stopped = false;
  for (let s = opt.stepsTaken; s < options.steps; s++) {
    let grads: Map<string, Float32Array> | undefined;
    let loss = 0;
    const fwd = forward(params, s);
    for (let w = 0; w < acc; w++) {
      if (at + 1 >= ids.length) at = 0;
      const win = ids.slice(at, at + ctx + 1);
      at += ctx;
      const r = lossAndGrad(model, win, fwd);
      if (!Number.isFinite(r.loss)) throw new LowbitError('E_NAN', `finetune: step ${s} gave loss ${r.loss}; stopped before it reached the weights: the model keeps ${cp ? 'those of the last checkpoint written (or from before fine-tuning if none was)' : 'its weights from before fine-tuning'}`);
      loss += r.loss / acc;
      tokens += win.length - 1;
      if (!grads) grads = r.grads;
      else for (const [name, g] of r.grads) {
        const a = grads.get(name) as Float32Array;
        for (let i = 0; i < g.length; i++) a[i] += g[i];
      }
    }
    const gs = grads as Map<string, Float32Array>;
    if (acc > 1) for (const g of gs.values()) for (let i = 0; i < g.length; i++) g[i] /= acc;
    const lr = opt.lrAt(s);
    const gradNorm = opt.step(backward(gs, s));
    h.afterStep?.(params, s);
    losses.push(loss);
    options.onStep?.({ step: s, loss, lr, gradNorm });
    stopped = options.signal?.aborted === true && s + 1 < options.steps;
    if (cp && ((s + 1) % cp.every === 0 || s + 1 === options.steps || stopped)) {
      applyTrainParams(model, weights(params));
      await saveModel(model, cp.path);
      await writeOptimizerState(`${cp.path}.adamw.safetensors`, opt, at, h);
    }
    if (stopped) break;
  }
  applyTrainParams(model, weights(params));
  return { losses, tokens, seconds: (performance.now() - t0) / 1000, stopped };
}
