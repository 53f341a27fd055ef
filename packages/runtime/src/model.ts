// A Llama-family model in memory: its hyper-parameters (LlamaConfig), its weights (LlamaWeights:
// norms as f32, every matmul a Linear on resident, possibly packed, weights) and its tokenizer.
import { GGML_BLOCK_BYTES, GGML_K_BLOCK_BYTES, type Kernels, LowbitError, WasmTensor, loadKernels } from '@lowbit/kernels';
import { type Q5TensorType, TENSOR_TYPES, type TensorType, isKQuantType, isLowbitType } from './ggml-types.js';
import { ggufRopeLayout, permuteLinearRows, permuteRows, ropeHeads, ropeRowOrder, sliceLinearRows } from './rope-order.js';
import { linearWeightFromPacked, lowbitLinearWeight } from './packed-linear.js';
import { type KQuantType, unpackMxfp4 } from './ggml-kquants.js';
import { dequantize, fromF32, toF32 } from './ggml-quants.js';
import { type GgufFile, type GgufTensorInfo, metaValue, readGguf, readTensorBytes, readTensorInto } from './gguf-reader.js';
import type { ByteSource } from './byte-source.js';
import { Linear, type LinearWeight } from './linear.js';
import { type BucketedEmbedding, bucketedBytes, bucketedRow, hasBucketedEmbedding, readBucketedGguf } from './bucketed-embedding.js';
import type { LlamaConfig } from './llama-config.js';
import { type ShardItem, type ShardLayout, closeInstances, planLayout, reserveMemory, residentBytes } from './shards.js';
import { ByteLevelBpeTokenizer, GPT2_PATTERN } from './tokenizer-bpe.js';
import { SpmTokenizer, type Tokenizer } from './tokenizer-spm.js';

export type { LlamaConfig };

/** GGUF architectures lowbit runs: `llama` (RoPE "normal" ordering), `qwen2` (NEOX RoPE, q/k/v biases) and `gpt2` (LlamaConfig.variant). */
export const SUPPORTED_ARCHITECTURES = ['llama', 'qwen2', 'gpt2'] as const;

export interface LayerWeights {
  attnNorm: Float32Array; // (dim)
  wq: Linear; // (nHeads·headDim, dim)
  wk: Linear; // (nKvHeads·headDim, dim)
  wv: Linear; // (nKvHeads·headDim, dim)
  wo: Linear; // (dim, nHeads·headDim)
  ffnNorm: Float32Array; // (dim)
  w1?: Linear; // gate (hiddenDim, dim); GELU models have none
  w2: Linear; // down (dim, hiddenDim)
  w3: Linear; // up (hiddenDim, dim)
  attnNormBias?: Float32Array; // (dim) LayerNorm models
  ffnNormBias?: Float32Array; // (dim)
}

export type TokenEmbedding =
  | {
    type: TensorType;
    data: Uint8Array; // (vocab, dim) rows in `type`, dequantized one row at a time
    rowBytes: number;
  }
  // per-row INT-k widths (lowbit allocate --embed-buckets); rowBytes is the mean stored bytes per token
  | { type: 'buckets'; buckets: BucketedEmbedding; rowBytes: number };

export interface LlamaWeights {
  tokenEmbd: TokenEmbedding;
  layers: LayerWeights[];
  outputNorm: Float32Array; // (dim)
  outputNormBias?: Float32Array; // (dim) LayerNorm models
  positionEmbd?: Float32Array; // (contextLength, dim) learned positions (GPT-2)
  output: Linear; // (vocab, dim); token_embd when the file ties them
}

export const LAYER_LINEARS = ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_down', 'ffn_up'] as const;
const FIELD: Record<(typeof LAYER_LINEARS)[number], 'wq' | 'wk' | 'wv' | 'wo' | 'w1' | 'w2' | 'w3'> = {
  attn_q: 'wq', attn_k: 'wk', attn_v: 'wv', attn_output: 'wo', ffn_gate: 'w1', ffn_down: 'w2', ffn_up: 'w3',
};

export interface LoadOptions {
  kernels?: Kernels;
  /**
   * What K-quant matrices (Q2_K … Q6_K) become at load: 'packed' (kept as the file's super-blocks and
   * multiplied in place by the kernels' K-quant GEMV: the file's size, f32 activations), 'f32'
   * (dequantized bit-identical to ggml, 32 bits per weight), 'q8_0' (re-quantized with ggml's Q8_0 rule:
   * 8.5 bits per weight, adds a relative error of ~0.4% per weight, runs on the int8 block kernel).
   * 'auto' (default) is 'packed'.
   */
  kquants?: 'packed' | 'f32' | 'q8_0' | 'auto';
  /**
   * Most resident weight bytes one kernel instance (one WebAssembly memory, at most 4 GiB) holds.
   * A model whose weights need more is spread over several instances, whole tensors each, runs of
   * consecutive layers (shards.ts); its logits equal one instance's bit for bit. Default 3 GiB,
   * which leaves each instance room for its layers' KV caches.
   */
  maxInstanceBytes?: number;
}

const kquantTarget = new WeakMap<GgufFile, 'packed' | 'f32' | 'q8_0'>();

function kquantChoice(option: LoadOptions['kquants'] = 'auto'): 'packed' | 'f32' | 'q8_0' {
  return option === 'auto' ? 'packed' : option;
}

export class DecoderModel {
  constructor(
    readonly name: string,
    readonly config: LlamaConfig,
    readonly weights: LlamaWeights,
    readonly tokenizer: Tokenizer,
    readonly kernels: Kernels,
    /** The GGUF this model came from (metadata is reused by the writer), if any. */
    readonly gguf?: GgufFile,
    /**
     * Sharded models (LoadOptions.maxInstanceBytes): per layer, the kernel instance that runs its
     * attention and holds its KV cache. Absent: `kernels` runs everything.
     */
    readonly layerKernels?: readonly Kernels[],
  ) {}

