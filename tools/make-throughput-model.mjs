#!/usr/bin/env node
// Writes a random-weight GGUF in the shape of a 1B-class Llama (TinyLlama-1.1B: dim 2048, 22 layers,
// FFN 5632, 32 heads / 4 KV heads, vocabulary 32000) for speed measurements only: random weights
// say nothing about quality. Usage: node tools/make-throughput-model.mjs [out-dir] [Q4_0 Q8_0 Q4_K Q6_K ...]
// (default out-dir: $LOWBIT_MODELS or <os tmpdir>/lowbit-models, where benchmarks/src/runtime.ts looks).
// Output (~0.6 GB Q4_0 or Q4_K, ~0.9 GB Q6_K, ~1.1 GB Q8_0) belongs in an ignored or temporary folder,
// never in git. K types (Q2_K … Q6_K): ggml's reference K quantizers in JS take seconds per 4M weights,
// so each matrix repeats 256 distinct random rows quantized once (a kernel's cost does not depend on
// the values; the rows still differ within every 4-row tile and 256-row span).
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromF32, storageType, tensorBytes, writeGguf } from '@lowbit/runtime';
import { randomLlamaMetadata, randomLlamaTensors } from './random-llama.mjs';

const [outDir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models'), ...types] = process.argv.slice(2);
const POOL = 256;
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

async function write(type) {
  const path = join(outDir, `throughput-1b-${type}.gguf`);
  const meta = randomLlamaMetadata(cfg, `lowbit random 1B-class ${type} (speed only)`);
  const pools = new Map();
  const mat = (name, rows, cols) => {
    const shape = [cols, rows];
    const t = storageType(type, shape);
    if (!t.endsWith('_K')) return { name, shape, type: t, data: () => fromF32(t, randn(rows * cols, 1 / Math.sqrt(cols)), cols) };
    const data = () => {
      const key = `${t}:${cols}`;
      if (!pools.has(key)) pools.set(key, fromF32(t, randn(POOL * cols, 1 / Math.sqrt(cols)), cols));
      const pool = pools.get(key);
      const out = new Uint8Array(tensorBytes(t, shape));
      for (let o = 0; o < out.length; o += pool.length) out.set(pool.subarray(0, Math.min(pool.length, out.length - o)), o);
      return out;
    };
    return { name, shape, type: t, data };
  };
  const vec = (name) => ({ name, shape: [cfg.dim], type: 'F32', data: () => fromF32('F32', new Float32Array(cfg.dim).fill(1), cfg.dim) });
  await writeGguf(path, meta, randomLlamaTensors(cfg, mat, vec));
  return path;
}

mkdirSync(outDir, { recursive: true });
for (const type of types.length ? types : ['Q4_0', 'Q8_0']) {
  const path = join(outDir, `throughput-1b-${type}.gguf`);
  if (existsSync(path)) { console.log(`${path} exists`); continue; }
  const t0 = Date.now();
  console.log(`wrote ${await write(type)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
