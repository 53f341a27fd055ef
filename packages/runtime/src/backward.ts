// The backward pass of the training forward (train-forward.ts): one function per op, then the whole
// model, giving the mean next-token cross-entropy of a window and its gradient w.r.t. every weight.
//
// Linear layers y = x·Wᵀ (x [batch, cols], W [rows, cols]) need dX = dY·W and dW = dYᵀ·X. Both run
// on the same matmul as the forward (TrainMath.matmul, the WASM matmulF32 kernel in f32) after a
// transpose copy in TypeScript: dX = matmul(Wᵀ, dY), dW = matmul(Xᵀ, dYᵀ). The copies are
// O(rows·cols) against the O(batch·rows·cols) product.
import type { Kernels } from '@lowbit/kernels';
import type { LlamaConfig, DecoderModel } from './model.js';
import {
  TrainArena, type TrainActivations, type TrainMath, type TrainParams, type Vec, f64Math, gatherHead, layerTensorNames, rope, trainForward, trainParams, transpose, wasmMath,
} from './train-forward.js';

/**
 * dX [batch, cols] and dW [rows, cols] of y = x·Wᵀ given dY [batch, rows]; dW is written into `dw`
 * when given (overwritten: a weight's gradient array, so that no step allocates and adds a copy).
 */
export function linearBackward(math: TrainMath, w: Vec, rows: number, cols: number, x: Vec, dy: Vec, batch: number, dw?: Vec): { dx: Vec; dw: Vec } {
  const dx = math.matmul(transpose(w, rows, cols, math.alloc(rows * cols)), cols, rows, dy, batch);
  const g = math.matmul(transpose(x, batch, cols, math.alloc(batch * cols)), cols, batch, transpose(dy, batch, rows, math.alloc(batch * rows)), rows, dw);
  return { dx, dw: g };
}

/**
 * Backward of y = w·x·s (s = 1/rms(x) per row of n): adds into dw, returns dx.
 * dx = s·(w⊙dy) − x·s³/n·Σ(w⊙dy⊙x).
 */
export function rmsnormBackward(x: Vec, w: Vec, inv: Float64Array, dy: Vec, n: number, rows: number, dw: Vec, dx: Vec): Vec {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    const s = inv[r];
    let dot = 0;
    for (let i = 0; i < n; i++) {
      dot += w[i] * dy[o + i] * x[o + i];
      dw[i] += dy[o + i] * x[o + i] * s;
    }
    const k = (dot * s * s * s) / n;
    for (let i = 0; i < n; i++) dx[o + i] = s * w[i] * dy[o + i] - x[o + i] * k;
  }
  return dx;
}

/**
 * Backward of causal GQA attention given its inputs, its softmax weights and dOut: writes dq, and
 * adds into dk, dv (zeroed by the caller; heads of a group share them; a fused kernel on `math`
 * overwrites them, which is the same from zero). Per head, on `math`:
 * dP = dO·Vᵀ; dS = scale·P⊙(dP − rowsum(P⊙dP)); dQ = dS·K; dK += dSᵀ·Q; dV += Pᵀ·dO.
 */