  /** The kernel instance that runs layer `layer`'s attention and holds its KV cache. */
  kernelsOf(layer: number): Kernels {
    return this.layerKernels?.[layer] ?? this.kernels;
  }

  /** Every kernel instance holding this model's weights (one unless sharded). */
  get instances(): Kernels[] {
    return [...new Set([this.kernels, ...(this.layerKernels ?? []), ...this.linears().map((l) => l.kernels)])];
  }

  /** Every linear layer by its GGUF tensor name, in forward order (`blk.0.attn_q.weight`, …, `output.weight`). */
  linears(): Linear[] {
    const out: Linear[] = [];
    this.weights.layers.forEach((l) => out.push(...[l.wq, l.wk, l.wv, l.wo, l.w1, l.w3, l.w2].filter((x): x is Linear => x !== undefined)));
    out.push(this.weights.output);
    return out;
  }

  linear(name: string): Linear {
    const l = this.linears().find((x) => x.name === name);
    if (!l) throw new LowbitError('E_MISSING', `${this.name}: no linear layer named ${name}`);
    return l;
  }

  /** Replaces one layer's weights (same shape); the old resident copy is freed. */
  setLinear(name: string, weight: LinearWeight): void {
    const old = this.linear(name);
    if (weight.shape[0] !== old.rows || weight.shape[1] !== old.cols) {
      throw new LowbitError('E_SHAPE', `${name}: new weights have shape [${weight.shape}], the layer is [${old.rows}, ${old.cols}]`);
    }
    const next = new Linear(old.kernels, name, weight, old.bias);
    if (name === 'output.weight') this.weights.output = next;
    else {
      const m = /^blk\.(\d+)\.(\w+)\.weight$/.exec(name) as RegExpExecArray;
      this.weights.layers[Number(m[1])][FIELD[m[2] as (typeof LAYER_LINEARS)[number]]] = next;
    }
    old.free();
  }

