// perplexity's standard error, against an independent computation: every predicted token's NLL from
// the Session's logits, grouped by window, and the ratio estimator's variance written out.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { Session, loadModel, negLogLikelihood, perplexity, tokenizeDocuments } from '../src/index.js';

describe('perplexity standard error over windows', () => {
  it('equals W/(W−1)·Σ n_w²(m_w − m)²/N² (square root), and ppl·se for the perplexity', async () => {
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    const text = readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 6000);
    const ctx = 64;
    const r = perplexity(model, text, { ctx });
    const ids = tokenizeDocuments(model, text);
    const session = new Session(model, { ctx });
    const perWindow: number[][] = [];
    for (let s = 0; s + 1 < ids.length; s += ctx) {
      const win = ids.slice(s, s + ctx);
      session.reset();
      const logits = session.forward(win, { logits: 'all' });
      perWindow.push(Array.from({ length: win.length - 1 }, (_, i) => negLogLikelihood(logits, i * model.config.vocabSize, model.config.vocabSize, win[i + 1])));
    }
    const W = perWindow.length;
    const N = perWindow.reduce((s, w) => s + w.length, 0);
    const m = perWindow.flat().reduce((a, b) => a + b, 0) / N;
    const spread = perWindow.reduce((s, w) => s + (w.length * (w.reduce((a, b) => a + b, 0) / w.length - m)) ** 2, 0);
    const se = Math.sqrt((W / (W - 1)) * spread) / N;
    expect(r.windows).toBe(W);
    expect(r.tokens).toBe(N);
    // both are sums of the same f64 terms in different orders: agreement to ~1e-12 relative
    expect(r.nllStderr).toBeCloseTo(se, 12);
    expect(r.stderr / (r.perplexity * se)).toBeCloseTo(1, 10);
    expect(r.stderr).toBeGreaterThan(0);
    expect(r.stderr).toBeLessThan(r.perplexity / 10); // dozens of windows of a coherent text: a small spread
    model.free();
  });

  it('is NaN with one window (no spread to measure)', async () => {
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    const r = perplexity(model, 'Once upon a time, there was a little girl named Lily.', { ctx: 64 });
    expect(r.windows).toBe(1);
    expect(r.stderr).toBeNaN();
    model.free();
  });
});
