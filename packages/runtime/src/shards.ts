// Models whose weights exceed one WebAssembly memory. wasm32 addresses at most 4 GiB, and the engines
// lowbit targets do not run Memory64 by default (Node 20 refuses a memory64 module without
// --experimental-wasm-memory64; AssemblyScript 0.28 emits wasm32 only), so a 7B-class Q8_0 model
// (~7 GB) is spread over several kernel instances, each with its own memory. Every matrix lives in
// one instance and runs there; a layer's attention and KV cache run in the instance holding its
// attn_k. Activations cross between instances through JS arrays, which every kernel call copies
// anyway (a few KB per token), so a sharded model computes exactly what one instance would.
import { KernelPool, type KernelVariant, type Kernels, LowbitError, type ThreadedVariant, createKernelPool, createKernels } from '@lowbit/kernels';
import { LOWBIT_TYPES, type LowbitIntParams, type LowbitParams, type TensorType, isKQuantType, isLowbitType } from './ggml-types.js';
import type { SafetensorsTensorInfo } from './safetensors.js';
import type { LlamaConfig } from './llama-config.js';

/**
 * Default per-instance cap on resident weight bytes. Below wasm32's 4 GiB so that each instance
 * keeps room for the KV caches of its layers and per-call scratch: a 7B-class model (32 layers,
 * kvDim 4096) at 3 GiB goes on three instances of ~2.4 GB, whose ~11 layers' f32 KV cache at a
 * 2048-token context takes ~0.7 GB more.
 */
export const DEFAULT_MAX_INSTANCE_BYTES = 3 * 2 ** 30;

/** Largest cap accepted: the wasm32 heap limit (kernels' heap.ts). */
const WASM32_BYTES = 4 * 2 ** 30 - 65536;

export interface ShardItem {
  name: string;
  /** Bytes the item keeps resident in its instance's memory. */
  bytes: number;
}

/** The number of instances greedy contiguous packing with `limit` bytes per instance needs. */
function greedyCount(items: readonly ShardItem[], limit: number): number {
  let n = 1;
  let used = 0;
  for (const it of items) {
    if (used + it.bytes > limit) {
      n++;
      used = 0;
    }
    used += it.bytes;
  }
  return n;
}

/**
 * The instance index of each item (kept in load order, so each instance holds a run of consecutive
 * layers): the fewest instances that hold every item under `maxBytes` each, with the largest
 * instance as small as that count allows (balanced, so every instance keeps similar room for its
 * KV caches). E_RANGE naming the tensor when one item alone exceeds the cap.
 */
export function planShards(items: readonly ShardItem[], maxBytes: number, where: string): number[] {
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0 && maxBytes <= WASM32_BYTES)) {
    throw new LowbitError('E_ARG', `${where}: maxInstanceBytes ${maxBytes} is not an integer in [1, ${WASM32_BYTES}] (one WebAssembly memory holds at most 4 GiB)`);
  }
  let biggest = 0;
  for (const it of items) {
    if (!(Number.isSafeInteger(it.bytes) && it.bytes >= 0)) throw new LowbitError('E_ARG', `${where}: tensor ${it.name} has ${it.bytes} bytes, not a byte count`);
    if (it.bytes > maxBytes) {
      throw new LowbitError('E_RANGE', `${where}: tensor ${it.name} needs ${it.bytes} bytes of WebAssembly memory, more than maxInstanceBytes = ${maxBytes}; one tensor cannot be split over kernel instances (raise maxInstanceBytes, at most ${WASM32_BYTES}, or load a smaller type)`);
    }
    biggest = Math.max(biggest, it.bytes);
  }
  const n = greedyCount(items, maxBytes);
  let limit = maxBytes;
  if (n > 1) {
    // smallest per-instance limit that still needs only n instances (the count falls as the limit grows)
    let lo = biggest;
    let hi = maxBytes;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (greedyCount(items, mid) <= n) hi = mid;
      else lo = mid + 1;
    }
    limit = hi;
  }
  const out: number[] = [];
  let at = 0;
  let used = 0;
  for (const it of items) {
    if (used + it.bytes > limit) {
      at++;
      used = 0;
    }
    used += it.bytes;
    out.push(at);
  }
  return out;
}

/** Tiled (prepared) size over stored size of the ggml block types (f32 scales instead of f16). */
// Q5_0 / Q5_1 / IQ4_NL run as Q8_0 tiles (Q5_1 with an f32 m per block)
const TILED_GROWTH: Partial<Record<TensorType, number>> = { Q8_0: 36 / 34, Q4_0: 20 / 18, Q4_1: 24 / 20, Q5_0: 36 / 22, Q5_1: 40 / 24, IQ4_NL: 36 / 18 };