  /** Token `id`'s embedding row, dequantized. */
  embed(id: number, out: Float32Array, outOffset = 0): void {
    const { vocabSize, dim } = this.config;
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new LowbitError('E_RANGE', `${this.name}: token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
    }
    const e = this.weights.tokenEmbd;
    if (e.type === 'buckets') bucketedRow(e.buckets, id, out, outOffset);
    else dequantize(e.type, e.data, id * e.rowBytes, dim, out, outOffset);
  }

  /** Bytes of weights one decoded token streams: every linear layer, plus one embedding row. */
  get bytesPerToken(): number {
    return this.linears().reduce((s, l) => s + l.bytes, 0) + this.weights.tokenEmbd.rowBytes;
  }

  free(): void {
    for (const l of this.linears()) l.free();
    // the shard pools the loader started (never the caller's own kernels)
    const own = ownedInstances.get(this);
    ownedInstances.delete(this);
    if (own) void closeInstances(own);
  }
}

/** Kernel instances a loader made for a sharded model (shards.ts), stopped by `free()`. */
export const ownedInstances = new WeakMap<DecoderModel, Kernels[]>();


function num(file: GgufFile, key: string, fallback?: number): number {
  const v = metaValue(file, key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new LowbitError('E_MISSING', `${file.source.name}: metadata key ${key} is missing`);
  }
  if (typeof v !== 'number') throw new LowbitError('E_BAD_FILE', `${file.source.name}: metadata ${key} is not a number`);
  return v;
}

export function llamaConfig(file: GgufFile): LlamaConfig {
  const name = file.source.name;
  const arch = metaValue(file, 'general.architecture');
  if (typeof arch !== 'string') throw new LowbitError('E_MISSING', `${name}: metadata general.architecture is missing`);
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new LowbitError('E_UNSUPPORTED', `${name}: architecture "${arch}" is not supported (lowbit runs ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  const p = (k: string, d?: number) => num(file, `${arch}.${k}`, d);
  const dim = p('embedding_length');
  const nHeads = p('attention.head_count');
  const headDim = dim / nHeads;
  const tokens = metaValue(file, 'tokenizer.ggml.tokens');
  const embd = file.tensors.get('token_embd.weight');
  const vocabSize = p('vocab_size', Array.isArray(tokens) ? tokens.length : embd ? embd.shape[1] : Number.NaN);
  let c: LlamaConfig;
  if (arch === 'gpt2') {
    c = {
      architecture: arch, dim, hiddenDim: p('feed_forward_length'), nLayers: p('block_count'), nHeads, nKvHeads: nHeads, headDim, vocabSize,
      contextLength: p('context_length'), normEps: p('attention.layer_norm_epsilon', 1e-5), ropeTheta: 10000, ropeDim: 0,
      variant: { norm: 'layer', positions: 'learned', ffn: 'gelu' },
    };
  } else {
    c = {
      architecture: arch,
      dim,
      hiddenDim: p('feed_forward_length'),
      nLayers: p('block_count'),
      nHeads,
      nKvHeads: p('attention.head_count_kv', nHeads),
      headDim,
      vocabSize,
      contextLength: p('context_length', 2048),
      normEps: p('attention.layer_norm_rms_epsilon', 1e-5),
      ropeTheta: p('rope.freq_base', 10000),
      ropeDim: p('rope.dimension_count', headDim),
    };
  }
  validateLlamaConfig(c, `${name}: metadata`);
  if (file.tensors.size) checkConfigAgainstTensors(c, file);
  return c;
}

// Upper bounds far above any real model and far below what would make a loop or an allocation that
// depends on them a denial of service; the tensors then pin the exact values.
const MAX_DIM = 2 ** 20;
const MAX_LAYERS = 4096;
const MAX_VOCAB = 2 ** 24;
const MAX_CONTEXT = 2 ** 24;

/**
 * Throws E_BAD_FILE unless every count of `c` is a positive integer in its range and the counts agree
 * with each other (heads divide the width, KV heads divide heads, RoPE pairs fit a head). Every
 * loader calls it before any loop or allocation sized by the config.
 */
export function validateLlamaConfig(c: LlamaConfig, where: string): void {
  const int = (what: string, v: number, lo: number, hi: number) => {
    if (!Number.isSafeInteger(v) || v < lo || v > hi) throw new LowbitError('E_BAD_FILE', `${where}: ${what} is ${v}, not an integer in [${lo}, ${hi}]`);
  };
  int('embedding length (dim)', c.dim, 1, MAX_DIM);
  int('feed-forward length', c.hiddenDim, 1, 4 * MAX_DIM);
  int('block count', c.nLayers, 1, MAX_LAYERS);
  int('head count', c.nHeads, 1, c.dim);
  int('KV head count', c.nKvHeads, 1, c.nHeads);
  int('vocabulary size', c.vocabSize, 1, MAX_VOCAB);
  int('context length', c.contextLength, 1, MAX_CONTEXT);
  if (!Number.isInteger(c.headDim) || c.headDim * c.nHeads !== c.dim) throw new LowbitError('E_BAD_FILE', `${where}: ${c.nHeads} heads do not divide the embedding length ${c.dim}`);
  if (c.nHeads % c.nKvHeads) throw new LowbitError('E_BAD_FILE', `${where}: ${c.nKvHeads} KV heads do not divide ${c.nHeads} heads`);
  if (!c.variant) {
    if (c.headDim % 2) throw new LowbitError('E_BAD_FILE', `${where}: head size ${c.headDim} is odd; RoPE rotates pairs`);
    int('RoPE dimension count', c.ropeDim, 2, c.headDim);
    if (c.ropeDim % 2) throw new LowbitError('E_BAD_FILE', `${where}: RoPE dimension count ${c.ropeDim} is odd; RoPE rotates pairs`);
  }
  const pos = (what: string, v: number) => {
    if (!(Number.isFinite(v) && v > 0)) throw new LowbitError('E_BAD_FILE', `${where}: ${what} is ${v}, not a positive finite number`);
  };
  pos('norm epsilon', c.normEps);
  pos('RoPE frequency base', c.ropeTheta);
}

/** The config read from metadata must describe the tensors the file holds: the embedding pins dim and vocabulary, and no block lies past the block count. */
function checkConfigAgainstTensors(c: LlamaConfig, file: GgufFile): void {
  const name = file.source.name;
  const e = file.tensors.get('token_embd.weight');
  // a bucketed embedding is checked against dim and vocabulary as it is read (readBucketedGguf)
  if (!e && !hasBucketedEmbedding(file)) throw new LowbitError('E_MISSING', `${name}: tensor token_embd.weight is missing`);
  if (e && (e.shape.length !== 2 || e.shape[0] !== c.dim || e.shape[1] !== c.vocabSize)) {
    throw new LowbitError('E_SHAPE', `${name}: tensor token_embd.weight has shape [${e.shape}], the metadata implies [${c.dim}, ${c.vocabSize}]`);
  }
  for (const t of file.tensors.keys()) {
    const m = /^blk\.(\d+)\./.exec(t);
    if (m && Number(m[1]) >= c.nLayers) throw new LowbitError('E_BAD_FILE', `${name}: tensor ${t} lies past the block count ${c.nLayers}`);
  }
}

/** Throws E_NAN naming the tensor if `data` holds NaN or ±Inf: one rule for weights of every type. */
export function assertFinite(where: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new LowbitError('E_NAN', `${where}: value ${i} is ${data[i]}; weights must be finite`);
  }
}

/** Byte offsets of the f16 super-block scales (d, dmin) in each K-quant block (ggml-common.h). */
const KQUANT_SUPER_SCALES = { Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] } as const;

/** f16 bit patterns with an all-ones exponent are NaN or ±Inf. */
function f16NonFinite(bits: number): boolean {
  return (bits & 0x7c00) === 0x7c00;
}

/**
 * E_NAN unless every value a weight can produce is finite: f32 values; the f16 scales (and minimums)
 * of ggml blocks; the f32 scales, zeros, tables of packed tensors; MX scale 0xFF (NaN). A pass over
 * the scales only for block types, so it costs a fraction of the load itself.
 */
export function assertFiniteWeight(where: string, w: LinearWeight): void {
  switch (w.format) {
    case 'f32':
      return assertFinite(where, w.data);
    case 'q8_0':
    case 'q4_0':
    case 'q4_1':
      return assertFiniteBlocks(where, w.format, w.data);
    case 'q5_0':
    case 'q5_1':
    case 'iq4_nl': {
      // f16 d (and Q5_1's m) at the start of each block: their codes are bounded integers
      const type = w.format.toUpperCase() as Q5TensorType;
      const per = TENSOR_TYPES[type].blockBytes;
      const v = new DataView(w.data.buffer, w.data.byteOffset, w.data.byteLength);
      for (let o = 0; o + per <= w.data.byteLength; o += per) {
        if (f16NonFinite(v.getUint16(o, true)) || (type === 'Q5_1' && f16NonFinite(v.getUint16(o + 2, true)))) throw new LowbitError('E_NAN', `${where}: ${type} block ${o / per} has a NaN or infinite scale; weights must be finite`);
      }
      return;
    }
    case 'mxfp4': // scales 0xFF never get here (packed-fast.ts); the Q8_0 form's f16 scales
    case 'nf4': // non-finite absmax never gets here (lut-fast.ts nf4TileBlocks)
      return assertFiniteWeight(where, w.fallback);
    case 'kquant': {
      // only the f16 super-scales can be non-finite: sub-block scales and codes are small integers
      const per = GGML_K_BLOCK_BYTES[w.type];
      const at = KQUANT_SUPER_SCALES[w.type];
      const v = new DataView(w.data.buffer, w.data.byteOffset, w.data.byteLength);
      for (let o = 0; o + per <= w.data.byteLength; o += per) {
        for (const a of at) if (f16NonFinite(v.getUint16(o + a, true))) throw new LowbitError('E_NAN', `${where}: ${w.type} super-block ${o / per} has a NaN or infinite scale; weights must be finite`);
      }
      return;
    }
    case 'int4':
      assertFinite(`${where} (scales)`, w.scales);
      if (w.zeros) assertFinite(`${where} (zeros)`, w.zeros);
      return;
    case 'packed': {
      const t = w.tensor as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(t)) {
        if (v instanceof Float32Array) assertFinite(`${where} (${k})`, v);
        else if (Array.isArray(v)) v.forEach((x, i) => x instanceof Float32Array && assertFinite(`${where} (${k}[${i}])`, x));
      }
      const mxScales = (t.format !== undefined || t.kind === 'mx-rows') && t.scales instanceof Uint8Array ? t.scales : null;
      if (mxScales?.includes(0xff)) throw new LowbitError('E_NAN', `${where}: an MX block scale is 0xFF (NaN); weights must be finite`);
      return;
    }
  }
}

