// Hugging Face checkpoint directories: config.json + model.safetensors (or sharded with
// model.safetensors.index.json) + tokenizer.json. Llama-family (llama, mistral, qwen2) tensor names map
// onto the GGUF names lowbit runs; GPT-2 maps onto the same forward with LayerNorm, learned positions
// and GELU switched on (LlamaConfig.variant).
//
// RoPE ordering: HF checkpoints hold Wq/Wk rows in the halves order (rotate_half), memory in the pairs
// order: loading permutes them, exporting permutes back (rope-order.ts). Names: hf-names.ts.
import { LowbitError, type Kernels, loadKernels } from '@lowbit/kernels';
import { isLowbitType } from './ggml-types.js';
import { writeTextAtomic } from './atomic-file.js';
import { nodeFiles } from './file-system.js';
import { fromF32, toF32 } from './ggml-quants.js';
import { metaValue, readGguf, readTensorBytes } from './gguf-reader.js';
import { Linear } from './linear.js';
import { type LayerWeights, type LlamaConfig, DecoderModel, llamaConfig, tokenizerFromGguf, assertFinite, assertFiniteWeight, ownedInstances, validateLlamaConfig } from './model.js';
import { type ShardLayout, closeInstances, planSafetensorsLayout } from './shards.js';
import { type SafetensorsDtype, type SafetensorsFile, readSafetensors, readSafetensorsF32, writeSafetensors } from './safetensors.js';
import { type GptqQuantizeConfig, gptqLayer } from './quantized-safetensors.js';
import { ggufToHfName } from './hf-names.js';
import type { StoredLayer } from './lowbit-tensors.js';
import { ggufRopeLayout, permuteRows, permuteStoredRows, ropeHeads, ropeRowOrder } from './rope-order.js';
import { linearWeightFromPacked } from './packed-linear.js';
import type { LinearWeight } from './linear.js';
import { ByteLevelBpeTokenizer, byteLevelTokenizerJson } from './tokenizer-bpe.js';
import { SpmTokenizer, type Tokenizer } from './tokenizer-spm.js';
import { isSpmTokenizerJson, spmTokenizerFromJson, spmTokenizerJson } from './tokenizer-spm-json.js';

export const HF_LLAMA_TYPES = ['llama', 'mistral', 'qwen2'] as const;

export { ggufToHfName, hfToGgufName } from './hf-names.js';
export { permuteRope } from './rope-order.js';

/**
 * The config read from config.json must describe the checkpoint before any loop it sizes: the
 * embedding pins dim and vocabulary, and no layer lies past the layer count.
 */
function checkHfTensors(dir: string, c: LlamaConfig, shards: Map<string, SafetensorsFile>, embd: string, layer: RegExp): void {
  const st = shards.get(embd);
  const t = st?.tensors.get(embd);
  if (!st || !t) throw new LowbitError('E_MISSING', `${dir}: tensor ${embd} is missing`);
  if (t.shape.join() !== [c.vocabSize, c.dim].join()) throw new LowbitError('E_SHAPE', `${st.source.name}: tensor ${embd} has shape [${t.shape}], config.json implies [${c.vocabSize}, ${c.dim}]`);
  for (const n of shards.keys()) {
    const m = layer.exec(n);
    if (m && Number(m[1]) >= c.nLayers) throw new LowbitError('E_BAD_FILE', `${dir}: tensor ${n} lies past config.json's ${c.nLayers} layers`);
  }
}

interface HfConfig {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads?: number;
  vocab_size: number;
  max_position_embeddings?: number;
  rms_norm_eps?: number;
  rope_theta?: number;
  tie_word_embeddings?: boolean;
  bos_token_id?: number;
  eos_token_id?: number | number[];
  /** transformers' GPTQConfig of a GPTQ checkpoint (also read from quantize_config.json). */
  quantization_config?: Partial<GptqQuantizeConfig> & { quant_method?: string };
}