export function attentionBackward(math: TrainMath, q: Vec, k: Vec, v: Vec, probs: Vec, dOut: Vec, n: number, nHeads: number, nKvHeads: number, headDim: number, dq: Vec, dk: Vec, dv: Vec): void {
  if (math.attentionBackward) return math.attentionBackward(q, k, v, probs, dOut, n, nHeads, nKvHeads, headDim, dq, dk, dv);
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const kt = math.alloc(headDim * n);
  const vh = math.alloc(n * headDim);
  const qt = math.alloc(headDim * n);
  const dot = math.alloc(headDim * n);
  const doh = math.alloc(n * headDim);
  const ds = math.alloc(n * n);
  const dst = math.alloc(n * n);
  const pt = math.alloc(n * n);
  const dpb = math.alloc(n * n);
  const [qb, kb, vb] = [math.alloc(n * headDim), math.alloc(n * headDim), math.alloc(n * headDim)];
  for (let g = 0; g < nKvHeads; g++) {
    gatherHead(k, n, nKvHeads, headDim, g, kt, true);
    gatherHead(v, n, nKvHeads, headDim, g, vh);
    for (let h = g * group; h < (g + 1) * group; h++) {
      const p = probs.subarray(h * n * n, (h + 1) * n * n);
      gatherHead(dOut, n, nHeads, headDim, h, doh);
      gatherHead(dOut, n, nHeads, headDim, h, dot, true);
      gatherHead(q, n, nHeads, headDim, h, qt, true);
      const dp = math.matmul(vh, n, headDim, doh, n, dpb); // dp[t, j] = dO_t·v_j
      for (let t = 0; t < n; t++) {
        const o = t * n;
        let sum = 0;
        for (let j = 0; j <= t; j++) sum += p[o + j] * dp[o + j];
        for (let j = 0; j < n; j++) ds[o + j] = j <= t ? p[o + j] * (dp[o + j] - sum) * scale : 0;
      }
      const dqh = math.matmul(kt, headDim, n, ds, n, qb); // dq[t, d] = Σj ds[t, j]·k[j, d]
      const dkh = math.matmul(qt, headDim, n, transpose(ds, n, n, dst), n, kb); // dk[j, d] = Σt ds[t, j]·q[t, d]
      const dvh = math.matmul(dot, headDim, n, transpose(p, n, n, pt), n, vb); // dv[j, d] = Σt p[t, j]·dO[t, d]
      for (let t = 0; t < n; t++) {
        for (let d = 0; d < headDim; d++) {
          dq[(t * nHeads + h) * headDim + d] = dqh[t * headDim + d];
          dk[(t * nKvHeads + g) * headDim + d] += dkh[t * headDim + d];
          dv[(t * nKvHeads + g) * headDim + d] += dvh[t * headDim + d];
        }
      }
    }
  }
}

/** Backward of h = silu(g)·u: dg = dh·u·σ(g)(1 + g(1 − σ(g))), du = dh·silu(g). */
export function swigluBackward(g: Vec, u: Vec, dh: Vec, dg: Vec, du: Vec): void {
  for (let i = 0; i < g.length; i++) {
    const sg = 1 / (1 + Math.exp(-g[i]));
    du[i] = dh[i] * g[i] * sg;
    dg[i] = dh[i] * u[i] * sg * (1 + g[i] * (1 - sg));
  }
}

/** dlogits of the mean cross-entropy: (softmax − onehot(target))/rows. */
export function crossEntropyBackward(probs: Vec, targets: readonly number[], vocab: number, dlogits: Vec): Vec {
  const rows = targets.length;
  for (let i = 0; i < rows * vocab; i++) dlogits[i] = probs[i] / rows;
  for (let t = 0; t < rows; t++) dlogits[t * vocab + targets[t]] -= 1 / rows;
  return dlogits;
}

const addInto = (a: Vec, b: Vec) => {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
};

