import { Worker } from 'node:worker_threads';
import { defaultModelUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { callback, nodeEndpoint, wrapRuntime } from '../src/worker-api.js';
import { modelFile } from './helpers.js';

describe('comlink worker API', () => {
  it('loads, generates and evaluates in a worker thread with the main-thread results', async () => {
    // the worker runs the built entry (dist/worker.js): turbo builds before tests
    const worker = new Worker(new URL('../dist/worker.js', import.meta.url));
    try {
      const api = wrapRuntime(nodeEndpoint(worker));
      const config = await api.load(modelFile);
      expect(config.dim).toBe(64);
      const tokens: string[] = [];
      const r = await api.generate('Once upon a time', { steps: 12 }, callback((_id: number, text: string) => void tokens.push(text)));
      expect(r.text.startsWith(', there was a little girl named Lily')).toBe(true);
      // every callback has run by the time the result arrives
      expect(tokens.join('')).toBe(r.text);
      const progress: number[] = [];
      const p = await api.perplexity('Once upon a time there was a dog.\nThe dog liked to run.', { ctx: 8 }, callback((d: number) => void progress.push(d)));
      expect(p.perplexity).toBeGreaterThan(1);
      expect(progress.length).toBe(p.windows);
      // the LowbitError's code crosses with its message
      await expect(api.decode([99999])).rejects.toMatchObject({ name: 'LowbitError', code: 'E_RANGE', message: expect.stringMatching(/token id 99999/) });
      // a file: URL (what @lowbit/data exports) loads the same model in Node as the path did
      await api.load(defaultModelUrl.href, { variant: 'simd' });
      expect(await api.info()).toMatchObject({ model: modelFile, kernels: 'simd', config });
      // a 2-thread pool inside the worker: rows split, each row's sum unchanged, so the same tokens
      await api.load(modelFile, { threads: 2 });
      expect((await api.info()).kernels).toMatch(/-threads$/);
      expect((await api.generate('Once upon a time', { steps: 12 })).tokens).toEqual(r.tokens);
      await api.unload();
      await expect(api.info()).rejects.toMatchObject({ code: 'E_MISSING' });
    } finally {
      await worker.terminate();
    }
  });
});
