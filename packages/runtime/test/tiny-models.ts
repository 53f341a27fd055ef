// Tiny random models of every architecture lowbit loads, written with lowbit's own GGUF writer:
// llama and qwen2 (RoPE, GQA; qwen2 with its q/k/v biases and NEOX order) and gpt2 (LayerNorm,
// learned positions, fused attn_qkv), all with one byte-level BPE vocabulary llama.cpp reads.
// Random weights are fine for round trips and cross-checks: both sides must compute the same function.
import { type GgufTensorToWrite, gguf, writeGguf } from '../src/gguf-writer.js';
import { fromF32 } from '../src/ggml-quants.js';
import type { GgufValue } from '../src/gguf-reader.js';

export const TINY = { D: 64, L: 2, H: 4, KV: 2, F: 160, CTX: 128 } as const;

const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
let n = 0;
const chars = Array.from({ length: 256 }, (_, b) => String.fromCodePoint(keep(b) ? b : 256 + n++));
const merges = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a', 'e r', 'o n', 'Ġ s', '1 2'];
const tokens = [...chars, ...merges.map((m) => m.replace(' ', '')), '<|endoftext|>'];
const V = tokens.length;

function random(seed: number) {
  let s = seed >>> 0;
  return (len: number, scale: number, offset = 0): Float32Array => {
    const a = new Float32Array(len);
    for (let i = 0; i < len; i++) {
      s = (s * 1103515245 + 12345) >>> 0;
      a[i] = offset + (s / 2 ** 32 - 0.5) * 2 * scale;
    }
    return a;
  };
}

export type TinyArchitecture = 'llama' | 'qwen2' | 'gpt2';

/** Writes a random `arch` model as GGUF at `path`; `dims` overrides TINY's (K-quants need rows of 256). */
export async function writeTinyGguf(arch: TinyArchitecture, path: string, seed = 4242, dims: Partial<Record<keyof typeof TINY, number>> = {}): Promise<void> {
  const { D, L, H, KV, F, CTX } = { ...TINY, ...dims };
  const rand = random(seed);
  const f32 = (name: string, shape: number[], data: Float32Array): GgufTensorToWrite => ({ name, shape, type: 'F32', data: fromF32('F32', data, shape[0]) });
  const mat = (name: string, rows: number, cols: number) => f32(name, [cols, rows], rand(rows * cols, 1 / Math.sqrt(cols)));
  const vec = (name: string, len: number, scale: number, offset = 0) => f32(name, [len], rand(len, scale, offset));
  const t: GgufTensorToWrite[] = [f32('token_embd.weight', [D, V], rand(V * D, 0.5)), vec('output_norm.weight', D, 0.2, 1), mat('output.weight', V, D)];
  const meta = new Map<string, GgufValue>([['general.architecture', gguf.str(arch)]]);
  const a = (k: string, v: GgufValue) => meta.set(`${arch}.${k}`, v);
  a('context_length', gguf.u32(CTX));
  a('embedding_length', gguf.u32(D));
  a('block_count', gguf.u32(L));
  a('attention.head_count', gguf.u32(H));
  if (arch === 'gpt2') {
    const FF = 4 * D;
    a('feed_forward_length', gguf.u32(FF));
    a('attention.layer_norm_epsilon', gguf.f32(1e-5));
    t.push(f32('position_embd.weight', [D, CTX], rand(CTX * D, 0.1)), vec('output_norm.bias', D, 0.1));
    for (let l = 0; l < L; l++) {
      const b = `blk.${l}.`;
      t.push(vec(`${b}attn_norm.weight`, D, 0.2, 1), vec(`${b}attn_norm.bias`, D, 0.1));
      t.push(mat(`${b}attn_qkv.weight`, 3 * D, D), vec(`${b}attn_qkv.bias`, 3 * D, 0.05));
      t.push(mat(`${b}attn_output.weight`, D, D), vec(`${b}attn_output.bias`, D, 0.05));
      t.push(vec(`${b}ffn_norm.weight`, D, 0.2, 1), vec(`${b}ffn_norm.bias`, D, 0.1));
      t.push(mat(`${b}ffn_up.weight`, FF, D), vec(`${b}ffn_up.bias`, FF, 0.05));
      t.push(mat(`${b}ffn_down.weight`, D, FF), vec(`${b}ffn_down.bias`, D, 0.05));
    }
  } else {
    const HD = D / H;
    a('feed_forward_length', gguf.u32(F));
    a('attention.head_count_kv', gguf.u32(KV));
    a('attention.layer_norm_rms_epsilon', gguf.f32(1e-6));
    a('rope.freq_base', gguf.f32(arch === 'qwen2' ? 1_000_000 : 10_000));
    if (arch === 'llama') a('rope.dimension_count', gguf.u32(HD));
    for (let l = 0; l < L; l++) {
      const b = `blk.${l}.`;
      t.push(vec(`${b}attn_norm.weight`, D, 0.2, 1));
      for (const [name, rows] of [['attn_q', D], ['attn_k', KV * HD], ['attn_v', KV * HD]] as const) {
        t.push(mat(`${b}${name}.weight`, rows, D));
        if (arch === 'qwen2') t.push(vec(`${b}${name}.bias`, rows, 0.3));
      }
      t.push(mat(`${b}attn_output.weight`, D, D), vec(`${b}ffn_norm.weight`, D, 0.2, 1));
      t.push(mat(`${b}ffn_gate.weight`, F, D), mat(`${b}ffn_up.weight`, F, D), mat(`${b}ffn_down.weight`, D, F));
    }
  }
  meta.set('tokenizer.ggml.model', gguf.str('gpt2'));
  meta.set('tokenizer.ggml.pre', gguf.str(arch === 'llama' ? 'llama-bpe' : arch === 'qwen2' ? 'qwen2' : 'gpt-2'));
  meta.set('tokenizer.ggml.tokens', gguf.strs(tokens));
  meta.set('tokenizer.ggml.token_type', gguf.i32s(tokens.map((_, i) => (i === V - 1 ? 3 : 1))));
  meta.set('tokenizer.ggml.merges', gguf.strs(merges));
  meta.set('tokenizer.ggml.bos_token_id', gguf.u32(V - 1));
  meta.set('tokenizer.ggml.eos_token_id', gguf.u32(V - 1));
  await writeGguf(path, meta, t);
}
