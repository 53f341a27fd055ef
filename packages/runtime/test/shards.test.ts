import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelPool, LowbitError, createKernelPool, loadKernels } from '@lowbit/kernels';
import { Session, type SessionOptions } from '../src/forward.js';
import { CompressedKvCache } from '../src/kv-cache.js';
import { quantizeGguf } from '../src/gguf-convert.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { planShards } from '../src/shards.js';
import { type ByteSource, bytesSource } from '../src/byte-source.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { quantizeInt } from '@lowbit/formats';
import { modelFile } from './helpers.js';
import { writeTinyGguf } from './tiny-models.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-shards-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Logits of a prefill of `prompt` (every position) then three greedy decode steps. */
function run(model: DecoderModel, prompt: number[], options: SessionOptions = {}): Float32Array[] {
  const s = new Session(model, { ctx: 32, ...options });
  const out = [s.forward(prompt, { logits: 'all' })];
  for (let i = 0; i < 3; i++) {
    const last = out[out.length - 1];
    const row = last.subarray(last.length - model.config.vocabSize);
    out.push(s.forward([row.indexOf(Math.max(...row))]));
  }
  s.free();
  return out;
}

describe('planShards', () => {
  it('uses the fewest instances, in load order, as balanced as that count allows', () => {
    const items = [6, 1, 1, 1, 1, 6].map((bytes, i) => ({ name: `t${i}`, bytes }));
    // greedy at the cap 10 would give [6,1,1,1] [1,6] (largest 9); two instances can be as even as 8 and 8
    expect(planShards(items, 10, 'm')).toEqual([0, 0, 0, 1, 1, 1]);
    expect(planShards(items, 16, 'm')).toEqual([0, 0, 0, 0, 0, 0]);
    expect(planShards(items, 6, 'm')).toEqual([0, 1, 1, 1, 1, 2]);
  });

  it('refuses a tensor larger than the cap, naming it and the cap, and a cap past wasm32', () => {
    const items = [{ name: 'a', bytes: 5 }, { name: 'blk.3.ffn_up.weight', bytes: 11 }];
    expect(() => planShards(items, 10, 'm.gguf')).toThrowError(/^m\.gguf: tensor blk\.3\.ffn_up\.weight needs 11 bytes .*maxInstanceBytes = 10/);
    expect(() => planShards(items, 2 ** 32, 'm.gguf')).toThrowError(LowbitError);
  });
});

