// The runtime worker in a real browser: a Vite-bundled page starts it with createRuntimeWorker
// (@lowbit/runtime/browser), loads the embedded stories260K by URL and by transferred bytes, and
// tokenizes, generates and measures perplexity in Debian's Chromium (driven by playwright-core).
// Node recomputes every number on the main thread with the same kernel build.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernels } from '@lowbit/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndServe, CHROMIUM, haveChromium, pageResult, type ServedPage } from '../../kernels/test/browser-harness.js';
import { generate } from '../src/generate.js';
import type { LlamaConfig } from '../src/model.js';
import { loadModel } from '../src/model.js';
import { type PerplexityResult, perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
if (!haveChromium) console.warn(`browser runtime-worker test skipped: no Chromium at ${CHROMIUM} (CI installs Debian's chromium; set LOWBIT_CHROMIUM to another binary)`);

interface PageResult {
  failed?: boolean;
  error?: { name?: string; code?: string; message: string };
  variant: 'relaxed' | 'simd' | 'scalar';
  modelName: string;
  urlModel: string;
  configByUrl: LlamaConfig;
  configByBytes: LlamaConfig;
  modelBytes: number;
  bytesAfterTransfer: number;
  story: string;
  ids: number[];
  decoded: string;
  prompt: string;
  steps: number;
  tokens: number[];
  text: string;
  streamed: { id: number; text: string }[];
  ppl: { ctx: number; maxWindows: number };
  perplexity: PerplexityResult;
  progress: [number, number][];
}

let served: ServedPage | undefined;
beforeAll(async () => {
  if (haveChromium) served = await buildAndServe(join(here, 'worker-browser-fixture'));
}, 60_000);
afterAll(() => served?.close());

describe.skipIf(!haveChromium)('runtime worker in Chromium', () => {
  it('loads the embedded model into a Web Worker and matches Node token for token', async () => {
    const r = await pageResult<PageResult>(served!.url, 30_000);
    expect(r.failed, r.error?.message).toBeUndefined();

    // Chromium >= 114 has relaxed SIMD; the loader checks it against plain SIMD before choosing it.
    expect(r.variant).toBe('relaxed');
    expect(r.urlModel).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*stories260K.*\.gguf$/);
    expect(r.modelName).toBe('stories260K.gguf');
    expect(r.configByUrl).toEqual(r.configByBytes);
    expect(r.configByBytes.dim).toBe(64);
    // transferred, not copied: the page's buffer is detached
    expect(r.modelBytes).toBeGreaterThan(1_000_000);
    expect(r.bytesAfterTransfer).toBe(0);
    // LowbitError's code survives the trip through comlink
    expect(r.error).toMatchObject({ name: 'LowbitError', code: 'E_RANGE', message: expect.stringMatching(/token id 99999/) });

    const model = await loadModel(modelFile, { kernels: await loadKernels({ variant: r.variant }) });
    try {
      expect(r.configByBytes).toEqual(model.config);

      // (1) tokenization of the shipped text's first story
      expect(r.story).toBe(validLines[0]);
      const ids = model.tokenizer.encode(r.story, { bos: true });
      expect(r.ids).toEqual(ids);
      expect(r.decoded).toBe(model.tokenizer.decode(ids.slice(1)));

      // (2) greedy generation, token for token, and the streamed callbacks add up to the result
      const gen = generate(model, r.prompt, { steps: r.steps, stopAtEos: false });
      expect(r.tokens).toHaveLength(32);
      expect(r.tokens).toEqual(gen.tokens);
      expect(r.text).toBe(gen.text);
      expect(r.streamed.map((s) => s.id)).toEqual(gen.tokens);
      expect(r.streamed.map((s) => s.text).join('')).toBe(gen.text);

      // (3) perplexity on one short window. Same kernel build, same f32 WebAssembly arithmetic:
      // the logits are bit-identical; only the f64 log-softmax (Math.exp/Math.log, which V8
      // implements in software the same way in Node and Chromium) runs outside WebAssembly, so
      // 1e-12 relative leaves room for a last-bit difference between V8 versions and for nothing
      // else (one flipped f32 logit rounding would move it by ~1e-8).
      const p = perplexity(model, r.story, r.ppl);
      expect(r.perplexity.tokens).toBe(p.tokens);
      expect(r.perplexity.tokens).toBe(r.ppl.ctx - 1);
      expect(r.perplexity.windows).toBe(1);
      console.log(`perplexity ctx ${r.ppl.ctx}: Chromium ${r.perplexity.perplexity} Node ${p.perplexity} |Δ| ${Math.abs(r.perplexity.perplexity - p.perplexity)}`);
      expect(Math.abs(r.perplexity.perplexity - p.perplexity)).toBeLessThanOrEqual(1e-12 * p.perplexity);
      expect(r.progress.at(-1)).toEqual([1, 1]);
    } finally {
      model.free();
    }
  }, 60_000);
});
