// Tensor names between GGUF (llama.cpp's) and Hugging Face checkpoints, in one place for the loaders
// and writers of both. Llama-family models (llama, mistral, qwen2) share one map; GPT-2's differs
// (Conv1D weights, a fused c_attn), so it has its own.
import { LowbitError } from '@lowbit/kernels';

const LLAMA_FIXED: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

const LLAMA_LAYER: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.bias': 'self_attn.o_proj.bias',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

/** GPT-2 (`GPT2LMHeadModel`, without the optional `transformer.` prefix); the output is tied to wte. */
const GPT2_FIXED: Record<string, string> = {
  'token_embd.weight': 'wte.weight',
  'position_embd.weight': 'wpe.weight',
  'output_norm.weight': 'ln_f.weight',
  'output_norm.bias': 'ln_f.bias',
  'output.weight': 'lm_head.weight',
};

const GPT2_LAYER: Record<string, string> = {
  'attn_norm.weight': 'ln_1.weight', 'attn_norm.bias': 'ln_1.bias',
  'attn_qkv.weight': 'attn.c_attn.weight', 'attn_qkv.bias': 'attn.c_attn.bias',
  'attn_output.weight': 'attn.c_proj.weight', 'attn_output.bias': 'attn.c_proj.bias',
  'ffn_norm.weight': 'ln_2.weight', 'ffn_norm.bias': 'ln_2.bias',
  'ffn_up.weight': 'mlp.c_fc.weight', 'ffn_up.bias': 'mlp.c_fc.bias',
  'ffn_down.weight': 'mlp.c_proj.weight', 'ffn_down.bias': 'mlp.c_proj.bias',
};

const invert = (m: Record<string, string>) => Object.fromEntries(Object.entries(m).map(([g, h]) => [h, g]));
const HF_LLAMA_FIXED = invert(LLAMA_FIXED);
const HF_LLAMA_LAYER = invert(LLAMA_LAYER);
const HF_GPT2_FIXED = invert(GPT2_FIXED);
const HF_GPT2_LAYER = invert(GPT2_LAYER);

/** GGUF name of a Hugging Face tensor (Llama family; `gpt2` for GPT-2's names), or undefined. */
export function hfToGgufName(name: string, architecture = 'llama'): string | undefined {
  const gpt2 = architecture === 'gpt2';
  const n = gpt2 ? name.replace(/^transformer\./, '') : name;
  const fixed = (gpt2 ? HF_GPT2_FIXED : HF_LLAMA_FIXED)[n];
  if (fixed) return fixed;
  const m = (gpt2 ? /^h\.(\d+)\.(.+)$/ : /^model\.layers\.(\d+)\.(.+)$/).exec(n);
  const per = m && (gpt2 ? HF_GPT2_LAYER : HF_LLAMA_LAYER)[m[2]];
  return per ? `blk.${m[1]}.${per}` : undefined;
}

/** Hugging Face name of a GGUF tensor (Llama family; `gpt2` for GPT-2's names), or undefined. */
export function ggufToHfNameOf(name: string, architecture = 'llama'): string | undefined {
  const gpt2 = architecture === 'gpt2';
  const fixed = (gpt2 ? GPT2_FIXED : LLAMA_FIXED)[name];
  if (fixed) return fixed;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  const per = m && (gpt2 ? GPT2_LAYER : LLAMA_LAYER)[m[2]];
  if (!per) return undefined;
  return gpt2 ? `h.${m[1]}.${per}` : `model.layers.${m[1]}.${per}`;
}

/** Hugging Face name of a GGUF tensor; an E_UNSUPPORTED error names a tensor with none. */
export function ggufToHfName(name: string, architecture = 'llama'): string {
  const hf = ggufToHfNameOf(name, architecture);
  if (!hf) throw new LowbitError('E_UNSUPPORTED', `no Hugging Face ${architecture === 'gpt2' ? 'GPT-2' : 'Llama-family'} name for tensor ${name}`);
  return hf;
}
