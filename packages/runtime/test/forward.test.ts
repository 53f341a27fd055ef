import { createKernelPool, createKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { generate } from '../src/generate.js';
import { loadModel } from '../src/model.js';
import { modelFile } from './helpers.js';

describe('Session (KV caches in WASM memory)', () => {
  it('returns its caches to the kernels heap on free(), as generate() does', async () => {
    const k = await createKernels();
    const model = await loadModel(modelFile, { kernels: k });
    const base = k.heap.liveBytes;
    const s = new Session(model, { ctx: 32 });
    expect(k.heap.liveBytes).toBeGreaterThan(base);
    s.forward([1, 2, 3]);
    s.free();
    expect(k.heap.liveBytes).toBe(base);
    generate(model, 'Once upon a time', { steps: 4, temperature: 0 });
    expect(k.heap.liveBytes).toBe(base);
    model.free();
  });

  it('decodes token by token as it prefills, on one thread and in a pool', async () => {
    for (const k of [await createKernels(), await createKernelPool({ threads: 2 })]) {
      const model = await loadModel(modelFile, { kernels: k });
      const ids = [1, 403, 407, 261, 358, 292, 127, 471];
      const all = new Session(model, { ctx: 16 }).forward(ids, { logits: 'all' });
      const s = new Session(model, { ctx: 16 });
      const V = model.config.vocabSize;
      ids.forEach((id, t) => {
        const l = s.forward([id]);
        // the same weights and caches; the batch only changes the summation order of f32 dots
        for (let j = 0; j < V; j += 17) expect(Math.abs(l[j] - all[t * V + j])).toBeLessThan(1e-4);
      });
      model.free();
      if ('close' in k) await (k as { close(): Promise<void> }).close();
    }
  });

  it('embed → runBlocks in pieces → head equals forward bit for bit; bad ranges and shapes are errors', async () => {
    const model = await loadModel(modelFile);
    const ids = [1, 403, 407, 261, 358, 292, 127, 471];
    const { nLayers, dim } = model.config;
    const s = new Session(model, { ctx: 16 });
    const want = s.forward(ids, { logits: 'all' });
    s.reset();
    const x = s.embed(ids);
    // one block at a time, each from position 0 (runBlocks does not advance pos)
    for (let l = 0; l < nLayers; l++) s.runBlocks(x, ids.length, l, l + 1);
    expect(s.pos).toBe(0);
    expect(Array.from(s.head(x, ids.length, { logits: 'all' }))).toEqual(Array.from(want));
    expect(Array.from(s.head(x, ids.length))).toEqual(Array.from(want.subarray((ids.length - 1) * model.config.vocabSize)));
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as { code: string }).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(err(() => s.runBlocks(x, ids.length, 0, nLayers + 1))).toMatch(/^E_RANGE: .*blocks 0\.\.\d+ are outside/);
    expect(err(() => s.runBlocks(x, ids.length, 2, 1))).toMatch(/^E_RANGE/);
    expect(err(() => s.runBlocks(x.subarray(dim), ids.length, 0, 1))).toMatch(/^E_SHAPE: .*residual stream has/);
    expect(err(() => s.runBlocks(new Float32Array(17 * dim), 17, 0, 1))).toMatch(/^E_RANGE: .*exceed the context of 16/);
    expect(err(() => s.embed([]))).toMatch(/^E_ARG/);
    s.free();
    model.free();
  });
});
