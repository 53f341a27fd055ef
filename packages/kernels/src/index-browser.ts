import type { KernelVariant } from './kernels.js';
import { makeLoader } from './select.js';

export * from './common.js';

// Literal `new URL(..., import.meta.url)` per build so bundlers (Vite, webpack, esbuild) see and
// emit each .wasm as an asset.
const urls: Record<KernelVariant, () => URL> = {
  relaxed: () => new URL('../build/lowbit-relaxed.wasm', import.meta.url),
  simd: () => new URL('../build/lowbit-simd.wasm', import.meta.url),
  scalar: () => new URL('../build/lowbit-scalar.wasm', import.meta.url),
};

const cache = new Map<KernelVariant, Promise<WebAssembly.Module>>();

export function kernelModule(variant: KernelVariant): Promise<WebAssembly.Module> {
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