async function readJson<T>(path: string): Promise<T> {
  const { readFile } = nodeFiles(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new LowbitError('E_MISSING', `${path}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `${path}: not JSON (${(e as Error).message})`);
  }
}

/** Opens every shard; returns tensor name → the shard holding it. */
async function openShards(dir: string): Promise<Map<string, SafetensorsFile>> {
  const { existsSync, join } = nodeFiles(dir);
  const index = join(dir, 'model.safetensors.index.json');
  const files = existsSync(index)
    ? [...new Set(Object.values((await readJson<{ weight_map: Record<string, string> }>(index)).weight_map))]
    : ['model.safetensors'];
  const byName = new Map<string, SafetensorsFile>();
  for (const f of files) {
    const st = await readSafetensors(join(dir, f));
    for (const n of st.tensors.keys()) byName.set(n, st);
  }
  return byName;
}

export interface HfLoadOptions {
  kernels?: Kernels;
  /** As LoadOptions.maxInstanceBytes: weights needing more are spread over several kernel instances. */
  maxInstanceBytes?: number;
  /** Overrides tokenizer.json (e.g. a SentencePiece tokenizer taken from a GGUF). */
  tokenizer?: Tokenizer;
}

/**
 * The GPTQ parameters of a checkpoint: config.json's `quantization_config` (transformers) or
 * quantize_config.json (AutoGPTQ); null when the model is not GPTQ-quantized.
 */
async function gptqConfig(dir: string, hc: HfConfig): Promise<GptqQuantizeConfig | null> {
  const { existsSync, join } = nodeFiles(dir);
  const side = join(dir, 'quantize_config.json');
  const q = hc.quantization_config ?? (existsSync(side) ? await readJson<HfConfig['quantization_config']>(side) : undefined);
  if (!q) return null;
  if ((q.quant_method ?? 'gptq') !== 'gptq') throw new LowbitError('E_UNSUPPORTED', `${dir}: quantization "${q.quant_method}" is not supported (lowbit reads GPTQ checkpoints)`);
  const bits = Number(q.bits);
  if (![2, 3, 4, 8].includes(bits)) throw new LowbitError('E_UNSUPPORTED', `${dir}: GPTQ at ${q.bits} bits is not supported (2, 3, 4 or 8)`);
  return {
    bits, group_size: Number(q.group_size ?? -1), desc_act: Boolean(q.desc_act), sym: q.sym ?? true, static_groups: Boolean(q.static_groups),
    true_sequential: q.true_sequential ?? true, damp_percent: Number(q.damp_percent ?? 0.01), quant_method: 'gptq',
    checkpoint_format: q.checkpoint_format === 'gptq_v2' ? 'gptq_v2' : 'gptq',
  };
}

/** Loads a Hugging Face Llama / Mistral / Qwen2 checkpoint directory (GPTQ-quantized ones too: their layers run packed). */
export async function loadHfModel(dir: string, options: HfLoadOptions = {}): Promise<DecoderModel> {
  const { join } = nodeFiles(dir);
  const cfgPath = join(dir, 'config.json');
  const hc = await readJson<HfConfig>(cfgPath);
  if (typeof hc !== 'object' || hc === null || Array.isArray(hc)) throw new LowbitError('E_BAD_FILE', `${cfgPath}: not a JSON object`);
  if (hc.model_type === 'gpt2') return loadHfGpt2(dir, hc as unknown as Gpt2Config, options);
  if (!(HF_LLAMA_TYPES as readonly string[]).includes(hc.model_type)) {
    throw new LowbitError('E_UNSUPPORTED', `${cfgPath}: model_type "${hc.model_type}" is not supported (lowbit runs ${HF_LLAMA_TYPES.join(', ')})`);
  }
  const headDim = hc.hidden_size / hc.num_attention_heads;
  const c: LlamaConfig = {
    architecture: hc.model_type,
    dim: hc.hidden_size,
    hiddenDim: hc.intermediate_size,
    nLayers: hc.num_hidden_layers,
    nHeads: hc.num_attention_heads,
    nKvHeads: hc.num_key_value_heads ?? hc.num_attention_heads,
    headDim,
    vocabSize: hc.vocab_size,
    contextLength: hc.max_position_embeddings ?? 2048,
    normEps: hc.rms_norm_eps ?? 1e-6,
    ropeTheta: hc.rope_theta ?? 10000,
    ropeDim: headDim,
  };
  validateLlamaConfig(c, cfgPath);
  const shards = await openShards(dir);
  checkHfTensors(dir, c, shards, 'model.embed_tokens.weight', /^model\.layers\.(\d+)\./);
  const k = options.kernels ?? (await loadKernels());
  const get = async (hf: string, shape: number[]): Promise<Float32Array> => {
    const st = shards.get(hf);
    if (!st) throw new LowbitError('E_MISSING', `${dir}: tensor ${hf} is missing`);
    const t = st.tensors.get(hf);
    if (!t || t.shape.join() !== shape.join()) throw new LowbitError('E_SHAPE', `${st.source.name}: tensor ${hf} has shape [${t?.shape}], config.json implies [${shape}]`);
    const v = await readSafetensorsF32(st, hf);
    assertFinite(`${st.source.name}: tensor ${hf}`, v);
    return v;
  };
  const opt = async (hf: string, n: number) => (shards.has(hf) ? get(hf, [n]) : undefined);
  const kvDim = c.nKvHeads * headDim;
  const layers: LayerWeights[] = [];
  const gptq = await gptqConfig(dir, hc);
  /** A projection: GPTQ-packed (qweight/qzeros/scales/g_idx, kept packed) or f32; `heads` reorders RoPE rows. */
  const weight = async (hf: string, rows: number, cols: number, heads = 0): Promise<LinearWeight> => {
    const prefix = hf.replace(/\.weight$/, '');
    const st = shards.get(`${prefix}.qweight`);
    if (st) {
      if (!gptq) throw new LowbitError('E_BAD_FILE', `${dir}: ${prefix}.qweight but no GPTQ quantization_config in config.json (or quantize_config.json)`);
      let t: StoredLayer = await gptqLayer(st, prefix, gptq, rows, cols);
      if (heads) t = permuteStoredRows(hf, t, ropeRowOrder(heads, headDim, 'pairs'));
      const w = linearWeightFromPacked(t);
      assertFiniteWeight(`${st.source.name}: ${prefix}`, w);
      return w;
    }
    const data = await get(hf, [rows, cols]);
    return { format: 'f32', shape: [rows, cols], data: heads ? permuteRows(data, cols, ropeRowOrder(heads, headDim, 'pairs')) : data };
  };
  const made: Linear[] = [];
  let layout: ShardLayout | null = null;
  const lin = (name: string, rows: number, cols: number, w: Float32Array | LinearWeight, bias?: Float32Array) => {
    const l = new Linear(layout ? layout.kOf(name) : k, name, w instanceof Float32Array ? { format: 'f32', shape: [rows, cols], data: w } : w, bias);
    made.push(l);
    return l;
  };
  try {
    const allTensors = [...new Set(shards.values())].flatMap((st) => [...st.tensors.values()]);
    layout = await planSafetensorsLayout(k, c, allTensors, (gguf) => ggufToHfName(gguf).replace(/\.weight$/, ''), options.maxInstanceBytes, dir);
    for (let l = 0; l < c.nLayers; l++) {
      const b = `blk.${l}.`;
      const n = (gguf: string) => ggufToHfName(b + gguf);
      const qb = await opt(n('attn_q.bias'), c.dim);
      const kb = await opt(n('attn_k.bias'), kvDim);
      layers.push({
        attnNorm: await get(n('attn_norm.weight'), [c.dim]),
        wq: lin(`${b}attn_q.weight`, c.dim, c.dim, await weight(n('attn_q.weight'), c.dim, c.dim, c.nHeads), qb && permuteRows(qb, 1, ropeRowOrder(c.nHeads, headDim, 'pairs'))),
        wk: lin(`${b}attn_k.weight`, kvDim, c.dim, await weight(n('attn_k.weight'), kvDim, c.dim, c.nKvHeads), kb && permuteRows(kb, 1, ropeRowOrder(c.nKvHeads, headDim, 'pairs'))),
        wv: lin(`${b}attn_v.weight`, kvDim, c.dim, await weight(n('attn_v.weight'), kvDim, c.dim), await opt(n('attn_v.bias'), kvDim)),
        wo: lin(`${b}attn_output.weight`, c.dim, c.dim, await weight(n('attn_output.weight'), c.dim, c.dim)),
        ffnNorm: await get(n('ffn_norm.weight'), [c.dim]),
        w1: lin(`${b}ffn_gate.weight`, c.hiddenDim, c.dim, await weight(n('ffn_gate.weight'), c.hiddenDim, c.dim)),
        w2: lin(`${b}ffn_down.weight`, c.dim, c.hiddenDim, await weight(n('ffn_down.weight'), c.dim, c.hiddenDim)),
        w3: lin(`${b}ffn_up.weight`, c.hiddenDim, c.dim, await weight(n('ffn_up.weight'), c.hiddenDim, c.dim)),
      });
    }
    const embd = await get(ggufToHfName('token_embd.weight'), [c.vocabSize, c.dim]);
    const lmHead = ggufToHfName('output.weight');
    const head = shards.has(lmHead) || shards.has(lmHead.replace(/weight$/, 'qweight')) ? await weight(lmHead, c.vocabSize, c.dim) : embd;
    let tokenizer = options.tokenizer;
    if (!tokenizer) {
      const eos = Array.isArray(hc.eos_token_id) ? hc.eos_token_id[0] : hc.eos_token_id;
      const where = join(dir, 'tokenizer.json');
      const json = await readJson<unknown>(where);
      // Llama 1/2, Mistral, TinyLlama: SentencePiece-BPE; Llama 3, Qwen2: byte-level BPE
      tokenizer = isSpmTokenizerJson(json)
        ? spmTokenizerFromJson(json, { bos: hc.bos_token_id, eos, vocabSize: c.vocabSize }, where)
        : ByteLevelBpeTokenizer.fromJson(json, { bos: hc.bos_token_id, eos, vocabSize: c.vocabSize }, where);
    }
    // fewer tokens than embedding rows is common (rows padded to a multiple of 64 or 128); more is not
    if (tokenizer.vocabSize > c.vocabSize) {
      throw new LowbitError('E_SHAPE', `${dir}: the tokenizer has ${tokenizer.vocabSize} tokens, config.json's vocab_size is ${c.vocabSize}`);
    }
    const model = new DecoderModel(dir, c, {
      tokenEmbd: { type: 'F32', data: fromF32('F32', embd, c.dim), rowBytes: c.dim * 4 },
      layers,
      outputNorm: await get(ggufToHfName('output_norm.weight'), [c.dim]),
      output: lin('output.weight', c.vocabSize, c.dim, head),
    }, tokenizer, k, undefined, layout?.layerKernels);
    if (layout) ownedInstances.set(model, layout.owned);
    return model;
  } catch (e) {
    for (const l of made) l.free();
    await closeInstances(layout?.owned ?? []);
    throw e;
  } finally {
    for (const st of new Set(shards.values())) await st.source.close();
  }
}

