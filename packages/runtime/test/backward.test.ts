// Gradients of the training path against central finite differences in f64: each op alone (a random
// linear functional L = Σ r⊙y of its output), then the whole tiny model's loss w.r.t. every tensor;
// and the f32 WASM path against the f64 one and the inference Session on the embedded model.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { createKernelPool } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { lossAndGrad, lossAndGradF64 } from '../src/backward.js';
import { attentionBackward, crossEntropyBackward, linearBackward, rmsnormBackward, swigluBackward } from '../src/backward.js';
import { Session, loadModel, negLogLikelihood } from '../src/index.js';
import type { LlamaConfig } from '../src/model.js';
import {
  type TrainParams, type Vec, attentionForward, crossEntropyForward, f64Math, layerTensorNames, rmsnormForward, rope, ropeTables, swigluForward, trainForward, trainParams, wasmMath,
} from '../src/train-forward.js';
import { modelFile } from './helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
const randn = (n: number, r: () => number, scale = 1) => Float64Array.from({ length: n }, () => r() * 2 * scale);
function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

// Central difference of f at x[i]; h = 1e-5 in f64 leaves truncation ~h²·f‴ ≈ 1e-10 and rounding
// ~1e-16/h ≈ 1e-11, so analytic and numeric gradients agree to ~1e-8 absolute at these scales.
const H = 1e-5;
function numGrad(x: Float64Array, f: () => number): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    x[i] = v + H;
    const a = f();
    x[i] = v - H;
    const b = f();
    x[i] = v;
    g[i] = (a - b) / (2 * H);
  }
  return g;
}
function maxAbsDiff(a: Vec, b: Vec): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('per-op backward vs finite differences (f64)', () => {
  const r = rng(7);
  it('RMSNorm: dx and dw', () => {
    const n = 16, rows = 3, eps = 1e-5;
    const x = randn(n * rows, r), w = randn(n, r), ry = randn(n * rows, r);
    const L = () => {
      const y = new Float64Array(n * rows);
      rmsnormForward(x, w, n, rows, eps, y);
      return dot(y, ry);
    };
    const inv = rmsnormForward(x, w, n, rows, eps, new Float64Array(n * rows));
    const dw = new Float64Array(n);
    const dx = rmsnormBackward(x, w, inv, ry, n, rows, dw, new Float64Array(n * rows));
    expect(maxAbsDiff(dx, numGrad(x, L))).toBeLessThan(1e-8);
    expect(maxAbsDiff(dw, numGrad(w, L))).toBeLessThan(1e-8);
  });

  it('RoPE (full and partial ropeDim): the backward is the inverse rotation', () => {
    for (const ropeDim of [8, 4]) {
      const n = 5, heads = 2, headDim = 8;
      const t = ropeTables(n, ropeDim, 10000);
      const x = randn(n * heads * headDim, r), ry = randn(x.length, r);
      const L = () => {
        const y = Float64Array.from(x);
        rope(y, n, heads, headDim, ropeDim, t);
        return dot(y, ry);
      };
      const dx = Float64Array.from(ry);
      rope(dx, n, heads, headDim, ropeDim, t, true);
      expect(maxAbsDiff(dx, numGrad(x, L))).toBeLessThan(1e-8);
    }
  });

  it('causal GQA attention (4 heads, 2 KV heads): dq, dk, dv', () => {
    const n = 6, nHeads = 4, nKv = 2, headDim = 4;
    const dim = nHeads * headDim, kvDim = nKv * headDim;
    const q = randn(n * dim, r), k = randn(n * kvDim, r), v = randn(n * kvDim, r), ry = randn(n * dim, r);
    const L = () => {
      const o = new Float64Array(n * dim);
      attentionForward(f64Math(), q, k, v, n, nHeads, nKv, headDim, o, new Float64Array(nHeads * n * n));
      return dot(o, ry);
    };
    const probs = new Float64Array(nHeads * n * n);
    attentionForward(f64Math(), q, k, v, n, nHeads, nKv, headDim, new Float64Array(n * dim), probs);
    const dq = new Float64Array(n * dim), dk = new Float64Array(n * kvDim), dv = new Float64Array(n * kvDim);
    attentionBackward(f64Math(), q, k, v, probs, ry, n, nHeads, nKv, headDim, dq, dk, dv);
    expect(maxAbsDiff(dq, numGrad(q, L))).toBeLessThan(1e-8);
    expect(maxAbsDiff(dk, numGrad(k, L))).toBeLessThan(1e-8);
    expect(maxAbsDiff(dv, numGrad(v, L))).toBeLessThan(1e-8);
  });

  it('SwiGLU: dg and du', () => {
    const g = randn(40, r, 3), u = randn(40, r), ry = randn(40, r);
    const L = () => {
      const h = new Float64Array(40);
      swigluForward(g, u, h);
      return dot(h, ry);
    };
    const dg = new Float64Array(40), du = new Float64Array(40);
    swigluBackward(g, u, ry, dg, du);
    expect(maxAbsDiff(dg, numGrad(g, L))).toBeLessThan(1e-8);
    expect(maxAbsDiff(du, numGrad(u, L))).toBeLessThan(1e-8);
  });

  it('cross-entropy: dlogits', () => {
    const vocab = 32, targets = [3, 0, 31, 7];
    const logits = randn(targets.length * vocab, r, 2);
    const L = () => crossEntropyForward(logits, targets, vocab, new Float64Array(logits.length));
    const probs = new Float64Array(logits.length);
    crossEntropyForward(logits, targets, vocab, probs);
    const d = crossEntropyBackward(probs, targets, vocab, new Float64Array(logits.length));
    expect(maxAbsDiff(d, numGrad(logits, L))).toBeLessThan(1e-8);
  });

  it('linear: dx and dW in f64, and the WASM f32 path equal to them', async () => {
    const rows = 12, cols = 16, batch = 5;
    const w = randn(rows * cols, r), x = randn(batch * cols, r), ry = randn(batch * rows, r);
    const m = f64Math();
    const L = () => dot(m.matmul(w, rows, cols, x, batch), ry);
    const { dx, dw } = linearBackward(m, w, rows, cols, x, ry, batch);
    expect(maxAbsDiff(dx, numGrad(x, L))).toBeLessThan(1e-8);
    expect(maxAbsDiff(dw, numGrad(w, L))).toBeLessThan(1e-8);
    const model = await loadModel(modelFile);
    const f = linearBackward(wasmMath(model.kernels), Float32Array.from(w), rows, cols, Float32Array.from(x), Float32Array.from(ry), batch);
    // sums of ≤ 16 products of O(1) values in f32: error ≲ 16·2⁻²⁴·|terms| ≈ 1e-5
    expect(maxAbsDiff(f.dx, dx)).toBeLessThan(1e-5);
    expect(maxAbsDiff(f.dw, dw)).toBeLessThan(1e-5);
    model.free();
  });
});

