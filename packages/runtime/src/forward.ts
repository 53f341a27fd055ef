// The Llama forward pass (llama2.c run.c order, batched over a run of tokens): embed → per layer
// [RMSNorm → Q,K,V → RoPE → KV cache → causal GQA attention → Wo → residual → RMSNorm → SwiGLU →
// residual] → RMSNorm → logits. A Session owns the KV cache of one sequence.
import { type Kernels, LowbitError, type WasmTensor } from '@lowbit/kernels';
import { Linear } from './linear.js';
import type { DecoderModel } from './model.js';

/** Sees the input of every linear layer before its matmul: x is [batch, cols], valid only during the call. */
export type LinearInputHook = (name: string, x: Float32Array, batch: number, cols: number) => void;

export interface SessionOptions {
  /** KV-cache length; at most the model's context length. Default: the model's context length. */
  ctx?: number;
  onLinearInput?: LinearInputHook;
  /**
   * Bit-width of the model's any-precision layers for this session (default: each layer's widest);
   * one resident model serves every width it holds. A width some layer does not hold is E_ARG.
   */
  bits?: number;
  /**
   * Sees (and may rewrite) each layer's KV cache right after that layer's attention: a compressed
   * cache (kv-cache.ts, MiniCache) replaces the positions just written with what it stores, so
   * later tokens attend to the compressed states.
   */
  kvCache?: KvCacheHook;
  /**
   * Attention spans, nLayers × nHeads: head h of layer l reads only its last spans[l·nHeads + h]
   * keys (attention-span.ts; kernels.attentionSpan). Each span an integer ≥ 1.
   */
  spans?: Int32Array;
  /**
   * Keep keys and values resident as int8 codes with one scale per position and kv head
   * (kernels.attentionQ8; the CompressedKvCache 8-bit rule): the cache takes a quarter of the f32
   * cache's memory and attention reads a quarter of the bytes. Not with `kvCache` or `spans` (E_ARG).
   */
  int8Cache?: boolean;
}

/** One layer's KV cache over positions 0..ctx−1: (ctx, kvDim) f32 each, views into WASM memory. */
export interface LayerCache {
  keys: Float32Array;
  values: Float32Array;
}

export interface KvCacheHook {
  /**
   * Called after layer `layer` attended for tokens pos..pos+n−1 (their keys and values are in the
   * cache, RoPE applied). q: (n, nHeads·headDim), the queries of those tokens. cache(l) gives layer
   * l's views; they are valid only during the call (WASM memory may grow).
   */
  afterAttention(layer: number, pos: number, n: number, q: Float32Array, cache: (layer: number) => LayerCache): void;
  /** A new sequence starts (Session.reset). */
  reset?(): void;
}

/** LayerNorm (GPT-2): (x − mean)/sqrt(var + eps)·w + b. */
function layernorm(out: Float32Array, x: Float32Array, w: Float32Array, b: Float32Array, n: number, rows: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[o + i];
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[o + i] - mean) ** 2;
    const s = 1 / Math.sqrt(v / n + eps);
    for (let i = 0; i < n; i++) out[o + i] = (x[o + i] - mean) * s * w[i] + b[i];
  }
}

/** GELU, tanh form (GPT-2's gelu_new; llama.cpp's ggml_gelu). */
function gelu(v: number): number {
  return 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

function rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array, n: number, rows: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[o + i] * x[o + i];
    const s = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) out[o + i] = w[i] * (s * x[o + i]);
  }
}

// KV caches live in the model's WASM memory (the attention kernel reads them there); a Session
// dropped without free() returns them when it is collected.
const caches = new FinalizationRegistry<WasmTensor[]>((ts) => {
  for (const t of ts) t.free();
});

/**
 * The KV caches one kernel instance holds: those of the layers whose attention runs there (every
 * layer unless the model is sharded over several instances, DecoderModel.layerKernels).
 */
interface KvShard {
  k: Kernels;
  keyCache: WasmTensor; // f32 (layer, ctx, kvDim); int8 codes with int8Cache
  valueCache: WasmTensor; // f32 (layer, ctx, kvDim); int8 codes with int8Cache
  scales?: [WasmTensor, WasmTensor]; // int8Cache: keys', values' f32 (layer, ctx, nKvHeads)
}

export class Session {
  readonly ctx: number;
  /** Tokens already in the cache. */
  pos = 0;
  private readonly kv: KvShard[] = [];
  /** Per layer: its instance's caches and its slot among that instance's layers. */
  private readonly layerKv: { shard: KvShard; slot: number }[] = [];
  private readonly ropeCos: Float32Array; // (ctx, ropeDim/2)
  private readonly ropeSin: Float32Array; // (ctx, ropeDim/2)
  private readonly hook?: LinearInputHook;
  readonly bits?: number;
  private readonly kvHook?: KvCacheHook;
  private readonly spans?: Int32Array;

