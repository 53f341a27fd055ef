// The Kernels panel's GEMV benchmark (in a worker): one weight matrix, resident in each kernel
// build's WebAssembly memory, multiplied by a vector over and over for a fixed time; plain
// JavaScript (the kernels' reference code) runs the same product for comparison.
import { type GgmlBlockType, type KernelVariant, type Kernels, createKernelPool, loadKernels, reference } from '@lowbit/kernels';
import { quantizeRowQ4_0, quantizeRowQ8_0 } from '@lowbit/runtime';

export type BenchVariant = KernelVariant | 'relaxed-threads' | 'simd-threads' | 'js';
export type BenchFormat = 'f32' | GgmlBlockType;

export interface BenchRow {
  variant: BenchVariant;
  format: BenchFormat;
  /** Threads splitting the rows (1 for the single-threaded builds and JS). */
  threads: number;
  supported: boolean;
  why?: string;
  /** Weight bytes read per second (the matrix as stored), in GB/s (10^9 bytes). */
  gbPerS: number;
  /** Multiply-adds per second, in GFLOP/s (2 flops each). */
  gflops: number;
  calls: number;
  /** Largest |y − y_js| over the result, relative to max |y_js|. */
  relDiff: number;
}

/** Deterministic weights in [-1, 1) (a small LCG), so every build multiplies the same matrix. */
function matrix(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const BLOCK_BYTES = { q8_0: 34, q4_0: 18, q4_1: 20 } as const;

function blocksOf(format: 'q8_0' | 'q4_0', w: Float32Array, rows: number, cols: number): Uint8Array {
  const rb = (cols / 32) * BLOCK_BYTES[format];
  const out = new Uint8Array(rows * rb);
  const q = format === 'q8_0' ? quantizeRowQ8_0 : quantizeRowQ4_0;
  for (let r = 0; r < rows; r++) q(w.subarray(r * cols, (r + 1) * cols), out, r * rb);
  return out;
}

function timeLoop(f: () => Float32Array, ms: number): { seconds: number; calls: number; y: Float32Array } {
  let y = f(); // warm-up (and the JIT's first compile)
  const t0 = performance.now();
  let calls = 0;
  while (performance.now() - t0 < ms) {
    y = f();
    calls++;
  }
  return { seconds: (performance.now() - t0) / 1000, calls, y };
}

/** 2, 4, 8, ... up to `max`, and `max` itself: the pool sizes the benchmark runs. */
export function poolSizes(max: number): number[] {
  const out: number[] = [];
  for (let t = 2; t < max; t *= 2) out.push(t);
  if (max >= 2) out.push(max);
  return out;
}

export async function gemvBench(format: 'f32' | 'q8_0' | 'q4_0', rows: number, cols: number, ms: number, threads = 1, onProgress?: (done: number, total: number, what: string) => void): Promise<BenchRow[]> {
  // browsers give shared WebAssembly memory only to cross-origin isolated pages (Node: always)
  const canShare = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false && typeof SharedArrayBuffer !== 'undefined';
  const pools = poolSizes(threads);
  const total = 4 + pools.length;
  let done = 0;
  const step = (what: string) => onProgress?.(done++, total, what);
  step('JavaScript reference');
  const w = matrix(rows * cols, 1);
  const x = matrix(cols, 2);
  const blocks = format === 'f32' ? null : blocksOf(format, w, rows, cols);
  const weightBytes = blocks ? blocks.byteLength : w.byteLength;
  const js = timeLoop(() => (blocks ? reference.matmulGgml(format as GgmlBlockType, blocks, rows, cols, x) : reference.gemvF32(w, rows, cols, x)), ms);
  const ref = js.y;
  let refMax = 0;
  for (const v of ref) refMax = Math.max(refMax, Math.abs(v));
  const row = (variant: BenchVariant, n: number, t: { seconds: number; calls: number; y: Float32Array }): BenchRow => {
    let d = 0;
    for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(t.y[i] - ref[i]));
    return {
      variant, format, threads: n, supported: true, calls: t.calls,
      gbPerS: (weightBytes * t.calls) / t.seconds / 1e9, gflops: (2 * rows * cols * t.calls) / t.seconds / 1e9, relDiff: refMax ? d / refMax : d,
    };
  };
  const missing = (variant: BenchVariant, n: number, why: string): BenchRow => ({ variant, format, threads: n, supported: false, why, gbPerS: Number.NaN, gflops: Number.NaN, calls: 0, relDiff: Number.NaN });
  const timeOn = (k: Kernels): { seconds: number; calls: number; y: Float32Array } => {
    // resident weights: the loop measures the kernel, not copying the matrix in
    const tensor = blocks ? k.prepareGgml(format as GgmlBlockType, blocks, rows, cols) : k.upload(w);
    const y = new Float32Array(rows);
    try {
      return timeLoop(() => (blocks ? k.matmulGgml(format as GgmlBlockType, tensor, rows, cols, x, 1, y) : k.gemvF32(tensor, rows, cols, x, y)), ms);
    } finally {
      tensor.free();
    }
  };
  const out: BenchRow[] = [];
  for (const variant of ['scalar', 'simd', 'relaxed'] as const) {
    step(`WebAssembly ${variant}`);
    let k: Kernels;
    try {
      k = await loadKernels({ variant });
    } catch (e) {
      out.push(missing(variant, 1, (e as Error).message));
      continue;
    }
    out.push(row(variant, 1, timeOn(k)));
  }
  for (const n of pools) {
    step(`${n} threads`);
    if (!canShare) {
      out.push(missing('simd-threads', n, 'this page is not cross-origin isolated, so it has no SharedArrayBuffer (the server must send COOP/COEP headers)'));
      continue;
    }
    let pool: Awaited<ReturnType<typeof createKernelPool>>;
    try {
      // the pool picks relaxed SIMD where this browser runs it correctly, else SIMD
      pool = await createKernelPool({ threads: n });
    } catch (e) {
      out.push(missing('simd-threads', n, (e as Error).message));
      continue;
    }
    try {
      out.push(row(pool.variant as BenchVariant, n, timeOn(pool)));
    } finally {
      await pool.close();
    }
  }
  out.push(row('js', 1, js));
  step('done');
  return out;
}