/**
 * E_NAN unless every f16 scale (and Q4_1 minimum) of ggml blocks is finite. Every block size is even,
 * so the scales sit at even offsets: one 16-bit view read with a stride, ~30x faster than a DataView
 * walk (the scan would otherwise cost as much as reading the file).
 */
function assertFiniteBlocks(where: string, format: 'q8_0' | 'q4_0' | 'q4_1', data: Uint8Array): void {
  const half = GGML_BLOCK_BYTES[format] / 2;
  const n = Math.floor(data.byteLength / (2 * half));
  // an odd byte offset cannot take a 16-bit view: copy (only arrays the caller sliced oddly)
  const bytes = data.byteOffset % 2 ? data.slice() : data;
  const u = new Uint16Array(bytes.buffer, bytes.byteOffset, n * half);
  const second = format === 'q4_1';
  for (let b = 0, i = 0; b < n; b++, i += half) {
    // typed arrays read in host byte order: little-endian wherever the WASM kernels run (as in toF32)
    if ((u[i] & 0x7c00) === 0x7c00 || (second && (u[i + 1] & 0x7c00) === 0x7c00)) {
      throw new LowbitError('E_NAN', `${where}: block ${b} has a NaN or infinite scale; weights must be finite`);
    }
  }
}

/** The same rule on raw GGUF tensor bytes (token embeddings stay in their stored type). */
function assertFiniteGgml(where: string, type: TensorType, bytes: Uint8Array): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (type) {
    case 'F32':
      for (let o = 0; o + 4 <= bytes.byteLength; o += 4) if (!Number.isFinite(v.getFloat32(o, true))) throw new LowbitError('E_NAN', `${where}: value ${o / 4} is ${v.getFloat32(o, true)}; weights must be finite`);
      return;
    case 'F16':
      for (let o = 0; o + 2 <= bytes.byteLength; o += 2) if (f16NonFinite(v.getUint16(o, true))) throw new LowbitError('E_NAN', `${where}: value ${o / 2} is NaN or infinite; weights must be finite`);
      return;
    case 'BF16':
      for (let o = 0; o + 2 <= bytes.byteLength; o += 2) if ((v.getUint16(o, true) & 0x7f80) === 0x7f80) throw new LowbitError('E_NAN', `${where}: value ${o / 2} is NaN or infinite; weights must be finite`);
      return;
    case 'Q8_0':
    case 'Q4_0':
    case 'Q4_1':
      return assertFiniteWeight(where, { format: type.toLowerCase() as 'q8_0', shape: [1, 32], data: bytes });
    case 'Q5_0':
    case 'Q5_1':
    case 'IQ4_NL':
      return assertFiniteWeight(where, { format: type.toLowerCase() as 'q5_0', shape: [1, 32], data: bytes });
    default:
      // K-quant embeddings: the matrices' rule (finite f16 super-scales keep every value finite), not a
      // decode of the whole table to f32 (0.5 GB of JS array and ~10 s of CPU for a 7B's Q4_K table)
      if (isKQuantType(type) && type !== 'Q8_K') return assertFiniteWeight(where, { format: 'kquant', type, shape: [1, 256], data: bytes });
      // MXFP4 / Q8_K embeddings (ggml reads E8M0 0xFF as 2^127, so ±6 at that scale overflows f32):
      // decoded once here; their matrices are checked as f32 Linears
      if (isKQuantType(type) || type === 'MXFP4') assertFinite(where, toF32(type, bytes, (bytes.byteLength / TENSOR_TYPES[type].blockBytes) * TENSOR_TYPES[type].blockSize));
      return; // lowbit types: checked as Linears after decoding
  }
}

/** Split patterns of llama.cpp's BPE pre-tokenizers (`tokenizer.ggml.pre`), as in their tokenizer.json files. */
const BPE_PATTERNS: Record<string, string> = {
  'llama-bpe': "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  qwen2: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
};

/** llama.cpp's `tokenizer.ggml.pre` name of a byte-level split pattern, if it has one. */
export function bpePreName(pattern: string): string | undefined {
  if (pattern === GPT2_PATTERN) return 'gpt-2';
  return Object.entries(BPE_PATTERNS).find(([, p]) => p === pattern)?.[0];
}

/** A metadata array whose every entry is a string (tokens, merges), or undefined when the key is absent. */
function stringArray(file: GgufFile, key: string): string[] | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new LowbitError('E_BAD_FILE', `${file.source.name}: metadata ${key} is not an array of strings`);
  return v as string[];
}

