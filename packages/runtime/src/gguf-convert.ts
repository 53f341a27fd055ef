// Writing models back out: re-encode a GGUF's tensors as Q8_0 / Q4_0 / Q4_1 (llama.cpp's reference
// quantizers), or save an in-memory model whose layers a quantizer replaced.
import { GGML_MXFP4_BLOCK_BYTES, LowbitError } from '@lowbit/kernels';
import { packMxfp4 } from './ggml-kquants.js';
import { type GgmlTensorType, KQUANT_FALLBACK, type TensorType, isKQuantType, isLowbitType } from './ggml-types.js';
import { fromF32, toF32 } from './ggml-quants.js';
import { type GgufFile, type GgufValue, readGguf, readTensorBytes } from './gguf-reader.js';
import type { ByteSink } from './atomic-file.js';
import { type GgufTensorToWrite, gguf, writeGguf } from './gguf-writer.js';
import type { MxTensor } from '@lowbit/formats';
import { type StoredLayer, encodeLowbit, lowbitTypeOf } from './lowbit-tensors.js';
import { bucketedGgufTensors } from './bucketed-embedding.js';
import { anyPrecisionTensorBytes, permuteAnyPrecisionRows } from './any-precision-linear.js';
import { type DecoderModel, SUPPORTED_ARCHITECTURES, bpePreName } from './model.js';
import type { Linear, LinearWeight } from './linear.js';
import { ggufRopeLayout, permuteLinearRows, permuteRows, permuteStoredRows, ropeHeads, ropeRowOrder } from './rope-order.js';
import { ByteLevelBpeTokenizer } from './tokenizer-bpe.js';
import { SpmTokenizer, TokenType } from './tokenizer-spm.js';

/** llama.cpp `llama_ftype` of a file whose weights are mostly `type` (general.file_type). */
// K types as their _M mixes (Q3_K_M 12, Q4_K_M 15, Q5_K_M 17), the names llama.cpp users know; MXFP4_MOE 38
const FILE_TYPE: Partial<Record<GgmlTensorType, number>> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, IQ4_NL: 25, BF16: 32, Q2_K: 10, Q3_K: 12, Q4_K: 15, Q5_K: 17, Q6_K: 18, MXFP4: 38 };

/** GGUF metadata of files holding lowbit tensor types (README "lowbit tensor types in GGUF"). */
export const LOWBIT_FORMAT_VERSION = 2; // 2: LB_INT* with fp16 scales and packed zeros (ggml-types LOWBIT_INT_LAYOUT_VERSION)

/**
 * The type a tensor gets when a file is quantized to `target`: matrices take `target`; vectors
 * (norms) stay F32; matrices whose rows are not a whole number of 32-blocks fall back to F16, as
 * llama.cpp's quantizer does for incompatible tensors.
 */
export function storageType(target: TensorType, shape: readonly number[]): TensorType {
  if (isLowbitType(target)) throw new LowbitError('E_UNSUPPORTED', `${target} is a per-layer lowbit type, not a storage target`);
  if (shape.length < 2 || shape.slice(1).every((d) => d === 1)) return 'F32';
  if (target === 'Q8_0' || target === 'Q4_0' || target === 'Q4_1' || target === 'Q5_0' || target === 'Q5_1' || target === 'IQ4_NL' || target === 'MXFP4') return shape[0] % 32 === 0 ? target : 'F16';
  // rows that are not whole 256-blocks take llama.cpp's fallback for the K type, F16 where even
  // 32-blocks do not fit, as its quantizer does
  if (isKQuantType(target) && target !== 'Q8_K') return shape[0] % 256 === 0 ? target : shape[0] % 32 === 0 ? KQUANT_FALLBACK[target] : 'F16';
  if (isKQuantType(target)) return shape[0] % 256 === 0 ? target : 'F16';
  return target;
}

function withFileType(meta: Map<string, GgufValue>, target: TensorType): Map<string, GgufValue> {
  if (isLowbitType(target)) throw new LowbitError('E_UNSUPPORTED', `${target} is a per-layer lowbit type, not a whole-file target (F32, F16, BF16, Q8_0, Q4_0, Q4_1)`);
  const out = new Map(meta);
  const ft = FILE_TYPE[target];
  if (ft === undefined) throw new LowbitError('E_UNSUPPORTED', `${target} is not a whole-file target (${Object.keys(FILE_TYPE).join(', ')})`);
  out.set('general.file_type', { type: 4, value: ft });
  return out;
}

