// The Llama forward for training: the same math as forward.ts (embed → per layer [RMSNorm → Q,K,V →
// RoPE → causal GQA attention → Wo → residual → RMSNorm → SwiGLU → residual] → RMSNorm → logits →
// cross-entropy), over one window of tokens, on plain weight arrays that a trainer can change in
// place, keeping every activation backward.ts needs. The inference Session is left alone: it runs
// on resident (possibly packed) weights and a KV cache, and keeps nothing.
//
// Every op is written once over `Vec` (f32 or f64 arrays) and takes its matmuls from a TrainMath:
// `wasmMath` (f32, the WASM matmulF32 kernel) is the product path, `f64Math` (TypeScript loops in
// f64) lets the tests check gradients by finite differences far below f32 rounding.
import { type Kernels, LowbitError, trainAttentionBackward, trainAttentionForward, trainCrossEntropy, trainSwigluBackward, trainSwigluForward } from '@lowbit/kernels';
import type { LlamaConfig, DecoderModel } from './model.js';

export type Vec = Float32Array | Float64Array;

/** Where a training pass gets its arrays and its matmuls. */
export interface TrainMath {
  readonly precision: 'f32' | 'f64';
  alloc(n: number): Vec;
  /** out[b, r] = Σc w[r, c]·x[b, c]; w [rows, cols], x [batch, cols], out [batch, rows] (a fresh array unless given, then overwritten). */
  matmul(w: Vec, rows: number, cols: number, x: Vec, batch: number, out?: Vec): Vec;
  /** Causal GQA attention in one call (writes out and probs), where the math has a fused kernel; attentionForward's loops otherwise. */
  attention?(q: Vec, k: Vec, v: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, out: Vec, probs: Vec): void;
  /** Its backward (writes dq, dk, dv), as attentionBackward. */
  attentionBackward?(q: Vec, k: Vec, v: Vec, probs: Vec, dOut: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, dq: Vec, dk: Vec, dv: Vec): void;
  /** swigluForward, swigluBackward and crossEntropyForward in kernels, where the math has them. */
  swiglu?(g: Vec, u: Vec, out: Vec): void;
  swigluBackward?(g: Vec, u: Vec, dh: Vec, dg: Vec, du: Vec): void;
  crossEntropy?(logits: Vec, targets: readonly number[], vocab: number, probs: Vec): number;
}

/** f64 TypeScript loops: slow, for checks (finite differences) on tiny models. */
export function f64Math(): TrainMath {
  return {
    precision: 'f64',
    alloc: (n) => new Float64Array(n),
    matmul(w, rows, cols, x, batch, into) {
      const out = into ?? new Float64Array(batch * rows);
      for (let b = 0; b < batch; b++) {
        for (let r = 0; r < rows; r++) {
          let s = 0;
          for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[b * cols + c];
          out[b * rows + r] = s;
        }
      }
      return out;
    },
  };
}

/**
 * f32 buffers reused from one pass to the next: arrays from `alloc` (zeroed) stay valid until
 * `release()`, which hands them all back. Fresh multi-megabyte arrays each pass page-fault and feed
 * the garbage collector: together ~14% of a stories260K training step's CPU time in a profile.
 */
export class TrainArena {
  private readonly free = new Map<number, Float32Array[]>();
  private used: Float32Array[] = [];

  alloc(n: number): Float32Array {
    const a = this.free.get(n)?.pop();
    if (a) a.fill(0);
    const r = a ?? new Float32Array(n);
    this.used.push(r);
    return r;
  }

  release(): void {
    for (const a of this.used) {
      const l = this.free.get(a.length);
      if (l) l.push(a);
      else this.free.set(a.length, [a]);
    }
    this.used = [];
  }
}

/**
 * f32 on the WASM kernels (matmulF32, threads where the kernels have a pool). With an `arena`, every
 * array the pass allocates (activations, matmul outputs) comes from it: valid until its release().
 */