/** A metadata array of `n` finite numbers (scores, token types), or undefined when absent. */
function numberArray(file: GgufFile, key: string, n: number): number[] | undefined {
  const v = metaValue(file, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new LowbitError('E_BAD_FILE', `${file.source.name}: metadata ${key} is not an array of ${n} finite numbers (one per token)`);
  }
  return v as number[];
}

/** A special token id: an integer below the vocabulary size, or −1 for none where the tokenizer allows none. */
function tokenId(file: GgufFile, key: string, fallback: number, n: number, noneAllowed = true): number {
  const id = num(file, key, fallback);
  const lo = noneAllowed ? -1 : 0;
  if (!Number.isInteger(id) || id < lo || id >= n) throw new LowbitError('E_BAD_FILE', `${file.source.name}: metadata ${key} is ${id}, not a token id in [0, ${n})${noneAllowed ? ' (or -1)' : ''}`);
  return id;
}

/** The tokenizer stored in a GGUF: SentencePiece-BPE (`llama`) or byte-level BPE (`gpt2`). */
export function tokenizerFromGguf(file: GgufFile): Tokenizer {
  const model = metaValue(file, 'tokenizer.ggml.model');
  if (model !== 'gpt2') return spmTokenizerFromGguf(file);
  const name = file.source.name;
  const tokens = stringArray(file, 'tokenizer.ggml.tokens');
  const merges = stringArray(file, 'tokenizer.ggml.merges');
  if (!tokens || !merges) throw new LowbitError('E_MISSING', `${name}: a gpt2 tokenizer needs tokenizer.ggml.tokens and tokenizer.ggml.merges`);
  const pairs = merges.map((m, i) => {
    const pair = m.split(' ');
    if (pair.length !== 2) throw new LowbitError('E_BAD_FILE', `${name}: metadata tokenizer.ggml.merges[${i}] ${JSON.stringify(m)} is not two pieces separated by one space`);
    return pair as [string, string];
  });
  const pre = String(metaValue(file, 'tokenizer.ggml.pre') ?? 'gpt-2');
  // an own-property lookup: a name such as "constructor" must not pick up Object.prototype's
  const pattern = Object.hasOwn(BPE_PATTERNS, pre) ? BPE_PATTERNS[pre] : pre === 'llama3' ? BPE_PATTERNS['llama-bpe'] : GPT2_PATTERN;
  const types = numberArray(file, 'tokenizer.ggml.token_type', tokens.length) ?? [];
  const specials = types.flatMap((t, i) => (t === 3 ? [i] : []));
  const vocab = new Map(tokens.map((t, i) => [t, i]));
  return new ByteLevelBpeTokenizer(vocab, pairs, pattern,
    tokenId(file, 'tokenizer.ggml.bos_token_id', -1, tokens.length), tokenId(file, 'tokenizer.ggml.eos_token_id', -1, tokens.length), specials, { where: name, vocabSize: tokens.length });
}

export function spmTokenizerFromGguf(file: GgufFile): Tokenizer {
  const name = file.source.name;
  const model = metaValue(file, 'tokenizer.ggml.model');
  if (model !== 'llama') {
    throw new LowbitError('E_UNSUPPORTED', `${name}: tokenizer.ggml.model "${String(model)}" is not supported (lowbit reads "llama" SentencePiece-BPE)`);
  }
  const tokens = stringArray(file, 'tokenizer.ggml.tokens');
  if (!tokens) throw new LowbitError('E_MISSING', `${name}: tokenizer.ggml.tokens is missing`);
  const n = tokens.length;
  const scores = numberArray(file, 'tokenizer.ggml.scores', n) ?? tokens.map(() => 0);
  const types = numberArray(file, 'tokenizer.ggml.token_type', n) ?? tokens.map(() => 1);
  const addPrefix = metaValue(file, 'tokenizer.ggml.add_space_prefix');
  return new SpmTokenizer(
    tokens, scores, types,
    tokenId(file, 'tokenizer.ggml.bos_token_id', 1, n, false), tokenId(file, 'tokenizer.ggml.eos_token_id', 2, n), tokenId(file, 'tokenizer.ggml.unknown_token_id', 0, n, false),
    addPrefix === undefined ? true : Boolean(addPrefix),
  );
}

function tensorInfo(file: GgufFile, name: string, shape: number[]): GgufTensorInfo {
  const t = file.tensors.get(name);
  if (!t) throw new LowbitError('E_MISSING', `${file.source.name}: tensor ${name} is missing`);
  const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
  // ggml drops trailing 1-dims of vectors in some writers; [n] and [n, 1] are the same tensor
  const vec = shape.length === 1 && t.shape.length === 2 && t.shape[0] === shape[0] && t.shape[1] === 1;
  if (!same && !vec) {
    throw new LowbitError('E_SHAPE', `${file.source.name}: tensor ${name} has shape [${t.shape}], the metadata implies [${shape}]`);
  }
  return t;
}

async function loadVector(file: GgufFile, name: string, n: number): Promise<Float32Array> {
  const t = tensorInfo(file, name, [n]);
  const v = toF32(t.type, await readTensorBytes(file, name), n);
  assertFinite(`${file.source.name}: tensor ${name}`, v);
  return v;
}

/**
 * A GGUF matrix as LinearWeight: Q8_0/Q4_0/Q4_1 and MXFP4 stay packed; F16/BF16 become f32; the
 * K-quants are dequantized (bit-identical to ggml) to f32, or re-quantized to Q8_0 (LoadOptions.kquants)
 * until they have a packed GEMV of their own.
 */