// 2 layers, dim 16, 4 heads of 4 with 2 KV heads (GQA), SwiGLU 24, vocab 32.
const TINY: LlamaConfig = {
  architecture: 'llama', dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 32, contextLength: 16, normEps: 1e-5, ropeTheta: 10000, ropeDim: 4,
};

function tinyParams(seed: number, tied: boolean): Map<string, Float64Array> {
  const r = rng(seed);
  const { dim, hiddenDim, vocabSize, nKvHeads, headDim } = TINY;
  const kv = nKvHeads * headDim;
  const p = new Map<string, Float64Array>();
  p.set('token_embd.weight', randn(vocabSize * dim, r));
  for (let l = 0; l < TINY.nLayers; l++) {
    const [an, q, k, v, o, fn, g, u, d] = layerTensorNames(l);
    // norms near 1 and matrices ~1/√fan-in, as a trained model: activations stay O(1), the softmaxes not saturated
    p.set(an, randn(dim, r, 0.3).map((x) => 1 + x)).set(fn, randn(dim, r, 0.3).map((x) => 1 + x));
    p.set(q, randn(dim * dim, r, 0.5)).set(k, randn(kv * dim, r, 0.5)).set(v, randn(kv * dim, r, 0.5)).set(o, randn(dim * dim, r, 0.5));
    p.set(g, randn(hiddenDim * dim, r, 0.5)).set(u, randn(hiddenDim * dim, r, 0.5)).set(d, randn(dim * hiddenDim, r, 0.4));
  }
  p.set('output_norm.weight', randn(dim, r, 0.3).map((x) => 1 + x));
  if (!tied) p.set('output.weight', randn(vocabSize * dim, r, 0.5));
  return p;
}