  constructor(
    readonly model: DecoderModel,
    options: SessionOptions = {},
  ) {
    const c = model.config;
    const ctx = options.ctx ?? c.contextLength;
    if (!Number.isInteger(ctx) || ctx <= 0 || ctx > c.contextLength) {
      throw new LowbitError('E_RANGE', `${model.name}: context ${ctx} is outside 1..${c.contextLength} (the model's context length)`);
    }
    this.ctx = ctx;
    this.hook = options.onLinearInput;
    if (options.bits !== undefined) {
      const ranges = model.linears().map((l) => [l.name, l.bitRange] as const).filter((r) => r[1] !== null);
      if (ranges.length === 0) throw new LowbitError('E_ARG', `${model.name}: bits ${options.bits} asked for, but the model has no any-precision layers (it has one width)`);
      for (const [name, [lo, hi]] of ranges as [string, [number, number]][]) {
        if (!Number.isInteger(options.bits) || options.bits < lo || options.bits > hi) throw new LowbitError('E_ARG', `${model.name}: ${name} holds ${lo} to ${hi} bits, asked for ${options.bits}`);
      }
      this.bits = options.bits;
    }
    if (options.spans !== undefined) {
      const s = options.spans;
      if (!(s instanceof Int32Array) || s.length !== c.nLayers * c.nHeads) {
        throw new LowbitError('E_ARG', `${model.name}: spans must be an Int32Array of nLayers × nHeads = ${c.nLayers * c.nHeads}, got ${s?.length}`);
      }
      for (let i = 0; i < s.length; i++) {
        if (!(s[i] >= 1)) throw new LowbitError('E_RANGE', `${model.name}: span of layer ${Math.floor(i / c.nHeads)} head ${i % c.nHeads} is ${s[i]}, must be at least 1`);
      }
      this.spans = s;
    }
    this.kvHook = options.kvCache;
    if (options.int8Cache && (options.kvCache || options.spans)) throw new LowbitError('E_ARG', `${model.name}: int8Cache runs its own kernel; it does not take kvCache or spans`);
    const kvDim = c.nKvHeads * c.headDim;
    const homes = Array.from({ length: c.nLayers }, (_, l) => model.kernelsOf(l));
    const made: WasmTensor[] = [];
    try {
      for (const k of new Set(homes)) {
        const layers = homes.filter((h) => h === k).length;
        const cacheBytes = layers * ctx * kvDim * (options.int8Cache ? 1 : 4);
        const shard: KvShard = { k, keyCache: k.upload(new Uint8Array(cacheBytes)), valueCache: k.upload(new Uint8Array(cacheBytes)) };
        made.push(shard.keyCache, shard.valueCache);
        if (options.int8Cache) {
          const n = layers * ctx * c.nKvHeads;
          shard.scales = [k.upload(new Float32Array(n)), k.upload(new Float32Array(n))];
          made.push(...shard.scales);
        }
        this.kv.push(shard);
      }
    } catch (e) {
      for (const t of made) t.free();
      throw e;
    }
    const slots = new Map<Kernels, number>();
    for (const k of homes) {
      const slot = slots.get(k) ?? 0;
      slots.set(k, slot + 1);
      this.layerKv.push({ shard: this.kv.find((s) => s.k === k) as KvShard, slot });
    }
    caches.register(this, made, this);
    // RoPE "normal" (LLAMA_ROPE_TYPE_NORM): adjacent pairs (2i, 2i+1) of each head rotate by
    // pos·θ^(−2i/ropeDim). GGUF conversions already permute Wq/Wk into this pair order.
    const half = c.ropeDim / 2;
    this.ropeCos = new Float32Array(ctx * half);
    this.ropeSin = new Float32Array(ctx * half);
    for (let p = 0; p < ctx; p++) {
      for (let i = 0; i < half; i++) {
        const a = p * c.ropeTheta ** ((-2 * i) / c.ropeDim);
        this.ropeCos[p * half + i] = Math.cos(a);
        this.ropeSin[p * half + i] = Math.sin(a);
      }
    }
  }

  reset(): void {
    this.pos = 0;
    this.kvHook?.reset?.();
  }