export async function loadLinearWeight(file: GgufFile, name: string, rows: number, cols: number): Promise<LinearWeight> {
  const t = tensorInfo(file, name, [cols, rows]);
  const bytes = await readTensorBytes(file, name);
  const where = `${file.source.name}: tensor ${name}`;
  let w: LinearWeight;
  if (isLowbitType(t.type)) w = lowbitLinearWeight(t, bytes, where);
  else if (t.type === 'Q8_0' || t.type === 'Q4_0' || t.type === 'Q4_1') w = { format: t.type.toLowerCase() as 'q8_0', shape: [rows, cols], data: bytes };
  // run as Q8_0 blocks of the same values (linear.ts), the stored blocks kept for `source`
  else if (t.type === 'Q5_0' || t.type === 'Q5_1' || t.type === 'IQ4_NL') w = { format: t.type.toLowerCase() as 'q5_0', shape: [rows, cols], data: bytes };
  else if (t.type === 'MXFP4') {
    // ggml's MXFP4 is OCP MXFP4 with rows of whole 32-blocks: held packed as lowbit's LB_MXFP4 layers are
    w = linearWeightFromPacked({ kind: 'mx-rows', format: 'mxfp4', shape: [rows, cols], ...unpackMxfp4(bytes, (rows * cols) / 32) });
  }
  else if (isKQuantType(t.type) && t.type !== 'Q8_K' && (kquantTarget.get(file) ?? 'packed') === 'packed') {
    // the reader has checked the byte count; the row length is checked again by Linear (whole super-blocks)
    w = { format: 'kquant', type: t.type, shape: [rows, cols], data: bytes };
  } else {
    const data = toF32(t.type, bytes, rows * cols);
    w = { format: 'f32', shape: [rows, cols], data };
    if (isKQuantType(t.type) && kquantTarget.get(file) === 'q8_0') {
      assertFiniteWeight(where, w); // before re-quantizing, so a NaN is reported, not hidden in a block scale
      w = { format: 'q8_0', shape: [rows, cols], data: fromF32('Q8_0', data, cols, where) };
    }
  }
  assertFiniteWeight(where, w);
  return w;
}

/** ggml block types whose matrices are read straight into WebAssembly memory (ggmlLinearDirect). */
const GGML_DIRECT: ReadonlySet<TensorType> = new Set(['Q8_0', 'Q4_0', 'Q4_1']);

/**
 * A Q8_0/Q4_0/Q4_1 matrix of `file` as a Linear on `k`, its blocks read from the file straight into
 * `k`'s memory (no JS array, no copy into WASM), checked there, and tiled from there by prepareGgml
 * into their resident place; the blocks' scratch is freed after. What loadLinearWeight + Linear do,
 * minus two copies of every byte and the allocation of a JS array per tensor: the bulk of a large
 * model's load (README, "Models beyond 4 GiB").
 */
async function ggmlLinearDirect(file: GgufFile, from: string, name: string, rows: number, cols: number, k: Kernels, bias?: Float32Array): Promise<Linear> {
  const t = tensorInfo(file, from, [cols, rows]);
  const format = t.type.toLowerCase() as 'q8_0' | 'q4_0' | 'q4_1';
  const where = `${file.source.name}: tensor ${from}`;
  const blocks = new WasmTensor(k.heap, k.heap.alloc(t.byteLength), t.byteLength, 'Uint8Array');
  try {
    // the view is taken after the allocation (growing the memory detaches older views) and nothing else allocates on `k` while the read runs
    const view = new Uint8Array(k.memory.buffer, blocks.ptr, t.byteLength);
    await readTensorInto(file, from, view);
    assertFiniteBlocks(where, format, new Uint8Array(k.memory.buffer, blocks.ptr, t.byteLength));
    // Linear hands `data` to prepareGgml, which takes blocks already in this instance's memory as well as a
    // byte array; the byte count (all else Linear reads of it) is the tensor's
    return new Linear(k, name, { format, shape: [rows, cols], data: blocks as unknown as Uint8Array }, bias);
  } finally {
    blocks.free();
  }
}

/**
 * A K-quant matrix of `file` as a Linear on `k`, its super-blocks read into `reused.buf`, one JS array
 * kept for the whole load (grown to the largest matrix) instead of a fresh one per tensor: Linear
 * copies the blocks into WASM memory and tiles them there (prepareKQuant), keeping nothing of the
 * array, so the next matrix may overwrite it. A fresh 25-100 MB array per matrix cost its page faults
 * (~3.5 s CPU per GiB) and the garbage collector's work on every load (README, "Models beyond 4 GiB").
 */
async function kquantLinearReused(file: GgufFile, from: string, name: string, rows: number, cols: number, k: Kernels, reused: Reused, bias?: Float32Array): Promise<Linear> {
  const { t, bytes: data } = await readReused(file, from, rows, cols, reused);
  const w: LinearWeight = { format: 'kquant', type: t.type as Exclude<KQuantType, 'Q8_K'>, shape: [rows, cols], data };
  assertFiniteWeight(`${file.source.name}: tensor ${from}`, w);
  return new Linear(k, name, w, bias);
}

/** Float matrix types decoded to f32 at load (floatLinearReused). */
const FLOAT_TYPES: ReadonlySet<TensorType> = new Set(['F32', 'F16', 'BF16']);

/** Read (and f32) buffers kept for one load, each grown once to its largest matrix. */
interface Reused {
  buf: Uint8Array;
  most: number;
  f32: Float32Array;
  mostF32: number;
}

/** The bytes of matrix `from` read into `reused.buf` (grown once to the load's largest): valid until the next read. */
async function readReused(file: GgufFile, from: string, rows: number, cols: number, reused: Reused): Promise<{ t: GgufTensorInfo; bytes: Uint8Array }> {
  const t = tensorInfo(file, from, [cols, rows]);
  if (reused.buf.byteLength < t.byteLength) reused.buf = new Uint8Array(Math.max(t.byteLength, reused.most));
  const bytes = reused.buf.subarray(0, t.byteLength);
  await readTensorInto(file, from, bytes);
  return { t, bytes };
}

/**
 * An F32/F16/BF16 matrix of `file` as an f32 Linear on `k`, read into `reused.buf` and decoded into
 * `reused.f32` (both kept for the whole load) instead of two fresh arrays per tensor: Linear uploads
 * the f32 values and keeps nothing of them (as kquantLinearReused).
 */