describe('whole-model gradients vs finite differences (tiny random model, f64)', () => {
  const tokens = [1, 5, 9, 31, 0, 5, 17, 2, 9, 30];
  for (const tied of [false, true]) {
    it(`every tensor${tied ? ' (output tied to token_embd)' : ''}: max |analytic − numeric| < 1e-8`, () => {
      const params = tinyParams(11, tied);
      const { loss, grads } = lossAndGradF64(TINY, params, tokens);
      expect(loss).toBeGreaterThan(1); // a random model: near ln 32 ≈ 3.5, not a degenerate 0
      const m = f64Math();
      const L = () => trainForward(TINY, params, tokens, m).loss;
      const r = rng(3);
      let worst = 0;
      for (const [name, t] of params) {
        const g = grads.get(name) as Float64Array;
        expect(g.length).toBe(t.length);
        // up to 24 entries per tensor (all of small ones): each is two forwards
        const idx = t.length <= 24 ? [...t.keys()] : Array.from({ length: 24 }, () => Math.floor((r() + 0.5) * t.length));
        for (const i of idx) {
          const v = t[i];
          t[i] = v + H;
          const a = L();
          t[i] = v - H;
          const b = L();
          t[i] = v;
          const err = Math.abs((a - b) / (2 * H) - g[i]);
          worst = Math.max(worst, err);
          // measured worst 1.1e-10 (untied) and 3.7e-10 (tied): see the log line
          expect(err, `${name}[${i}]`).toBeLessThan(1e-8);
        }
      }
      // eslint-disable-next-line no-console
      console.log(`tiny model (tied=${tied}): loss ${loss.toFixed(6)}, worst |FD − analytic| ${worst.toExponential(2)}`);
    });
  }

  it('refuses bad windows and parameter sets, naming the problem', () => {
    const p = tinyParams(11, false);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    expect(code(() => lossAndGradF64(TINY, p, [3]))).toBe('E_ARG'); // one token: nothing to predict
    expect(code(() => lossAndGradF64(TINY, p, [3, 32]))).toBe('E_RANGE'); // id past the vocabulary of 32
    expect(code(() => lossAndGradF64(TINY, p, [3, 1.5]))).toBe('E_RANGE');
    expect(code(() => lossAndGradF64(TINY, p, Array(18).fill(1)))).toBe('E_RANGE'); // 17 inputs > context 16
    const missing = new Map(p);
    missing.delete('blk.1.ffn_gate.weight');
    expect(code(() => lossAndGradF64(TINY, missing, tokens))).toBe('E_MISSING');
    const short = new Map(p).set('blk.0.attn_k.weight', new Float64Array(7));
    expect(code(() => lossAndGradF64(TINY, short, tokens))).toBe('E_SHAPE');
  });

  it('the f32 WASM path equals the f64 one on the tiny model', async () => {
    const model = await loadModel(modelFile);
    const p64 = tinyParams(11, false);
    const p32: TrainParams = new Map([...p64].map(([k, v]) => [k, Float32Array.from(v)]));
    const f = trainForward(TINY, p32, tokens, wasmMath(model.kernels));
    const ref = lossAndGradF64(TINY, p32, tokens);
    expect(Math.abs(f.loss - ref.loss)).toBeLessThan(1e-5); // f32 rounding of O(1) sums of ≤ 32 terms
    model.free();
  });
});

describe('on the embedded model (stories260K)', () => {
  it('the training forward gives the inference Session\'s loss; f32 gradients match f64 ones', async () => {
    const model = await loadModel(modelFile);
    const text = readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 2000);
    const tokens = model.tokenizer.encode(text, { bos: true }).slice(0, 65);
    expect(tokens.length).toBe(65);
    const { loss, grads } = lossAndGrad(model, tokens);
    const session = new Session(model, { ctx: 64 });
    const logits = session.forward(tokens.slice(0, 64), { logits: 'all' });
    const V = model.config.vocabSize;
    let nll = 0;
    for (let t = 0; t < 64; t++) nll += negLogLikelihood(logits, t * V, V, tokens[t + 1]);
    nll /= 64;
    // same math, different f32 summation orders (attention kernel vs TS loops): ~1e-6 relative
    expect(Math.abs(loss - nll) / nll).toBeLessThan(1e-4);
    const ref = lossAndGradF64(model.config, trainParams(model), tokens);
    expect(Math.abs(loss - ref.loss)).toBeLessThan(1e-4);
    let worst = 0;
    for (const [name, g] of ref.grads) {
      const f = grads.get(name) as Float32Array;
      const diff = Math.sqrt(f.reduce((s, v, i) => s + (v - g[i]) ** 2, 0));
      const norm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
      // f32 forward + backward through 5 blocks: relative error of the tensor ~1e-5, 1e-3 leaves margin
      expect(diff / norm, name).toBeLessThan(1e-3);
      worst = Math.max(worst, diff / norm);
    }
    // eslint-disable-next-line no-console
    console.log(`stories260K, 64 predictions: loss f32 ${loss.toFixed(6)}, Session ${nll.toFixed(6)}, f64 ${ref.loss.toFixed(6)}; worst per-tensor ‖g32 − g64‖/‖g64‖ ${worst.toExponential(2)} over ${ref.grads.size} tensors`);
    session.free();
    model.free();
  });

  it('a 2-thread kernel pool gives the same loss and gradients as one thread (matmuls split by rows)', async () => {
    const text = readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 2000);
    const one = await loadModel(modelFile);
    const pool = await createKernelPool({ threads: 2 });
    const two = await loadModel(modelFile, { kernels: pool });
    try {
      const tokens = one.tokenizer.encode(text, { bos: true }).slice(0, 97);
      const a = lossAndGrad(one, tokens);
      const b = lossAndGrad(two, tokens);
      expect(b.loss).toBe(a.loss);
      // each output row is one thread's dot product in the same order: bit-equal
      for (const [name, g] of a.grads) expect((b.grads.get(name) as Float32Array).every((v, i) => v === g[i]), name).toBe(true);
    } finally {
      one.free();
      two.free();
      await pool.close();
    }
  });
});