/** Heap allocations are aligned: each resident plane of a layer may take up to this much more. */
const ALLOC_SLACK = 64;

/**
 * Bytes a GGUF matrix of `type` takes resident once loaded: F16/BF16 (and K-quants loaded as f32)
 * become f32, ggml blocks are tiled, K-quants re-quantized to Q8_0 take 34 bytes per 32, lowbit
 * types as the layer they are repacked into (`lowbitResidentBytes`), the rest stay as stored. An
 * estimate for planning, never below what loading really takes for the repacked types.
 */
export function residentBytes(type: TensorType, elements: number, storedBytes: number, kquants: 'packed' | 'f32' | 'q8_0', lowbit?: { shape: readonly number[]; params?: LowbitParams; mxfp4Tiles?: boolean }): number {
  // MXFP4 (ggml's or LB_MXFP4) in rows of whole blocks, rows in fours, on a build with MXFP4 tiles
  // (Kernels.supportsMxfp4Tiles): 80 bytes per four rows' block (elsewhere the Q8_0 form below)
  if ((type === 'MXFP4' || type === 'LB_MXFP4') && lowbit?.mxfp4Tiles && lowbit.shape.length === 2 && lowbit.shape[0] % 32 === 0 && lowbit.shape[1] % 4 === 0) {
    return (lowbit.shape[1] * lowbit.shape[0] * 20) / 32 + ALLOC_SLACK;
  }
  if (type === 'MXFP4' && lowbit && lowbit.shape.length === 2) return lowbitResidentBytes('LB_MXFP4', lowbit.shape[1], lowbit.shape[0], undefined);
  if (type === 'F16' || type === 'BF16' || (isKQuantType(type) && (kquants === 'f32' || type === 'Q8_K'))) return elements * 4;
  if (isKQuantType(type) && kquants === 'q8_0') return Math.ceil((elements / 32) * 34);
  if (isLowbitType(type) && lowbit && lowbit.shape.length === 2) return Math.max(storedBytes, lowbitResidentBytes(type, lowbit.shape[1], lowbit.shape[0], lowbit.params, lowbit.mxfp4Tiles));
  return Math.ceil(storedBytes * (TILED_GROWTH[type] ?? 1));
}

/**
 * Upper bound on the WASM bytes of a lowbit layer of `rows` × `cols` as packed-linear.ts loads it:
 * INT4 of whole 32-groups (and ≤ 4 bits in rows of a partial 32-block) takes the int4 kernel's
 * layout, f32 scales (and zeros), or Q4_0 tiles (and an f32 term per group) on whole blocks; per-ic / group-rows zero points
 * decode to f32; the other INT widths repack to Q4_0 tiles (≤ 3 bits), Q5_0 tiles (symmetric INT5, relaxed builds) or Q8_0 tiles; MX rows to Q8_0
 * tiles, FP6 E3M2 with a second Q4_0 plane and FP8 with a second Q8_0 plane; an act-order g_idx adds
 * its gather. A layer left packed in JS (no repack) takes less. Tiles: 20 (Q4_0) or 36 (Q8_0) bytes
 * per 32 weights, rows padded to whole 32-blocks.
 */
