// The GGUF metadata of a random-weights Llama for speed and memory measurements (make-throughput-model,
// make-7b-model): the shape keys, and a SentencePiece-style vocabulary of byte tokens and filler words
// so llama.cpp and lowbit both load it.
import { gguf } from '@lowbit/runtime';

function vocabulary(size) {
  const tokens = ['<unk>', '<s>', '</s>'];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  for (let i = tokens.length; i < size; i++) {
    tokens.push(`\u2581w${i.toString(36)}`);
    types.push(1);
  }
  return { tokens, types, scores: tokens.map((_, i) => -i) };
}

/** cfg: { dim, layers, ffn, heads, kvHeads, vocab, ctx }; extra: more [key, value] entries after the name. */
export function randomLlamaMetadata(cfg, name, extra = []) {
  const v = vocabulary(cfg.vocab);
  return new Map([
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(name)],
    ...extra,
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
}

/**
 * The tensors of a Llama in llama.cpp's names and order: mat(name, rows, cols) and vec(name) build each
 * entry (the caller chooses the type and the weights).
 */
export function randomLlamaTensors(cfg, mat, vec) {
  const kv = (cfg.dim / cfg.heads) * cfg.kvHeads;
  const tensors = [mat('token_embd.weight', cfg.vocab, cfg.dim), vec('output_norm.weight'), mat('output.weight', cfg.vocab, cfg.dim)];
  for (let l = 0; l < cfg.layers; l++) {
    const b = `blk.${l}.`;
    tensors.push(vec(`${b}attn_norm.weight`), mat(`${b}attn_q.weight`, cfg.dim, cfg.dim), mat(`${b}attn_k.weight`, kv, cfg.dim),
      mat(`${b}attn_v.weight`, kv, cfg.dim), mat(`${b}attn_output.weight`, cfg.dim, cfg.dim), vec(`${b}ffn_norm.weight`),
      mat(`${b}ffn_gate.weight`, cfg.ffn, cfg.dim), mat(`${b}ffn_down.weight`, cfg.dim, cfg.ffn), mat(`${b}ffn_up.weight`, cfg.ffn, cfg.dim));
  }
  return tensors;
}
