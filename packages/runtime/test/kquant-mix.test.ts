// lowbit's K-quantization of a loaded model (quantizeModelK): the matrices equal ggml's reference
// quantizers on the file's f32 values, the Q4_K_M mix follows llama.cpp's
// llama_tensor_get_type rule, and llama.cpp runs the saved file with lowbit's log-probs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/gguf-convert.js';
import { fromF32 } from '../src/ggml-quants.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { kquantLayerType, quantizeModelK, useMoreBits } from '../src/kquant-mix.js';
import { loadModel } from '../src/model.js';
import { validLines } from './helpers.js';
import { type LlamaCpp, logProbDiffs, openLlamaCpp } from './llama-cpp-lib.js';
import { writeTinyGguf } from './tiny-models.js';

const DIMS = { D: 256, F: 512, L: 8, CTX: 256 };

describe('quantizeModelK', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-kmix-'));
  const f32 = join(dir, 'f32.gguf');
  const small = join(dir, 'f32-1layer.gguf');
  let llama: LlamaCpp | undefined;
  let skipReason = '';
  beforeAll(async () => {
    ({ llama, skipReason } = await openLlamaCpp('Q4_K_M cross-check'));
    await writeTinyGguf('llama', f32, 77, DIMS);
    await writeTinyGguf('llama', small, 78, { ...DIMS, L: 1 });
  });
  afterAll(async () => {
    await llama?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("use_more_bits picks llama.cpp's layers: the first and last eighth, and every third between", () => {
    // n = 8: layers 0, 3, 6, 7 (i < 1, i >= 7, (i - 1) % 3 == 2); n = 32: 0..3, 6, 9, .., 27, 28..31
    expect([...Array(8).keys()].filter((i) => useMoreBits(i, 8))).toEqual([0, 3, 6, 7]);
    expect([...Array(32).keys()].filter((i) => useMoreBits(i, 32))).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    expect(kquantLayerType('Q4_K_M', 'blk.3.attn_v.weight', 8, 256)).toBe('Q6_K');
    expect(kquantLayerType('Q4_K_M', 'blk.2.ffn_down.weight', 8, 512)).toBe('Q4_K');
    expect(kquantLayerType('Q4_K_M', 'output.weight', 8, 256)).toBe('Q6_K');
    // rows that are not whole super-blocks take llama.cpp's fallback for the type (stories260K's 64-wide
    // rows), F32 where not even 32-blocks fit (its 172-wide ffn_down)
    const fallbacks = (['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const).map((t) => kquantLayerType(t, 'blk.0.attn_q.weight', 5, 64));
    expect(fallbacks).toEqual(['IQ4_NL', 'IQ4_NL', 'Q5_0', 'Q5_1', 'Q8_0']);
    expect(kquantLayerType('Q4_K_M', 'blk.0.attn_v.weight', 8, 64)).toBe('Q8_0'); // Q6_K's
    expect(kquantLayerType('Q4_K', 'blk.0.ffn_down.weight', 5, 172)).toBe('F32');
  });

  it('Q4_K: every matrix holds ggml reference-quantizer bytes (golden-checked in kquants.test.ts) of the file\'s f32 weights', async () => {
    const m = await loadModel(small);
    const r = quantizeModelK(m, 'Q4_K');
    expect(r.layers.every((l) => l.type === 'Q4_K')).toBe(true);
    expect(r.bitsPerWeight).toBe(4.5);
    const file = await readGguf(small);
    for (const l of m.linears()) {
      const src = l.source;
      expect(src.format, l.name).toBe('kquant');
      const b = await readTensorBytes(file, l.name);
      const want = fromF32('Q4_K', new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)), l.cols);
      expect((src as { data: Uint8Array }).data, l.name).toEqual(want);
    }
    await file.source.close();
    m.free();
  });

  it('Q4_K_M: attn_v and ffn_down of layers 0, 3, 6, 7 and output.weight in Q6_K; llama.cpp runs the saved file with our log-probs', async (t) => {
    const out = join(dir, 'q4_k_m.gguf');
    const m = await loadModel(f32);
    quantizeModelK(m, 'Q4_K_M');
    await saveModel(m, out, { target: 'F32' });
    const file = await readGguf(out);
    const types = Object.fromEntries([...file.tensors.values()].filter((x) => x.shape.length === 2).map((x) => [x.name, x.type]));
    await file.source.close();
    for (let i = 0; i < 8; i++) {
      const more = [0, 3, 6, 7].includes(i);
      expect(types[`blk.${i}.attn_v.weight`]).toBe(more ? 'Q6_K' : 'Q4_K');
      expect(types[`blk.${i}.ffn_down.weight`]).toBe(more ? 'Q6_K' : 'Q4_K');
      expect(types[`blk.${i}.attn_q.weight`]).toBe('Q4_K');
    }
    expect(types['output.weight']).toBe('Q6_K');
    if (!llama) {
      m.free();
      return t.skip(skipReason);
    }
    const ids = m.tokenizer.encode(validLines.slice(0, 6).join(' ')).slice(0, 200);
    const lm = await llama.loadModel({ modelPath: out });
    const d = await logProbDiffs(lm, m, ids, DIMS.CTX);
    await lm.dispose();
    m.free();
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    console.log('log-prob |Δ| vs llama.cpp, Q4_K_M:', { n: d.length, max: Math.max(...d), mean });
    // the bounds of kquants.test.ts: llama.cpp's Q8_K activation rounding is the only difference
    expect(d.length).toBeGreaterThanOrEqual(150);
    expect(mean).toBeLessThan(0.05);
    expect(Math.max(...d)).toBeLessThan(0.5);
  });
});
