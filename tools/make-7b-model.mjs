#!/usr/bin/env node
// Writes a random-weight GGUF in the shape of a 7B-class Llama (Llama-7B: dim 4096, 32 layers,
// FFN 11008, 32 heads / 32 KV heads, vocabulary 32000, context 2048) for the big-model benchmark
// (benchmarks/src/big-model.ts): Q8_0 (~7.2 GB, more than one WebAssembly memory holds: sharded),
// Q4_K_M (~4.1 GB, llama.cpp's mix: Q6_K for output, and for attn_v / ffn_down of the layers its
// use_more_bits picks; Q4_K elsewhere), or any other type (Q4_K, Q6_K, Q4_0 ...) for every matrix.
// Random weights say nothing about quality; they only load and decode.
// Usage: node tools/make-7b-model.mjs [out-dir] [Q8_0 | Q4_K_M | Q4_K | ...]
//   (default: $LOWBIT_MODELS or <os tmpdir>/lowbit-models, Q8_0); writes random-7b-<TYPE>.gguf there.
// The file belongs in a temporary folder, never in git; delete it when done (4-7 GB of disk).
// Q8_0 blocks are written directly (random int8 codes, one f16 scale per 32). Other types: ggml's
// reference quantizers in JS take seconds per 4M weights (7B of them would take an hour), so each
// matrix repeats 256 distinct random rows quantized once per (type, row length), as
// make-throughput-model.mjs does: a kernel's cost does not depend on the values. One tensor at a
// time: the writer streams, so at most one tensor (~48 MB) is in memory, never the whole model.
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromF32, gguf, storageType, tensorBytes, writeGguf } from '@lowbit/runtime';
import { randomLlamaMetadata, randomLlamaTensors } from './random-llama.mjs';

const [outDir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models'), TYPE = 'Q8_0'] = process.argv.slice(2);
const cfg = { dim: 4096, layers: 32, ffn: 11008, heads: 32, kvHeads: 32, vocab: 32000, ctx: 2048 };

/** f16 bits of a positive normal value (no rounding subtleties needed: any nearby scale will do). */
function f16(v) {
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0];
  return ((((b >>> 23) & 0xff) - 127 + 15) << 10) | ((b >>> 13) & 0x3ff);
}

/** rows × cols Q8_0 blocks: uniform int8 codes (std ≈ 73.6) scaled to a weight std of 1/sqrt(cols), as an initialised network. */
function q8Matrix(rows, cols) {
  const blocks = (rows * cols) / 32;
  const out = new Uint8Array(blocks * 34);
  randomFillSync(out);
  const d = f16(1 / (73.6 * Math.sqrt(cols)));
  for (let o = 0; o < out.length; o += 34) {
    out[o] = d & 0xff;
    out[o + 1] = d >>> 8;
  }
  return out;
}

// xorshift32: reproducible weights, uniform with std `scale`
let seed = 0x9e3779b9;
function randn(n, scale) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    a[i] = ((seed >>> 0) / 4294967296 - 0.5) * 3.4641 * scale;
  }
  return a;
}

/** llama.cpp's use_more_bits (llama-quant.cpp): the first and last eighth of the layers and every third between. */
const moreBits = (l, n) => l < n / 8 || l >= (7 * n) / 8 || (l - Math.floor(n / 8)) % 3 === 2;

/** The type of one matrix: Q4_K_M as llama.cpp's mix, else `TYPE` (where rows fit it, storageType). */
function typeOf(name, shape) {
  if (TYPE !== 'Q4_K_M') return storageType(TYPE, shape);
  const l = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
  if (name === 'output.weight' || (/attn_v|ffn_down/.test(name) && moreBits(l, cfg.layers))) return storageType('Q6_K', shape);
  return storageType('Q4_K', shape);
}

// general.file_type as llama.cpp's llama_ftype: MOSTLY_Q8_0 7, Q4_0 2, Q4_K_M 15, Q4_K_S 14 (all-Q4_K), Q6_K 18
const FILE_TYPES = { Q8_0: 7, Q4_0: 2, Q4_K_M: 15, Q4_K: 14, Q5_K: 16, Q6_K: 18, Q3_K: 12, Q2_K: 10 };

async function write7b(path) {
  const ft = FILE_TYPES[TYPE];
  const meta = randomLlamaMetadata(cfg, `lowbit random 7B-class ${TYPE} (speed and memory only)`, ft === undefined ? [] : [['general.file_type', gguf.u32(ft)]]);
  const pools = new Map();
  const mat = (name, rows, cols) => {
    const shape = [cols, rows];
    const t = typeOf(name, shape);
    if (t === 'Q8_0') return { name, shape, type: t, data: () => q8Matrix(rows, cols) };
    const data = () => {
      const key = `${t}:${cols}`;
      if (!pools.has(key)) pools.set(key, fromF32(t, randn(256 * cols, 1 / Math.sqrt(cols)), cols));
      const pool = pools.get(key);
      const out = new Uint8Array(tensorBytes(t, shape));
      for (let o = 0; o < out.length; o += pool.length) out.set(pool.subarray(0, Math.min(pool.length, out.length - o)), o);
      return out;
    };
    return { name, shape, type: t, data };
  };
  const ones = new Float32Array(cfg.dim).fill(1);
  const vec = (name) => ({ name, shape: [cfg.dim], type: 'F32', data: new Uint8Array(ones.buffer) });
  await writeGguf(path, meta, randomLlamaTensors(cfg, mat, vec));
  return path;
}

mkdirSync(outDir, { recursive: true });
const path = join(outDir, `random-7b-${TYPE}.gguf`);
if (existsSync(path)) console.log(`${path} exists`);
else {
  const t0 = Date.now();
  console.log(`wrote ${await write7b(path)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
