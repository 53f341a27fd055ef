// The page's side of the runtime worker (`@lowbit/runtime/browser`): starts the worker and wraps it
// with comlink. Only comlink and this file land in the page's bundle; the runtime, the kernels'
// loader and the .wasm builds go into the worker's.
import type { Remote } from 'comlink';
import { type RuntimeApi, wrapRuntime } from './worker-api.js';

export { callback, transferBytes, type RuntimeApi, type RuntimeInfo, type RuntimeLoadOptions } from './worker-api.js';

export interface RuntimeWorker {
  /** The runtime API; every call returns a promise. */
  api: Remote<RuntimeApi>;
  worker: Worker;
  /** Stops the worker (its model and WebAssembly memory go with it). */
  terminate(): void;
}

/** A dedicated module worker serving the runtime API. */
export function createRuntimeWorker(): RuntimeWorker {
  // The literal `new Worker(new URL(...), { type: 'module' })` is the form bundlers (Vite, webpack,
  // esbuild with plugins) recognize to bundle the worker script with its imports.
  const worker = new Worker(new URL('./worker-browser-entry.js', import.meta.url), { type: 'module', name: 'lowbit-runtime' });
  return { api: wrapRuntime(worker), worker, terminate: () => worker.terminate() };
}
