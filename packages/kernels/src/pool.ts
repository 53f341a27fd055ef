// Row-split thread pool over one shared WebAssembly memory (Node worker_threads).
//
// The calling thread owns the heap and does the first share of every row kernel; each worker runs
// its share on the same memory. Jobs go through a control block in shared memory and Atomics
// wait/notify (microseconds), not postMessage (tens of microseconds), because a decoded token runs
// hundreds of matmuls. Atomics.wait blocks, so in browsers run the pool from a worker (comlink), not
// from the page's main thread.
import { Worker } from 'node:worker_threads';
import { LowbitError } from './errors.js';
import { relaxedAgrees } from './select.js';
import { type KernelExports, Kernels, NEEDS_RES, ROW_KERNELS, type RowKernel, type ThreadedVariant } from './kernels.js';

const SLOT_INTS = 32; // state, fn, nargs, args[..26], error
const IDLE = 0;
const POSTED = 1;
const DONE = 2;
const QUIT = 3;
const ERR = SLOT_INTS - 1;

export interface PoolOptions {
  /** Threads including the calling one (default 2). */
  threads?: number;
  variant?: ThreadedVariant;
  /** Initial shared memory in 64 KiB pages (grows on demand). */
  initialPages?: number;
}

export interface PoolModuleSource {
  (variant: ThreadedVariant): Promise<WebAssembly.Module>;
}

export class KernelPool extends Kernels {
  private readonly workers: Worker[] = [];
  private readonly ctrl: number;
  private readonly workerRes: number[] = [];
  private closed = false;
  private ownRes = 0;

  private constructor(
    variant: ThreadedVariant,
    exports: KernelExports,
    readonly threads: number,
  ) {
    super(variant, exports);
    this.ctrl = this.heap.alloc(threads * SLOT_INTS * 4);
    new Int32Array(this.memory.buffer, this.ctrl, threads * SLOT_INTS).fill(0);
    for (let i = 0; i < threads; i++) this.workerRes.push(this.heap.alloc(16));
  }

  static async create(source: PoolModuleSource, options: PoolOptions = {}): Promise<KernelPool> {
    const threads = options.threads ?? 2;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new LowbitError('E_ARG', `threads must be an integer in 1..64, got ${threads}`);
    const variant = options.variant ?? (await pickVariant(source));
    const module = await source(variant);
    const memory = new WebAssembly.Memory({ initial: options.initialPages ?? 32, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory, abort: abortImport } });
    const pool = new KernelPool(variant, { ...(instance.exports as unknown as KernelExports), memory }, threads);
    const started: Promise<void>[] = [];
    for (let i = 1; i < threads; i++) {
      const w = new Worker(new URL('./pool-worker.js', import.meta.url), {
        workerData: { module, memory, slot: pool.ctrl + i * SLOT_INTS * 4, fns: ROW_KERNELS },
      });
      w.unref();
      started.push(
        new Promise((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
      );
      pool.workers.push(w);
    }
    await Promise.all(started);
    return pool;
  }

  protected override runRows(fn: RowKernel, args: number[], rows: number): void {
    if (this.closed) throw new LowbitError('E_ARG', 'this KernelPool is closed');
    // Shares in whole 4-row tiles so every thread runs full tiles but possibly the last.
    const tiles = Math.ceil(rows / 4);
    const per = Math.ceil(tiles / this.threads) * 4;
    const mem = new Int32Array(this.memory.buffer);
    const fnId = ROW_KERNELS.indexOf(fn);
    const posted: number[] = [];
    for (let t = 1; t < this.threads; t++) {
      const r0 = Math.min(rows, t * per);
      const r1 = Math.min(rows, r0 + per);
      if (r0 >= r1) continue;
      const base = (this.ctrl >> 2) + t * SLOT_INTS;
      const full = NEEDS_RES.has(fn) ? [...args, this.workerRes[t], r0, r1] : [...args, r0, r1];
      mem[base + 1] = fnId;
      mem[base + 2] = full.length;
      for (let i = 0; i < full.length; i++) mem[base + 3 + i] = full[i];
      mem[base + ERR] = 0;
      Atomics.store(mem, base, POSTED);
      Atomics.notify(mem, base);
      posted.push(base);
    }
    const f = this.exports[fn] as (...a: number[]) => void;
    const mine = Math.min(rows, per);
    if (NEEDS_RES.has(fn)) {
      if (this.ownRes === 0) this.ownRes = this.heap.alloc(16);
      f(...args, this.ownRes, 0, mine);
    } else f(...args, 0, mine);
    let failed = false;
    for (const base of posted) {
      // Spin briefly (the other share usually ends within microseconds of ours), then sleep.
      for (let spin = 0; spin < 20000 && Atomics.load(mem, base) === POSTED; spin++);
      while (Atomics.load(mem, base) === POSTED) Atomics.wait(mem, base, POSTED, 1000);
      if (mem[base + ERR] !== 0) failed = true;
    }
    if (failed) throw new LowbitError('E_WASM', `${fn} failed in a pool worker`);
  }

  /** Stops the workers; the pool's memory is released with the object. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const mem = new Int32Array(this.memory.buffer);
    for (let t = 1; t < this.threads; t++) {
      const base = (this.ctrl >> 2) + t * SLOT_INTS;
      Atomics.store(mem, base, QUIT);
      Atomics.notify(mem, base);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function abortImport(_m: number, _f: number, line: number, col: number): never {
  throw new LowbitError('E_WASM', `lowbit kernel aborted at ${line}:${col}`);
}

/** Relaxed when it compiles and agrees with the plain build (same check as the single-thread loader). */
async function pickVariant(source: PoolModuleSource): Promise<ThreadedVariant> {
  try {
    const probe = (variant: ThreadedVariant, module: WebAssembly.Module) => {
      const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
      const inst = new WebAssembly.Instance(module, { env: { memory, abort: abortImport } });
      return new Kernels(variant, { ...(inst.exports as unknown as KernelExports), memory });
    };
    const relaxed = probe('relaxed-threads', await source('relaxed-threads'));
    const plain = probe('simd-threads', await source('simd-threads'));
    if (relaxedAgrees(relaxed, plain)) return 'relaxed-threads';
  } catch {
    // no relaxed SIMD here
  }
  return 'simd-threads';
}

export const POOL_STATES = { IDLE, POSTED, DONE, QUIT } as const;