/**
 * Marks a file holding lowbit tensor types, so any GGUF reader can tell why it cannot load it:
 * general.quantized_by = "lowbit", lowbit.format_version, lowbit.tensor_types (the LB_* types used).
 */
function withLowbitMarks(meta: Map<string, GgufValue>, tensors: readonly GgufTensorToWrite[]): Map<string, GgufValue> {
  const types = [...new Set(tensors.filter((t) => isLowbitType(t.type)).map((t) => t.type))];
  const out = new Map([...meta].filter(([k]) => !k.startsWith('lowbit.')));
  if (!types.length) return out;
  // No llama_ftype describes per-layer lowbit types; the source's value (often 0, all F32) would
  // mislead readers that display it, so the key is left out (llama.cpp then reports "guessed").
  out.delete('general.file_type');
  out.set('general.quantized_by', { type: 8, value: 'lowbit' });
  out.set('lowbit.format_version', { type: 4, value: LOWBIT_FORMAT_VERSION });
  out.set('lowbit.tensor_types', { type: 9, itemType: 8, value: types });
  return out;
}

/** Re-encodes every tensor of `input` for `target` and writes `output` atomically, tensor by tensor. */
export async function quantizeGguf(input: string, output: string, target: TensorType): Promise<void> {
  const file: GgufFile = await readGguf(input);
  try {
    const tensors: GgufTensorToWrite[] = [...file.tensors.values()].map((t) => {
      const type = storageType(target, t.shape);
      const n = t.shape.reduce((a, b) => a * b, 1);
      return {
        name: t.name,
        shape: t.shape,
        type,
        data: async () => {
          const bytes = await readTensorBytes(file, t.name);
          return type === t.type ? bytes : fromF32(type, toF32(t.type, bytes, n), t.shape[0], `${input}: tensor ${t.name}`);
        },
      };
    });
    await writeGguf(output, withFileType(file.metadata, target), tensors);
  } finally {
    await file.source.close();
  }
}

/** A loaded layer that is already packed, as the stored layer it came from (for re-saving). */
export function storedFromSource(name: string, w: LinearWeight): StoredLayer | null {
  const [rows, cols] = w.shape;
  if (w.format === 'int4') {
    return { kind: 'int', bits: 4, symmetric: w.zeros === null, shape: [rows, cols], granularity: 'group-cols', group: w.group, scales: w.scales, zeros: w.zeros, codes: w.packed };
  }
  if (w.format === 'any-precision') throw new LowbitError('E_UNSUPPORTED', `${name}: any-precision (nested bit-plane) layers are no INT-k / MX layer; GGUF stores them as LB_ANYPREC`);
  if (w.format !== 'packed') return null;
  const t = w.tensor as { kind?: string };
  if (t.kind === 'int' || t.kind === 'mx-rows') return w.tensor as StoredLayer;
  if (t.kind === undefined || t.kind === 'mx') {
    const m = w.tensor as MxTensor;
    return { kind: 'mx-rows', format: m.format, shape: [rows, cols], scales: m.scales, codes: m.codes };
  }
  throw new LowbitError('E_UNSUPPORTED', `${name}: ${t.kind} weights have no GGUF type; save them as f32 or a lowbit INT-k / MX type`);
}

/**
 * One linear layer as a GGUF tensor: `stored` (or the layer itself, when already packed) as a lowbit
 * type, ggml blocks as they are, f32 as `target`. `rows` (a RoPE row order) puts rows in the file's order.
 */