export function wasmMath(kernels: Kernels, arena?: TrainArena): TrainMath {
  const f32 = (v: Vec) => (v instanceof Float32Array ? v : Float32Array.from(v));
  const alloc = arena ? (n: number) => arena.alloc(n) : (n: number) => new Float32Array(n);
  return {
    precision: 'f32',
    alloc,
    matmul(w, rows, cols, x, batch, out) {
      if (out !== undefined && !(out instanceof Float32Array)) throw new LowbitError('E_DTYPE', 'wasmMath.matmul: out must be a Float32Array');
      return kernels.matmulF32(f32(w), rows, cols, f32(x), batch, out ?? (arena ? alloc(batch * rows) : undefined));
    },
    attention(q, k, v, n, nHeads, nKvHeads, headDim, out, probs) {
      trainAttentionForward(kernels, { n, nHeads, nKvHeads, headDim }, f32(q), f32(k), f32(v), out as Float32Array, probs as Float32Array);
    },
    attentionBackward(q, k, v, probs, dOut, n, nHeads, nKvHeads, headDim, dq, dk, dv) {
      trainAttentionBackward(kernels, { n, nHeads, nKvHeads, headDim }, f32(q), f32(k), f32(v), f32(probs), f32(dOut), dq as Float32Array, dk as Float32Array, dv as Float32Array);
    },
    swiglu: (g, u, out) => trainSwigluForward(kernels, f32(g), f32(u), out as Float32Array),
    swigluBackward: (g, u, dh, dg, du) => trainSwigluBackward(kernels, f32(g), f32(u), f32(dh), dg as Float32Array, du as Float32Array),
    crossEntropy: (logits, targets, vocab, probs) => trainCrossEntropy(kernels, f32(logits), targets, vocab, probs as Float32Array),
  };
}

/**
 * A row-major copy of a [rows, cols] matrix as [cols, rows], in 16×16 tiles: a row-by-row copy
 * writes with a stride of `rows` and missed the cache on most stores (a 256×172 activation: 143 µs
 * plain, 59 µs tiled, measured in Node 20).
 */
export function transpose(a: Vec, rows: number, cols: number, out: Vec): Vec {
  const T = 16;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = a[r * cols + c];
    }
  }
  return out;
}

// ---- ops (forward) ----

/** y = w·x/rms(x) per row of n; returns the per-row 1/rms the backward needs. */
export function rmsnormForward(x: Vec, w: Vec, n: number, rows: number, eps: number, out: Vec): Float64Array {
  const inv = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const s = 1 / Math.sqrt(ss / n + eps);
    inv[r] = s;
    for (let i = 0; i < n; i++) out[o + i] = w[i] * (s * x[o + i]);
  }
  return inv;
}

/** RoPE tables for positions 0..n−1: cos and sin of p·θ^(−2i/ropeDim), (n, ropeDim/2). */
export function ropeTables(n: number, ropeDim: number, theta: number): { cos: Float64Array; sin: Float64Array } {
  const half = ropeDim / 2;
  const cos = new Float64Array(n * half);
  const sin = new Float64Array(n * half);
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < half; i++) {
      const a = p * theta ** ((-2 * i) / ropeDim);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * Rotates adjacent pairs (2i, 2i+1) of the leading ropeDim dims of each head in place, by +angle
 * (forward) or −angle (`inverse`: the backward, since a rotation's transpose is its inverse).
 */
export function rope(v: Vec, n: number, heads: number, headDim: number, ropeDim: number, t: { cos: Float64Array; sin: Float64Array }, inverse = false): void {
  const half = ropeDim / 2;
  const sign = inverse ? -1 : 1;
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < heads; h++) {
      const o = (p * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const c = t.cos[p * half + i];
        const s = sign * t.sin[p * half + i];
        const a = v[o + 2 * i];
        const b = v[o + 2 * i + 1];
        v[o + 2 * i] = a * c - b * s;
        v[o + 2 * i + 1] = a * s + b * c;
      }
    }
  }
}

/** Copies head h's columns [h·headDim, (h+1)·headDim) of x (n, heads·headDim) out as (n, headDim), or their transpose (headDim, n). */
export function gatherHead(x: Vec, n: number, heads: number, headDim: number, h: number, out: Vec, transposed = false): Vec {
  const w = heads * headDim;
  for (let t = 0; t < n; t++) {
    for (let d = 0; d < headDim; d++) {
      const v = x[t * w + h * headDim + d];
      if (transposed) out[d * n + t] = v;
      else out[t * headDim + d] = v;
    }
  }
  return out;
}