  private readonly cacheView = (layer: number): LayerCache => {
    const c = this.model.config;
    const len = this.ctx * c.nKvHeads * c.headDim;
    const { shard, slot } = this.layerKv[layer];
    const buf = shard.k.memory.buffer;
    return { keys: new Float32Array(buf, shard.keyCache.ptr + slot * len * 4, len), values: new Float32Array(buf, shard.valueCache.ptr + slot * len * 4, len) };
  };

  /** Returns the KV caches' WASM memory now (else when the Session is collected); forward then fails. */
  free(): void {
    caches.unregister(this);
    for (const s of this.kv) for (const t of [s.keyCache, s.valueCache, ...(s.scales ?? [])]) t.free();
  }

  private linear(l: Linear, x: Float32Array, n: number, out?: Float32Array): Float32Array {
    this.hook?.(l.name, x, n, l.cols);
    return l.apply(x, n, out, this.bits);
  }

  /** Layers sharing the input x: ggml ones quantize it once (Linear.applyShared). */
  private linears(ls: Linear[], x: Float32Array, n: number, outs: Float32Array[]): Float32Array[] {
    for (const l of ls) this.hook?.(l.name, x, n, l.cols);
    return Linear.applyShared(ls, x, n, outs, this.bits);
  }

  // Per-forward activations, reused across layers and calls of the same token count (a decode step
  // allocated ~10 arrays per layer; the collector showed up at ~5% of a 1B token).
  private bufs = new Map<string, Float32Array>();
  private buf(name: string, size: number): Float32Array {
    let b = this.bufs.get(name);
    if (b?.length !== size) {
      b = new Float32Array(size);
      this.bufs.set(name, b);
    }
    return b;
  }

  private rope(v: Float32Array, n: number, heads: number): void {
    const { headDim, ropeDim } = this.model.config;
    const half = ropeDim / 2;
    for (let t = 0; t < n; t++) {
      const p = (this.pos + t) * half;
      for (let h = 0; h < heads; h++) {
        const o = (t * heads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const c = this.ropeCos[p + i];
          const s = this.ropeSin[p + i];
          const a = v[o + 2 * i];
          const b = v[o + 2 * i + 1];
          v[o + 2 * i] = a * c - b * s;
          v[o + 2 * i + 1] = a * s + b * c;
        }
      }
    }
  }

  /**
   * Runs `tokens` at positions pos..pos+n−1 and appends them to the cache. Returns logits
   * [n, vocab] (`logits: 'all'`) or [vocab] for the last token (default).
   */
  forward(tokens: readonly number[], options: { logits?: 'all' | 'last' } = {}): Float32Array {
    const n = this.checkRun(tokens.length);
    const x = this.embedInto(tokens, this.buf('x', n * this.model.config.dim));
    this.blocks(x, n, 0, this.model.config.nLayers);
    this.pos += n;
    return this.head(x, n, options);
  }

  /**
   * The residual stream (n, dim) entering block 0 for `tokens` at positions pos..pos+n−1: token
   * embeddings plus learned position embeddings where the model has them. A fresh array.
   *
   * `embed`, `runBlocks` and `head` split `forward` so a caller can keep the stream between blocks
   * (GPTQ's calibration runs each block once per window on cached inputs instead of re-running every
   * block before it); `forward` is exactly embed → runBlocks(0, nLayers) → pos += n → head.
   */
  embed(tokens: readonly number[]): Float32Array {
    const n = this.checkRun(tokens.length);
    return this.embedInto(tokens, new Float32Array(n * this.model.config.dim));
  }

