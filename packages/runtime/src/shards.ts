// Models whose weights exceed one WebAssembly memory. wasm32 addresses at most 4 GiB, and the engines
// lowbit targets do not run Memory64 by default (Node 20 refuses a memory64 module without
// --experimental-wasm-memory64; AssemblyScript 0.28 emits wasm32 only), so a 7B-class Q8_0 model
// (~7 GB) is spread over several kernel instances, each with its own memory. Every matrix lives in
// one instance and runs there; a layer's attention and KV cache run in the instance holding its
// attn_k. Activations cross between instances through JS arrays, which every kernel call copies
// anyway (a few KB per token), so a sharded model computes exactly what one instance would.
import { KernelPool, type KernelVariant, type Kernels, LowbitError, type ThreadedVariant } from '@lowbit/kernels';
import { type TensorType, isKQuantType } from './ggml-types.js';

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
const TILED_GROWTH: Partial<Record<TensorType, number>> = { Q8_0: 36 / 34, Q4_0: 20 / 18, Q4_1: 24 / 20 };

/**
 * Bytes a GGUF matrix of `type` takes resident once loaded: F16/BF16 (and K-quants loaded as f32)
 * become f32, ggml blocks are tiled, K-quants re-quantized to Q8_0 take 34 bytes per 32, the rest
 * stay as stored. An estimate within a few percent, for planning only.
 */
export function residentBytes(type: TensorType, elements: number, storedBytes: number, kquants: 'packed' | 'f32' | 'q8_0'): number {
  if (type === 'F16' || type === 'BF16' || (isKQuantType(type) && (kquants === 'f32' || type === 'Q8_K'))) return elements * 4;
  if (isKQuantType(type) && kquants === 'q8_0') return Math.ceil((elements / 32) * 34);
  return Math.ceil(storedBytes * (TILED_GROWTH[type] ?? 1));
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
