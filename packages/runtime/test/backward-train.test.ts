// AdamW (schedule and update written out by hand) and the fine-tuning loop on the embedded model.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { LowbitError, fromF32, loadModel } from '../src/index.js';
import { lossAndGrad } from '../src/backward.js';
import { AdamW, finetune } from '../src/train.js';
import { trainForward, trainParams, wasmMath } from '../src/train-forward.js';
import { modelFile } from './helpers.js';

describe('AdamW', () => {
  it('schedule: linear warmup to lr, cosine down to minLr at the last step', () => {
    const opt = new AdamW(new Map([['w', new Float32Array(1)]]), { lr: 1e-3, steps: 12, warmup: 2, minLr: 1e-4 });
    expect(opt.lrAt(0)).toBeCloseTo(5e-4, 15);
    expect(opt.lrAt(1)).toBeCloseTo(1e-3, 15);
    expect(opt.lrAt(2)).toBeCloseTo(1e-3, 15); // cosine starts at the peak
    // midpoint of the 10 decay steps (f = 4.5/9 = ½): (lr + minLr)/2
    expect(opt.lrAt(2 + 4.5)).toBeCloseTo(5.5e-4, 15);
    expect(opt.lrAt(11)).toBeCloseTo(1e-4, 15);
  });

  it('update: bias-corrected first step is lr·g/(|g|+ε) plus decoupled decay on matrices only', () => {
    const w = Float32Array.from([0.5, -2]);
    const gain = Float32Array.from([1, 1]);
    const opt = new AdamW(new Map([['blk.0.attn_q.weight', w], ['blk.0.attn_norm.weight', gain]]), { lr: 0.01, steps: 1, weightDecay: 0.1, clip: 0, eps: 1e-8 });
    const norm = opt.step(new Map([['blk.0.attn_q.weight', Float32Array.from([3, -0.001])], ['blk.0.attn_norm.weight', Float32Array.from([-4, 0])]]));
    expect(norm).toBeCloseTo(Math.sqrt(9 + 1e-6 + 16), 6);
    // m̂ = g, v̂ = g²: step = lr·(sign(g) + λw); f32 storage: 1e-7 relative
    expect(w[0]).toBeCloseTo(0.5 - 0.01 * (1 + 0.1 * 0.5), 6);
    expect(w[1]).toBeCloseTo(-2 - 0.01 * (-1 + 0.1 * -2), 6);
    expect(gain[0]).toBeCloseTo(1 + 0.01, 6); // no decay on a norm gain
    expect(gain[1]).toBe(1); // zero gradient, no decay: unchanged
  });

  it('clips the global gradient norm, refuses NaN gradients and out-of-range settings', () => {
    const w = new Float32Array(1);
    const opt = new AdamW(new Map([['w', w]]), { lr: 0.1, steps: 2, clip: 1, beta1: 0, beta2: 0 });
    opt.step(new Map([['w', Float32Array.from([10])]]));
    expect(w[0]).toBeCloseTo(-0.1, 6); // β = 0: step = lr·g/|g| whatever the clip; clip keeps it finite
    expect(() => opt.step(new Map([['w', Float32Array.from([Number.NaN])]]))).toThrow(expect.objectContaining({ code: 'E_NAN' }));
    for (const bad of [{ lr: 0 }, { lr: 2 }, { lr: Number.NaN }, { steps: 0 }, { steps: 1.5 }, { warmup: 5 }, { weightDecay: -1 }]) {
      expect(() => new AdamW(new Map(), { lr: 1e-3, steps: 3, ...bad }), JSON.stringify(bad)).toThrow(LowbitError);
    }
  });
});