/**
 * Writes a GGUF (every architecture lowbit loads: llama, qwen2, gpt2) as a Hugging Face directory:
 * config.json + model.safetensors in `dtype` with the names and layouts transformers reads (Wq/Wk rows
 * and biases in HF's RoPE order; GPT-2's weights as Conv1D [in, out], its output tied to wte when the
 * file's equals it), and the tokenizer as tokenizer.json + tokenizer_config.json (SentencePiece or
 * byte-level BPE, as HF's converters write them).
 */
export async function exportHfModel(ggufPath: string, outDir: string, options: { dtype?: SafetensorsDtype } = {}): Promise<void> {
  const { mkdir, join } = nodeFiles(outDir);
  const dtype = options.dtype ?? 'F32';
  const g = await readGguf(ggufPath);
  try {
    const c = llamaConfig(g);
    const arch = c.architecture;
    const gpt2 = arch === 'gpt2';
    // a pairs-order file (llama) is permuted to HF's halves order; a NEOX file (qwen2) already is in it
    const permute = ggufRopeLayout(arch) === 'pairs';
    const read = async (name: string) => {
      const t = g.tensors.get(name);
      if (!t) throw new LowbitError('E_MISSING', `${ggufPath}: tensor ${name} is missing`);
      if (isLowbitType(t.type)) throw new LowbitError('E_UNSUPPORTED', `${ggufPath}: tensor ${name} is ${t.type}, a lowbit packed type with no Hugging Face layout; save the model with saveModelSafetensors instead`);
      return toF32(t.type, await readTensorBytes(g, name), t.shape.reduce((a, b) => a * b, 1));
    };
    let tied = !g.tensors.has('output.weight');
    if (!tied && gpt2) {
      // GPT2LMHeadModel ties lm_head to wte; an untied output is written as lm_head.weight
      const [o, e] = [await read('output.weight'), await read('token_embd.weight')];
      tied = o.length === e.length && o.every((v, i) => Object.is(v, e[i]));
    }
    const tensors = [];
    for (const t of g.tensors.values()) {
      if (tied && t.name === 'output.weight') continue;
      let data = await read(t.name);
      let shape = [...t.shape].reverse();
      const heads = permute ? ropeHeads(t.name, c) : 0;
      if (heads) data = permuteRows(data, data.length / (heads * c.headDim), ropeRowOrder(heads, c.headDim, 'halves'));
      let name = ggufToHfName(t.name, arch);
      if (gpt2 && name !== 'lm_head.weight') {
        name = `transformer.${name}`;
        if (t.shape.length === 2 && !/^(token|position)_embd\./.test(t.name)) {
          // Conv1D stores [in, out]: the transpose of the [out, in] rows GGUF holds
          const [cols, rows] = t.shape;
          const tr = new Float32Array(data.length);
          for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) tr[i * rows + r] = data[r * cols + i];
          data = tr;
          shape = [cols, rows];
        }
      }
      tensors.push({ name, dtype, shape, data });
    }
    await mkdir(outDir, { recursive: true });
    await writeSafetensors(join(outDir, 'model.safetensors'), tensors, { format: 'pt' });
    const bos = metaValue(g, 'tokenizer.ggml.bos_token_id');
    const eos = metaValue(g, 'tokenizer.ggml.eos_token_id');
    const torchDtype = dtype === 'BF16' ? 'bfloat16' : dtype === 'F16' ? 'float16' : 'float32';
    const config = gpt2
      ? {
        architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: c.dim, n_inner: c.hiddenDim, n_layer: c.nLayers, n_head: c.nHeads,
        n_positions: c.contextLength, n_ctx: c.contextLength, vocab_size: c.vocabSize, layer_norm_epsilon: c.normEps, activation_function: 'gelu_new',
        tie_word_embeddings: tied, bos_token_id: bos, eos_token_id: eos, torch_dtype: torchDtype,
      }
      : {
        architectures: [arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'], model_type: arch, hidden_size: c.dim, intermediate_size: c.hiddenDim,
        num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads, num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize, hidden_act: 'silu',
        max_position_embeddings: c.contextLength, rms_norm_eps: c.normEps, rope_theta: c.ropeTheta, tie_word_embeddings: tied,
        // Llama's o_proj/MLP carry no bias; Qwen2's q/k/v always do (transformers' attention_bias applies to Llama only)
        ...(arch === 'qwen2' ? { use_sliding_window: false } : { attention_bias: g.tensors.has('blk.0.attn_q.bias') }),
        bos_token_id: bos, eos_token_id: eos, torch_dtype: torchDtype,
      };
    const json = (name: string, value: unknown) => writeTextAtomic(join(outDir, name), `${JSON.stringify(value, null, 2)}\n`);
    await json('config.json', config);
    const tok = tokenizerFromGguf(g);
    if (tok instanceof SpmTokenizer) {
      await json('tokenizer.json', spmTokenizerJson(tok));
      await json('tokenizer_config.json', {
        tokenizer_class: 'LlamaTokenizerFast', bos_token: tok.tokens[tok.bos], eos_token: tok.tokens[tok.eos], unk_token: tok.tokens[tok.unk],
        add_bos_token: true, add_eos_token: false, model_max_length: c.contextLength, legacy: true,
      });
    } else if (tok instanceof ByteLevelBpeTokenizer) {
      const pieces = tok.pieceStrings();
      await json('tokenizer.json', byteLevelTokenizerJson(tok));
      await json('tokenizer_config.json', {
        tokenizer_class: 'PreTrainedTokenizerFast', bos_token: pieces[tok.bos] ?? null, eos_token: pieces[tok.eos] ?? null, model_max_length: c.contextLength,
      });
    }
  } finally {
    await g.source.close();
  }
}

