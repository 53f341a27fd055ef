// GPT-2 from a Hugging Face directory (safetensors + config.json + tokenizer.json), checked against
// llama.cpp running the same random weights written as a `gpt2` GGUF: tokenization and next-token
// log-probabilities. Random weights are fine here: the check is that both compute the same function.
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { type GgufTensorToWrite, gguf, writeGguf } from '../src/gguf-writer.js';
import { fromF32 } from '../src/ggml-quants.js';
import { loadHfModel } from '../src/hf-model.js';
import { writeSafetensors } from '../src/safetensors.js';
import { type LlamaCpp, logProbDiffs, openLlamaCpp } from './llama-cpp-lib.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-gpt2-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const D = 64;
const L = 2;
const H = 4;
const F = 4 * D;
const CTX = 128;

function byteChars(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + n++));
}
const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a', 'e r', 'o n', 'Ġ s'];
const tokens = [...byteChars(), ...merges.map((m) => m.replace(' ', '')), '<|endoftext|>'];
const V = tokens.length;
const EOT = V - 1;

let seed = 12345;
function randn(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = ((seed / 2 ** 32) - 0.5) * 2 * scale;
  }
  return a;
}
/** [out, in] (lowbit / GGUF row order) → HF Conv1D [in, out]. */
function t(w: Float32Array, out: number, inn: number): Float32Array {
  const r = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) r[i * out + o] = w[o * inn + i];
  return r;
}

let llamaLib: LlamaCpp | undefined;
let llamaSkip = '';

beforeAll(async () => {
  const W: Record<string, { shape: number[]; data: Float32Array }> = {};
  W.wte = { shape: [V, D], data: randn(V * D, 0.5) };
  W.wpe = { shape: [CTX, D], data: randn(CTX * D, 0.1) };
  W.ln_f_w = { shape: [D], data: randn(D, 0.2).map((v) => 1 + v) };
  W.ln_f_b = { shape: [D], data: randn(D, 0.1) };
  const hf: { name: string; dtype: 'F32'; shape: number[]; data: Float32Array }[] = [
    { name: 'wte.weight', dtype: 'F32', shape: [V, D], data: W.wte.data },
    { name: 'wpe.weight', dtype: 'F32', shape: [CTX, D], data: W.wpe.data },
    { name: 'ln_f.weight', dtype: 'F32', shape: [D], data: W.ln_f_w.data },
    { name: 'ln_f.bias', dtype: 'F32', shape: [D], data: W.ln_f_b.data },
  ];
  const gg: GgufTensorToWrite[] = [
    { name: 'token_embd.weight', shape: [D, V], type: 'F32', data: fromF32('F32', W.wte.data, D) },
    { name: 'position_embd.weight', shape: [D, CTX], type: 'F32', data: fromF32('F32', W.wpe.data, D) },
    { name: 'output_norm.weight', shape: [D], type: 'F32', data: fromF32('F32', W.ln_f_w.data, D) },
    { name: 'output_norm.bias', shape: [D], type: 'F32', data: fromF32('F32', W.ln_f_b.data, D) },
  ];
  for (let l = 0; l < L; l++) {
    const mats: [string, string, number, number][] = [
      ['attn.c_attn', 'attn_qkv', 3 * D, D], ['attn.c_proj', 'attn_output', D, D], ['mlp.c_fc', 'ffn_up', F, D], ['mlp.c_proj', 'ffn_down', D, F],
    ];
    for (const [hn, gn, out, inn] of mats) {
      const w = randn(out * inn, 1 / Math.sqrt(inn));
      const b = randn(out, 0.05);
      hf.push({ name: `h.${l}.${hn}.weight`, dtype: 'F32', shape: [inn, out], data: t(w, out, inn) }, { name: `h.${l}.${hn}.bias`, dtype: 'F32', shape: [out], data: b });
      gg.push({ name: `blk.${l}.${gn}.weight`, shape: [inn, out], type: 'F32', data: fromF32('F32', w, inn) }, { name: `blk.${l}.${gn}.bias`, shape: [out], type: 'F32', data: fromF32('F32', b, out) });
    }
    for (const [hn, gn] of [['ln_1', 'attn_norm'], ['ln_2', 'ffn_norm']]) {
      const w = randn(D, 0.2).map((v) => 1 + v);
      const b = randn(D, 0.1);
      hf.push({ name: `h.${l}.${hn}.weight`, dtype: 'F32', shape: [D], data: w }, { name: `h.${l}.${hn}.bias`, dtype: 'F32', shape: [D], data: b });
      gg.push({ name: `blk.${l}.${gn}.weight`, shape: [D], type: 'F32', data: fromF32('F32', w, D) }, { name: `blk.${l}.${gn}.bias`, shape: [D], type: 'F32', data: fromF32('F32', b, D) });
    }
  }
  const hfDir = join(dir, 'hf');
  mkdirSync(hfDir, { recursive: true });
  await writeSafetensors(join(hfDir, 'model.safetensors'), hf.map((x) => ({ ...x, name: `transformer.${x.name}` })));
  writeFileSync(join(hfDir, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: D, n_layer: L, n_head: H, n_positions: CTX, vocab_size: V, layer_norm_epsilon: 1e-5, bos_token_id: EOT, eos_token_id: EOT }));
  const vocab = Object.fromEntries(tokens.map((s, i) => [s, i]));
  writeFileSync(join(hfDir, 'tokenizer.json'), JSON.stringify({
    model: { type: 'BPE', vocab, merges }, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, use_regex: true },
    added_tokens: [{ id: EOT, content: '<|endoftext|>', special: true }],
  }));
  const meta = new Map([
    ['general.architecture', gguf.str('gpt2')],
    ['gpt2.context_length', gguf.u32(CTX)], ['gpt2.embedding_length', gguf.u32(D)], ['gpt2.feed_forward_length', gguf.u32(F)],
    ['gpt2.block_count', gguf.u32(L)], ['gpt2.attention.head_count', gguf.u32(H)], ['gpt2.attention.layer_norm_epsilon', gguf.f32(1e-5)],
    ['tokenizer.ggml.model', gguf.str('gpt2')], ['tokenizer.ggml.pre', gguf.str('gpt-2')], ['tokenizer.ggml.tokens', gguf.strs(tokens)],
    ['tokenizer.ggml.token_type', gguf.i32s(tokens.map((_, i) => (i === EOT ? 3 : 1)))], ['tokenizer.ggml.merges', gguf.strs(merges)],
    ['tokenizer.ggml.bos_token_id', gguf.u32(EOT)], ['tokenizer.ggml.eos_token_id', gguf.u32(EOT)],
  ]);
  await writeGguf(join(dir, 'gpt2.gguf'), meta, gg);
  ({ llama: llamaLib, skipReason: llamaSkip } = await openLlamaCpp('GPT-2 llama.cpp cross-check'));
});
afterAll(async () => {
  await llamaLib?.dispose();
});

