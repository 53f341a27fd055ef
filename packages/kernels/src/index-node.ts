import { readFile } from 'node:fs/promises';
import { setFlagsFromString } from 'node:v8';
import type { KernelVariant, ThreadedVariant } from './kernels.js';
import { KernelPool, type PoolOptions } from './pool.js';
import { spawnNodeWorker } from './pool-node.js';
import { makeLoader } from './select.js';

export * from './common.js';
export { KernelPool, type PoolOptions, type PoolWorkerData, type SpawnPoolWorker } from './pool.js';

// Node 20 ships relaxed SIMD behind a flag; enabling it before the first compile lets the 'auto'
// loader try the relaxed build (and still verify it) without asking users for command-line flags.
// Node 22+ has it on by default, where this is a no-op.
try {
  setFlagsFromString('--experimental-wasm-relaxed-simd');
} catch {
  // A host that refuses V8 flags keeps the plain SIMD build.
}

// V8's baseline tier (Liftoff) in Node 20 miscomputes i32x4.relaxed_dot_i8x16_i7x16_add_s while the
// optimizing tier is right (seen here: first calls wrong, right after tier-up). Compiling only this
// module with Liftoff off makes every call optimized code; the flag is restored right after, so
// other modules in the process are compiled as before. The loader still verifies the result.
async function compile(bytes: Uint8Array<ArrayBuffer>, variant: KernelVariant | ThreadedVariant): Promise<WebAssembly.Module> {
  if (!variant.startsWith('relaxed')) return WebAssembly.compile(bytes);
  let flagged = false;
  try {
    setFlagsFromString('--no-liftoff --no-wasm-lazy-compilation');
    flagged = true;
  } catch {
    // keep Liftoff; relaxedAgrees() decides
  }
  try {
    return new WebAssembly.Module(bytes);
  } finally {
    if (flagged) setFlagsFromString('--liftoff --wasm-lazy-compilation');
  }
}

const cache = new Map<KernelVariant | ThreadedVariant, Promise<WebAssembly.Module>>();

/** The compiled module of one build, read from this package's build/ folder. */
export function kernelModule(variant: KernelVariant | ThreadedVariant): Promise<WebAssembly.Module> {
  let m = cache.get(variant);
  if (!m) {
    m = readFile(new URL(`../build/lowbit-${variant}.wasm`, import.meta.url)).then((b) => compile(new Uint8Array(b), variant));
    cache.set(variant, m);
  }
  return m;
}

/** Loads (once per variant request) the kernels; `createKernels` gives a fresh instance with its own memory. */
export const { loadKernels, createKernels } = makeLoader(kernelModule);

/**
 * A pool of `threads` threads (the caller's included) sharing one WebAssembly memory: the same
 * methods as Kernels, with every matmul split by rows. `await pool.close()` when done.
 */
export function createKernelPool(options: PoolOptions = {}): Promise<KernelPool> {
  return KernelPool.create(kernelModule, spawnNodeWorker, options);
}