describe('a model spread over several kernel instances', () => {
  it('gives logits bit-identical to one instance (stories260K F32 and Q8_0; f32, int8, span-limited and hooked KV caches)', async () => {
    const q8 = join(dir, 'stories-q8_0.gguf');
    await quantizeGguf(modelFile, q8, 'Q8_0');
    const k = await loadKernels();
    // ~1 MB of F32 weights in 140 kB instances, ~0.3 MB of Q8_0 in 50 kB ones: blocks split mid-way
    for (const [file, maxInstanceBytes] of [[modelFile, 140_000], [q8, 50_000]] as const) {
      const one = await loadModel(file, { kernels: k });
      const many = await loadModel(file, { kernels: k, maxInstanceBytes });
      expect(one.instances).toEqual([k]);
      expect(many.instances.length).toBeGreaterThanOrEqual(3);
      expect(new Set(many.instances.map((i) => i.variant))).toEqual(new Set([k.variant]));
      // a layer whose K and FFN sit in different instances: activations must cross instances inside a block
      expect(many.weights.layers.some((l) => l.wk.kernels !== l.w2.kernels)).toBe(true);
      const prompt = [1, 403, 407, 261, 378, 9];
      for (const int8Cache of [false, true]) expect(run(many, prompt, { int8Cache })).toEqual(run(one, prompt, { int8Cache }));
      // attention spans, and a KV-cache hook that rewrites each layer's cache in place (4-bit MiniCache-style storage)
      const c = many.config;
      const spans = Int32Array.from({ length: c.nLayers * c.nHeads }, (_, i) => 2 + (i % 5));
      expect(run(many, prompt, { spans })).toEqual(run(one, prompt, { spans }));
      expect(run(many, prompt, { kvCache: new CompressedKvCache(c, 32, { bits: 4 }) })).toEqual(run(one, prompt, { kvCache: new CompressedKvCache(c, 32, { bits: 4 }) }));
      one.free();
      many.free();
    }
  });

  it('runs gpt2 (fused attn_qkv cut into Q, K, V) and qwen2 (biases, NEOX rows) sharded, bit for bit', async () => {
    const k = await loadKernels();
    for (const arch of ['gpt2', 'qwen2'] as const) {
      const path = join(dir, `${arch}.gguf`);
      await writeTinyGguf(arch, path);
      const one = await loadModel(path, { kernels: k });
      const many = await loadModel(path, { kernels: k, maxInstanceBytes: 70_000 });
      expect(many.instances.length).toBeGreaterThanOrEqual(3);
      expect(run(many, [5, 17, 42, 7])).toEqual(run(one, [5, 17, 42, 7]));
      one.free();
      many.free();
    }
  });

  it('runs sharded on 2-thread pools, one per instance with its own workers, bit-identical to one instance on one thread', async () => {
    const q8 = join(dir, 'stories-q8_0-pool.gguf');
    await quantizeGguf(modelFile, q8, 'Q8_0');
    const k = await loadKernels();
    const pool = await createKernelPool({ threads: 2 });
    try {
      for (const file of [modelFile, q8]) {
        const one = await loadModel(file, { kernels: k });
        const many = await loadModel(file, { kernels: pool, maxInstanceBytes: file === q8 ? 50_000 : 140_000 });
        expect(many.instances.length).toBeGreaterThanOrEqual(3);
        // every instance a pool of two threads on a memory of its own
        expect(many.instances.every((i) => i instanceof KernelPool && i.threads === 2 && i.variant === pool.variant)).toBe(true);
        expect(new Set(many.instances.map((i) => i.memory)).size).toBe(many.instances.length);
        const prompt = [1, 403, 407, 261, 378, 9];
        // row-split matmuls compute each output as one thread would: equal bit for bit
        expect(run(many, prompt)).toEqual(run(one, prompt));
        const extra = many.instances.filter((i) => i !== pool) as KernelPool[];
        one.free();
        many.free();
        // free() stops the pools the loader started, not the caller's
        await new Promise((r) => setTimeout(r, 50));
        expect(() => extra[0].matmulF32(new Float32Array(32), 1, 32, new Float32Array(32), 1)).toThrowError(/closed/);
        expect(pool.matmulF32(new Float32Array(32), 1, 32, new Float32Array(32), 1)).toHaveLength(1);
      }
    } finally {
      await pool.close();
    }
  });

  it('reads Q8_0 matrices into WASM memory through readInto, or through read and a copy from a source without it: same logits', async () => {
    const q8 = join(dir, 'stories-q8_0-src.gguf');
    await quantizeGguf(modelFile, q8, 'Q8_0');
    const bytes = new Uint8Array(readFileSync(q8));
    const k = await loadKernels();
    const plain = bytesSource(bytes, 'plain.gguf');
    // a ByteSource made elsewhere, with read only
    const readOnly: ByteSource = { name: 'read-only.gguf', size: plain.size, read: (o, n) => plain.read(o, n), close: async () => {} };
    const a = await loadModel(q8, { kernels: k, maxInstanceBytes: 50_000 });
    const b = await loadModel(readOnly, { kernels: k, maxInstanceBytes: 50_000 });
    const c = await loadModel(bytesSource(bytes, 'bytes.gguf'), { kernels: k });
    expect(a.linear('blk.0.ffn_up.weight').format).toBe('q8_0');
    const prompt = [1, 403, 407, 261, 378, 9];
    expect(run(b, prompt)).toEqual(run(a, prompt));
    expect(run(c, prompt)).toEqual(run(a, prompt));
    // the tiles hold the file's blocks byte for byte
    const f = await readGguf(bytesSource(bytes, 'again.gguf'));
    expect(a.linear('blk.1.attn_v.weight').source).toEqual({ format: 'q8_0', shape: [a.config.nKvHeads * a.config.headDim, a.config.dim], data: await readTensorBytes(f, 'blk.1.attn_v.weight') });
    for (const m of [a, b, c]) m.free();
  });

  it('refuses a cap smaller than one tensor, naming the tensor and the cap', async () => {
    const err = await loadModel(modelFile, { maxInstanceBytes: 20_000 }).catch((e) => e);
    expect(err).toBeInstanceOf(LowbitError);
    expect(err.code).toBe('E_RANGE');
    expect(err.message).toMatch(/tensor blk\.0\.ffn_gate\.weight needs 44032 bytes .*maxInstanceBytes = 20000/);
  });

  it('loads Hugging Face directories (llama, gpt2) and quantized safetensors (GPTQ int4) sharded through the same planner, bit for bit; a cap below one matrix names it', async () => {
    const k = await loadKernels();
    const prompt = [1, 403, 407, 261, 378, 9];
    const stories = await loadModel(modelFile, { kernels: k });
    // llama (stories260K exported) and gpt2 (a tiny random one) as HF checkpoint directories
    const hfLlama = join(dir, 'hf-llama');
    await exportHfModel(modelFile, hfLlama);
    const gpt2 = join(dir, 'gpt2-hf.gguf');
    await writeTinyGguf('gpt2', gpt2);
    const hfGpt2 = join(dir, 'hf-gpt2');
    await exportHfModel(gpt2, hfGpt2);
    const gpt2Tok = (await loadModel(gpt2, { kernels: k })).tokenizer;
    for (const [d, tokenizer, cap, ids] of [[hfLlama, stories.tokenizer, 140_000, prompt], [hfGpt2, gpt2Tok, 70_000, [5, 17, 42, 7]]] as const) {
      const one = await loadHfModel(d, { kernels: k, tokenizer });
      const many = await loadHfModel(d, { kernels: k, tokenizer, maxInstanceBytes: cap });
      expect(one.instances).toEqual([k]);
      expect(many.instances.length).toBeGreaterThanOrEqual(3);
      expect(many.weights.layers.some((l) => l.wk.kernels !== l.w2.kernels)).toBe(true);
      expect(run(many, [...ids])).toEqual(run(one, [...ids]));
      one.free();
      many.free();
    }
    await expect(loadHfModel(hfLlama, { kernels: k, tokenizer: stories.tokenizer, maxInstanceBytes: 20_000 })).rejects.toThrow(
      expect.objectContaining({ code: 'E_RANGE', message: expect.stringMatching(/tensor blk\.0\.ffn_gate\.weight needs 44032 bytes .*maxInstanceBytes = 20000/) }),
    );
    // GPTQ int4 g32 in lowbit's safetensors: packed layers (qweight, qzeros, f16 scales) planned from their stored sizes
    const packed = new Map(stories.linears().filter((l) => l.name.startsWith('blk.')).map((l) => [l.name, quantizeInt((l.source as { data: Float32Array }).data, [l.rows, l.cols], { bits: 4, symmetric: false, granularity: 'group-cols', group: 32 })]));
    const st = join(dir, 'gptq.safetensors');
    await saveModelSafetensors(stories, st, { packed });
    const one = await loadQuantizedSafetensors(st, { kernels: k });
    const many = await loadQuantizedSafetensors(st, { kernels: k, maxInstanceBytes: 140_000 });
    expect(many.instances.length).toBeGreaterThanOrEqual(3);
    expect(many.linear('blk.0.attn_q.weight').format).toBe(one.linear('blk.0.attn_q.weight').format);
    expect(run(many, prompt)).toEqual(run(one, prompt));
    await expect(loadQuantizedSafetensors(st, { kernels: k, maxInstanceBytes: 100_000 })).rejects.toThrow(
      expect.objectContaining({ code: 'E_RANGE', message: expect.stringMatching(/tensor output\.weight needs \d+ bytes .*maxInstanceBytes = 100000/) }),
    );
    one.free();
    many.free();
    stories.free();
  });
});
