// K-quant and F32/F16/BF16 GGUF matrices are read through buffers reused for the whole load (model.ts,
// kquantLinearReused, floatLinearReused): every layer must still hold its own tensor's values after
// later, differently sized reads overwrite the buffers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeGguf, saveModel } from '../src/gguf-convert.js';
import { dequantize, toF32 } from '../src/ggml-quants.js';
import { bf16ToF32, f16ToF32 } from '../src/half.js';
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

describe('dequantize of whole F32/F16/BF16 runs (the typed-array paths a load takes)', () => {
  it('equals the per-value decoders on every 16-bit code, at an aligned and an odd byte offset', () => {
    const codes = new Uint8Array(2 * 65536 + 1);
    for (let h = 0; h < 65536; h++) {
      codes[2 * h] = h & 0xff;
      codes[2 * h + 1] = h >>> 8;
    }
    const odd = new Uint8Array(codes.length);
    odd.set(codes.subarray(0, 2 * 65536), 1); // the same codes from byte 1: the DataView loops
    for (const [type, ref] of [['F16', f16ToF32], ['BF16', bf16ToF32]] as const) {
      for (const [src, offset] of [[codes, 0], [odd, 1]] as const) {
        const out = new Float32Array(65536);
        dequantize(type, src, offset, 65536, out);
        for (let h = 0; h < 65536; h++) {
          const want = ref(h);
          // NaN codes stay NaN (their payloads are not compared); every other code exactly
          if (Number.isNaN(want) ? !Number.isNaN(out[h]) : !Object.is(out[h], Math.fround(want))) expect.fail(`${type} code ${h} at offset ${offset}: ${out[h]} != ${want}`);
        }
      }
    }
    const f = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e3);
    const fb = new Uint8Array(4001);
    fb.set(new Uint8Array(f.buffer), 1);
    const a = new Float32Array(1000);
    const b = new Float32Array(1000);
    dequantize('F32', new Uint8Array(f.buffer), 0, 1000, a);
    dequantize('F32', fb, 1, 1000, b);
    expect(a).toEqual(f);
    expect(b).toEqual(f);
  });
});

describe('a K-quant token embedding', () => {
  it('is checked by its f16 super-scales, as the matrices are: a NaN scale is E_NAN naming token_embd.weight', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-kembd-'));
    try {
      const f32 = join(dir, 'f32.gguf');
      const q = join(dir, 'q4_k.gguf');
      await writeTinyGguf('llama', f32, 92, { D: 256, F: 512, L: 1, CTX: 64 });
      await quantizeGguf(f32, q, 'Q4_K');
      const file = await readGguf(q);
      const e = file.tensors.get('token_embd.weight');
      await file.source.close();
      expect(e?.type).toBe('Q4_K');
      const m = await loadModel(q); // the intact file loads
      m.free();
      const b = readFileSync(q);
      const at = Number(e?.offset) + 144 * 3; // super-block 3's d (f16 at byte 0 of a Q4_K block)
      b[at] = 0x00;
      b[at + 1] = 0x7e; // f16 NaN
      writeFileSync(q, b);
      await expect(loadModel(q)).rejects.toMatchObject({ code: 'E_NAN', message: expect.stringMatching(/token_embd\.weight: Q4_K super-block 3 has a NaN/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
