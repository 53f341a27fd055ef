import { LowbitError } from './errors.js';
import { GGML_BLOCK_BYTES } from './ggml-blocks.js';
import { type KernelExports, Kernels, type KernelVariant } from './kernels.js';

export type VariantRequest = KernelVariant | 'auto';
/** Compiles the module of one build; rejects when this host cannot (e.g. no relaxed SIMD). */
export type ModuleSource = (variant: KernelVariant) => Promise<WebAssembly.Module>;

export interface LoadOptions {
  /** 'auto' (default): relaxed SIMD if it compiles and computes right here, else SIMD, else scalar. */
  variant?: VariantRequest;
}

export function instantiate(module: WebAssembly.Module, variant: KernelVariant): Kernels {
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort(_msg: number, _file: number, line: number, col: number) {
        throw new LowbitError('E_WASM', `lowbit kernel aborted at ${line}:${col}`);
      },
    },
  });
  return new Kernels(variant, instance.exports as unknown as KernelExports);
}

/**
 * Runs every kernel that uses relaxed instructions on fixed inputs in both builds and compares the
 * outputs. The integer dot of each block is exact in both, but the two builds spread it over the
 * four i32 lanes differently, so the f32 lane sums may differ in the last bits: agreement is
 * |a − b| <= 1e-5·(|a| + |b|) + 1e-6·max|out| (the absolute term covers sums that cancel to ~0).
 * The failure this guards against is gross (wrong sums, not rounding).
 * Checked on the very first call of the fresh instance and again after enough calls for V8 to
 * tier up: Node 20's baseline compiler has been seen computing i32x4.relaxed_dot_i8x16_i7x16_add_s
 * wrongly on first calls while the optimizing tier is right.
 */
export function relaxedAgrees(relaxed: Kernels, plain: Kernels): boolean {
  const rows = 5;
  const cols = 96;
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const x = Float32Array.from({ length: cols * 2 }, () => rnd() * 4 - 2);
  const packed = Uint8Array.from({ length: rows * (cols / 2) }, () => Math.floor(rnd() * 256));
  const scales = Float32Array.from({ length: rows * 3 }, () => rnd() + 0.1);
  const zeros = Float32Array.from({ length: rows * 3 }, () => rnd() * 15);
  const blocks = Uint8Array.from({ length: rows * 3 * 20 }, () => Math.floor(rnd() * 256));
  // Keep the f16 scales finite and small: byte 1 of each scale gets exponent bits < 0x3c.
  for (let i = 0; i < blocks.length; i += 2) blocks[i + 1] &= 0x3b;
  const fw = Float32Array.from({ length: rows * cols }, () => rnd() * 2 - 1);
  const probeA = Int8Array.from({ length: 16 }, (_, i) => (i * 37) % 256 - 128);
  const probeB = Int8Array.from({ length: 16 }, (_, i) => (i * 11) % 128);
  const probeC = Int32Array.from([1000, -1000, 7, 0]);

  // One list per kernel, each compared with a bound scaled to its own outputs.
  const run = (k: Kernels): number[][] => [
    Array.from(k.matmulQ4(packed, scales, null, rows, cols, 32, x, 2)),
    Array.from(k.matmulQ4(packed, scales.subarray(0, rows * 2), zeros.subarray(0, rows * 2), rows, cols, 64, x, 2)),
    Array.from(k.matmulQ4_0(blocks.subarray(0, rows * 3 * GGML_BLOCK_BYTES.q4_0), rows, cols, x, 2)),
    Array.from(k.matmulQ4_1(blocks, rows, cols, x, 2)),
    // f32 with fused multiply-add in the relaxed build: each step rounds once instead of twice,
    // a difference of order cols·2^-24·Σ|w·x| <= 96·6e-8·192, far inside the bound below.
    Array.from(k.matmulF32(fw, rows, cols, x, 2)),
    Array.from(probe(k, probeA, probeB, probeC)),
  ];
  const want = run(plain);
  const same = (got: number[][]) =>
    got.every((a, p) => {
      const b = want[p];
      const atol = 1e-6 * Math.max(...b.map(Math.abs));
      return a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= 1e-5 * (Math.abs(v) + Math.abs(b[i])) + atol);
    });
  if (!same(run(relaxed))) return false;
  const t0 = Date.now();
  let calls = 0;
  while (Date.now() - t0 < 30 && calls < 5000) {
    run(relaxed);
    calls++;
  }
  return same(run(relaxed));
}

function probe(k: Kernels, a: Int8Array, b: Int8Array, c: Int32Array): Int32Array {
  const h = k.heap;
  const pa = h.alloc(16);
  const pb = h.alloc(16);
  const pc = h.alloc(16);
  const po = h.alloc(16);
  try {
    const mem = () => k.memory.buffer;
    new Int8Array(mem(), pa, 16).set(a);
    new Int8Array(mem(), pb, 16).set(b);
    new Int32Array(mem(), pc, 4).set(c);
    k.exports.probe_relaxed_dot(pa, pb, pc, po);
    return new Int32Array(mem(), po, 4).slice();
  } finally {
    for (const p of [po, pc, pb, pa]) h.free(p);
  }
}

/** Picks and instantiates a build. Each result is a fresh instance with its own memory. */
export async function selectKernels(source: ModuleSource, request: VariantRequest = 'auto'): Promise<Kernels> {
  if (request !== 'auto') {
    let module: WebAssembly.Module;
    try {
      module = await source(request);
    } catch (e) {
      throw new LowbitError('E_WASM', `the ${request} kernel build cannot be compiled on this host: ${(e as Error).message}`, { cause: e });
    }
    return instantiate(module, request);
  }
  let simd: Kernels | undefined;
  try {
    simd = instantiate(await source('simd'), 'simd');
  } catch {
    return instantiate(await source('scalar'), 'scalar');
  }
  try {
    const relaxed = instantiate(await source('relaxed'), 'relaxed');
    if (relaxedAgrees(relaxed, simd)) return relaxed;
  } catch {
    // No relaxed SIMD here (Safari, Node 20 without the flag): the plain SIMD build is the answer.
  }
  return simd;
}

/** The per-host entry points: one shared instance per variant request, or fresh ones. */
export function makeLoader(source: ModuleSource): {
  loadKernels(options?: LoadOptions): Promise<Kernels>;
  createKernels(options?: LoadOptions): Promise<Kernels>;
} {
  const loaded = new Map<string, Promise<Kernels>>();
  return {
    loadKernels(options = {}) {
      const key = options.variant ?? 'auto';
      let k = loaded.get(key);
      if (!k) {
        k = selectKernels(source, key);
        loaded.set(key, k);
        k.catch(() => loaded.delete(key));
      }
      return k;
    },
    createKernels(options = {}) {
      return selectKernels(source, options.variant ?? 'auto');
    },
  };
}
