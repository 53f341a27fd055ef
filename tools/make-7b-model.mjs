#!/usr/bin/env node
// Writes a random-weight Q8_0 GGUF in the shape of a 7B-class Llama (Llama-7B: dim 4096, 32 layers,
// FFN 11008, 32 heads / 32 KV heads, vocabulary 32000, context 2048): ~7.2 GB, more than one
// WebAssembly memory (4 GiB) holds, for the sharded-load benchmark (benchmarks/src/big-model.ts).
// Random weights say nothing about quality; they only load and decode.
// Usage: node tools/make-7b-model.mjs [out-dir]   (default: $LOWBIT_MODELS or <os tmpdir>/lowbit-models)
// The file belongs in a temporary folder, never in git; delete it when done (7 GB of disk).
// Blocks are written directly as Q8_0 bytes (random int8 codes, one f16 scale per 32), one tensor at
// a time: the writer streams, so at most one tensor (~48 MB) is in memory, never the whole model.
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf, writeGguf } from '@lowbit/runtime';
import { randomLlamaMetadata, randomLlamaTensors } from './random-llama.mjs';

const [outDir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models')] = process.argv.slice(2);
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

async function write7b(path) {
  const meta = randomLlamaMetadata(cfg, 'lowbit random 7B-class Q8_0 (speed and memory only)', [['general.file_type', gguf.u32(7)]]);
  const mat = (name, rows, cols) => ({ name, shape: [cols, rows], type: 'Q8_0', data: () => q8Matrix(rows, cols) });
  const ones = new Float32Array(cfg.dim).fill(1);
  const vec = (name) => ({ name, shape: [cfg.dim], type: 'F32', data: new Uint8Array(ones.buffer) });
  await writeGguf(path, meta, randomLlamaTensors(cfg, mat, vec));
  return path;
}

mkdirSync(outDir, { recursive: true });
const path = join(outDir, 'random-7b-Q8_0.gguf');
if (existsSync(path)) console.log(`${path} exists`);
else {
  const t0 = Date.now();
  console.log(`wrote ${await write7b(path)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
