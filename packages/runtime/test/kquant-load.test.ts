// K-quant and F32/F16/BF16 GGUF matrices are read through buffers reused for the whole load (model.ts,
// kquantLinearReused, floatLinearReused): every layer must still hold its own tensor's values after
// later, differently sized reads overwrite the buffers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/gguf-convert.js';
import { toF32 } from '../src/ggml-quants.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { quantizeModelK } from '../src/kquant-mix.js';
import { loadModel } from '../src/model.js';
import { writeTinyGguf } from './tiny-models.js';

const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('loading K-quant matrices through a reused read buffer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-kload-'));
  const kq = join(dir, 'q4_k_m.gguf');
  const f32 = join(dir, 'f32.gguf');
  const f16 = join(dir, 'f16.gguf');
  const bf16 = join(dir, 'bf16.gguf');
  beforeAll(async () => {
    await writeTinyGguf('llama', f32, 91, { D: 256, F: 512, L: 2, CTX: 64 });
    const m = await loadModel(f32);
    // Q4_K_M: Q6_K attn_v / ffn_down in both layers (use_more_bits), Q4_K elsewhere: reads of 3 sizes
    await saveModel(m, f16, { target: 'F16' });
    await saveModel(m, bf16, { target: 'BF16' });
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
        expect(Buffer.compare(src.data, await readTensorBytes(file, l.name)), l.name).toBe(0);
      }
    } finally {
      await file.source.close();
      m.free();
    }
    expect([...types].sort()).toEqual(['Q4_K', 'Q6_K']);
  });

  it.each([['F32', f32], ['F16', f16], ['BF16', bf16]])('%s: each loaded layer holds the f32 decoding of its own tensor (an independent read and toF32)', async (type, path) => {
    const m = await loadModel(path);
    const file = await readGguf(path);
    try {
      const shapes = new Set<number>();
      for (const l of m.linears()) {
        const t = file.tensors.get(l.name);
        expect(t?.type, l.name).toBe(type);
        const src = l.source as { format: string; data: Float32Array };
        expect(src.format, l.name).toBe('f32');
        shapes.add(l.rows * l.cols);
        // exact: both decode the same bits with the same rule
        const want = toF32(type as 'F16', await readTensorBytes(file, l.name), l.rows * l.cols);
        expect(src.data.length, l.name).toBe(want.length);
        expect(Buffer.compare(bytesOf(src.data), bytesOf(want)), l.name).toBe(0);
      }
      expect(shapes.size).toBeGreaterThan(1); // reads of several sizes through one buffer
    } finally {
      await file.source.close();
      m.free();
    }
  });
});
