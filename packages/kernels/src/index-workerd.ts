// workerd / Cloudflare Workers: no file system and no fetch of package files, but .wasm modules
// are imported as compiled WebAssembly.Module objects (module type CompiledWasm in workerd config,
// the default for .wasm in wrangler).
// @ts-expect-error: resolved by workerd's module registry, not by TypeScript
import relaxedModule from '../build/lowbit-relaxed.wasm';
// @ts-expect-error: see above
import scalarModule from '../build/lowbit-scalar.wasm';
// @ts-expect-error: see above
import simdModule from '../build/lowbit-simd.wasm';
import { LowbitError } from './errors.js';
import type { KernelVariant } from './kernels.js';
import type { KernelPool, PoolOptions } from './pool.js';
import { makeLoader } from './select.js';

export * from './common.js';
export { KernelPool, type PoolOptions } from './pool.js';

const modules: Record<KernelVariant, WebAssembly.Module> = {
  relaxed: relaxedModule as WebAssembly.Module,
  simd: simdModule as WebAssembly.Module,
  scalar: scalarModule as WebAssembly.Module,
};

export function kernelModule(variant: KernelVariant): Promise<WebAssembly.Module> {
  // Instantiating (not compiling) is where an unsupported build fails in workerd.
  return Promise.resolve(modules[variant]);
}

/** Loads (once per variant request) the kernels; `createKernels` gives a fresh instance with its own memory. */
export const { loadKernels, createKernels } = makeLoader(kernelModule);

/**
 * The same export as the Node and browser entries so code written against them (the runtime's
 * worker API) loads in workerd; a Worker isolate has one thread and no Web Workers to spread a pool over.
 */
export function createKernelPool(_options: PoolOptions = {}): Promise<KernelPool> {
  return Promise.reject(new LowbitError('E_UNSUPPORTED', 'createKernelPool: workerd runs one thread per isolate (no Web Workers, no shared WebAssembly memory between threads); use loadKernels()'));
}
