// The worker API takes the KV-cache settings (int8/int4, MiniCache) and attention spans as plain
// data and builds the cache itself; every result must equal the main thread's Session run with the
// same CompressedKvCache and spans (same weights, kernels and order of operations: to the last bit).
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate.js';
import { CompressedKvCache, type KvCompressionOptions } from '../src/kv-cache.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { nodeEndpoint, wrapRuntime } from '../src/worker-api.js';
import { modelFile, validLines } from './helpers.js';

let local: DecoderModel;
beforeAll(async () => {
  local = await loadModel(modelFile);
});
afterAll(() => local?.free());

describe('worker API: KV-cache options and spans', () => {
  it('perplexity and generate with kvCache / spans equal the in-process Session', async () => {
    const c = local.config;
    // spans that bind (2..9 keys over a window of 48), so a dropped option would change the results
    const spans = Int32Array.from({ length: c.nLayers * c.nHeads }, (_, i) => 2 + (i % 8));
    const text = validLines.slice(0, 2).join('\n');
    const cases: { kv?: KvCompressionOptions; spans?: Int32Array; decode?: boolean }[] = [
      { kv: { bits: 8 }, decode: true },
      { kv: { bits: 4, minicache: {} }, decode: true },
      { spans },
      { kv: { bits: 8, valueBits: 4 }, spans, decode: true },
    ];
    const want = cases.map((k) => {
      const pkv = k.kv && new CompressedKvCache(c, 48, k.kv);
      const gkv = k.kv && new CompressedKvCache(c, c.contextLength, k.kv);
      return {
        ppl: perplexity(local, text, { ctx: 48, maxWindows: 2, decode: k.decode, kvCache: pkv, spans: k.spans }),
        pstats: pkv?.stats(),
        tokens: generate(local, 'Once upon a time', { steps: 12, kvCache: gkv, spans: k.spans }).tokens,
        gstats: gkv?.stats(),
      };
    });
    const plain = generate(local, 'Once upon a time', { steps: 12 }).tokens;
    // the worker runs the built entry (dist/worker.js): turbo builds before tests
    const worker = new Worker(new URL('../dist/worker.js', import.meta.url));
    try {
      const api = wrapRuntime(nodeEndpoint(worker));
      await api.load(modelFile);
      for (const [i, k] of cases.entries()) {
        const p = await api.perplexity(text, { ctx: 48, maxWindows: 2, decode: k.decode, kvCache: k.kv, spans: k.spans });
        expect(p.perplexity).toBe(want[i].ppl.perplexity);
        expect(p.kvCache).toEqual(want[i].pstats);
        // a plain array (JSON, a page's state) serves as well as an Int32Array
        const g = await api.generate('Once upon a time', { steps: 12, kvCache: k.kv, spans: k.spans && Array.from(k.spans) });
        expect(g.tokens).toEqual(want[i].tokens);
        expect(g.kvCache).toEqual(want[i].gstats);
      }
      // the options reached the session: int4 + MiniCache changes the tokens, the short spans the perplexity
      expect(want[1].tokens).not.toEqual(plain);
      expect(want[2].ppl.perplexity).not.toBe(perplexity(local, text, { ctx: 48, maxWindows: 2 }).perplexity);
      await expect(api.generate('Once', { steps: 2, kvCache: { bits: 3 } })).rejects.toMatchObject({ code: 'E_RANGE' });
      await expect(api.generate('Once', { steps: 2, kvCache: { minicache: { pairs: [[3, 5]] } } })).rejects.toMatchObject({ code: 'E_RANGE' });
      await expect(api.generate('Once', { steps: 2, spans: [0, ...spans.subarray(1)] })).rejects.toMatchObject({ code: 'E_RANGE', message: expect.stringMatching(/span 0 is 0/) });
      await expect(api.perplexity(text, { ctx: 48, spans: [1, 2] })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/nLayers × nHeads/) });
    } finally {
      await worker.terminate();
    }
  });
});