function lowbitResidentBytes(type: TensorType, rows: number, cols: number, params: LowbitParams | undefined, q5Tiles = false): number {
  const blocks = rows * Math.ceil(cols / 32);
  const info = LOWBIT_TYPES[type as keyof typeof LOWBIT_TYPES];
  if (!info || info.kind === 'anyprec') return 0; // held as stored (residentBytes takes the max)
  if (info.kind === 'mx') {
    const second = info.mx === 'mxfp6_e3m2' ? 20 : info.mx === 'mxfp8_e4m3' || info.mx === 'mxfp8_e5m2' ? 36 : 0;
    return blocks * (36 + second) + (second ? 2 : 1) * ALLOC_SLACK + cols * 4;
  }
  const p = params as LowbitIntParams | undefined;
  if (!p) return blocks * 36 + ALLOC_SLACK;
  const gather = p.g_idx ? cols * 4 + ALLOC_SLACK : 0;
  if (!p.symmetric && (p.granularity === 'per-ic' || p.granularity === 'group-rows')) return rows * cols * 4 + ALLOC_SLACK;
  const group = p.granularity === 'group-cols' ? p.group : Math.ceil(cols / 32) * 32;
  // INT4 of whole 32-groups, and ≤ 4 bits in rows of a partial last block: the int4 kernel's layout;
  // INT4 on whole blocks runs on Q4_0 tiles (int4Q4Weight) with, for zero points other than 8, an f32
  // term per group, which cannot be told from here without reading the zeros: the larger of the two
  if (info.bits <= 4 && group % 32 === 0 && (info.bits === 4 || cols % 32 !== 0)) {
    const groups = rows * Math.ceil(cols / group);
    const int4 = rows * Math.ceil(cols / 2) + groups * 4 * (p.symmetric ? 1 : 2) + 3 * ALLOC_SLACK + gather;
    return cols % 32 === 0 ? Math.max(int4, blocks * 20 + (p.symmetric ? 0 : groups * 4 + ALLOC_SLACK) + ALLOC_SLACK + gather) : int4;
  }
  const q4 = info.bits <= 3 && group % 32 === 0;
  // symmetric INT5 in rows of whole blocks, rows in fours: the kernels' Q5_0 tiles (24 bytes per 32)
  // on relaxed builds, no act-order (packed-fast.ts intFastWeight)
  const q5 = info.bits === 5 && p.symmetric && !p.g_idx && group % 32 === 0 && cols % 32 === 0 && rows % 4 === 0 && q5Tiles;
  return blocks * (q4 ? 20 : q5 ? 24 : 36) + (cols % 32 ? cols * 4 : 0) + ALLOC_SLACK + gather;
}

/**
 * Kernel instances for a plan: instance 0 is `first` (the model's own kernels); the others are
 * fresh instances of the same build (`create`), so every instance computes bit for bit alike. When
 * `first` is a thread pool, `create` makes a pool of the same size: each shard then has its own
 * workers on its own shared memory (a pool's workers hold one memory; a matmul runs on the pool
 * whose memory holds its weights, the others' workers sleep in Atomics.wait meanwhile).
 */
export async function shardInstances(first: Kernels, count: number, create: (variant: KernelVariant | ThreadedVariant) => Promise<Kernels>, where: string): Promise<Kernels[]> {
  const out = [first];
  try {
    for (let i = 1; i < count; i++) {
      const k = await create(first.variant);
      out.push(k);
      if (k.variant !== first.variant) throw new LowbitError('E_WASM', `${where}: kernel instance ${i} is the ${k.variant} build, the model's first is ${first.variant}`);
    }
  } catch (e) {
    await closeInstances(out.slice(1));
    throw e;
  }
  return out;
}

/** Stops the worker threads of those `instances` that are pools (the others need nothing). */
export async function closeInstances(instances: readonly Kernels[]): Promise<void> {
  await Promise.all(instances.map((k) => (k instanceof KernelPool ? k.close() : undefined)));
}

/**
 * The factory of a sharded model's further instances: the first's kind again (a pool of as many
 * threads, each with its own workers, or a single-thread instance).
 */
function shardFactory(first: Kernels): (variant: KernelVariant | ThreadedVariant) => Promise<Kernels> {
  return (variant) => (first instanceof KernelPool ? createKernelPool({ threads: first.threads, variant: variant as ThreadedVariant }) : createKernels({ variant: variant as KernelVariant }));
}

/** Where a sharded model's matrices and attention run, and the instances the loader started. */
export interface ShardLayout {
  /** The instance of a matrix by its GGUF name (`blk.3.ffn_up.weight`, `output.weight`). */
  kOf(tensor: string): Kernels;
  /** Per layer, the instance of its attention and KV cache: that of its attn_k (or fused attn_qkv). */
  layerKernels: Kernels[];
  /** Instances made here (all but `k`): model.free() stops their pools. */
  owned: Kernels[];
}

/**
 * One planner for every loader (GGUF, Hugging Face directories, quantized safetensors): `items` are
 * the model's matrices by GGUF name in load order with their resident bytes. null when they fit in
 * `k` under `maxBytes`; otherwise the instances (`k` first, then fresh ones of its kind) and where
 * each matrix goes. A matrix larger than `maxBytes` alone: E_RANGE naming it and the cap.
 */