interface Gpt2Config {
  model_type: 'gpt2';
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_positions: number;
  vocab_size: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  bos_token_id?: number;
  eos_token_id?: number;
}

/**
 * GPT-2 (HF `GPT2LMHeadModel`): names `[transformer.]wte/wpe/h.N.{ln_1,attn.c_attn,attn.c_proj,ln_2,
 * mlp.c_fc,mlp.c_proj}/ln_f`. Its Conv1D weights are stored [in, out], so they are transposed to
 * lowbit's [out, in]; the fused c_attn splits into Wq, Wk, Wv. The output projection is tied to wte.
 */
async function loadHfGpt2(dir: string, hc: Gpt2Config, options: HfLoadOptions): Promise<DecoderModel> {
  const { join } = nodeFiles(dir);
  const dim = hc.n_embd;
  const hidden = hc.n_inner ?? 4 * dim;
  const c: LlamaConfig = {
    architecture: 'gpt2', dim, hiddenDim: hidden, nLayers: hc.n_layer, nHeads: hc.n_head, nKvHeads: hc.n_head,
    headDim: dim / hc.n_head, vocabSize: hc.vocab_size, contextLength: hc.n_positions, normEps: hc.layer_norm_epsilon ?? 1e-5,
    ropeTheta: 10000, ropeDim: 0, variant: { norm: 'layer', positions: 'learned', ffn: 'gelu' },
  };
  validateLlamaConfig(c, join(dir, 'config.json'));
  const shards = await openShards(dir);
  const prefix = shards.has('transformer.wte.weight') ? 'transformer.' : '';
  checkHfTensors(dir, c, shards, `${prefix}wte.weight`, /^(?:transformer\.)?h\.(\d+)\./);
  const k = options.kernels ?? (await loadKernels());
  const get = async (name: string, shape: number[]): Promise<Float32Array> => {
    const st = shards.get(prefix + name);
    if (!st) throw new LowbitError('E_MISSING', `${dir}: tensor ${prefix}${name} is missing`);
    const t = st.tensors.get(prefix + name);
    if (!t || t.shape.join() !== shape.join()) throw new LowbitError('E_SHAPE', `${st.source.name}: tensor ${prefix}${name} has shape [${t?.shape}], config.json implies [${shape}]`);
    const v = await readSafetensorsF32(st, prefix + name);
    assertFinite(`${st.source.name}: tensor ${prefix}${name}`, v);
    return v;
  };
  const made: Linear[] = [];
  let layout: ShardLayout | null = null;
  const mk = (name: string, w: Float32Array, rows: number, cols: number, bias?: Float32Array) => {
    const l = new Linear(layout ? layout.kOf(name) : k, name, { format: 'f32', shape: [rows, cols], data: w }, bias);
    made.push(l);
    return l;
  };
  /** Conv1D [in, out] rows [r0, r1) of the output → a [r1 − r0, in] Linear. */
  const conv = (name: string, w: Float32Array, inDim: number, outDim: number, r0: number, r1: number, bias: Float32Array) => {
    const rows = r1 - r0;
    const t = new Float32Array(rows * inDim);
    for (let i = 0; i < inDim; i++) for (let r = 0; r < rows; r++) t[r * inDim + i] = w[i * outDim + r0 + r];
    return mk(name, t, rows, inDim, bias.slice(r0, r1));
  };
  try {
    const allTensors = [...new Set(shards.values())].flatMap((st) => [...st.tensors.values()]);
    // the tied head is wte itself: no lm_head entry, sized as vocab × dim f32 by planHfLayout
    layout = await planSafetensorsLayout(k, c, allTensors, (gguf) => (gguf === 'output.weight' ? 'lm_head' : prefix + ggufToHfName(gguf, 'gpt2').replace(/\.weight$/, '')), options.maxInstanceBytes, dir);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const b = `blk.${l}.`;
      const n = (gguf: string) => ggufToHfName(b + gguf, 'gpt2');
      const qkv = await get(n('attn_qkv.weight'), [dim, 3 * dim]);
      const qkvB = await get(n('attn_qkv.bias'), [3 * dim]);
      layers.push({
        attnNorm: await get(n('attn_norm.weight'), [dim]),
        attnNormBias: await get(n('attn_norm.bias'), [dim]),
        wq: conv(`${b}attn_q.weight`, qkv, dim, 3 * dim, 0, dim, qkvB),
        wk: conv(`${b}attn_k.weight`, qkv, dim, 3 * dim, dim, 2 * dim, qkvB),
        wv: conv(`${b}attn_v.weight`, qkv, dim, 3 * dim, 2 * dim, 3 * dim, qkvB),
        wo: conv(`${b}attn_output.weight`, await get(n('attn_output.weight'), [dim, dim]), dim, dim, 0, dim, await get(n('attn_output.bias'), [dim])),
        ffnNorm: await get(n('ffn_norm.weight'), [dim]),
        ffnNormBias: await get(n('ffn_norm.bias'), [dim]),
        w3: conv(`${b}ffn_up.weight`, await get(n('ffn_up.weight'), [dim, hidden]), dim, hidden, 0, hidden, await get(n('ffn_up.bias'), [hidden])),
        w2: conv(`${b}ffn_down.weight`, await get(n('ffn_down.weight'), [hidden, dim]), hidden, dim, 0, dim, await get(n('ffn_down.bias'), [dim])),
      });
    }
    const wte = await get(ggufToHfName('token_embd.weight', 'gpt2'), [c.vocabSize, dim]);
    const lmHead = async (tied: Float32Array) => {
      const st = shards.get('lm_head.weight');
      if (!st) return tied;
      const t = st.tensors.get('lm_head.weight');
      if (t?.shape.join() !== [c.vocabSize, dim].join()) throw new LowbitError('E_SHAPE', `${st.source.name}: tensor lm_head.weight has shape [${t?.shape}], config.json implies [${c.vocabSize}, ${dim}]`);
      return readSafetensorsF32(st, 'lm_head.weight');
    };
    const tokenizer = options.tokenizer ?? ByteLevelBpeTokenizer.fromJson(await readJson(join(dir, 'tokenizer.json')), { bos: hc.bos_token_id, eos: hc.eos_token_id, vocabSize: c.vocabSize }, join(dir, 'tokenizer.json'));
    const model = new DecoderModel(dir, c, {
      tokenEmbd: { type: 'F32', data: fromF32('F32', wte, dim), rowBytes: dim * 4 },
      positionEmbd: await get(ggufToHfName('position_embd.weight', 'gpt2'), [c.contextLength, dim]),
      layers,
      outputNorm: await get(ggufToHfName('output_norm.weight', 'gpt2'), [dim]),
      outputNormBias: await get(ggufToHfName('output_norm.bias', 'gpt2'), [dim]),
      // GPT2LMHeadModel ties the output to wte; a checkpoint that does not (exportHfModel of an untied GGUF) has lm_head.weight
      output: mk('output.weight', await lmHead(wte), c.vocabSize, dim),
    }, tokenizer, k, undefined, layout?.layerKernels);
    if (layout) ownedInstances.set(model, layout.owned);
    return model;
  } catch (e) {
    for (const l of made) l.free();
    await closeInstances(layout?.owned ?? []);
    throw e;
  } finally {
    for (const st of new Set(shards.values())) await st.source.close();
  }
}
