// A nested any-precision model served through the worker API: loaded from its safetensors file (by
// path and as bytes), the width chosen per request, results equal to the main thread's.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { quantizeAnyPrecision } from '@lowbit/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { generate } from '../src/generate.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { nodeEndpoint, transferBytes, wrapRuntime } from '../src/worker-api.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-worker-anyprec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('worker API with a nested any-precision model', () => {
  it('loads the nested file by path and by bytes; generate/perplexity({ bits }) equal the main thread per width', async () => {
    const model = await loadModel(modelFile);
    for (const l of model.linears()) {
      if (!l.name.startsWith('blk.0.')) continue; // one block nested keeps the k-means fits quick; the rest stays f32
      const src = l.source as { data: Float32Array; shape: [number, number] };
      model.setLinear(l.name, linearWeightFromPacked(quantizeAnyPrecision(src.data, src.shape, { seedBits: 3, maxBits: 4 })));
    }
    const file = join(dir, 'ap.safetensors');
    await saveModelSafetensors(model, file);
    model.free();
    const local = await loadQuantizedSafetensors(file);
    const text = validLines.slice(0, 1).join('\n');
    const want = [3, 4].map((bits) => ({
      tokens: generate(local, 'Once upon a time', { steps: 10, bits }).tokens,
      ppl: perplexity(local, text, { ctx: 64, maxWindows: 2, bits }).perplexity,
    }));
    local.free();
    // the worker runs the built entry (dist/worker.js): turbo builds before tests
    const worker = new Worker(new URL('../dist/worker.js', import.meta.url));
    try {
      const api = wrapRuntime(nodeEndpoint(worker));
      for (const source of [file, () => transferBytes(new Uint8Array(readFileSync(file)))]) {
        await api.load(typeof source === 'string' ? source : source(), { name: 'ap.safetensors' });
        for (const [i, bits] of [3, 4].entries()) {
          expect((await api.generate('Once upon a time', { steps: 10, bits })).tokens).toEqual(want[i].tokens);
          // same weights, same kernels, same protocol: equal to the last bit
          expect((await api.perplexity(text, { ctx: 64, maxWindows: 2, bits })).perplexity).toBe(want[i].ppl);
        }
        await expect(api.generate('Once upon a time', { steps: 2, bits: 5 })).rejects.toMatchObject({ code: 'E_ARG', message: expect.stringMatching(/holds 3 to 4 bits, asked for 5/) });
      }
      // a GGUF still loads as before
      expect((await api.load(modelFile)).dim).toBe(64);
    } finally {
      await worker.terminate();
    }
  });
});