/** Per-head key weights for attentionForward: keys j < firstKey(h, t) weigh 0, the others weight(h, t − j) ≥ 0 (query's own key > 0). */
export interface KeyMask {
  firstKey(h: number, t: number): number;
  weight(h: number, distance: number): number;
}

/**
 * Causal grouped-query attention over n tokens at positions 0..n−1 (head h reads KV head
 * h / (nHeads/nKvHeads), as the WASM kernel). q (n, nHeads·headDim), k and v (n, nKvHeads·headDim);
 * writes out (n, nHeads·headDim) and the softmax weights probs (nHeads, n, n), zero above the diagonal.
 * Per head, the scores S = Q·Kᵀ and the output P·V are two matmuls on `math` (the full n×n square:
 * twice the causal work, but on the SIMD kernel that beats a JS triangle loop over 8-wide heads).
 * With a `mask`, head h's key at distance x from its query is weighed by mask.weight(h, x) before the
 * softmax renormalises, and keys before mask.firstKey(h, t) get none (learned spans); the loops then
 * run even where the math has a fused kernel.
 */
export function attentionForward(math: TrainMath, q: Vec, k: Vec, v: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, out: Vec, probs: Vec, mask?: KeyMask): void {
  if (math.attention && !mask) return math.attention(q, k, v, n, nHeads, nKvHeads, headDim, out, probs);
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const kh = math.alloc(n * headDim);
  const vt = math.alloc(headDim * n);
  const qh = math.alloc(n * headDim);
  const sb = math.alloc(n * n);
  const ob = math.alloc(n * headDim);
  for (let g = 0; g < nKvHeads; g++) {
    gatherHead(k, n, nKvHeads, headDim, g, kh);
    gatherHead(v, n, nKvHeads, headDim, g, vt, true);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const s = math.matmul(kh, n, headDim, gatherHead(q, n, nHeads, headDim, h, qh), n, sb); // s[t, j] = q_t·k_j
      const p = probs.subarray(h * n * n, (h + 1) * n * n);
      for (let t = 0; t < n; t++) {
        const o = t * n;
        const first = mask ? mask.firstKey(h, t) : 0;
        let max = -Infinity;
        for (let j = first; j <= t; j++) if (s[o + j] > max) max = s[o + j];
        let sum = 0;
        for (let j = first; j <= t; j++) {
          const e = mask ? mask.weight(h, t - j) * Math.exp((s[o + j] - max) * scale) : Math.exp((s[o + j] - max) * scale);
          p[o + j] = e;
          sum += e;
        }
        for (let j = first; j <= t; j++) p[o + j] /= sum;
        for (let j = 0; j < first; j++) p[o + j] = 0;
        for (let j = t + 1; j < n; j++) p[o + j] = 0;
      }
      const oh = math.matmul(vt, headDim, n, p, n, ob); // oh[t, d] = Σj p[t, j]·v[j, d]
      for (let t = 0; t < n; t++) for (let d = 0; d < headDim; d++) out[(t * nHeads + h) * headDim + d] = oh[t * headDim + d];
    }
  }
}

/** silu(g)·u elementwise into out. */
export function swigluForward(g: Vec, u: Vec, out: Vec): void {
  for (let i = 0; i < g.length; i++) out[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
}

/**
 * Mean over rows of −log softmax(logits[t])[targets[t]]; logits (rows, vocab). Returns the loss and
 * the softmax probabilities (overwriting nothing), which the backward turns into dlogits.
 */
export function crossEntropyForward(logits: Vec, targets: readonly number[], vocab: number, probs: Vec): number {
  const rows = targets.length;
  let loss = 0;
  for (let t = 0; t < rows; t++) {
    const o = t * vocab;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[o + i] > max) max = logits[o + i];
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[o + i] - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < vocab; i++) probs[o + i] = Math.exp(logits[o + i] - lse);
    loss += lse - logits[o + targets[t]];
  }
  return loss / rows;
}

// ---- parameters ----

/** A model's weights as plain arrays by GGUF tensor name; `output.weight` absent when tied to `token_embd.weight`. */
export type TrainParams = Map<string, Vec>;