  /**
   * Runs blocks from..to−1 in place on the residual stream x (n, dim) of tokens at positions
   * pos..pos+n−1, writing their keys and values into those blocks' caches. Does not advance pos.
   */
  runBlocks(x: Float32Array, n: number, from: number, to: number): void {
    const { name, config: c } = this.model;
    this.checkRun(n);
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= c.nLayers)) {
      throw new LowbitError('E_RANGE', `${name}: blocks ${from}..${to} are outside 0..${c.nLayers}`);
    }
    if (x.length !== n * c.dim) throw new LowbitError('E_SHAPE', `${name}: residual stream has ${x.length} values, ${n} tokens × dim ${c.dim} need ${n * c.dim}`);
    this.blocks(x, n, from, to);
  }

  // runBlocks without its checks: forward has made them, once per call
  private blocks(x: Float32Array, n: number, from: number, to: number): void {
    const m = this.model;
    const { dim, headDim, nHeads, nKvHeads, hiddenDim } = m.config;
    const kvDim = nKvHeads * headDim;
    const pe = m.weights.positionEmbd;
    const xb = this.buf('xb', n * dim); // (n, dim) normed input of a block
    const scale = 1 / Math.sqrt(headDim);

    for (let l = from; l < to; l++) {
      const w = m.weights.layers[l];
      this.norm(xb, x, w.attnNorm, w.attnNormBias, n);
      // q (n, dim), k and v (n, kvDim)
      const [q, k, v] = this.linears([w.wq, w.wk, w.wv], xb, n, [this.buf('q', n * dim), this.buf('k', n * kvDim), this.buf('v', n * kvDim)]);
      if (!pe) {
        this.rope(q, n, nHeads);
        this.rope(k, n, nKvHeads);
      }
      // (n, dim) attention output, heads concatenated; k and v join the cache at pos first.
      const { shard: kv, slot } = this.layerKv[l];
      const kk = kv.k; // the instance holding this layer's KV cache (m.kernels unless sharded)
      const xa = kv.scales
        ? kk.attentionQ8(q, k, v, kv.keyCache, kv.scales[0], kv.valueCache, kv.scales[1], slot * this.ctx * kvDim, this.pos, n, nHeads, nKvHeads, headDim, scale, this.buf('xa', n * dim))
        : this.spans
        ? kk.attentionSpan(q, k, v, kv.keyCache, kv.valueCache, slot * this.ctx * kvDim, this.pos, n, nHeads, nKvHeads, headDim, scale, this.spans.subarray(l * nHeads, (l + 1) * nHeads), this.buf('xa', n * dim))
        : kk.attention(q, k, v, kv.keyCache, kv.valueCache, slot * this.ctx * kvDim, this.pos, n, nHeads, nKvHeads, headDim, scale, this.buf('xa', n * dim));
      this.kvHook?.afterAttention(l, this.pos, n, q, this.cacheView);
      const o = this.linear(w.wo, xa, n, this.buf('o', n * dim));
      for (let i = 0; i < n * dim; i++) x[i] += o[i];

      this.norm(xb, x, w.ffnNorm, w.ffnNormBias, n);
      const hu = this.buf('u', n * hiddenDim);
      if (w.w1) {
        const [u, g] = this.linears([w.w3, w.w1], xb, n, [hu, this.buf('g', n * hiddenDim)]); // (n, hiddenDim) each
        kk.siluMul(g, u); // SwiGLU: silu(gate)·up (a JS Math.exp loop was ~2% of a 1B token)
      } else {
        const u = this.linear(w.w3, xb, n, hu);
        for (let i = 0; i < n * hiddenDim; i++) u[i] = gelu(u[i]);
      }
      const d = this.linear(w.w2, hu, n, this.buf('d', n * dim));
      for (let i = 0; i < n * dim; i++) x[i] += d[i];
    }
  }

  /** Final norm and LM head on the residual stream x (n, dim): logits [n, vocab] (`'all'`) or [vocab] of the last token. */
  head(x: Float32Array, n: number, options: { logits?: 'all' | 'last' } = {}): Float32Array {
    const m = this.model;
    const dim = m.config.dim;
    if (x.length < n * dim) throw new LowbitError('E_SHAPE', `${m.name}: residual stream has ${x.length} values, ${n} tokens × dim ${dim} need ${n * dim}`);
    const all = options.logits === 'all';
    const rows = all ? n : 1;
    const src = all ? x.subarray(0, n * dim) : x.subarray((n - 1) * dim, n * dim);
    const xf = new Float32Array(rows * dim);
    this.norm(xf, src, m.weights.outputNorm, m.weights.outputNormBias, rows);
    return this.linear(m.weights.output, xf, rows);
  }

  private checkRun(n: number): number {
    if (n === 0) throw new LowbitError('E_ARG', 'forward: no tokens');
    if (this.pos + n > this.ctx) {
      throw new LowbitError('E_RANGE', `${this.model.name}: ${this.pos + n} tokens exceed the context of ${this.ctx}`);
    }
    return n;
  }

  private embedInto(tokens: readonly number[], x: Float32Array): Float32Array {
    const m = this.model;
    const { dim } = m.config;
    const n = tokens.length;
    for (let t = 0; t < n; t++) m.embed(tokens[t], x, t * dim);
    const pe = m.weights.positionEmbd;
    if (pe) for (let i = 0; i < n * dim; i++) x[i] += pe[this.pos * dim + i];
    return x;
  }

  private norm(out: Float32Array, src: Float32Array, w: Float32Array, b: Float32Array | undefined, rows: number): void {
    const c = this.model.config;
    if (c.variant?.norm === 'layer') layernorm(out, src, w, b as Float32Array, c.dim, rows, c.normEps);
    else rmsnorm(out, src, w, c.dim, rows, c.normEps);
  }
}
