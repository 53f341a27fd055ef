// Learned spans: the soft mask's gradient for z against central finite differences in f64 on a tiny
// random model (and dq/dk/dv still right under the mask), the mask's limits (z past the window =
// full attention), the f32 WASM path against f64, and a short run on the embedded model.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { checkSoftMask, learnSpans, maskedAttentionForward, maskedAttentionSpanGrad, softMask, softMaskLossAndGrad, spanOf } from '../src/attention-span-learn.js';
import { attentionBackward } from '../src/backward.js';
import { lossAndGradF64 } from '../src/backward.js';
import { loadModel } from '../src/model.js';
import type { LlamaConfig } from '../src/model.js';
import { type TrainParams, attentionForward, f64Math, layerTensorNames, trainForward, wasmMath } from '../src/train-forward.js';
import { modelFile } from './helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}
const randn = (n: number, r: () => number, scale = 1) => Float64Array.from({ length: n }, () => r() * 2 * scale);

// 2 layers, dim 16, 4 heads of 4 over 2 KV heads, vocab 32, context 16 (backward.test.ts's tiny model).
const TINY: LlamaConfig = {
  architecture: 'llama', dim: 16, hiddenDim: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 4, vocabSize: 32, contextLength: 16, normEps: 1e-5, ropeTheta: 10000, ropeDim: 4,
};
function tinyParams(seed: number): Map<string, Float64Array> {
  const r = rng(seed);
  const { dim, hiddenDim, vocabSize, nKvHeads, headDim } = TINY;
  const kv = nKvHeads * headDim;
  const p = new Map<string, Float64Array>();
  p.set('token_embd.weight', randn(vocabSize * dim, r));
  for (let l = 0; l < TINY.nLayers; l++) {
    const [an, q, k, v, o, fn, g, u, d] = layerTensorNames(l);
    p.set(an, randn(dim, r, 0.3).map((x) => 1 + x)).set(fn, randn(dim, r, 0.3).map((x) => 1 + x));
    p.set(q, randn(dim * dim, r, 0.5)).set(k, randn(kv * dim, r, 0.5)).set(v, randn(kv * dim, r, 0.5)).set(o, randn(dim * dim, r, 0.5));
    p.set(g, randn(hiddenDim * dim, r, 0.5)).set(u, randn(hiddenDim * dim, r, 0.5)).set(d, randn(dim * hiddenDim, r, 0.4));
  }
  p.set('output_norm.weight', randn(dim, r, 0.3).map((x) => 1 + x));
  p.set('output.weight', randn(vocabSize * dim, r, 0.5));
  return p;
}
const tokens = [1, 5, 9, 31, 0, 5, 17, 2, 9, 30, 4, 4, 11, 7];
// z off the integers (the mask's kinks sit at x = z and x = z + R): every head's ramp covers keys of
// this 13-token window; the last one is past the window (m = 1 everywhere: its gradient must be 0 but the penalty's)
const Z = [0.4, 2.3, 5.7, 1.1, 3.6, 0.9, 7.2, 14.5];
const R = 3.5;