function linearTensor(name: string, w: LinearWeight, target?: TensorType, stored?: StoredLayer | null, rows?: Int32Array | null): GgufTensorToWrite {
  const [nRows, cols] = w.shape;
  const shape = [cols, nRows];
  if (!stored && w.format === 'any-precision') {
    // nested bit-planes stay nested: every width of the file remains servable (LB_ANYPREC)
    const t = rows ? permuteAnyPrecisionRows(w.tensor, rows) : w.tensor;
    return { name, shape, type: 'LB_ANYPREC', params: { seedBits: t.seedBits, maxBits: t.maxBits }, data: () => anyPrecisionTensorBytes(t) };
  }
  let packed = stored ?? storedFromSource(name, w);
  if (packed) {
    if (packed.shape[0] !== nRows || packed.shape[1] !== cols) throw new LowbitError('E_SHAPE', `${name}: packed tensor has shape [${packed.shape}], the layer is [${nRows}, ${cols}]`);
    if (rows) packed = permuteStoredRows(name, packed, rows);
    const p = packed;
    if (p.kind === 'mx-rows' && p.format === 'mxfp4' && cols % 32 === 0) {
      // ggml's own MXFP4 (type 39) holds the same codes and scales, so llama.cpp runs the file
      return { name, shape, type: 'MXFP4', data: () => {
        const out = new Uint8Array((nRows * cols / 32) * GGML_MXFP4_BLOCK_BYTES);
        packMxfp4(p.codes, p.scales, out);
        return out;
      } };
    }
    // encoded when the writer reaches the tensor, so a large model never holds every layer's bytes at once
    const { type, params } = lowbitTypeOf(p);
    return { name, shape, type, params, data: () => encodeLowbit(p, `tensor ${name}`).bytes };
  }
  const v = rows ? permuteLinearRows(name, w, rows) : w;
  if (v.format !== 'f32') {
    // K-quant layers keep the file's super-blocks, saved under their own type
    return { name, shape, type: v.format === 'kquant' ? v.type : (v.format.toUpperCase() as TensorType), data: (v as { data: Uint8Array }).data };
  }
  const type = storageType(target ?? 'F32', shape);
  return { name, shape, type, data: () => fromF32(type, v.data, cols, name) };
}

/** Whether layers stack by rows into one GGUF tensor: f32 or one ggml block type (K-quants included), rows of one width. */
function fusable(ws: readonly LinearWeight[]): boolean {
  const [w0] = ws;
  const type = (w: LinearWeight) => (w.format === 'kquant' ? w.type : w.format);
  return ws.every((w) => type(w) === type(w0) && w.shape[1] === w0.shape[1]) && ['f32', 'q8_0', 'q4_0', 'q4_1', 'kquant'].includes(w0.format);
}

/**
 * Layers stacked by rows into one (GPT-2's attn_qkv from Wq, Wk, Wv), where `fusable`. Packed lowbit
 * layers are not fused (their parameters are per tensor): the caller writes them apart.
 */
function fuseRows(name: string, ws: readonly LinearWeight[]): LinearWeight {
  if (!fusable(ws)) throw new LowbitError('E_UNSUPPORTED', `${name}: fusing layers of formats ${ws.map((w) => w.format).join(', ')} (GGUF stores f32 or one ggml block type for a fused tensor)`);
  const cols = ws[0].shape[1];
  const rows = ws.reduce((a, w) => a + w.shape[0], 0);
  const parts = ws.map((w) => (w as { data: Float32Array | Uint8Array }).data);
  const data = ws[0].format === 'f32' ? new Float32Array(rows * cols) : new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return { ...ws[0], shape: [rows, cols], data } as LinearWeight;
}

/** The most common storage type of a file's matrices, by weight count (general.file_type). */
function fileTypeOf(tensors: readonly GgufTensorToWrite[], fallback: TensorType): TensorType {
  const count = new Map<TensorType, number>();
  for (const t of tensors) if (t.shape.length === 2 && t.name !== 'token_embd.weight' && !isLowbitType(t.type)) count.set(t.type, (count.get(t.type) ?? 0) + t.shape[0] * t.shape[1]);
  return [...count].sort((a, b) => b[1] - a[1])[0]?.[0] ?? fallback;
}

export interface SaveModelOptions {
  /** Type of the layers held as f32 (default F32); vectors stay F32, 32-block types fall back to F16 on rows that are not whole blocks. */
  target?: TensorType;
  /**
   * Packed layers by GGUF tensor name (`quantizeModel`'s `packed`): stored as lowbit tensor types
   * (LB_INT*, LB_MX*) instead of the layer's current (fake-quantized f32) weights. null entries are ignored.
   */
  packed?: ReadonlyMap<string, StoredLayer | null>;
}

/**
 * Writes an in-memory model (its current, possibly replaced, layers) as GGUF: packed layers keep
 * their blocks; f32 layers are stored as `target` (default F32); biases as F32. Metadata and
 * tokenizer come from the GGUF the model was loaded from (else from its config, modelMetadata).
 * Every architecture lowbit loads is written as llama.cpp reads it: Wq/Wk rows (and biases) in the
 * file's RoPE order, GPT-2's Q, K, V fused into attn_qkv (apart, as lowbit reads them, when packed lowbit types).
 * general.file_type names the type most matrix weights have. `output`: a path (written atomically) or a
 * ByteSink that receives the file's bytes in order (browsers, workers).
 */