export const layerTensorNames = (l: number): string[] =>
  ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'].map((t) => `blk.${l}.${t}.weight`);

/**
 * f32 copies of every weight of a Llama (RMSNorm, RoPE, SwiGLU) model, GGUF-named: linears as
 * [rows, cols], token_embd as [vocab, dim], norms as [dim]. Packed or quantized linears are
 * refused: training needs the f32 values (load the f32/f16 model, or dequantize it first).
 */
export function trainParams(model: DecoderModel): Map<string, Float32Array> {
  const c = model.config;
  if (c.variant) throw new LowbitError('E_UNSUPPORTED', `${model.name}: training supports Llama-style models (RMSNorm, RoPE, SwiGLU), not the ${c.architecture} variant`);
  const w = model.weights;
  const p = new Map<string, Float32Array>();
  const emb = new Float32Array(c.vocabSize * c.dim);
  for (let t = 0; t < c.vocabSize; t++) model.embed(t, emb, t * c.dim);
  p.set('token_embd.weight', emb);
  const tied = model.gguf !== undefined && !model.gguf.tensors.has('output.weight');
  for (const lin of model.linears()) {
    if (tied && lin.name === 'output.weight') continue;
    if (lin.bias) throw new LowbitError('E_UNSUPPORTED', `${model.name}: ${lin.name} has a bias; training supports bias-free Llama linears`);
    const s = lin.source;
    if (s.format !== 'f32') {
      throw new LowbitError('E_UNSUPPORTED', `${model.name}: ${lin.name} holds ${s.format} weights; training needs f32 weights (load an f32/f16 model or dequantize it to f32 first)`);
    }
    p.set(lin.name, Float32Array.from(s.data));
  }
  w.layers.forEach((l, i) => {
    if (!l.w1) throw new LowbitError('E_UNSUPPORTED', `${model.name}: block ${i} has no gate (ffn_gate); training supports SwiGLU`);
    p.set(`blk.${i}.attn_norm.weight`, Float32Array.from(l.attnNorm));
    p.set(`blk.${i}.ffn_norm.weight`, Float32Array.from(l.ffnNorm));
  });
  p.set('output_norm.weight', Float32Array.from(w.outputNorm));
  return p;
}

/** Throws unless params holds every tensor of config at its size. */
export function checkTrainParams(c: LlamaConfig, params: TrainParams): void {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = c;
  const kvDim = nKvHeads * headDim;
  const want = new Map<string, number>([['token_embd.weight', vocabSize * dim], ['output_norm.weight', dim]]);
  if (params.has('output.weight')) want.set('output.weight', vocabSize * dim);
  for (let l = 0; l < c.nLayers; l++) {
    const [an, q, k, v, o, fn, g, u, d] = layerTensorNames(l);
    want.set(an, dim).set(q, nHeads * headDim * dim).set(k, kvDim * dim).set(v, kvDim * dim).set(o, dim * nHeads * headDim);
    want.set(fn, dim).set(g, hiddenDim * dim).set(u, hiddenDim * dim).set(d, dim * hiddenDim);
  }
  for (const [name, size] of want) {
    const t = params.get(name);
    if (!t) throw new LowbitError('E_MISSING', `training parameters: tensor ${name} is missing`);
    if (t.length !== size) throw new LowbitError('E_SHAPE', `training parameters: tensor ${name} has ${t.length} values, the config needs ${size}`);
  }
}

// ---- the model ----

export interface LayerActivations {
  xIn: Vec; // (n, dim) residual stream entering the block
  attnInv: Float64Array; // (n) 1/rms of xIn
  xb: Vec; // (n, dim) attn-normed input
  q: Vec; // (n, dim) after RoPE
  k: Vec; // (n, kvDim) after RoPE
  v: Vec; // (n, kvDim)
  probs: Vec; // (nHeads, n, n)
  xa: Vec; // (n, dim) attention output, heads concatenated
  xMid: Vec; // (n, dim) residual after attention
  ffnInv: Float64Array;
  xb2: Vec; // (n, dim) ffn-normed input
  g: Vec; // (n, hiddenDim) gate pre-activation
  u: Vec; // (n, hiddenDim) up
  h: Vec; // (n, hiddenDim) silu(g)·u
}

