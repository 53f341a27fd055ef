// The runtime behind a worker (browsers: heavy work off the page's main thread; Node: off the event
// loop), through comlink. `RuntimeApi` mirrors the main-thread functions; callbacks (progress, tokens)
// cross as comlink proxies. In the worker: `exposeRuntime()`; on the caller's side: `wrapRuntime(worker)`
// (browsers: `createRuntimeWorker()` from `@lowbit/runtime/browser` does both halves).
import { type Endpoint, type Remote, expose, proxy, transfer, transferHandlers, wrap } from 'comlink';
import { type KernelPool, type KernelVariant, type Kernels, LowbitError, type ThreadedVariant, type VariantRequest, createKernelPool, loadKernels } from '@lowbit/kernels';
import { type ByteSource, bytesSource } from './byte-source.js';
import { nodeFiles } from './file-system.js';
import { type GenerateOptions, type GenerateResult, generate } from './generate.js';
import { CompressedKvCache, type KvCacheStats, type KvCompressionOptions } from './kv-cache.js';
import { type LlamaConfig, type DecoderModel, loadModel } from './model.js';
import { type PerplexityOptions, type PerplexityResult, perplexity } from './perplexity.js';
import { loadQuantizedSafetensors } from './quantized-safetensors.js';

export interface RuntimeLoadOptions {
  /** Shown in error messages (default: the path or URL, or `<bytes>`). */
  name?: string;
  /** Kernel build (default 'auto': relaxed SIMD where it works, else SIMD, else scalar). */
  variant?: VariantRequest;
  /**
   * Threads for every matmul, this worker's included (default 1): a KernelPool of workers on one
   * shared WebAssembly memory. Browsers share memory only on cross-origin isolated pages.
   */
  threads?: number;
}

export interface RuntimeInfo {
  model: string;
  config: LlamaConfig;
  /** The kernel build the worker got. */
  kernels: KernelVariant | ThreadedVariant;
}

/**
 * What a request may change in attention, as plain data: a KvCacheHook object cannot cross to a
 * worker, so the worker builds the CompressedKvCache itself from `kvCache`'s settings.
 */
export interface WorkerAttentionOptions {
  /** A compressed KV cache (int8/int4/fp16, MiniCache: `{ bits: 8, minicache: {} }`), as `new CompressedKvCache(config, ctx, kvCache)`. */
  kvCache?: KvCompressionOptions;
  /** Attention spans, nLayers × nHeads (Session's `spans`; calibrateSpans, learnSpans). */
  spans?: Int32Array | readonly number[];
}

export type WorkerPerplexityOptions = Pick<PerplexityOptions, 'ctx' | 'maxWindows' | 'bits' | 'decode' | 'int8Cache'> & WorkerAttentionOptions;
export type WorkerGenerateOptions = Omit<GenerateOptions, 'onToken' | 'kvCache' | 'spans'> & WorkerAttentionOptions;

/** The stats of the compressed cache a request ran with (CompressedKvCache.stats()), beside the usual result. */
export interface WithKvStats {
  kvCache?: KvCacheStats;
}

