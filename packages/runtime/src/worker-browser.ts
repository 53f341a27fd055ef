// The page's side of the runtime worker (`@lowbit/runtime/browser`): starts the worker and wraps it
// with comlink. Only comlink and these few lines land in the page's bundle; the runtime, the
// kernels' loader and the .wasm builds go into the worker's.
import type { RemoteObject } from 'comlink';
import { LowbitError } from '@lowbit/kernels';
import { type RuntimeApi, wrapRuntime } from './worker-api.js';

export { callback, transferBytes, type RuntimeApi, type RuntimeInfo, type RuntimeLoadOptions, type WorkerAttentionOptions, type WorkerGenerateOptions, type WorkerPerplexityOptions, type WithKvStats } from './worker-api.js';

export interface RuntimeWorkerOptions {
  /** The worker script, for pages that host it themselves (default: the one bundled with this module). */
  url?: string | URL;
}

export interface RuntimeWorker {
  /** The runtime API; every call returns a promise. */
  api: RemoteObject<RuntimeApi>;
  worker: Worker;
  /** Stops the worker (its model and WebAssembly memory go with it). */
  terminate(): void;
}

const METHODS = ['load', 'info', 'unload', 'encode', 'decode', 'perplexity', 'generate'] as const;
// every RuntimeApi method is listed above (a compile error otherwise)
const allListed: Exclude<keyof RuntimeApi, (typeof METHODS)[number]> extends never ? true : never = true;
void allListed;

/** A dedicated module worker serving the runtime API. */
export function createRuntimeWorker(options: RuntimeWorkerOptions = {}): RuntimeWorker {
  // The literal `new Worker(new URL(...), { type: 'module' })` is the form bundlers (Vite, webpack)
  // recognize to bundle the worker script with its imports.
  const worker = options.url
    ? new Worker(options.url, { type: 'module', name: 'lowbit-runtime' })
    : new Worker(new URL('./worker-browser-entry.js', import.meta.url), { type: 'module', name: 'lowbit-runtime' });
  // A worker whose script does not load (404, blocked by the page's headers) or throws while it
  // starts never answers, and comlink would wait forever: such a failure rejects every call instead.
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener(
      'error',
      (e) => {
        const why = (e as ErrorEvent).message || 'its script did not load (check the URL the bundler emitted and the server)';
        reject(new LowbitError('E_IO', `the lowbit runtime worker failed: ${why}`));
      },
      { once: true },
    );
  });
  failed.catch(() => {}); // a failure with no call waiting is not an unhandled rejection
  const remote = wrapRuntime(worker);
  const api = Object.fromEntries(
    METHODS.map((m) => [m, (...args: unknown[]) => Promise.race([(remote[m] as (...a: unknown[]) => Promise<unknown>)(...args), failed])]),
  ) as unknown as RemoteObject<RuntimeApi>;
  return { api, worker, terminate: () => worker.terminate() };
}
