#!/usr/bin/env node
// Writes a random-weight GGUF in the shape of a 1B-class Llama (TinyLlama-1.1B: dim 2048, 22 layers,
// FFN 5632, 32 heads / 4 KV heads, vocabulary 32000) for speed measurements only: random weights
// say nothing about quality. Usage: node tools/make-throughput-model.mjs [out-dir] [Q4_0 Q8_0 ...]
// (default out-dir: $LOWBIT_MODELS or <os tmpdir>/lowbit-models, where benchmarks/src/runtime.ts looks).
// Output (~0.6 GB Q4_0, ~1.1 GB Q8_0) belongs in an ignored or temporary folder, never in git.
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromF32, gguf, storageType, writeGguf } from '@lowbit/runtime';

const [outDir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models'), ...types] = process.argv.slice(2);
const cfg = { dim: 2048, layers: 22, ffn: 5632, heads: 32, kvHeads: 4, vocab: 32000, ctx: 2048 };

// xorshift32: reproducible weights; scaled like an initialised network (std ≈ 1/sqrt(fan-in))
let s = 0x9e3779b9;
function randn(n, scale) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    a[i] = ((s >>> 0) / 4294967296 - 0.5) * 3.4641 * scale; // uniform with std `scale`
  }
  return a;
}

function vocabulary() {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (let i = tokens.length; i < cfg.vocab; i++) {
    tokens.push(`\u2581w${i.toString(36)}`);
    types.push(1);
  }
  return { tokens, types, scores: tokens.map((_, i) => -i) };
}

async function write(type) {
  const path = join(outDir, `throughput-1b-${type}.gguf`);
  const v = vocabulary();
  const meta = new Map([
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(`lowbit random 1B-class ${type} (speed only)`)],
    ['llama.context_length', gguf.u32(cfg.ctx)],
    ['llama.embedding_length', gguf.u32(cfg.dim)],
    ['llama.feed_forward_length', gguf.u32(cfg.ffn)],
    ['llama.block_count', gguf.u32(cfg.layers)],
    ['llama.attention.head_count', gguf.u32(cfg.heads)],
    ['llama.attention.head_count_kv', gguf.u32(cfg.kvHeads)],
    ['llama.rope.dimension_count', gguf.u32(cfg.dim / cfg.heads)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['tokenizer.ggml.model', gguf.str('llama')],
    ['tokenizer.ggml.tokens', gguf.strs(v.tokens)],
    ['tokenizer.ggml.scores', gguf.f32s(v.scores)],
    ['tokenizer.ggml.token_type', gguf.i32s(v.types)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
    ['tokenizer.ggml.eos_token_id', gguf.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
  ]);
  const kv = (cfg.dim / cfg.heads) * cfg.kvHeads;
  const mat = (name, rows, cols) => {
    const shape = [cols, rows];
    const t = storageType(type, shape);
    return { name, shape, type: t, data: () => fromF32(t, randn(rows * cols, 1 / Math.sqrt(cols)), cols) };
  };
  const vec = (name) => ({ name, shape: [cfg.dim], type: 'F32', data: () => fromF32('F32', new Float32Array(cfg.dim).fill(1), cfg.dim) });
  const tensors = [mat('token_embd.weight', cfg.vocab, cfg.dim), vec('output_norm.weight'), mat('output.weight', cfg.vocab, cfg.dim)];
  for (let l = 0; l < cfg.layers; l++) {
    const b = `blk.${l}.`;
    tensors.push(vec(`${b}attn_norm.weight`), mat(`${b}attn_q.weight`, cfg.dim, cfg.dim), mat(`${b}attn_k.weight`, kv, cfg.dim),
      mat(`${b}attn_v.weight`, kv, cfg.dim), mat(`${b}attn_output.weight`, cfg.dim, cfg.dim), vec(`${b}ffn_norm.weight`),
      mat(`${b}ffn_gate.weight`, cfg.ffn, cfg.dim), mat(`${b}ffn_down.weight`, cfg.dim, cfg.ffn), mat(`${b}ffn_up.weight`, cfg.ffn, cfg.dim));
  }
  await writeGguf(path, meta, tensors);
  return path;
}

mkdirSync(outDir, { recursive: true });
for (const type of types.length ? types : ['Q4_0', 'Q8_0']) {
  const path = join(outDir, `throughput-1b-${type}.gguf`);
  if (existsSync(path)) { console.log(`${path} exists`); continue; }
  const t0 = Date.now();
  console.log(`wrote ${await write(type)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
