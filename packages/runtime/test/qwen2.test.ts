// A qwen2 GGUF (NEOX RoPE on unpermuted Wq/Wk, q/k/v biases, GQA, byte-level BPE with the qwen2
// pre-tokenizer) with random weights, run by lowbit and by llama.cpp: tokens and log-probs must agree.
// Random weights are fine here: the check is that both compute the same function.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GgufTensorToWrite, gguf, writeGguf } from '../src/gguf-writer.js';
import { fromF32 } from '../src/ggml-quants.js';
import { loadModel } from '../src/model.js';
import { saveModel } from '../src/gguf-convert.js';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { type LlamaCpp, logProbDiffs, openLlamaCpp } from './llama-cpp-lib.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-qwen2-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const D = 64;
const L = 2;
const H = 4;
const KV = 2;
const HD = D / H;
const F = 160;
const CTX = 128;

const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
let n = 0;
const chars = Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + n++));
const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a', 'e r', 'o n', 'Ġ s', '1 2'];
const tokens = [...chars, ...merges.map((m) => m.replace(' ', '')), '<|endoftext|>'];
const V = tokens.length;

let seed = 777;
function rand(len: number, scale: number, offset = 0): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = offset + (seed / 2 ** 32 - 0.5) * 2 * scale;
  }
  return a;
}

let llamaLib: LlamaCpp | undefined;
let llamaSkip = '';
const path = join(dir, 'qwen2.gguf');
const llama3Path = join(dir, 'llama-bpe.gguf');

