import { isLowbitError } from '@lowbit/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { modelFile, validLines } from './helpers.js';

let model: DecoderModel;
beforeAll(async () => {
  model = await loadModel(modelFile);
});
afterAll(() => model.free());

describe('generate says why it stopped', () => {
  it('steps, or the model context full (never silently short)', () => {
    expect(generate(model, 'Once upon a time', { steps: 5, stopAtEos: false }).stopReason).toBe('steps');
    const n = model.config.contextLength;
    const r = generate(model, 'Once upon a time', { steps: n + 100, stopAtEos: false });
    expect(r.stopReason).toBe('context');
    expect(r.prompt.length + r.tokens.length).toBe(n + 1); // the last token is sampled from position n-1's logits
  });

  it('a prompt that fills the context is an E_RANGE error naming both lengths', () => {
    const long = validLines.join(' ');
    let err: unknown;
    try {
      generate(model, long, { steps: 4 });
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) && err.code).toBe('E_RANGE');
    expect((err as Error).message).toMatch(/the prompt is \d+ tokens, the model's context 2048 leaves no room/);
  });
});