export interface RuntimeApi {
  /**
   * A GGUF by URL (http, https, blob, data; in browsers also relative to the worker's location), by
   * path or `file:` URL (Node), or its bytes (`transferBytes(bytes)` moves rather than copies them
   * into the worker). A safetensors model lowbit wrote loads the same ways (told apart by its
   * bytes, or a path's `.safetensors`): that is how a nested any-precision model (`lowbit anyprec
   * --out ap.safetensors`) reaches a worker, whose `generate({ bits })` / `perplexity({ bits })`
   * then pick the width per request.
   */
  load(source: string | Uint8Array | ArrayBuffer, options?: RuntimeLoadOptions): Promise<LlamaConfig>;
  info(): RuntimeInfo;
  /** Frees the model's WebAssembly memory and stops its pool threads. */
  unload(): Promise<void>;
  encode(text: string, bos?: boolean): number[];
  decode(ids: number[]): string;
  /** Resolves after every onProgress call has run on the caller's side. */
  perplexity(text: string, options?: WorkerPerplexityOptions, onProgress?: (done: number, total: number) => void): Promise<PerplexityResult & WithKvStats>;
  /** Resolves after every onToken call has run on the caller's side. */
  generate(prompt: string, options?: WorkerGenerateOptions, onToken?: (id: number, text: string) => void): Promise<GenerateResult & WithKvStats>;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

/** A path for loadModel to open (and close) itself, or the fetched bytes. */
async function modelSource(source: string | Uint8Array | ArrayBuffer, name?: string): Promise<string | ByteSource> {
  if (typeof source !== 'string') return bytesSource(source instanceof Uint8Array ? source : new Uint8Array(source), name ?? '<bytes>');
  if (isNode && /^file:/i.test(source)) return nodeFiles(source).fileURLToPath(source);
  if (isNode && !/^(https?|blob|data):/i.test(source)) return source;
  // A worker's relative URLs resolve against its own script, as fetch() inside it would.
  const url = new URL(source, (globalThis as { location?: { href: string } }).location?.href);
  let bytes: ArrayBuffer;
  try {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    bytes = await r.arrayBuffer();
  } catch (e) {
    throw new LowbitError('E_IO', `${url.href}: cannot fetch (${(e as Error).message})`, { cause: e });
  }
  return bytesSource(new Uint8Array(bytes), name ?? url.href);
}

/**
 * A model file lowbit wrote as safetensors (`lowbit quantize --out x.safetensors`, `lowbit anyprec`:
 * nested any-precision layers travel only in this container) rather than GGUF: a path by its
 * extension, bytes by their first 9 (no GGUF magic, a u64 header length, then the JSON's "{").
 */
async function isSafetensors(src: string | ByteSource): Promise<boolean> {
  if (typeof src === 'string') return /\.safetensors$/i.test(src);
  if (src.size < 9) return false;
  const head = await src.read(0, 9);
  const gguf = head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46;
  return !gguf && head[8] === 0x7b;
}

async function openPool(threads: number, variant: VariantRequest = 'auto'): Promise<KernelPool> {
  if (!isNode && !(globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated) {
    throw new LowbitError(
      'E_UNSUPPORTED',
      `threads: ${threads} needs a cross-origin isolated page (headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp): only there do browsers share WebAssembly memory between workers`,
    );
  }
  if (variant === 'scalar') throw new LowbitError('E_ARG', `threads: ${threads} runs the relaxed or simd build, not scalar`);
  return createKernelPool({ threads, variant: variant === 'auto' ? undefined : `${variant}-threads` });
}

const heldModels = new WeakMap<object, () => DecoderModel>();

/**
 * The model a `createRuntimeApi()` object holds, for methods served beside the API in the same worker
 * (`exposeRuntime(endpoint, extend)`): quantizing it in place, saving it.
 */
export function runtimeModel(api: RuntimeApi): DecoderModel {
  const get = heldModels.get(api);
  if (!get) throw new LowbitError('E_ARG', 'runtimeModel: the object was not made by createRuntimeApi()');
  return get();
}

/** The API over one model held in this thread. */
export function createRuntimeApi(): RuntimeApi {
  let model: DecoderModel | undefined;
  let pool: KernelPool | undefined;
  const need = () => {
    if (!model) throw new LowbitError('E_MISSING', 'no model loaded: call load() first');
    return model;
  };
  const unload = async () => {
    model?.free();
    await pool?.close();
    model = undefined;
    pool = undefined;
  };
  const api: RuntimeApi = {
    async load(source, options = {}) {
      const nextPool = (options.threads ?? 1) > 1 ? await openPool(options.threads!, options.variant) : undefined;
      let next: DecoderModel;
      try {
        const kernels: Kernels | undefined = nextPool ?? (options.variant ? await loadKernels({ variant: options.variant }) : undefined);
        const src = await modelSource(source, options.name);
        try {
          next = (await isSafetensors(src)) ? await loadQuantizedSafetensors(src, { kernels }) : await loadModel(src, { kernels });
        } finally {
          // fetched or transferred bytes: the model has what it needs; let the file's buffer go
          if (typeof src !== 'string') await src.close();
        }
      } catch (e) {
        await nextPool?.close();
        throw e;
      }
      // the old model stays usable until the new one has loaded
      await unload();
      model = next;
      pool = nextPool;
      return model.config;
    },
    info: () => ({ model: need().name, config: need().config, kernels: need().kernels.variant }),
    unload,
    encode: (text, bos = true) => need().tokenizer.encode(text, { bos }),
    decode: (ids) => need().tokenizer.decode(ids),
    async perplexity(text, options = {}, onProgress) {
      const progress = inOrder(onProgress);
      const m = need();
      const kv = kvCacheFor(m, options.ctx ?? 256, options.kvCache);
      const r = perplexity(m, text, { ...options, kvCache: kv, spans: spansFor(options.spans), onProgress: progress.call });
      await progress.settled();
      return kv ? { ...r, kvCache: kv.stats() } : r;
    },
    async generate(prompt, options = {}, onToken) {
      const tokens = inOrder(onToken);
      const m = need();
      // generate's session is at most the context length long: a cache of that many rows fits any request
      const kv = kvCacheFor(m, m.config.contextLength, options.kvCache);
      const r = generate(m, prompt, { ...options, kvCache: kv, spans: spansFor(options.spans), onToken: tokens.call });
      await tokens.settled();
      return kv ? { ...r, kvCache: kv.stats() } : r;
    },
  };
  heldModels.set(api, need);
  return api;
}

function kvCacheFor(model: DecoderModel, ctx: number, options?: KvCompressionOptions): CompressedKvCache | undefined {
  return options === undefined ? undefined : new CompressedKvCache(model.config, ctx, options);
}

/** Spans as the Session takes them; a plain array (what JSON or a page may hold) is copied into one. */
function spansFor(spans?: Int32Array | readonly number[]): Int32Array | undefined {
  if (spans === undefined || spans instanceof Int32Array) return spans;
  if (!Array.isArray(spans)) throw new LowbitError('E_ARG', 'worker: spans must be an Int32Array or an array of integers');
  for (const [i, z] of spans.entries()) {
    if (!Number.isInteger(z) || z < 1 || z > 0x7fffffff) throw new LowbitError('E_RANGE', `worker: span ${i} is ${z}, not an integer in 1..2^31−1`);
  }
  return Int32Array.from(spans);
}

/**
 * Calls a callback without waiting for it. A comlink proxy's calls travel on its own MessagePort,
 * not the one the result goes back on, so the caller could see the result before the last tokens;
 * one port keeps order, so once the last call has answered, every earlier one has run.
 */
function inOrder<A extends unknown[]>(fn?: (...a: A) => unknown): { call?: (...a: A) => void; settled(): Promise<void> } {
  if (!fn) return { settled: async () => {} };
  let last: Promise<unknown> = Promise.resolve();
  let failed: { error: unknown } | undefined;
  return {
    call: (...a) => {
      last = Promise.resolve(fn(...a)).catch((error) => {
        failed ??= { error };
      });
    },
    async settled() {
      await last;
      if (failed) throw failed.error;
    },
  };
}

/** Node's MessagePort/Worker speak `on`/`off`; comlink wants addEventListener with `{ data }` events. */
export function nodeEndpoint(port: { postMessage(m: unknown, t?: never): void; on(e: 'message', f: (d: unknown) => void): unknown; off(e: 'message', f: (d: unknown) => void): unknown }): Endpoint {
  const listeners = new WeakMap<object, (d: unknown) => void>();
  return {
    postMessage: (m, t) => port.postMessage(m, t as never),
    addEventListener: (_, l) => {
      const f = (data: unknown) => (typeof l === 'function' ? l({ data } as MessageEvent) : l.handleEvent({ data } as MessageEvent));
      listeners.set(l, f);
      port.on('message', f);
    },
    removeEventListener: (_, l) => {
      const f = listeners.get(l);
      if (f) port.off('message', f);
    },
  };
}

type ThrowHandler = { canHandle(v: unknown): boolean; serialize(v: { value: unknown }): [{ value: Record<string, unknown> }, Transferable[]]; deserialize(s: unknown): unknown };
const keepsCode = Symbol('lowbit keeps error codes');

/**
 * comlink sends a thrown Error as { message, name, stack } and the caller's side rebuilds it with
 * Object.assign, so adding `code` here is enough for `isLowbitError(e)` and `e.code` to work on the
 * other side, whatever comlink copy it runs.
 */
function sendErrorCodes(): void {
  const base = transferHandlers.get('throw') as unknown as ThrowHandler & { [keepsCode]?: true };
  if (base[keepsCode]) return;
  const handler: ThrowHandler & { [keepsCode]: true } = {
    [keepsCode]: true,
    canHandle: (v) => base.canHandle(v),
    serialize(v) {
      const [s, t] = base.serialize(v);
      const code = (v.value as { code?: unknown } | null)?.code;
      if (v.value instanceof Error && typeof code === 'string') s.value.code = code;
      return [s, t];
    },
    deserialize: (s) => base.deserialize(s),
  };
  transferHandlers.set('throw', handler as never);
}

/**
 * In a worker: serve the runtime API on `endpoint` (default: the worker's global scope). `extend`
 * adds methods served beside it (an app's own heavy work on the same model: `runtimeModel(api)`).
 */
export function exposeRuntime(endpoint?: Endpoint, extend?: (api: RuntimeApi) => object): void {
  sendErrorCodes();
  const api = createRuntimeApi();
  expose(extend ? Object.assign(api, extend(api)) : api, endpoint);
}

/** On the caller's side: the runtime API of a worker that called exposeRuntime. */
export function wrapRuntime(endpoint: Endpoint): Remote<RuntimeApi> {
  return wrap<RuntimeApi>(endpoint);
}

/** Wraps a callback so it can be passed to a remote API call (progress, tokens). */
export const callback = proxy;

/**
 * Marks buffers to move instead of copy: `api.load(transferBytes(bytes))`. Use this one rather than
 * a second comlink copy's `transfer`: the mark lives in the comlink instance that sends the call.
 */
export function transferBytes<T extends Uint8Array | ArrayBuffer>(bytes: T): T {
  const buffer = bytes instanceof Uint8Array ? bytes.buffer : bytes;
  // shared memory crosses without a copy anyway and cannot be transferred
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) return bytes;
  return transfer(bytes, [buffer as ArrayBuffer]);
}