export async function saveModel(model: DecoderModel, output: string | ByteSink, options: SaveModelOptions = {}): Promise<void> {
  const c = model.config;
  const metadata = modelMetadata(model);
  const arch = String(metadata.get('general.architecture')?.value);
  // memory holds Wq/Wk rows in RoPE pairs order; a NEOX architecture's file holds them in halves order
  const layout = ggufRopeLayout(arch);
  const f32 = (name: string, v: Float32Array): GgufTensorToWrite => ({ name, shape: [v.length], type: 'F32', data: fromF32('F32', v, v.length) });
  const e = model.weights.tokenEmbd;
  const bucketed = e.type === 'buckets' ? bucketedGgufTensors(e.buckets) : null;
  const tensors: GgufTensorToWrite[] = e.type === 'buckets' ? [...(bucketed as { tensors: GgufTensorToWrite[] }).tensors] : [{ name: 'token_embd.weight', shape: [c.dim, c.vocabSize], type: e.type, data: e.data }];
  if (model.weights.positionEmbd) tensors.push({ name: 'position_embd.weight', shape: [c.dim, c.contextLength], type: 'F32', data: fromF32('F32', model.weights.positionEmbd, c.dim) });
  tensors.push(f32('output_norm.weight', model.weights.outputNorm));
  if (model.weights.outputNormBias) tensors.push(f32('output_norm.bias', model.weights.outputNormBias));
  const lin = (l: Linear) => {
    const heads = layout === 'halves' ? ropeHeads(l.name, c) : 0;
    const rows = heads ? ropeRowOrder(heads, c.headDim, 'halves') : null;
    tensors.push(linearTensor(l.name, l.source, options.target, options.packed?.get(l.name), rows));
    if (l.bias) tensors.push(f32(l.name.replace(/\.weight$/, '.bias'), rows ? permuteRows(l.bias, 1, rows) : l.bias));
  };
  lin(model.weights.output);
  model.weights.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    tensors.push(f32(`${b}attn_norm.weight`, l.attnNorm));
    if (l.attnNormBias) tensors.push(f32(`${b}attn_norm.bias`, l.attnNormBias));
    const qkv = [l.wq, l.wk, l.wv];
    if (c.variant && !qkv.some((x) => options.packed?.get(x.name)) && fusable(qkv.map((x) => x.source))) {
      // GPT-2's GGUF (llama.cpp's and lowbit's loader) fuses Q, K, V into attn_qkv, biases too
      const name = `${b}attn_qkv.weight`;
      tensors.push(linearTensor(name, fuseRows(name, qkv.map((x) => x.source)), options.target));
      const bias = new Float32Array(qkv.reduce((a, x) => a + x.rows, 0));
      let o = 0;
      for (const x of qkv) {
        if (x.bias) bias.set(x.bias, o);
        o += x.rows;
      }
      tensors.push(f32(`${b}attn_qkv.bias`, bias));
    } else for (const x of qkv) lin(x);
    lin(l.wo);
    tensors.push(f32(`${b}ffn_norm.weight`, l.ffnNorm));
    if (l.ffnNormBias) tensors.push(f32(`${b}ffn_norm.bias`, l.ffnNormBias));
    for (const x of [l.w1, l.w2, l.w3]) if (x) lin(x);
  });
  if (options.packed) {
    const names = new Set(model.linears().map((l) => l.name));
    for (const n of options.packed.keys()) if (!names.has(n)) throw new LowbitError('E_MISSING', `${model.name}: packed layer ${n} is not a linear layer of the model`);
  }
  const target = options.target ?? 'F32';
  const meta = withLowbitMarks(withFileType(metadata, isLowbitType(target) ? target : fileTypeOf(tensors, target)), tensors);
  if (bucketed) meta.set(...bucketed.map);
  await writeGguf(output, meta, tensors);
}

/**
 * GGUF metadata for a model: the file's own when it was loaded from GGUF; for a model loaded from a
 * Hugging Face directory (llama and mistral as `llama`, qwen2, gpt2), the keys llama.cpp reads, built
 * from its config and tokenizer (SentencePiece:
 * pieces, scores, types; byte-level BPE: pieces, merges and the pre-tokenizer's llama.cpp name), the
 * vocabulary padded with unused pieces up to the embedding's rows as llama.cpp's converter does.
 */