async function floatLinearReused(file: GgufFile, from: string, name: string, rows: number, cols: number, k: Kernels, reused: Reused, bias?: Float32Array): Promise<Linear> {
  const { t, bytes } = await readReused(file, from, rows, cols, reused);
  const n = rows * cols;
  if (reused.f32.length < n) reused.f32 = new Float32Array(Math.max(n, reused.mostF32));
  const data = reused.f32.subarray(0, n);
  dequantize(t.type, bytes, 0, n, data);
  const w: LinearWeight = { format: 'f32', shape: [rows, cols], data };
  assertFiniteWeight(`${file.source.name}: tensor ${from}`, w);
  return new Linear(k, name, w, bias);
}

/** Reads every weight of `file` into resident Linears (recorded in `made`, so a failure can free them). */
async function loadWeights(file: GgufFile, c: LlamaConfig, kOf: (tensor: string) => Kernels, made: Linear[]): Promise<LlamaWeights> {
  const kvDim = c.nKvHeads * c.headDim;
  // the largest K-quant / float matrix's bytes (and float values), allocated at the first one (readReused)
  const reused: Reused = { buf: new Uint8Array(0), most: 0, f32: new Float32Array(0), mostF32: 0 };
  for (const t of file.tensors.values()) {
    if (t.shape.length !== 2 || !(isKQuantType(t.type) || FLOAT_TYPES.has(t.type))) continue;
    reused.most = Math.max(reused.most, t.byteLength);
    if (FLOAT_TYPES.has(t.type)) reused.mostF32 = Math.max(reused.mostF32, t.shape[0] * t.shape[1]);
  }
  const neox = ggufRopeLayout(c.architecture) === 'halves';
  const lin = async (n: string, rows: number, cols: number, from = n) => {
    const biasName = from.replace(/\.weight$/, '.bias');
    let bias = file.tensors.has(biasName) ? await loadVector(file, biasName, rows) : undefined;
    // NEOX files hold Wq/Wk (and their biases) in the halves order: memory holds pairs (rope-order.ts)
    const heads = ropeHeads(from, c);
    const k = kOf(n);
    const type = file.tensors.get(from)?.type as TensorType;
    const asStored = !(neox && heads); // the file's row order is the one memory holds
    let l: Linear;
    if (asStored && GGML_DIRECT.has(type)) l = await ggmlLinearDirect(file, from, n, rows, cols, k, bias);
    else if (asStored && isKQuantType(type) && type !== 'Q8_K' && (kquantTarget.get(file) ?? 'packed') === 'packed') {
      l = await kquantLinearReused(file, from, n, rows, cols, k, reused, bias);
    } else if (asStored && FLOAT_TYPES.has(type)) l = await floatLinearReused(file, from, n, rows, cols, k, reused, bias);
    else {
      let w = await loadLinearWeight(file, from, rows, cols);
      if (neox && heads) {
        const perm = ropeRowOrder(heads, c.headDim, 'pairs');
        w = permuteLinearRows(from, w, perm);
        if (bias) bias = permuteRows(bias, 1, perm);
      }
      l = new Linear(k, n, w, bias);
    }
    made.push(l);
    return l;
  };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    layers.push({
      attnNorm: await loadVector(file, `${b}attn_norm.weight`, c.dim),
      wq: await lin(`${b}attn_q.weight`, c.dim, c.dim),
      wk: await lin(`${b}attn_k.weight`, kvDim, c.dim),
      wv: await lin(`${b}attn_v.weight`, kvDim, c.dim),
      wo: await lin(`${b}attn_output.weight`, c.dim, c.dim),
      ffnNorm: await loadVector(file, `${b}ffn_norm.weight`, c.dim),
      w1: await lin(`${b}ffn_gate.weight`, c.hiddenDim, c.dim),
      w2: await lin(`${b}ffn_down.weight`, c.dim, c.hiddenDim),
      w3: await lin(`${b}ffn_up.weight`, c.hiddenDim, c.dim),
    });
  }
  let tokenEmbd: TokenEmbedding;
  if (hasBucketedEmbedding(file)) {
    const buckets = await readBucketedGguf(file, c.vocabSize, c.dim);
    tokenEmbd = { type: 'buckets', buckets, rowBytes: bucketedBytes(buckets) / c.vocabSize };
  } else {
    const e = tensorInfo(file, 'token_embd.weight', [c.dim, c.vocabSize]);
    const data = await readTensorBytes(file, e.name);
    assertFiniteGgml(`${file.source.name}: tensor token_embd.weight`, e.type, data);
    tokenEmbd = { type: e.type, data, rowBytes: e.byteLength / c.vocabSize };
  }
  // files without output.weight tie the output projection to the token embedding
  const outFrom = file.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight';
  return {
    tokenEmbd,
    layers,
    outputNorm: await loadVector(file, 'output_norm.weight', c.dim),
    output: await lin('output.weight', c.vocabSize, c.dim, outFrom),
  };
}