export async function planLayout(k: Kernels, items: readonly ShardItem[], nLayers: number, maxBytes: number | undefined, where: string): Promise<ShardLayout | null> {
  const at = planShards(items, maxBytes ?? DEFAULT_MAX_INSTANCE_BYTES, where);
  const count = at.length ? at[at.length - 1] + 1 : 1;
  if (count === 1) return null;
  const ks = await shardInstances(k, count, shardFactory(k), where);
  const byName = new Map(items.map((it, i) => [it.name, ks[at[i]]]));
  // gpt2's Q, K, V are cut from one fused tensor: they go where it went
  const kOf = (name: string) => byName.get(name) ?? byName.get(name.replace(/attn_[qkv]\.weight$/, 'attn_qkv.weight')) ?? k;
  return { kOf, layerKernels: Array.from({ length: nLayers }, (_, l) => kOf(`blk.${l}.attn_k.weight`)), owned: ks.slice(1) };
}

/**
 * Resident bytes of each safetensors layer by its name prefix (`model.layers.3.mlp.up_proj`):
 * float tensors (weights, GPTQ scales) count as f32, which the loaders turn them into; integer ones
 * (GPTQ qweight/qzeros/g_idx, lowbit codes) as stored. Biases stay in JS. An estimate, for planning.
 */
export function safetensorsLayerBytes(tensors: Iterable<SafetensorsTensorInfo>): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of tensors) {
    const dot = t.name.lastIndexOf('.');
    if (dot < 0 || t.name.endsWith('.bias')) continue;
    const float = t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16';
    const bytes = float ? t.shape.reduce((a, b) => a * b, 1) * 4 : t.byteLength;
    const prefix = t.name.slice(0, dot);
    out.set(prefix, (out.get(prefix) ?? 0) + bytes);
  }
  return out;
}

/**
 * The shard layout of a checkpoint (shards.ts): its matrices by GGUF name in load order, sized from
 * their safetensors entries (`hfPrefix` maps a GGUF matrix name to its HF name prefix; absent ones,
 * a tied output, take `tied` bytes). null when one instance holds them.
 */
export async function planSafetensorsLayout(k: Kernels, c: LlamaConfig, tensors: Iterable<SafetensorsTensorInfo>, hfPrefix: (gguf: string) => string, maxBytes: number | undefined, where: string): Promise<ShardLayout | null> {
  const sizes = safetensorsLayerBytes(tensors);
  const items: ShardItem[] = [];
  const add = (gguf: string, elements: number) => items.push({ name: gguf, bytes: sizes.get(hfPrefix(gguf)) ?? elements * 4 });
  const kvDim = c.nKvHeads * c.headDim;
  for (let l = 0; l < c.nLayers; l++) {
    const b = `blk.${l}.`;
    const d = c.dim * c.dim;
    // gpt2's fused Conv1D c_attn is cut into Q, K, V, each a third of it
    const third = c.variant ? (sizes.get(hfPrefix(`${b}attn_qkv.weight`)) ?? 3 * d * 4) / 3 : 0;
    if (c.variant) for (const x of ['attn_q', 'attn_k', 'attn_v']) items.push({ name: `${b}${x}.weight`, bytes: third });
    else {
      add(`${b}attn_q.weight`, d);
      add(`${b}attn_k.weight`, kvDim * c.dim);
      add(`${b}attn_v.weight`, kvDim * c.dim);
    }
    add(`${b}attn_output.weight`, d);
    if (!c.variant) add(`${b}ffn_gate.weight`, c.hiddenDim * c.dim);
    add(`${b}ffn_down.weight`, c.hiddenDim * c.dim);
    add(`${b}ffn_up.weight`, c.hiddenDim * c.dim);
  }
  add('output.weight', c.vocabSize * c.dim);
  return planLayout(k, items, c.nLayers, maxBytes, where);
}

/**
 * Grows each instance's memory once, before any weight is read, to what its matrices will take
 * (their planned bytes, plus `scratch` for the one matrix in flight, plus 1/64 for the planner's
 * estimate and the heap's alignment), instead of a grow per allocation: grown pages cost nothing
 * until touched (the kernel maps them on first write). Never past wasm32's limit; a short estimate
 * only means the heap grows again later.
 */
export function reserveMemory(items: readonly ShardItem[], kOf: (name: string) => Kernels, scratch: number): void {
  const need = new Map<Kernels, number>();
  for (const it of items) {
    const k = kOf(it.name);
    need.set(k, (need.get(k) ?? 0) + it.bytes);
  }
  for (const [k, bytes] of need) {
    const want = Math.min(WASM32_BYTES, k.heap.highWater + Math.ceil(bytes * (1 + 1 / 64)) + scratch + 2 ** 20);
    const have = k.memory.buffer.byteLength;
    if (want > have) {
      try {
        k.memory.grow(Math.ceil((want - have) / 65536));
      } catch {
        // the engine refused the whole reservation at once: the heap grows per allocation as before
      }
    }
  }
}