describe('GPT-2 from a GGUF (llama.cpp names, gpt2 tokenizer metadata)', () => {
  it('loads the gpt2 GGUF with its byte-level BPE tokenizer; logits equal the Hugging Face load', async () => {
    const { loadModel } = await import('../src/model.js');
    const fromGguf = await loadModel(join(dir, 'gpt2.gguf'));
    const fromHf = await loadHfModel(join(dir, 'hf'));
    const text = 'the sun in the sea';
    const ids = fromGguf.tokenizer.encode(text);
    expect(ids).toEqual(fromHf.tokenizer.encode(text));
    expect(fromGguf.tokenizer.decode(ids)).toBe(text);
    // same f32 values reach the same kernels in the same order: identical
    expect(new Session(fromGguf, { ctx: 32 }).forward(ids, { logits: 'all' })).toEqual(new Session(fromHf, { ctx: 32 }).forward(ids, { logits: 'all' }));
  });
});

describe('GPT-2 from a Hugging Face directory vs llama.cpp', () => {
  const text = 'the cat sat on the mat, and then the dog ran in the sun. Öl 42!';

  it('tokenizes like llama.cpp and gives the same next-token log-probs', async (c) => {
    if (!llamaLib) return c.skip(llamaSkip);
    const model = await loadHfModel(join(dir, 'hf'));
    const lm = await llamaLib.loadModel({ modelPath: join(dir, 'gpt2.gguf') });
    const ids = model.tokenizer.encode(text);
    expect(ids).toEqual(Array.from(lm.tokenize(text)) as number[]);
    const d = await logProbDiffs(lm, model, ids, CTX);
    const max = Math.max(...d);
    const sum = d.reduce((a, b) => a + b, 0);
    console.log(`GPT-2 log-prob |Δ| vs llama.cpp over ${ids.length - 1} positions: max ${max.toExponential(2)}, mean ${(sum / (ids.length - 1)).toExponential(2)}`);
    // f32 on both sides; llama.cpp's GELU goes through an f16 lookup table (~1e-3 relative)
    expect(max).toBeLessThan(1e-2);
    await lm.dispose();
  });
});
