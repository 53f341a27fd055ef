// Quantization by training on the embedded model: the STE update, the exact AlphaTuning gradient
// (against finite differences in f64), INQ's levels and freezing, regularization frequency, and
// that a few steps lower the training loss.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type DecoderModel, type Vec, dequantizeLinear, loadModel, lossAndGrad, lossAndGradF64, trainParams } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import {
  alphaName, alphaTuning, clipName, fakeQuantWeights, fakeQuantizer, inq, inqExponents, inqRound, learnedClipQat, quantTrainer, quantizeModel, trainQuantize,
} from '../src/index.js';
import { dequantizeInt, roundEven } from '@lowbit/formats';

const modelPath = fileURLToPath(defaultModelUrl);
const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 700);

async function withModel<T>(fn: (m: DecoderModel) => Promise<T> | T): Promise<T> {
  const m = await loadModel(modelPath);
  try {
    return await fn(m);
  } finally {
    m.free();
  }
}

describe('fake quantization', () => {
  it('is the rounding quantizeModel stores (RTN), for INT-k and ggml grids (MX shares the INT-k path)', () =>
    withModel(async (model) => {
      for (const grid of [{ format: 'int', bits: 3, group: 32 }, { format: 'q4_0' }] as const) {
        const fq = fakeQuantizer(model, grid);
        const fake = fakeQuantWeights(fq, trainParams(model));
        const m = await loadModel(modelPath);
        quantizeModel(m, fq.modelOptions);
        for (const name of fq.names) expect(fake.get(name), `${grid.format} ${name}`).toEqual(dequantizeLinear(name, m.linear(name).source));
        // ggml blocks need rows of whole 32-blocks: ffn_down (172 columns) stays full precision
        expect(fq.names.some((n) => n.endsWith('ffn_down.weight'))).toBe(grid.format !== 'q4_0');
        m.free();
      }
    }));
});

