// Prefill of a K-quant model through the kernels' batched K-quant path (gemvKQuant with batch > 1:
// each prepared tile unpacked once per four tokens) against decoding the same tokens one at a time
// (batch 1: the per-token GEMV). The kernels give each token the per-token GEMV's bits, so whatever
// differs between the two runs comes from the rest of the forward pass.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { quantizeGguf } from '../src/gguf-convert.js';
import { loadModel } from '../src/model.js';
import { validLines } from './helpers.js';
import { writeTinyGguf } from './tiny-models.js';

// every matrix has rows of 256, so all of them are stored in the K type under test
const DIMS = { D: 256, F: 512, CTX: 64 };

describe('K-quant prefill in one batch equals token-by-token decoding', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-kquant-prefill-'));
  const f32 = join(dir, 'tiny-f32.gguf');
  beforeAll(async () => {
    await writeTinyGguf('llama', f32, 777, DIMS);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.for(['Q4_K', 'Q6_K', 'Q3_K'] as const)('%s: logits of a 13-token prefill equal the per-token ones', async (type) => {
    const path = join(dir, `tiny-${type}.gguf`);
    await quantizeGguf(f32, path, type);
    const model = await loadModel(path);
    try {
      for (const l of model.linears()) expect(l.format, l.name).toBe('kquant');
      // 13 tokens: three groups of four through the batched kernel and one through the GEMV
      const ids = model.tokenizer.encode(validLines[2], { bos: true }).slice(0, 13);
      expect(ids.length).toBe(13);
      const V = model.config.vocabSize;
      const batched = new Session(model, { ctx: DIMS.CTX }).forward(ids, { logits: 'all' });
      const step = new Session(model, { ctx: DIMS.CTX });
      let worst = 0;
      let scale = 0;
      for (let t = 0; t < ids.length; t++) {
        const l = step.forward([ids[t]]);
        for (let j = 0; j < V; j++) {
          worst = Math.max(worst, Math.abs(l[j] - batched[t * V + j]));
          scale = Math.max(scale, Math.abs(l[j]));
        }
      }
      // The linear layers' outputs are bit-identical (kernels/test/kquant-gemm.test.ts); attention
      // and the norms may sum in another order between one batch and single tokens, as for F32
      // models (model.test.ts: 1e-4), so f32 round-off relative to the logits' size is all that
      // may differ (measured: none, the logits are equal bit for bit with today's forward pass).
      expect(scale).toBeGreaterThan(0);
      expect(worst / scale).toBeLessThan(1e-5);
    } finally {
      model.free();
    }
  });
});