export interface TrainActivations {
  n: number;
  inputs: number[];
  targets: number[];
  rope: { cos: Float64Array; sin: Float64Array };
  layers: LayerActivations[];
  xLast: Vec; // (n, dim) residual stream after the last block
  outInv: Float64Array;
  xf: Vec; // (n, dim) final-normed
  probs: Vec; // (n, vocab) softmax of the logits
  loss: number;
}

/** Sizes and ids of a window: tokens[0..n−1] predict tokens[1..n]. */
function checkWindow(c: LlamaConfig, tokens: readonly number[]): number {
  const n = tokens.length - 1;
  if (n < 1) throw new LowbitError('E_ARG', `training window: ${tokens.length} tokens; at least 2 are needed (one input, one target)`);
  if (n > c.contextLength) throw new LowbitError('E_RANGE', `training window: ${n} input tokens exceed the context length ${c.contextLength}`);
  for (const [i, t] of tokens.entries()) {
    if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new LowbitError('E_RANGE', `training window: token ${i} is ${t}, outside the vocabulary 0..${c.vocabSize - 1}`);
  }
  return n;
}

const add = (a: Vec, b: Vec) => {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
};

/** The training forward over one window: mean next-token cross-entropy and the activations. */
export function trainForward(c: LlamaConfig, params: TrainParams, tokens: readonly number[], math: TrainMath): TrainActivations {
  checkTrainParams(c, params);
  const n = checkWindow(c, tokens);
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize, normEps } = c;
  const kvDim = nKvHeads * headDim;
  const P = (name: string) => params.get(name) as Vec;
  const inputs = tokens.slice(0, n);
  const targets = tokens.slice(1);
  const rt = ropeTables(n, c.ropeDim, c.ropeTheta);

  let x = math.alloc(n * dim);
  const emb = P('token_embd.weight');
  for (let t = 0; t < n; t++) for (let i = 0; i < dim; i++) x[t * dim + i] = emb[inputs[t] * dim + i];

  const layers: LayerActivations[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const [an, wq, wk, wv, wo, fn, w1, w3, w2] = layerTensorNames(l);
    const xIn = x;
    const xb = math.alloc(n * dim);
    const attnInv = rmsnormForward(xIn, P(an), dim, n, normEps, xb);
    const q = math.matmul(P(wq), dim, dim, xb, n);
    const k = math.matmul(P(wk), kvDim, dim, xb, n);
    const v = math.matmul(P(wv), kvDim, dim, xb, n);
    rope(q, n, nHeads, headDim, c.ropeDim, rt);
    rope(k, n, nKvHeads, headDim, c.ropeDim, rt);
    const xa = math.alloc(n * dim);
    const probs = math.alloc(nHeads * n * n);
    attentionForward(math, q, k, v, n, nHeads, nKvHeads, headDim, xa, probs);
    const xMid = math.matmul(P(wo), dim, dim, xa, n);
    add(xMid, xIn);
    const xb2 = math.alloc(n * dim);
    const ffnInv = rmsnormForward(xMid, P(fn), dim, n, normEps, xb2);
    const g = math.matmul(P(w1), hiddenDim, dim, xb2, n);
    const u = math.matmul(P(w3), hiddenDim, dim, xb2, n);
    const h = math.alloc(n * hiddenDim);
    if (math.swiglu) math.swiglu(g, u, h);
    else swigluForward(g, u, h);
    x = math.matmul(P(w2), dim, hiddenDim, h, n);
    add(x, xMid);
    layers.push({ xIn, attnInv, xb, q, k, v, probs, xa, xMid, ffnInv, xb2, g, u, h });
  }
  const xf = math.alloc(n * dim);
  const outInv = rmsnormForward(x, P('output_norm.weight'), dim, n, normEps, xf);
  const logits = math.matmul(params.get('output.weight') ?? emb, vocabSize, dim, xf, n);
  const probs = math.alloc(n * vocabSize);
  const loss = math.crossEntropy ? math.crossEntropy(logits, targets, vocabSize, probs) : crossEntropyForward(logits, targets, vocabSize, probs);
  return { n, inputs, targets, rope: rt, layers, xLast: x, outInv, xf, probs, loss };
}
