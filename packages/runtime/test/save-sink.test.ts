// Saving into a ByteSink (browsers have no file system) and serving app methods beside the worker API.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model.js';
import { saveModel } from '../src/gguf-convert.js';
import { type createRuntimeApi, exposeRuntime, nodeEndpoint, runtimeModel, wrapRuntime } from '../src/worker-api.js';
import { modelFile } from './helpers.js';

describe('saveModel into a ByteSink', () => {
  it('receives exactly the bytes the file path gets', async () => {
    const model = await loadModel(modelFile);
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-sink-'));
    try {
      const path = join(dir, 'm.gguf');
      await saveModel(model, path, { target: 'F16' });
      const chunks: Uint8Array[] = [];
      // chunks may be views of model memory: the sink copies, as a browser collector must
      await saveModel(model, { write: async (b) => chunks.push(b.slice()) }, { target: 'F16' });
      const got = new Uint8Array(chunks.reduce((a, c) => a + c.length, 0));
      let o = 0;
      for (const c of chunks) got.set(c, (o += c.length) - c.length);
      expect(Buffer.from(got).equals(readFileSync(path))).toBe(true);
    } finally {
      model.free();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('exposeRuntime with extra methods', () => {
  it('serves them beside the API, on the model the API holds', async () => {
    const { port1, port2 } = new MessageChannel();
    exposeRuntime(nodeEndpoint(port1), (api) => ({ layers: () => runtimeModel(api).config.nLayers }));
    const remote = wrapRuntime(nodeEndpoint(port2)) as unknown as { load(p: string): Promise<unknown>; layers(): Promise<number>; unload(): Promise<void> };
    try {
      await expect(remote.layers()).rejects.toThrow(/no model loaded/);
      await remote.load(modelFile);
      expect(await remote.layers()).toBe(5); // stories260K
      await remote.unload();
    } finally {
      port1.close();
      port2.close();
    }
    expect(() => runtimeModel({} as ReturnType<typeof createRuntimeApi>)).toThrow(/createRuntimeApi/);
  });
});