describe('soft mask (Sukhbaatar et al. 2019)', () => {
  it('m_z(x) and the hard span', () => {
    expect(softMask(0, 0, 32)).toBe(1);
    expect(softMask(10, 10, 32)).toBe(1);
    expect(softMask(26, 10, 32)).toBe(0.5);
    expect(softMask(42, 10, 32)).toBe(0);
    expect(spanOf(10, 32)).toBe(42); // keys at x = 0..41 have m > 0
    expect(spanOf(10.2, 32)).toBe(43);
    expect(spanOf(0, 0.5)).toBe(1);
  });

  it('with z past the window it is plain causal attention', () => {
    const r = rng(5);
    const n = 7, nH = 4, nKv = 2, hd = 4;
    const q = randn(n * nH * hd, r), k = randn(n * nKv * hd, r), v = randn(n * nKv * hd, r);
    const [o1, p1] = [new Float64Array(n * nH * hd), new Float64Array(nH * n * n)];
    const [o2, p2] = [new Float64Array(n * nH * hd), new Float64Array(nH * n * n)];
    attentionForward(f64Math(), q, k, v, n, nH, nKv, hd, o1, p1);
    maskedAttentionForward(f64Math(), q, k, v, n, nH, nKv, hd, [6, 7, 50, 6], 2, o2, p2);
    for (let i = 0; i < o1.length; i++) expect(o2[i]).toBeCloseTo(o1[i], 14);
    for (let i = 0; i < p1.length; i++) expect(p2[i]).toBeCloseTo(p1[i], 14);
  });

  it('∂objective/∂z (data term and penalty) and the weights\' gradients under the mask equal central finite differences (f64)', () => {
    const params = tinyParams(11);
    const penalty = 0.01;
    const m = f64Math();
    const r = softMaskLossAndGrad(TINY, params, tokens, Z, R, penalty, m);
    const z = Float64Array.from(Z);
    const objective = () => softMaskLossAndGrad(TINY, params, tokens, z, R, penalty, m).objective;
    // h = 1e-5 in f64: truncation ~h²·f‴ and rounding ~1e-16/h, both far below 1e-8 (as backward.test.ts)
    const H = 1e-5;
    let worst = 0;
    for (let i = 0; i < z.length; i++) {
      z[i] = Z[i] + H;
      const a = objective();
      z[i] = Z[i] - H;
      const b = objective();
      z[i] = Z[i];
      const err = Math.abs((a - b) / (2 * H) - r.dz[i]);
      worst = Math.max(worst, err);
      expect(err, `z[${i}]`).toBeLessThan(1e-8);
    }
    // the mask does move the loss: a nonzero data gradient on the heads whose ramp holds keys
    expect(Math.abs(r.dz[0] - penalty / TINY.nHeads)).toBeGreaterThan(1e-4);
    // head 7's z lies past the window: only the penalty's λ/M
    expect(r.dz[7]).toBeCloseTo(penalty / TINY.nHeads, 14);
    // the weights' gradients under the mask (joint training): 6 entries of every tensor
    const pick = rng(4);
    for (const [name, t] of params) {
      const g = r.grads.get(name) as Float64Array;
      for (let n = 0; n < 6; n++) {
        const i = Math.floor((pick() + 0.5) * t.length);
        const v = t[i];
        t[i] = v + H;
        const a = objective();
        t[i] = v - H;
        const b = objective();
        t[i] = v;
        const err = Math.abs((a - b) / (2 * H) - g[i]);
        worst = Math.max(worst, err);
        expect(err, `${name}[${i}]`).toBeLessThan(1e-8);
      }
    }
    console.log(`soft-mask dz and weight gradients: worst |FD − analytic| ${worst.toExponential(2)}`);
  });

  it('dq, dk, dv of the masked attention equal finite differences (the mask as an additive log term)', () => {
    const r = rng(9);
    const n = 8, nH = 4, nKv = 2, hd = 4;
    const q = randn(n * nH * hd, r), k = randn(n * nKv * hd, r), v = randn(n * nKv * hd, r), ry = randn(n * nH * hd, r);
    const zs = [0.3, 1.7, 2.2, 4.6];
    const L = () => {
      const o = new Float64Array(n * nH * hd);
      maskedAttentionForward(f64Math(), q, k, v, n, nH, nKv, hd, zs, 2.5, o, new Float64Array(nH * n * n));
      return o.reduce((s, x, i) => s + x * ry[i], 0);
    };
    const probs = new Float64Array(nH * n * n);
    maskedAttentionForward(f64Math(), q, k, v, n, nH, nKv, hd, zs, 2.5, new Float64Array(n * nH * hd), probs);
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
    attentionBackward(f64Math(), q, k, v, probs, ry, n, nH, nKv, hd, dq, dk, dv);
    for (const [x, g] of [[q, dq], [k, dk], [v, dv]] as const) {
      for (let i = 0; i < x.length; i += 3) {
        const v0 = x[i];
        x[i] = v0 + 1e-5;
        const a = L();
        x[i] = v0 - 1e-5;
        const b = L();
        x[i] = v0;
        expect(Math.abs((a - b) / 2e-5 - g[i])).toBeLessThan(1e-8);
      }
    }
  });

  it('the f32 WASM path equals the f64 one; with z past the window the loss is the unmasked one', async () => {
    const model = await loadModel(modelFile);
    try {
      const p64 = tinyParams(11);
      const p32: TrainParams = new Map([...p64].map(([k, v]) => [k, Float32Array.from(v)]));
      const ref = softMaskLossAndGrad(TINY, p64, tokens, Z, R, 0.01, f64Math());
      const f = softMaskLossAndGrad(TINY, p32, tokens, Z, R, 0.01, wasmMath(model.kernels));
      // f32 rounding of O(1) sums of ≤ 32 terms through 2 layers
      expect(Math.abs(f.loss - ref.loss)).toBeLessThan(1e-5);
      for (let i = 0; i < Z.length; i++) expect(Math.abs(f.dz[i] - ref.dz[i])).toBeLessThan(1e-4);
      const full = softMaskLossAndGrad(TINY, p64, tokens, Z.map(() => 16), R, 0, f64Math());
      expect(full.loss).toBeCloseTo(lossAndGradF64(TINY, p64, tokens).loss, 12);
      expect(full.loss).toBeCloseTo(trainForward(TINY, p64, tokens, f64Math()).loss, 12);
    } finally {
      model.free();
    }
  });

  it('refuses a ramp, penalty or z out of range, naming it', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    const z = new Float64Array(8).fill(1);
    expect(code(() => checkSoftMask(TINY, z, 0, 0))).toMatch(/^E_RANGE: spans: ramp 0/);
    expect(code(() => checkSoftMask(TINY, z, 17, 0))).toMatch(/^E_RANGE: spans: ramp 17/);
    expect(code(() => checkSoftMask(TINY, z, 2, -1))).toMatch(/^E_RANGE: spans: penalty -1/);
    expect(code(() => checkSoftMask(TINY, z, 2, Number.NaN))).toMatch(/^E_RANGE/);
    expect(code(() => checkSoftMask(TINY, z.subarray(1), 2, 0))).toMatch(/^E_SHAPE/);
    expect(code(() => checkSoftMask(TINY, [...z.subarray(1), -0.5], 2, 0))).toMatch(/^E_RANGE: spans: z of layer 1 head 3 is -0.5/);
  });
});