beforeAll(async () => {
  const f32 = (name: string, shape: number[], data: Float32Array): GgufTensorToWrite => ({ name, shape, type: 'F32', data: fromF32('F32', data, shape[0]) });
  const t: GgufTensorToWrite[] = [f32('token_embd.weight', [D, V], rand(V * D, 0.5)), f32('output_norm.weight', [D], rand(D, 0.2, 1)), f32('output.weight', [D, V], rand(V * D, 0.2))];
  for (let l = 0; l < L; l++) {
    const b = `blk.${l}.`;
    t.push(f32(`${b}attn_norm.weight`, [D], rand(D, 0.2, 1)));
    for (const [name, rows] of [['attn_q', D], ['attn_k', KV * HD], ['attn_v', KV * HD]] as const) {
      t.push(f32(`${b}${name}.weight`, [D, rows], rand(rows * D, 1 / Math.sqrt(D))), f32(`${b}${name}.bias`, [rows], rand(rows, 0.3)));
    }
    t.push(f32(`${b}attn_output.weight`, [D, D], rand(D * D, 1 / Math.sqrt(D))), f32(`${b}ffn_norm.weight`, [D], rand(D, 0.2, 1)));
    t.push(f32(`${b}ffn_gate.weight`, [D, F], rand(F * D, 1 / Math.sqrt(D))), f32(`${b}ffn_up.weight`, [D, F], rand(F * D, 1 / Math.sqrt(D))));
    t.push(f32(`${b}ffn_down.weight`, [F, D], rand(D * F, 1 / Math.sqrt(F))));
  }
  const meta = new Map([
    ['general.architecture', gguf.str('qwen2')],
    ['qwen2.context_length', gguf.u32(CTX)], ['qwen2.embedding_length', gguf.u32(D)], ['qwen2.feed_forward_length', gguf.u32(F)],
    ['qwen2.block_count', gguf.u32(L)], ['qwen2.attention.head_count', gguf.u32(H)], ['qwen2.attention.head_count_kv', gguf.u32(KV)],
    ['qwen2.attention.layer_norm_rms_epsilon', gguf.f32(1e-6)], ['qwen2.rope.freq_base', gguf.f32(1_000_000)],
    ['tokenizer.ggml.model', gguf.str('gpt2')], ['tokenizer.ggml.pre', gguf.str('qwen2')], ['tokenizer.ggml.tokens', gguf.strs(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(tokens.map((_, i) => (i === V - 1 ? 3 : 1)))], ['tokenizer.ggml.merges', gguf.strs(merges)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(V - 1)], ['tokenizer.ggml.eos_token_id', gguf.u32(V - 1)],
  ]);
  await writeGguf(path, meta, t);
  // the same weights as a Llama-3-style file: llama architecture with a byte-level BPE vocabulary
  const l3 = new Map([...meta].map(([k, v]) => [k.replace(/^qwen2\./, 'llama.'), v]));
  l3.set('general.architecture', gguf.str('llama'));
  l3.set('tokenizer.ggml.pre', gguf.str('llama-bpe'));
  l3.set('llama.rope.dimension_count', gguf.u32(HD));
  await writeGguf(llama3Path, l3, t.filter((x) => !x.name.endsWith('.bias')));
  ({ llama: llamaLib, skipReason: llamaSkip } = await openLlamaCpp('qwen2 llama.cpp cross-check'));
});
afterAll(async () => {
  await llamaLib?.dispose();
});

describe('qwen2 GGUF vs llama.cpp', () => {
  it('tokenizes identically and agrees on next-token log-probs (NEOX RoPE, biases, GQA)', async (c) => {
    if (!llamaLib) return c.skip(llamaSkip);
    const model = await loadModel(path);
    const lm = await llamaLib.loadModel({ modelPath: path });
    const text = 'the 12345 cats sat in the sun,\nthen ran. The END!';
    const ids = model.tokenizer.encode(text);
    expect(ids).toEqual(Array.from(lm.tokenize(text)) as number[]);
    const max = Math.max(...(await logProbDiffs(lm, model, ids, CTX)));
    console.log(`qwen2 log-prob |Δ| vs llama.cpp over ${ids.length - 1} positions: max ${max.toExponential(2)}`);
    expect(max).toBeLessThan(1e-3); // f32 throughout; a wrong RoPE order or missing bias gives O(1)
    await lm.dispose();
  });
});

describe('Llama-3 style GGUF (llama architecture, byte-level BPE, llama-bpe pre-tokenizer) vs llama.cpp', () => {
  it('splits case-insensitive contractions and 3-digit groups like llama.cpp', async (c) => {
    if (!llamaLib) return c.skip(llamaSkip);
    const model = await loadModel(llama3Path);
    const lm = await llamaLib.loadModel({ modelPath: llama3Path });
    for (const text of ["IT'S 1234567 the sun's 42", 'the  \n\n then\tin 9', 'Öl über 3.14159 — ok']) {
      expect(model.tokenizer.encode(text)).toEqual(Array.from(lm.tokenize(text)) as number[]);
    }
    await lm.dispose();
  });
});

describe('Llama-3 style model through a Hugging Face directory', () => {
  it("exportHfModel writes a byte-level tokenizer.json that Hugging Face's tokenizers.js reads as llama.cpp tokenizes the GGUF; the loaded directory saves as a GGUF llama.cpp runs", async (c) => {
    if (!llamaLib) return c.skip(llamaSkip);
    const hfDir = join(dir, 'llama3-hf');
    await exportHfModel(llama3Path, hfDir);
    const tj = JSON.parse(readFileSync(join(hfDir, 'tokenizer.json'), 'utf8'));
    const tc = JSON.parse(readFileSync(join(hfDir, 'tokenizer_config.json'), 'utf8'));
    const hfTok = new HfTokenizer(tj, tc);
    const lm = await llamaLib.loadModel({ modelPath: llama3Path });
    const texts = ["the 12345 cats sat in the sun,\nthen ran. The END!  I'M here\t\tnow", 'Ünïcödé 日本語 🙂 there'];
    for (const t of texts) expect(hfTok.encode(t, { add_special_tokens: false }).ids).toEqual(Array.from(lm.tokenize(t)) as number[]);
    await lm.dispose();
    const hf = await loadHfModel(hfDir);
    const out = join(dir, 'llama3-from-hf.gguf');
    await saveModel(hf, out);
    const back = await llamaLib.loadModel({ modelPath: out });
    for (const t of texts) expect(Array.from(back.tokenize(t)) as number[]).toEqual(hf.tokenizer.encode(t));
    const ids = hf.tokenizer.encode(texts[0]);
    const max = Math.max(...(await logProbDiffs(back, hf, ids, CTX)));
    await back.dispose();
    expect(max).toBeLessThan(1e-3); // f32 throughout, as the GGUF-to-GGUF check above
  });
});
