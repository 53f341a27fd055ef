import type { KernelVariant, ThreadedVariant } from './kernels.js';
import { KernelPool, type PoolOptions, type PoolWorkerData } from './pool.js';
import { makeLoader } from './select.js';

export * from './common.js';
export { KernelPool, type PoolOptions, type PoolWorkerData, type SpawnPoolWorker } from './pool.js';

// Literal `new URL(..., import.meta.url)` per build so bundlers (Vite, webpack, esbuild) see and
// emit each .wasm as an asset.
const urls: Record<KernelVariant | ThreadedVariant, () => URL> = {
  relaxed: () => new URL('../build/lowbit-relaxed.wasm', import.meta.url),
  simd: () => new URL('../build/lowbit-simd.wasm', import.meta.url),
  scalar: () => new URL('../build/lowbit-scalar.wasm', import.meta.url),
  'relaxed-threads': () => new URL('../build/lowbit-relaxed-threads.wasm', import.meta.url),
  'simd-threads': () => new URL('../build/lowbit-simd-threads.wasm', import.meta.url),
};

const cache = new Map<KernelVariant | ThreadedVariant, Promise<WebAssembly.Module>>();

export function kernelModule(variant: KernelVariant | ThreadedVariant): Promise<WebAssembly.Module> {
  let m = cache.get(variant);
  if (!m) {
    m = fetch(urls[variant]()).then(async (r) => {
      if (!r.ok) throw new Error(`fetch ${r.url}: HTTP ${r.status}`);
      return WebAssembly.compile(await r.arrayBuffer());
    });
    cache.set(variant, m);
  }
  return m;
}

/** Loads (once per variant request) the kernels; `createKernels` gives a fresh instance with its own memory. */
export const { loadKernels, createKernels } = makeLoader(kernelModule);

function spawnWebWorker(data: PoolWorkerData): Promise<Worker> {
  // The literal `new Worker(new URL(...), { type: 'module' })` is the form bundlers (Vite,
  // webpack) recognize to bundle the worker script with its imports.
  const w = new Worker(new URL('./pool-worker-browser.js', import.meta.url), { type: 'module' });
  return new Promise((resolve, reject) => {
    w.addEventListener('message', () => resolve(w), { once: true });
    w.addEventListener('error', (e) => reject(new Error(e.message || 'pool worker failed to start')), { once: true });
    w.postMessage(data);
  });
}

/**
 * A pool of `threads` threads sharing one WebAssembly memory, the same methods as Kernels with
 * every matmul split by rows. Browsers block Atomics.wait on the page's main thread and need
 * cross-origin isolation for shared memory: create the pool inside a dedicated worker and expose it
 * to the page with comlink (see README).
 */
export function createKernelPool(options: PoolOptions = {}): Promise<KernelPool> {
  return KernelPool.create(kernelModule, spawnWebWorker, options);
}