describe('learnSpans on the embedded model', () => {
  it('lowers z from full attention under the penalty; spans = ⌈z + R⌉; bad options refused', async () => {
    const model = await loadModel(modelFile);
    try {
      const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 20000);
      const r = learnSpans(model, text, { steps: 4, ctx: 32, ramp: 8, penalty: 0.01, lr: 0.1 });
      expect(r.losses).toHaveLength(4);
      expect(r.tokens).toBe(4 * 32);
      const c = model.config;
      expect(r.z).toHaveLength(c.nLayers * c.nHeads);
      // four Adam steps of ≈ lr·ctx = 3.2 tokens each from z = 32 (the penalty dominates at first)
      for (const z of r.z) expect(z).toBeLessThan(32);
      for (const [i, z] of r.z.entries()) expect(r.spans[i]).toBe(Math.ceil(z + 8));
      // jointly: the weights change too (written back into the model), z moves the same way
      const before = Float32Array.from((model.linear('blk.0.attn_q.weight').source as { data: Float32Array }).data);
      const j = learnSpans(model, text, { steps: 2, ctx: 32, ramp: 8, penalty: 0.01, lr: 0.1, jointLr: 1e-3 });
      const after = (model.linear('blk.0.attn_q.weight').source as { data: Float32Array }).data;
      expect(after.some((v, i) => v !== before[i])).toBe(true);
      for (const z of j.z) expect(z).toBeLessThan(32);
      expect(() => learnSpans(model, text, { steps: 1, ctx: 32, jointLr: 2 })).toThrow(/learning rate is 2/);
      expect(() => learnSpans(model, text, { ramp: -1 })).toThrow(/ramp -1/);
      expect(() => learnSpans(model, text, { penalty: -1 })).toThrow(/penalty -1/);
      expect(() => learnSpans(model, text, { steps: 0 })).toThrow(/steps 0/);
      expect(() => learnSpans(model, text, { ctx: 4096 })).toThrow(/ctx 4096/);
    } finally {
      model.free();
    }
  });
});