export function modelMetadata(model: DecoderModel): Map<string, GgufValue> {
  if (model.gguf) return model.gguf.metadata;
  const c = model.config;
  const tok = model.tokenizer;
  const refuse = (why: string) =>
    new LowbitError('E_UNSUPPORTED', `${model.name}: saving a model not loaded from GGUF ${why}; convert it to GGUF with llama.cpp first`);
  // llama.cpp runs Mistral as llama (same tensors, same RoPE); qwen2 and gpt2 keep their own keys
  const arch = c.architecture === 'mistral' ? 'llama' : c.architecture;
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) throw refuse(`needs an architecture GGUF has (${SUPPORTED_ARCHITECTURES.join(', ')}; this is ${c.architecture})`);
  const pad = (n: number) => Array.from({ length: Math.max(0, c.vocabSize - n) }, (_, i) => `[PAD${n + i}]`);
  const a = `${arch}.`;
  const meta = new Map<string, GgufValue>([
    ['general.architecture', gguf.str(arch)],
    ['general.name', gguf.str(model.name.split(/[\\/]/).filter(Boolean).pop() ?? 'model')],
    [`${a}context_length`, gguf.u32(c.contextLength)],
    [`${a}embedding_length`, gguf.u32(c.dim)],
    [`${a}block_count`, gguf.u32(c.nLayers)],
    [`${a}feed_forward_length`, gguf.u32(c.hiddenDim)],
    [`${a}attention.head_count`, gguf.u32(c.nHeads)],
  ]);
  if (c.variant) meta.set(`${a}attention.layer_norm_epsilon`, gguf.f32(c.normEps));
  else {
    meta.set(`${a}attention.head_count_kv`, gguf.u32(c.nKvHeads));
    meta.set(`${a}attention.layer_norm_rms_epsilon`, gguf.f32(c.normEps));
    meta.set(`${a}rope.freq_base`, gguf.f32(c.ropeTheta));
    meta.set(`${a}rope.dimension_count`, gguf.u32(c.ropeDim));
  }
  if (tok instanceof SpmTokenizer) {
    // pieces no merge produces have score −∞ in lowbit; GGUF stores f32 and llama.cpp merges by score: the lowest finite score keeps them last
    const floor = Math.min(0, ...tok.scores.filter(Number.isFinite)) - 1;
    const extra = pad(tok.tokens.length);
    meta.set('tokenizer.ggml.model', gguf.str('llama'));
    meta.set('tokenizer.ggml.tokens', gguf.strs([...tok.tokens, ...extra]));
    meta.set('tokenizer.ggml.scores', gguf.f32s([...tok.scores.map((x) => (Number.isFinite(x) ? x : floor)), ...extra.map(() => floor)]));
    meta.set('tokenizer.ggml.token_type', gguf.i32s([...tok.types, ...extra.map(() => TokenType.UNUSED)]));
    meta.set('tokenizer.ggml.unknown_token_id', gguf.u32(tok.unk));
    meta.set('tokenizer.ggml.add_space_prefix', gguf.bool(tok.addSpacePrefix));
  } else if (tok instanceof ByteLevelBpeTokenizer) {
    const pre = bpePreName(tok.pattern);
    if (!pre) throw refuse('needs a byte-level pre-tokenizer llama.cpp knows (GPT-2, Llama 3 or Qwen2 split pattern)');
    const pieces = tok.pieceStrings();
    const extra = pad(pieces.length);
    meta.set('tokenizer.ggml.model', gguf.str('gpt2'));
    meta.set('tokenizer.ggml.pre', gguf.str(pre));
    meta.set('tokenizer.ggml.tokens', gguf.strs([...pieces.map((p, i) => p || `[PAD${i}]`), ...extra]));
    meta.set('tokenizer.ggml.token_type', gguf.i32s([...pieces.map((p, i) => (tok.isSpecial(i) ? TokenType.CONTROL : p ? TokenType.NORMAL : TokenType.UNUSED)), ...extra.map(() => TokenType.UNUSED)]));
    meta.set('tokenizer.ggml.merges', gguf.strs(tok.merges.map(([l, r]) => `${l} ${r}`)));
  } else {
    throw refuse(`needs a SentencePiece or byte-level BPE tokenizer (this is ${tok.constructor.name})`);
  }
  if (tok.bos >= 0) meta.set('tokenizer.ggml.bos_token_id', gguf.u32(tok.bos));
  if (tok.eos >= 0) meta.set('tokenizer.ggml.eos_token_id', gguf.u32(tok.eos));
  return meta;
}