describe('QAT with the straight-through estimator', () => {
  it("moves each latent weight by AdamW's first step on the dense gradient taken at Ŵ (the STE, exactly)", () =>
    withModel(async (model) => {
      const o = { method: 'qat', grid: { format: 'int', bits: 3, group: 32 }, steps: 1, lr: 1e-3, ctx: 32, clip: 0 } as const;
      const tr = quantTrainer(model, o);
      const latent = new Map([...(tr.hooks.params as Map<string, Float32Array>)].map(([k, v]) => [k, Float32Array.from(v)]));
      const fq = fakeQuantizer(model, o.grid);
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, 33);
      const dense = lossAndGrad(model, ids, fakeQuantWeights(fq, latent)).grads;
      const r = await trainQuantize(model, text, o, tr);
      const after = tr.hooks.params as Map<string, Float32Array>;
      // AdamW's first step with β-corrected moments is lr·g/(|g| + ε): −lr·sign(g) where |g| ≫ ε
      let checked = 0;
      for (const name of fq.names) {
        const w0 = latent.get(name) as Float32Array;
        const w1 = after.get(name) as Float32Array;
        const g = dense.get(name) as Float32Array;
        for (let i = 0; i < g.length; i++) {
          if (Math.abs(g[i]) < 1e-5) continue;
          // f32 storage of w − lr: half an ulp of |w| ≤ 1 (6e-8) plus the ε term (1e-8/1e-5 · lr)
          expect(Math.abs(w1[i] - (w0[i] - 1e-3 * Math.sign(g[i])))).toBeLessThan(2e-6);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(100_000);
      expect(r.losses[0]).toBeCloseTo(lossAndGrad(model, ids, fakeQuantWeights(fq, latent)).loss, 5);
    }));

  it('lowers the training loss in a few steps and leaves RTN of the latent weights in the model', () =>
    withModel(async (model) => {
      const ctx = 64;
      const windows = Math.ceil((model.tokenizer.encode(text, { bos: true }).length - 1) / ctx);
      const o = { method: 'qat', grid: { format: 'int', bits: 3, group: 32 }, steps: 2 * windows, lr: 2e-3, ctx, warmup: 1 } as const;
      const tr = quantTrainer(model, o);
      const r = await trainQuantize(model, text, o, tr);
      // the second pass over each window sees a lower loss than the first (measured 5–15% lower)
      for (let i = 0; i < windows; i++) expect(r.losses[windows + i]).toBeLessThan(r.losses[i] * 0.99);
      expect(r.packed?.size).toBe(5 * 7);
      const q = model.linear('blk.0.attn_q.weight').source;
      if (q.format !== 'f32') throw new Error('int3 layers are fake-quantized f32 in memory');
      const latent = tr.hooks.params?.get('blk.0.attn_q.weight') as Float32Array;
      expect(fakeQuantizer(model, o.grid).quantize('blk.0.attn_q.weight', latent)).toEqual(q.data);
    }));
});

describe('QAT checkpoints', () => {
  it('a run stopped after step 1 and resumed from its checkpoint ends with the latent weights of an unbroken run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-qat-'));
    try {
      const o = { method: 'qat', grid: { format: 'q4_0' }, steps: 3, lr: 1e-3, ctx: 32 } as const;
      const whole = await loadModel(modelPath);
      const tw = quantTrainer(whole, o);
      await trainQuantize(whole, text, o, tw);
      const a = await loadModel(modelPath);
      const stop = new AbortController();
      const path = join(dir, 'ckpt.gguf');
      const r = await trainQuantize(a, text, { ...o, checkpoint: { path, every: 100 }, signal: stop.signal, onStep: () => stop.abort() });
      expect(r.stopped).toBe(true);
      // the checkpoint's model file holds the latent weights; the state file holds them too, with the moments
      const b = await loadModel(path);
      const tb = quantTrainer(b, o);
      const rest = await trainQuantize(b, text, { ...o, resume: `${path}.adamw.safetensors` }, tb);
      expect(rest.losses).toHaveLength(2);
      for (const name of ['blk.0.attn_q.weight', 'blk.4.ffn_down.weight', 'token_embd.weight']) {
        // the same f32 arithmetic in the same order: equal bit for bit
        expect(tb.hooks.params?.get(name), name).toEqual(tw.hooks.params?.get(name));
      }
      for (const m of [whole, a, b]) m.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('QAT with learned clipping', () => {
  it('the clip-factor and weight gradients are the derivatives of the loss with each rounding residual and clamp held (LSQ), by central differences', () =>
    withModel((model) => {
      const bits = 3;
      const zs = 2 ** (bits - 1);
      const lc = learnedClipQat(model, { format: 'int', bits, group: 32 });
      const p = lc.hooks.params as Map<string, Float32Array>;
      const name = 'blk.1.ffn_gate.weight';
      const [rows, cols] = [model.config.hiddenDim, model.config.dim];
      const ng = Math.ceil(cols / 32);
      const gamma = p.get(clipName(name)) as Float32Array;
      gamma.fill(0.6); // clamps some weights of each group, so both branches are exercised
      const forward = lc.hooks.forward as NonNullable<typeof lc.hooks.forward>;
      const backward = lc.hooks.backward as NonNullable<typeof lc.hooks.backward>;
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, 9);
      const at = forward(p, 0);
      expect(at.has(clipName(name))).toBe(false);
      const dense = lossAndGradF64(model.config, at, ids).grads;
      const g = backward(new Map([...dense].map(([k, v]) => [k, Float32Array.from(v)])), 0);
      const w = p.get(name) as Float32Array;
      const packed = lc.packed(p).get(name);
      if (!packed) throw new Error('no packed tensor');
      // what is stored is what the forward saw
      expect(dequantizeInt(packed)).toEqual(at.get(name));
      let clamped = 0;
      let inside = 0;
      for (const gi of [0, 5, 77, rows * ng - 1]) {
        const r = Math.floor(gi / ng);
        const cs = Array.from({ length: Math.min(cols, (gi % ng) * 32 + 32) - (gi % ng) * 32 }, (_, k) => r * cols + (gi % ng) * 32 + k);
        const s = packed.scales[gi];
        const code = (i: number) => roundEven(w[i] / s);
        const isIn = (i: number) => Math.min(zs - 1, Math.max(-zs, code(i))) === code(i);
        // the surrogate, from the formulas: each weight's code and clamp fixed at γ0, s = s0·f with
        // f = γ/γ0: inside Ŵ = w + s·(q0 − w/s0), clamped Ŵ = s·q_clamp
        const loss = (f: number) => {
          const wq = Float64Array.from(at.get(name) as Float32Array);
          for (const i of cs) wq[i] = isIn(i) ? w[i] + s * f * (code(i) - w[i] / s) : s * f * Math.min(zs - 1, Math.max(-zs, code(i)));
          return lossAndGradF64(model.config, new Map<string, Vec>([...at, [name, wq]]), ids).loss;
        };
        const h = 1e-4;
        const fd = (loss(1 + h) - loss(1 - h)) / (2 * h) / gamma[gi]; // d/dγ = d/df · 1/γ0
        const an = (g.get(clipName(name)) as Float32Array)[gi];
        // f32 Ŵ and gradients against the f64 loss, and O(h²): 1e-3 relative
        expect(Math.abs(an - fd), `group ${gi}`).toBeLessThan(1e-3 * Math.abs(fd) + 1e-7);
        for (const i of cs) {
          if (isIn(i)) inside++;
          else clamped++;
          // the weight gradient: the STE inside the range, zero where the clamp holds the weight
          expect((g.get(name) as Float32Array)[i]).toBe(isIn(i) ? Math.fround((dense.get(name) as Float64Array)[i]) : 0);
        }
      }
      expect(clamped).toBeGreaterThan(0);
      expect(inside).toBeGreaterThan(clamped);
    }));

  it('trains: the loss drops, the factors move inside [1/64, 1], the model ends on the stored grid', () =>
    withModel(async (model) => {
      const o = { method: 'qat', learnClip: true, grid: { format: 'int', bits: 2, group: 32 }, steps: 4, lr: 3e-3, ctx: 32 } as const;
      const t = quantTrainer(model, o);
      const r = await trainQuantize(model, text, o, t);
      expect(r.losses[r.losses.length - 1]).toBeLessThan(r.losses[0]);
      const gm = t.hooks.params?.get(clipName('blk.0.attn_q.weight')) as Float32Array;
      expect(gm.some((v) => v !== 1)).toBe(true);
      expect(gm.every((v) => v >= 1 / 64 && v <= 1)).toBe(true);
      const packed = r.packed?.get('blk.0.attn_q.weight');
      expect(packed && 'scales' in packed).toBe(true);
      expect(dequantizeLinear('blk.0.attn_q.weight', model.linear('blk.0.attn_q.weight').source)).toEqual(dequantizeInt(packed as Parameters<typeof dequantizeInt>[0]));
    }));
});

describe('INQ and AlphaTuning checkpoints', () => {
  it.each([
    ['inq', { method: 'inq', grid: { format: 'int', bits: 3, group: 32 }, steps: 4, lr: 1e-3, ctx: 16 }, 'blk.1.ffn_up.weight'],
    ['alphatuning', { method: 'alphatuning', grid: { format: 'int', bits: 2, group: 32 }, steps: 3, lr: 1e-3, ctx: 16 }, 'blk.1.ffn_up.weight.alpha'],
  ] as const)('%s: stopped after step 2 and resumed from the checkpoint model ends where an unbroken run ends', async (_m, o, probe) => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-resume-'));
    try {
      const whole = await loadModel(modelPath);
      const tw = quantTrainer(whole, o);
      await trainQuantize(whole, text, o, tw);
      const a = await loadModel(modelPath);
      const stop = new AbortController();
      const path = join(dir, 'ckpt.gguf');
      // INQ's step 2 is its second stage (75% frozen): the resumed run must freeze the same set
      await trainQuantize(a, text, { ...o, checkpoint: { path, every: 100 }, signal: stop.signal, onStep: (s) => s.step === 1 && stop.abort() });
      // the checkpoint model holds trained weights (INQ) or Σ α·b (AlphaTuning), not the pretrained
      // ones the partition and the planes came from: those come back from the state file
      const b = await loadModel(path);
      const tb = quantTrainer(b, o);
      const rest = await trainQuantize(b, text, { ...o, resume: `${path}.adamw.safetensors` }, tb);
      expect(rest.losses).toHaveLength(o.steps - 2);
      // the same f32 arithmetic in the same order: equal bit for bit
      for (const [name, t] of tw.hooks.params ?? []) expect(tb.hooks.params?.get(name), name).toEqual(t);
      expect(tb.hooks.params?.get(probe)).toBeDefined();
      for (const m of [whole, a, b]) m.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('regularization frequency', () => {
  it('projecting only after the last step equals plain fine-tuning followed by RTN', () =>
    withModel(async (a) => {
      const o = { grid: { format: 'q4_0' }, steps: 3, lr: 1e-3, ctx: 32 } as const;
      await trainQuantize(a, text, { ...o, method: 'regfreq', every: 3 });
      const b = await loadModel(modelPath);
      const tb = quantTrainer(b, { ...o, method: 'regfreq', every: 1000 });
      await trainQuantize(b, text, { ...o, method: 'regfreq', every: 1000 }, tb);
      for (const name of ['blk.0.attn_q.weight', 'blk.4.ffn_up.weight']) expect(a.linear(name).source).toEqual(b.linear(name).source);
      b.free();
    }));
});

describe('INQ', () => {
  it('rounds to the power-of-two levels of eq. 3 and fixes n1 from the group maximum', () => {
    // n1 = ⌊log2(4·0.9/3)⌋ = 0; 3 bits: n2 = 0 + 1 − 2 = −1, levels {0, ±0.5, ±1}
    const n1 = inqExponents(Float32Array.from([0.9, -0.2, 0.1, 0.3]), 1, 4, 0)[0];
    expect(n1).toBe(0);
    const cases: [number, number][] = [[0.9, 1], [1.4, 1], [0.76, 1], [0.74, 0.5], [0.375, 0.5], [0.26, 0.5], [0.24, 0], [-0.6, -0.5], [-2, -1], [0, 0]];
    for (const [w, q] of cases) expect(inqRound(w, n1, 3), String(w)).toBe(q);
    // 2 bits: ternary {0, ±2^n1}
    expect([0.9, 0.6, 0.4, -0.7].map((w) => inqRound(w, 0, 2))).toEqual([1, 1, 0, -1]);
  });

  it('freezes the largest weights first at each stage, keeps them fixed, and ends all on the levels', () =>
    withModel(async (model) => {
      const steps = 3;
      const w0 = trainParams(model).get('blk.2.attn_v.weight') as Float32Array;
      const q = inq(model, { bits: 4, group: 32, steps });
      expect([0, 1, 2].map((s) => q.fractionAt(s))).toEqual([0.5, 0.75, 0.875]);
      const seen: Float32Array[] = [];
      const r = await trainQuantize(model, text, { method: 'inq', grid: { format: 'int', bits: 4, group: 32 }, steps, lr: 1e-3, ctx: 32, onStep: () => seen.push(Float32Array.from(trainer.hooks.params?.get('blk.2.attn_v.weight') as Float32Array)) }, (trainer = quantTrainer(model, { method: 'inq', grid: { format: 'int', bits: 4, group: 32 }, steps })));
      expect(r.losses).toHaveLength(steps);
      const n1 = inqExponents(w0, 64, 64, 32);
      const level = (v: number, i: number) => inqRound(v, n1[Math.floor(i / 64) * 2 + Math.floor((i % 64) / 32)], 4);
      const order = [...w0.keys()].sort((x, y) => Math.abs(w0[y]) - Math.abs(w0[x]) || x - y);
      // after step 0: the largest half holds its level of the pretrained value, the rest moved off it
      const half = order.slice(0, w0.length / 2);
      for (const i of half) expect(seen[0][i]).toBe(level(w0[i], i));
      for (const i of half) expect(seen[2][i]).toBe(seen[0][i]);
      const rest = order.slice((w0.length * 7) / 8);
      expect(rest.filter((i) => seen[0][i] !== w0[i]).length).toBeGreaterThan(rest.length / 2);
      const final = model.linear('blk.2.attn_v.weight').source;
      if (final.format !== 'f32') throw new Error('INQ leaves f32 values');
      for (let i = 0; i < final.data.length; i++) expect(final.data[i]).toBe(level(final.data[i], i));
      // 4-bit codes and an 8-bit n1 per group of 32 (ffn_down's 172 columns end in a group of 12)
      expect(r.bitsPerWeight).toBeGreaterThan(4 + 8 / 32);
      expect(r.bitsPerWeight).toBeLessThan(4 + 8 / 24);
    }));
});
let trainer: ReturnType<typeof quantTrainer>;

describe('AlphaTuning', () => {
  it('the α gradient (Σ over the group of dL/dW·b) matches central differences of the f64 loss', () =>
    withModel((model) => {
      const a = alphaTuning(model, { bits: 2, group: 32 });
      const alphas = a.hooks.params as Map<string, Float32Array>;
      const forward = a.hooks.forward as NonNullable<typeof a.hooks.forward>;
      const backward = a.hooks.backward as NonNullable<typeof a.hooks.backward>;
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, 9);
      const f64 = (p: Map<string, Float32Array>) => lossAndGradF64(model.config, forward(p, 0), ids);
      const dense = f64(alphas).grads;
      const g = backward(dense as unknown as Map<string, Float32Array>, 0);
      const name = alphaName('blk.1.ffn_gate.weight');
      const t = alphas.get(name) as Float32Array;
      for (const i of [0, 1, 7, 100, t.length - 1]) {
        const v = t[i];
        // h: f32 α, a step of 2^-12 keeps both probes exactly representable; central differences O(h²)
        const h = 2 ** -12;
        t[i] = v + h;
        const up = f64(alphas).loss;
        t[i] = v - h;
        const down = f64(alphas).loss;
        t[i] = v;
        const fd = (up - down) / (2 * h);
        // the forward's weights are f32 (Σ α·b rounded): 1e-4 relative covers that rounding and O(h²)
        expect(Math.abs((g.get(name) as Float32Array)[i] - fd)).toBeLessThan(1e-4 * Math.max(1e-3, Math.abs(fd)) + 1e-7);
      }
    }));

  it('trains only α: planes and every other weight stay, the loss drops', () =>
    withModel(async (model) => {
      const before = trainParams(model);
      const r = await trainQuantize(model, text, { method: 'alphatuning', grid: { format: 'int', bits: 2, group: 32 }, steps: 9, lr: 2e-3, ctx: 64, warmup: 1 });
      for (let i = 0; i < 3; i++) expect(r.losses[6 + i]).toBeLessThan(r.losses[i]);
      const after = trainParams(model);
      expect(after.get('token_embd.weight')).toEqual(before.get('token_embd.weight'));
      expect(after.get('blk.3.ffn_norm.weight')).toEqual(before.get('blk.3.ffn_norm.weight'));
      const t = r.bcq?.get('blk.0.attn_k.weight');
      expect(t?.bits).toBe(2);
      // every weight is ±α1 ± α2 of its group
      const w = after.get('blk.0.attn_k.weight') as Float32Array;
      const al = t?.alphas as Float32Array;
      for (let i = 0; i < w.length; i += 37) {
        const k = (Math.floor(i / 64) * 2 + Math.floor((i % 64) / 32)) * 2;
        const sums = [1, -1].flatMap((s1) => [1, -1].map((s2) => s1 * al[k] + s2 * al[k + 1]));
        expect(Math.min(...sums.map((s) => Math.abs(s - w[i])))).toBeLessThan(1e-6);
      }
    }));
});
