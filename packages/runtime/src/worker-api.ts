// The runtime behind a worker (browsers: heavy work off the page's main thread; Node: off the event
// loop), through comlink. `RuntimeApi` mirrors the main-thread functions; callbacks (progress, tokens)
// cross as comlink proxies. In the worker: `exposeRuntime()`; on the caller's side: `wrapRuntime(worker)`.
import { type Endpoint, type Remote, expose, proxy, wrap } from 'comlink';
import { LowbitError } from '@lowbit/kernels';
import { bytesSource } from './byte-source.js';
import { type GenerateOptions, type GenerateResult, generate } from './generate.js';
import { type LlamaConfig, type LlamaModel, loadModel } from './model.js';
import { type PerplexityResult, perplexity } from './perplexity.js';

export interface RuntimeApi {
  /** A GGUF path (Node) or its bytes (anywhere). */
  load(source: string | Uint8Array, name?: string): Promise<LlamaConfig>;
  encode(text: string, bos?: boolean): number[];
  decode(ids: number[]): string;
  perplexity(text: string, options?: { ctx?: number; maxWindows?: number }, onProgress?: (done: number, total: number) => void): PerplexityResult;
  generate(prompt: string, options?: Omit<GenerateOptions, 'onToken'>, onToken?: (id: number, text: string) => void): GenerateResult;
}

/** The API over one model held in this thread. */
export function createRuntimeApi(): RuntimeApi {
  let model: LlamaModel | undefined;
  const need = () => {
    if (!model) throw new LowbitError('E_MISSING', 'no model loaded: call load() first');
    return model;
  };
  return {
    async load(source, name) {
      model?.free();
      model = await loadModel(typeof source === 'string' ? source : bytesSource(source, name ?? '<bytes>'));
      return model.config;
    },
    encode: (text, bos = true) => need().tokenizer.encode(text, { bos }),
    decode: (ids) => need().tokenizer.decode(ids),
    perplexity: (text, options = {}, onProgress) => perplexity(need(), text, { ...options, onProgress }),
    generate: (prompt, options = {}, onToken) => generate(need(), prompt, { ...options, onToken }),
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

/** In a worker: serve the runtime API on `endpoint` (default: the worker's global scope). */
export function exposeRuntime(endpoint?: Endpoint): void {
  expose(createRuntimeApi(), endpoint);
}

/** On the caller's side: the runtime API of a worker that called exposeRuntime. */
export function wrapRuntime(endpoint: Endpoint): Remote<RuntimeApi> {
  return wrap<RuntimeApi>(endpoint);
}

/** Wraps a callback so it can be passed to a remote API call (progress, tokens). */
export const callback = proxy;
