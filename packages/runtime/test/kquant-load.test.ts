// A K-quant GGUF's matrices are read through one reused buffer (model.ts, kquantLinearReused): every
// layer must still hold its own tensor's bytes after later, differently sized reads overwrite it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/gguf-convert.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { quantizeModelK } from '../src/kquant-mix.js';
import { loadModel } from '../src/model.js';
import { writeTinyGguf } from './tiny-models.js';

describe('loading K-quant matrices through a reused read buffer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-kload-'));
  const kq = join(dir, 'q4_k_m.gguf');
  beforeAll(async () => {
    const f32 = join(dir, 'f32.gguf');
    await writeTinyGguf('llama', f32, 91, { D: 256, F: 512, L: 2, CTX: 64 });
    const m = await loadModel(f32);
    // Q4_K_M: Q6_K attn_v / ffn_down in both layers (use_more_bits), Q4_K elsewhere: reads of 3 sizes
    quantizeModelK(m, 'Q4_K_M');
    await saveModel(m, kq, { target: 'F32' });
    m.free();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('each loaded layer gives back its own super-blocks, byte for byte, as an independent read of the file', async () => {
    const m = await loadModel(kq);
    const file = await readGguf(kq);
    const types = new Set<string>();
    try {
      for (const l of m.linears()) {
        const src = l.source as { format: string; type: string; data: Uint8Array };
        expect(src.format, l.name).toBe('kquant');
        types.add(src.type);
        expect(src.data, l.name).toEqual(await readTensorBytes(file, l.name));
      }
    } finally {
      await file.source.close();
      m.free();
    }
    expect([...types].sort()).toEqual(['Q4_K', 'Q6_K']);
  });
});