describe('finetune on the embedded model', () => {
  const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 700);

  it('lowers the loss on the training windows in a few steps and writes the weights back', async () => {
    const model = await loadModel(modelFile);
    const ctx = 64;
    const ids = model.tokenizer.encode(text, { bos: true });
    const windows: number[][] = [];
    for (let at = 0; at + 1 < ids.length; at += ctx) windows.push(ids.slice(at, at + ctx + 1));
    const meanLoss = () => {
      const p = trainParams(model);
      return windows.reduce((s, w) => s + trainForward(model.config, p, w, wasmMath(model.kernels)).loss, 0) / windows.length;
    };
    const before = meanLoss();
    const steps = 3 * windows.length; // three passes over the same windows
    const r = await finetune(model, text, { lr: 2e-3, steps, ctx, warmup: 1 });
    const after = meanLoss();
    // eslint-disable-next-line no-console
    console.log(`finetune stories260K: ${windows.length} windows of ${ctx}, ${steps} steps, ${r.tokens} tokens in ${r.seconds.toFixed(2)} s: mean loss ${before.toFixed(4)} → ${after.toFixed(4)}; per step ${r.losses.map((l) => l.toFixed(3)).join(' ')}`);
    expect(r.losses).toHaveLength(steps);
    expect(r.tokens).toBe(3 * windows.reduce((s, w) => s + w.length - 1, 0));
    // a memorizable excerpt: a few steps must cut the loss clearly (measured ~10% and more), not by noise
    expect(after).toBeLessThan(before * 0.97);
    // the third pass over each window sees a lower loss than the first
    for (let i = 0; i < windows.length; i++) expect(r.losses[2 * windows.length + i]).toBeLessThan(r.losses[i]);
    model.free();
  });

  it('refuses an empty text and stops on a NaN loss with E_NAN, leaving the model as it was', async () => {
    const model = await loadModel(modelFile);
    await expect(finetune(model, '', { lr: 1e-3, steps: 1 })).rejects.toThrow(expect.objectContaining({ code: 'E_ARG' }));
    await expect(finetune(model, text, { lr: 1e-3, steps: 1, ctx: 1e9 })).rejects.toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    const q = model.linear('blk.0.attn_q.weight').source;
    model.weights.outputNorm[3] = Number.NaN;
    await expect(finetune(model, text, { lr: 1e-3, steps: 2, ctx: 32 })).rejects.toThrow(expect.objectContaining({ code: 'E_NAN' }));
    const q2 = model.linear('blk.0.attn_q.weight').source;
    expect(q2.format === 'f32' && q.format === 'f32' && q2.data.every((v, i) => v === q.data[i])).toBe(true);
    model.free();
  });

  it('refuses a model with a quantized layer (E_UNSUPPORTED, saying to use f32 weights)', async () => {
    const model = await loadModel(modelFile);
    const l = model.linear('blk.1.ffn_up.weight');
    const src = l.source;
    if (src.format !== 'f32') throw new Error('the embedded model is f32');
    model.setLinear(l.name, { format: 'q8_0', shape: [l.rows, l.cols], data: fromF32('Q8_0', src.data, l.cols) });
    const err = (() => {
      try {
        trainParams(model);
      } catch (e) {
        return e as LowbitError;
      }
    })();
    expect(err?.code).toBe('E_UNSUPPORTED');
    expect(err?.message).toMatch(/blk\.1\.ffn_up\.weight holds q8_0 weights; training needs f32/);
    await expect(finetune(model, text, { lr: 1e-3, steps: 1 })).rejects.toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
    model.free();
  });

  it('an aborted signal stops after the current step and writes the checkpoint whole (Ctrl-C in lowbit finetune)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-ft-stop-'));
    try {
      const model = await loadModel(modelFile);
      const stop = new AbortController();
      const path = join(dir, 'stop.gguf');
      const r = await finetune(model, text, { lr: 1e-3, steps: 10, ctx: 32, checkpoint: { path, every: 100 }, signal: stop.signal, onStep: (s) => s.step === 1 && stop.abort() });
      expect(r.stopped).toBe(true);
      expect(r.losses).toHaveLength(2);
      model.free();
      // the checkpoint holds step 2: resuming runs the 8 steps left
      const resumed = await loadModel(path);
      const rest = await finetune(resumed, text, { lr: 1e-3, steps: 10, ctx: 32, resume: `${path}.adamw.safetensors` });
      expect(rest.losses).toHaveLength(8);
      expect(rest.stopped).toBe(false);
      resumed.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gradient accumulation averages the windows; a checkpoint + resume ends where an unbroken run does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-ft-'));
    try {
      const o = { lr: 1e-3, steps: 4, ctx: 32, warmup: 1, weightDecay: 0.01 };
      // accumulate 2 windows of 32 = the same windows' mean gradient: step 0's loss is their mean loss
      const a = await loadModel(modelFile);
      const ids = a.tokenizer.encode(text, { bos: true });
      const l0 = lossAndGrad(a, ids.slice(0, 33)).loss;
      const l1 = lossAndGrad(a, ids.slice(32, 65)).loss;
      const acc = await finetune(a, text, { ...o, steps: 1, accumulate: 2 });
      expect(acc.losses[0]).toBeCloseTo((l0 + l1) / 2, 6); // f32 sums: 1e-6
      expect(acc.tokens).toBe(64);
      a.free();

      const whole = await loadModel(modelFile);
      await finetune(whole, text, o);
      // interrupted in step 2 (after its update, before any later checkpoint): the file holds 2 steps
      const two = await loadModel(modelFile);
      const interrupt = (s: { step: number }) => {
        if (s.step === 2) throw new Error('interrupted');
      };
      await expect(finetune(two, text, { ...o, checkpoint: { path: join(dir, 'two.gguf'), every: 2 }, onStep: interrupt })).rejects.toThrow('interrupted');
      two.free();
      const resumed = await loadModel(join(dir, 'two.gguf'));
      const r = await finetune(resumed, text, { ...o, resume: join(dir, 'two.gguf.adamw.safetensors') });
      expect(r.losses).toHaveLength(2); // steps 2 and 3
      const pw = trainParams(whole);
      const pr = trainParams(resumed);
      let worst = 0;
      for (const [name, t] of pw) {
        const u = pr.get(name) as Float32Array;
        for (let i = 0; i < t.length; i++) worst = Math.max(worst, Math.abs(t[i] - u[i]));
      }
      // the same arithmetic in the same order from the same f32 state: measured 0 (bit-equal); 1e-6 absolute allows a reordered sum
      expect(worst).toBeLessThan(1e-6);
      // eslint-disable-next-line no-console
      console.log(`resume after a 2-step checkpoint vs an unbroken 4-step run: max |Δw| ${worst}`);
      whole.free();
      resumed.free();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