// PyTorch autograd as an independent reference for the soft-masked attention's gradients.
const python = '/usr/bin/python3';
const torchOk = existsSync(python) && spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
describe('against PyTorch autograd', () => {
  it.skipIf(!torchOk)('dz, dq, dk, dv of one masked attention layer equal torch.autograd (needs /usr/bin/python3 with torch)', () => {
    const r = rng(21);
    const n = 9, nH = 4, nKv = 2, hd = 4;
    const q = randn(n * nH * hd, r), k = randn(n * nKv * hd, r), v = randn(n * nKv * hd, r), ry = randn(n * nH * hd, r);
    const zs = [0.3, 1.7, 3.2, 5.6], ramp = 2.5;
    const probs = new Float64Array(nH * n * n);
    maskedAttentionForward(f64Math(), q, k, v, n, nH, nKv, hd, zs, ramp, new Float64Array(n * nH * hd), probs);
    const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length), dz = new Float64Array(nH);
    const m = f64Math();
    attentionBackward(m, q, k, v, probs, ry, n, nH, nKv, hd, dq, dk, dv);
    maskedAttentionSpanGrad(m, v, probs, ry, n, nH, nKv, hd, zs, ramp, dz);
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-span-torch-'));
    try {
      const input = join(dir, 'in.json');
      writeFileSync(input, JSON.stringify({ n, nH, nKv, hd, ramp, zs, q: [...q], k: [...k], v: [...v], ry: [...ry] }));
      const script = `
import json, sys, torch
a = json.load(open(sys.argv[1]))
n, nH, nKv, hd, R = a['n'], a['nH'], a['nKv'], a['hd'], a['ramp']
t = lambda x: torch.tensor(x, dtype=torch.float64, requires_grad=True)
q, k, v, z = t(a['q']), t(a['k']), t(a['v']), t(a['zs'])
ry = torch.tensor(a['ry'], dtype=torch.float64)
Q = q.view(n, nH, hd).transpose(0, 1); K = k.view(n, nKv, hd).transpose(0, 1).repeat_interleave(nH // nKv, 0); V = v.view(n, nKv, hd).transpose(0, 1).repeat_interleave(nH // nKv, 0)
x = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).to(torch.float64)
m = torch.clamp((R + z[:, None, None] - x[None]) / R, 0, 1) * (x >= 0)[None]
e = torch.exp(Q @ K.transpose(1, 2) / hd ** 0.5) * m
p = e / e.sum(-1, keepdim=True)
out = (p @ V).transpose(0, 1).reshape(-1)
(out * ry).sum().backward()
print(json.dumps({'dq': q.grad.tolist(), 'dk': k.grad.tolist(), 'dv': v.grad.tolist(), 'dz': z.grad.tolist()}))
`;
      const res = spawnSync(python, ['-c', script, input], { encoding: 'utf8' });
      expect(res.status, res.stderr).toBe(0);
      const want = JSON.parse(res.stdout) as Record<string, number[]>;
      // both f64 on O(1) values: agreement to ~1e-14, 1e-10 leaves margin for summation order
      for (const [name, got] of [['dq', dq], ['dk', dk], ['dv', dv], ['dz', dz]] as const) {
        for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - want[name][i]), `${name}[${i}]`).toBeLessThan(1e-10);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
