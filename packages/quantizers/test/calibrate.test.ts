import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, perplexity, tokenizeDocuments } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { BlockCalibration, Gptq, collectHessians, isLowbitError } from '../src/index.js';

const path = fileURLToPath(defaultModelUrl);
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');

describe('collectHessians (forward passes stop after the last named layer)', () => {
  it('gives bit for bit the statistics of full perplexity passes over the same windows', async () => {
    const model = await loadModel(path);
    for (const names of [['blk.1.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight'], ['blk.3.ffn_gate.weight', 'blk.3.ffn_up.weight'], ['output.weight']]) {
      const fast = collectHessians(model, calibration, names, { ctx: 128, maxWindows: 3 });
      const full = new Map(names.map((n) => [n, new Gptq(model.linear(n).cols)]));
      perplexity(model, calibration, { ctx: 128, maxWindows: 3, onLinearInput: (n, x, b) => full.get(n)?.addBatch(x, b) });
      for (const n of names) {
        const a = fast.get(n) as Gptq;
        const b = full.get(n) as Gptq;
        expect(a.samples).toBe(b.samples);
        expect(a.samples).toBe(3 * 128);
        expect(Array.from(a.hessian())).toEqual(Array.from(b.hessian()));
        expect(Array.from(a.absMax)).toEqual(Array.from(b.absMax));
      }
    }
  });

  it('all windows by default (a partial last one included), errors for short text and bad ctx', async () => {
    const model = await loadModel(path);
    const fast = collectHessians(model, calibration, ['blk.0.attn_q.weight'], { ctx: 256 });
    // every token of every window is one sample (perplexity's cut: a lone trailing token is dropped)
    const ids = tokenizeDocuments(model, calibration).length;
    expect(fast.get('blk.0.attn_q.weight')?.samples).toBe(ids % 256 === 1 ? ids - 1 : ids);
    for (const [text, ctx, re] of [['Once upon a time.', 256, /too short/], [calibration, 1, /ctx 1/]] as const) {
      let err: unknown;
      try {
        collectHessians(model, text, ['blk.0.attn_q.weight'], { ctx });
      } catch (e) {
        err = e;
      }
      expect(isLowbitError(err) && re.test(err.message)).toBe(true);
    }
  });

  it('BlockCalibration: cached block inputs give the statistics of collectHessians; other blocks are refused', async () => {
    const model = await loadModel(path);
    const cal = new BlockCalibration(model, calibration, { ctx: 128, maxWindows: 3 });
    expect(BlockCalibration.bytes(model, calibration, { ctx: 128, maxWindows: 3 })).toBe(3 * 128 * model.config.dim * 4);
    let err: unknown;
    try {
      cal.collect(['blk.1.attn_q.weight']);
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) && /blk\.1\.attn_q\.weight is not in block 0/.test(err.message)).toBe(true);
    for (let b = 0; b < model.config.nLayers; b++) cal.advance();
    // past the last block: the LM head's inputs
    const head = cal.collect(['output.weight']).get('output.weight') as Gptq;
    const headFull = collectHessians(model, calibration, ['output.weight'], { ctx: 128, maxWindows: 3 }).get('output.weight') as Gptq;
    expect(Array.from(head.hessian())).toEqual(Array.from(headFull.hessian()));
    cal.free();
    const fresh = new BlockCalibration(model, calibration, { ctx: 128, maxWindows: 3 });
    fresh.advance();
    const names = ['blk.1.ffn_gate.weight', 'blk.1.ffn_up.weight'];
    const a = fresh.collect(names);
    const b = collectHessians(model, calibration, names, { ctx: 128, maxWindows: 3 });
    for (const n of names) expect(Array.from((a.get(n) as Gptq).hessian())).toEqual(Array.from((b.get(n) as Gptq).hessian()));
    fresh.free();
  });

  it('BlockCalibration.loss is perplexity\'s NLL over the same windows bit for bit, from any block', async () => {
    const model = await loadModel(path);
    const want = perplexity(model, calibration, { ctx: 128, maxWindows: 3 }).nll;
    const cal = new BlockCalibration(model, calibration, { ctx: 128, maxWindows: 3 });
    expect(cal.windowCount).toBe(3);
    expect(cal.loss(3)).toBe(want);
    cal.advance();
    cal.advance();
    expect(cal.loss(3)).toBe(want);
    expect(cal.loss(1)).toBe(perplexity(model, calibration, { ctx: 128, maxWindows: 1 }).nll);
    expect(() => cal.loss(4)).toThrow(/4 loss windows, 3 are cached/);
    cal.free();
  });
});