/** GPT-2 GGUF (llama.cpp names): fused attn_qkv split into Wq/Wk/Wv, biases everywhere, learned positions. */
async function loadGpt2Weights(file: GgufFile, c: LlamaConfig, kOf: (tensor: string) => Kernels, made: Linear[]): Promise<LlamaWeights> {
  const { dim, hiddenDim } = c;
  const mk = (name: string, w: LinearWeight, bias?: Float32Array) => {
    const l = new Linear(kOf(name), name, w, bias);
    made.push(l);
    return l;
  };
  const lin = async (name: string, rows: number, cols: number) => mk(`${name}.weight`, await loadLinearWeight(file, `${name}.weight`, rows, cols), await loadVector(file, `${name}.bias`, rows));
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    // llama.cpp's files fuse Q, K, V; lowbit writes them apart when they are packed lowbit types
    const fused = file.tensors.has(`${b}attn_qkv.weight`);
    const qkv = fused ? await loadLinearWeight(file, `${b}attn_qkv.weight`, 3 * dim, dim) : null;
    const qkvB = fused ? await loadVector(file, `${b}attn_qkv.bias`, 3 * dim) : null;
    const part = async (n: string, i: number) =>
      qkv && qkvB ? mk(`${b}${n}.weight`, sliceLinearRows(`${b}attn_qkv.weight`, qkv, i * dim, (i + 1) * dim), qkvB.slice(i * dim, (i + 1) * dim)) : lin(`${b}${n}`, dim, dim);
    layers.push({
      attnNorm: await loadVector(file, `${b}attn_norm.weight`, dim),
      attnNormBias: await loadVector(file, `${b}attn_norm.bias`, dim),
      wq: await part('attn_q', 0),
      wk: await part('attn_k', 1),
      wv: await part('attn_v', 2),
      wo: await lin(`${b}attn_output`, dim, dim),
      ffnNorm: await loadVector(file, `${b}ffn_norm.weight`, dim),
      ffnNormBias: await loadVector(file, `${b}ffn_norm.bias`, dim),
      w3: await lin(`${b}ffn_up`, hiddenDim, dim),
      w2: await lin(`${b}ffn_down`, dim, hiddenDim),
    });
  }
  const e = tensorInfo(file, 'token_embd.weight', [dim, c.vocabSize]);
  const pe = tensorInfo(file, 'position_embd.weight', [dim, c.contextLength]);
  const outFrom = file.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight';
  const positionEmbd = toF32(pe.type, await readTensorBytes(file, pe.name), dim * c.contextLength);
  assertFinite(`${file.source.name}: tensor position_embd.weight`, positionEmbd);
  const embd = await readTensorBytes(file, e.name);
  assertFiniteGgml(`${file.source.name}: tensor token_embd.weight`, e.type, embd);
  return {
    tokenEmbd: { type: e.type, data: embd, rowBytes: e.byteLength / c.vocabSize },
    positionEmbd,
    layers,
    outputNorm: await loadVector(file, 'output_norm.weight', dim),
    outputNormBias: await loadVector(file, 'output_norm.bias', dim),
    output: mk('output.weight', await loadLinearWeight(file, outFrom, c.vocabSize, dim)),
  };
}

/**
 * Where each matrix of `file` goes when its weights need more than `maxInstanceBytes` of one WASM
 * memory: the instance per tensor and per layer (the layer's attn_k, or gpt2's fused attn_qkv, holds
 * its attention). null when everything fits in `k`, which then runs the model as it always did.
 */
async function planModelShards(file: GgufFile, c: LlamaConfig, k: Kernels, options: LoadOptions): Promise<ShardLayout | null> {
  const kq = kquantTarget.get(file) ?? 'packed';
  const item = (name: string, t: GgufTensorInfo): ShardItem => ({ name, bytes: residentBytes(t.type, t.shape.reduce((a, b) => a * b, 1), t.byteLength, kq, { shape: t.shape, params: t.params, mxfp4Tiles: k.supportsMxfp4Tiles }) });
  // load order: each block's matrices, then the output projection (the token embedding when tied)
  const items: ShardItem[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    for (const t of file.tensors.values()) if (t.name.startsWith(`blk.${l}.`) && t.shape.length === 2) items.push(item(t.name, t));
  }
  const out = file.tensors.get('output.weight') ?? file.tensors.get('token_embd.weight');
  if (out) items.push(item('output.weight', out));
  const layout = await planLayout(k, items, c.nLayers, options.maxInstanceBytes, file.source.name);
  // the blocks of one matrix at a time pass through a scratch copy in its instance (ggmlLinearDirect)
  let scratch = 0;
  for (const t of file.tensors.values()) if (t.shape.length === 2) scratch = Math.max(scratch, t.byteLength);
  reserveMemory(items, layout ? layout.kOf : () => k, scratch);
  return layout;
}

/** Loads a Llama-family GGUF (path or ByteSource): weights go tensor by tensor into WASM memory. */
export async function loadModel(input: string | ByteSource, options: LoadOptions = {}): Promise<DecoderModel> {
  const file = await readGguf(input);
  // a file that fails half-way must not leave its first layers resident in the shared WASM heap
  const made: Linear[] = [];
  let owned: Kernels[] = [];
  try {
    const c = llamaConfig(file);
    const k = options.kernels ?? (await loadKernels());
    kquantTarget.set(file, kquantChoice(options.kquants));
    const tokenizer = tokenizerFromGguf(file);
    if (tokenizer.vocabSize !== c.vocabSize) {
      throw new LowbitError('E_SHAPE', `${file.source.name}: tokenizer has ${tokenizer.vocabSize} tokens, the model ${c.vocabSize}`);
    }
    const shards = await planModelShards(file, c, k, options);
    owned = shards?.owned ?? [];
    const kOf = shards ? shards.kOf : () => k;
    const weights = c.architecture === 'gpt2' ? await loadGpt2Weights(file, c, kOf, made) : await loadWeights(file, c, kOf, made);
    const model = new DecoderModel(file.source.name, c, weights, tokenizer, k, file, shards?.layerKernels);
    if (owned.length) ownedInstances.set(model, owned);
    return model;
  } catch (e) {
    for (const l of made) l.free();
    await closeInstances(owned);
    throw e;
  } finally {
    if (typeof input === 'string') await file.source.close();
  }
}

/**
 * @deprecated Renamed `DecoderModel`: it runs every decoder-only architecture lowbit loads (llama,
 * mistral, qwen2, gpt2), not only Llama. This alias stays until the next major version.
 */
export const LlamaModel = DecoderModel;
/** @deprecated Renamed `DecoderModel`. */
export type LlamaModel = DecoderModel;