/** Gradients of the loss of `act` (a trainForward of the same params) w.r.t. every tensor of params. */
export function trainBackward(c: LlamaConfig, params: TrainParams, act: TrainActivations, math: TrainMath): Map<string, Vec> {
  const { dim, hiddenDim, nHeads, nKvHeads, headDim, vocabSize } = c;
  const kvDim = nKvHeads * headDim;
  const n = act.n;
  const P = (name: string) => params.get(name) as Vec;
  // the gradients outlive the pass (the caller keeps them): never from an arena behind math.alloc
  const grads = new Map<string, Vec>();
  for (const [name, t] of params) grads.set(name, math.precision === 'f64' ? new Float64Array(t.length) : new Float32Array(t.length));
  const G = (name: string) => grads.get(name) as Vec;
  const tied = !params.has('output.weight');
  const emb = P('token_embd.weight');

  // every gradient array is fresh (zero) and each linear's dW is its first write: the matmuls write
  // them in place (the tied embedding's rows are added to after, below)
  const dlogits = crossEntropyBackward(act.probs, act.targets, vocabSize, math.alloc(n * vocabSize));
  const head = linearBackward(math, params.get('output.weight') ?? emb, vocabSize, dim, act.xf, dlogits, n, tied ? G('token_embd.weight') : G('output.weight'));
  let dx = rmsnormBackward(act.xLast, P('output_norm.weight'), act.outInv, head.dx, dim, n, G('output_norm.weight'), math.alloc(n * dim));

  for (let l = c.nLayers - 1; l >= 0; l--) {
    const a = act.layers[l];
    const [an, wq, wk, wv, wo, fn, w1, w3, w2] = layerTensorNames(l);
    // feed-forward: x = xMid + W2·(silu(W1·xb2)⊙W3·xb2), xb2 = norm(xMid)
    const down = linearBackward(math, P(w2), dim, hiddenDim, a.h, dx, n, G(w2));
    const dg = math.alloc(n * hiddenDim);
    const du = math.alloc(n * hiddenDim);
    if (math.swigluBackward) math.swigluBackward(a.g, a.u, down.dx, dg, du);
    else swigluBackward(a.g, a.u, down.dx, dg, du);
    const gate = linearBackward(math, P(w1), hiddenDim, dim, a.xb2, dg, n, G(w1));
    const up = linearBackward(math, P(w3), hiddenDim, dim, a.xb2, du, n, G(w3));
    addInto(gate.dx, up.dx);
    const dMid = rmsnormBackward(a.xMid, P(fn), a.ffnInv, gate.dx, dim, n, G(fn), math.alloc(n * dim));
    addInto(dMid, dx);
    // attention: xMid = xIn + Wo·attn(rope(Wq·xb), rope(Wk·xb), Wv·xb), xb = norm(xIn)
    const out = linearBackward(math, P(wo), dim, dim, a.xa, dMid, n, G(wo));
    const dq = math.alloc(n * dim);
    const dk = math.alloc(n * kvDim);
    const dv = math.alloc(n * kvDim);
    attentionBackward(math, a.q, a.k, a.v, a.probs, out.dx, n, nHeads, nKvHeads, headDim, dq, dk, dv);
    rope(dq, n, nHeads, headDim, c.ropeDim, act.rope, true);
    rope(dk, n, nKvHeads, headDim, c.ropeDim, act.rope, true);
    const bq = linearBackward(math, P(wq), dim, dim, a.xb, dq, n, G(wq));
    const bk = linearBackward(math, P(wk), kvDim, dim, a.xb, dk, n, G(wk));
    const bv = linearBackward(math, P(wv), kvDim, dim, a.xb, dv, n, G(wv));
    addInto(bq.dx, bk.dx);
    addInto(bq.dx, bv.dx);
    dx = rmsnormBackward(a.xIn, P(an), a.attnInv, bq.dx, dim, n, G(an), math.alloc(n * dim));
    addInto(dx, dMid);
  }
  const de = G('token_embd.weight');
  for (let t = 0; t < n; t++) {
    const o = act.inputs[t] * dim;
    for (let i = 0; i < dim; i++) de[o + i] += dx[t * dim + i];
  }
  return grads;
}

export interface LossAndGrad {
  /** Mean next-token cross-entropy (nats) over the window's n−1 predictions. */
  loss: number;
  /** d loss / d tensor, by GGUF tensor name, shaped as trainParams gives them. */
  grads: Map<string, Float32Array>;
}

/**
 * The loss of `tokens` (a window; tokens[0..n−2] predict tokens[1..n−1]) and its gradient w.r.t.
 * every weight, f32 on the model's WASM kernels. `params` defaults to trainParams(model); pass your
 * own (changed by an optimizer) to train.
 */
export function lossAndGrad(model: DecoderModel, tokens: readonly number[], params: TrainParams = trainParams(model)): LossAndGrad {
  const arena = arenas.get(model.kernels) ?? new TrainArena();
  arenas.set(model.kernels, arena);
  const math = wasmMath(model.kernels, arena);
  try {
    const act = trainForward(model.config, params, tokens, math);
    const grads = trainBackward(model.config, params, act, math) as Map<string, Float32Array>;
    return { loss: act.loss, grads };
  } finally {
    arena.release(); // the activations never leave this call
  }
}

// one arena per kernel instance: its activations' buffers serve the next step of the same model
const arenas = new WeakMap<Kernels, TrainArena>();

/** The same in f64 TypeScript loops (for checks; slow): params are read as f64. */
export function lossAndGradF64(c: LlamaConfig, params: TrainParams, tokens: readonly number[]): { loss: number; grads: Map<string, Float64Array> } {
  const math = f64Math();
  const p64: TrainParams = new Map([...params].map(([k, v]) => [k, Float64Array.from(v)]));
  const act = trainForward(c, p64, tokens, math);
  return { loss: act.loss, grads: trainBackward(c, p64, act, math) as Map<string, Float64Array> };
}
