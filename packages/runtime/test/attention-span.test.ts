import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calibrateSpans, checkSpanOptions, spanSkippedFraction } from '../src/attention-span.js';
import { Session } from '../src/forward.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

let model: DecoderModel;
beforeAll(async () => {
  model = await loadModel(modelFile);
});
afterAll(() => model.free());

const ids = [1, 403, 407, 261, 358, 292, 127, 471, 300, 89, 17, 5];

describe('attention spans in a Session', () => {
  it('spans covering the whole context equal full attention bit for bit (prefill and decode)', () => {
    const { nLayers, nHeads } = model.config;
    const full = new Int32Array(nLayers * nHeads).fill(16);
    expect(Array.from(new Session(model, { ctx: 16, spans: full }).forward(ids, { logits: 'all' }))).toEqual(Array.from(new Session(model, { ctx: 16 }).forward(ids, { logits: 'all' })));
    const a = new Session(model, { ctx: 16, spans: full.fill(1e6) });
    const b = new Session(model, { ctx: 16 });
    for (const id of ids) expect(Array.from(a.forward([id]))).toEqual(Array.from(b.forward([id])));
  });

  it('a span of 1 everywhere attends to the token itself only: its value row is the attention output', () => {
    // With one key, softmax is exactly 1, so the result cannot depend on any earlier token.
    const { nLayers, nHeads } = model.config;
    const one = new Int32Array(nLayers * nHeads).fill(1);
    const x = new Session(model, { ctx: 16, spans: one }).forward([ids[0], ids[1], ids[5]]);
    const y = new Session(model, { ctx: 16, spans: one }).forward([ids[3], ids[4], ids[5]]);
    expect(Array.from(x)).toEqual(Array.from(y));
  });

  it('spans of the wrong length or below 1 are errors', () => {
    const { nLayers, nHeads } = model.config;
    expect(() => new Session(model, { ctx: 16, spans: new Int32Array(3) })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => new Session(model, { ctx: 16, spans: new Int32Array(nLayers * nHeads) })).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
  });
});

describe('calibrateSpans', () => {
  const text = validLines.slice(0, 4).join('\n');

  it('ε = 0, quantile 1: every head needs its whole window (softmax mass is never exactly 0)', () => {
    const c = calibrateSpans(model, text, { ctx: 32, maxWindows: 2, eps: 0, quantile: 1 });
    expect(Array.from(c.spans)).toEqual(new Array(c.spans.length).fill(32));
    expect(c.queries).toBe(64);
  });

  it('looser ε gives shorter spans, which skip reads and change perplexity a little', () => {
    const tight = calibrateSpans(model, text, { ctx: 32, maxWindows: 2, eps: 0.01 });
    const loose = calibrateSpans(model, text, { ctx: 32, maxWindows: 2, eps: 0.2 });
    for (let i = 0; i < tight.spans.length; i++) expect(loose.spans[i]).toBeLessThanOrEqual(tight.spans[i]);
    expect(spanSkippedFraction(loose.spans, 32)).toBeGreaterThan(0);
    const base = perplexity(model, text, { ctx: 32 }).perplexity;
    const spanned = perplexity(model, text, { ctx: 32, spans: tight.spans }).perplexity;
    // ≤ 1% of each query's mass left out (at the 0.9 quantile of queries): a small perplexity change
    expect(Math.abs(spanned / base - 1)).toBeLessThan(0.05);
  });

  it('skipped fraction: 0 with spans ≥ ctx; with span 1, 1 − ctx/(ctx(ctx+1)/2)', () => {
    expect(spanSkippedFraction(new Int32Array(4).fill(64), 64)).toBe(0);
    expect(spanSkippedFraction(new Int32Array(4).fill(1), 8)).toBeCloseTo(1 - 8 / 36, 12);
  });

  it('eps and quantile out of range are E_RANGE', () => {
    for (const o of [{ eps: 1 }, { eps: -0.1 }, { quantile: 0 }, { quantile: 1.5 }]) expect(() => checkSpanOptions(o)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
  });
});
