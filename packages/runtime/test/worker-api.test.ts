import { Worker } from 'node:worker_threads';
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
      // callbacks travel on their own MessageChannel, so the last ones may land after the result
      await new Promise((ok) => setTimeout(ok, 100));
      expect(tokens.join('')).toBe(r.text);
      const progress: number[] = [];
      const p = await api.perplexity('Once upon a time there was a dog.\nThe dog liked to run.', { ctx: 8 }, callback((d: number) => void progress.push(d)));
      expect(p.perplexity).toBeGreaterThan(1);
      await new Promise((ok) => setTimeout(ok, 100));
      expect(progress.length).toBe(p.windows);
      await expect(api.decode([99999])).rejects.toMatchObject({ message: expect.stringMatching(/token id 99999/) });
    } finally {
      await worker.terminate();
    }
  });
});
