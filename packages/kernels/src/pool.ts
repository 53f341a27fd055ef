// Row-split thread pool over one shared WebAssembly memory. Host-neutral: the host's entry point
// passes how to start a worker (Node worker_threads in pool-node.ts, Web Workers in index-browser.ts).
//
// The calling thread owns the heap and takes part in every job; workers take chunks of rows from
// the same counter (pool-protocol.ts). Jobs go through a control block in shared memory and Atomics
// wait/notify (microseconds), not postMessage (tens of microseconds), because a decoded token runs
// hundreds of matmuls. Atomics.wait blocks, so in browsers run the pool from a worker (comlink), not
// from the page's main thread.
import { LowbitError } from './errors.js';
import { CLOSED, CTRL, CTRL_INTS, type PoolWorkerData, runChunks } from './pool-protocol.js';
import { relaxedAgrees } from './select.js';
import { type KernelExports, Kernels, NEEDS_RES, ROW_KERNELS, type RowKernel, type ThreadedVariant } from './kernels.js';

// the worker's start data is the protocol's; re-exported for the entry points that spawn workers
export type { PoolWorkerData };

export interface PoolOptions {
  /** Threads including the calling one (default 2). */
  threads?: number;
  variant?: ThreadedVariant;
  /** Initial shared memory in 64 KiB pages (grows on demand). */
  initialPages?: number;
}

export type PoolModuleSource = (variant: ThreadedVariant) => Promise<WebAssembly.Module>;

/** What a pool worker is started with (structured-cloneable: the module and shared memory included). */
/** Starts one worker running the pool protocol on `data`; resolves once it is ready. */
export type SpawnPoolWorker = (data: PoolWorkerData) => Promise<{ terminate(): unknown }>;

export class KernelPool extends Kernels {
  private readonly workers: { terminate(): unknown }[] = [];
  private readonly ctrl: number;
  private closed = false;
  private ownRes = 0;
  private gen = 0;

  private constructor(
    variant: ThreadedVariant,
    exports: KernelExports,
    readonly threads: number,
  ) {
    super(variant, exports);
    this.ctrl = this.heap.alloc(CTRL_INTS * 4);
    new Int32Array(this.memory.buffer, this.ctrl, CTRL_INTS).fill(0);
  }

  static async create(source: PoolModuleSource, spawn: SpawnPoolWorker, options: PoolOptions = {}): Promise<KernelPool> {
    const threads = options.threads ?? 2;
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new LowbitError('E_ARG', `threads must be an integer in 1..64, got ${threads}`);
    const variant = options.variant ?? (await pickVariant(source));
    const module = await source(variant);
    const memory = new WebAssembly.Memory({ initial: options.initialPages ?? 32, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory, abort: abortImport } });
    const pool = new KernelPool(variant, { ...(instance.exports as unknown as KernelExports), memory }, threads);
    const needsRes = ROW_KERNELS.map((f) => NEEDS_RES.has(f));
    const started = await Promise.allSettled(
      Array.from({ length: threads - 1 }, () => spawn({ module, memory, ctrl: pool.ctrl, res: pool.heap.alloc(16), fns: ROW_KERNELS, needsRes })),
    );
    for (const s of started) if (s.status === 'fulfilled') pool.workers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      await pool.close();
      throw new LowbitError('E_WASM', `a pool worker could not start: ${(failed as PromiseRejectedResult).reason}`, { cause: (failed as PromiseRejectedResult).reason });
    }
    return pool;
  }

  protected override runRows(fn: RowKernel, args: number[], rows: number): void {
    if (this.closed) throw new LowbitError('E_ARG', 'this KernelPool is closed');
    const f = this.exports[fn] as (...a: number[]) => void;
    if (NEEDS_RES.has(fn) && this.ownRes === 0) this.ownRes = this.heap.alloc(16);
    const own = NEEDS_RES.has(fn) ? [...args, this.ownRes] : args;
    // Whole 4-row tiles, about four chunks per thread: small enough to even out a late thread,
    // large enough that a chunk's call overhead (about a microsecond) stays negligible.
    const chunk = Math.max(4, Math.ceil(rows / (this.threads * 4) / 4) * 4);
    if (this.threads === 1 || rows <= chunk) {
      f(...own, 0, rows);
      return;
    }
    if (args.length > CTRL_INTS - CTRL.ARGS) throw new LowbitError('E_ARG', `${fn}: too many arguments for the pool control block`);
    const base = this.ctrl >> 2;
    let mem = new Int32Array(this.memory.buffer);
    mem[base + CTRL.FN] = ROW_KERNELS.indexOf(fn);
    mem[base + CTRL.NARGS] = args.length;
    mem[base + CTRL.ROWS] = rows;
    mem[base + CTRL.CHUNK] = chunk;
    for (let i = 0; i < args.length; i++) mem[base + CTRL.ARGS + i] = args[i];
    mem[base + CTRL.ERR] = 0;
    this.gen = (this.gen % 0x7fff) + 1;
    Atomics.store(mem, base + CTRL.COUNTER, this.gen << 16);
    Atomics.store(mem, base + CTRL.GEN, this.gen);
    Atomics.notify(mem, base + CTRL.GEN);
    try {
      runChunks(mem, base, this.gen, f, own, rows, chunk);
    } finally {
      // Every chunk is taken (or our share failed): wait for workers still inside one, also on the
      // error path, since the caller frees the call's scratch that they write into.
      mem = new Int32Array(this.memory.buffer);
      Atomics.store(mem, base + CTRL.COUNTER, (this.gen << 16) | CLOSED);
      for (let spin = 0; spin < 20000 && Atomics.load(mem, base + CTRL.ACTIVE) !== 0; spin++);
      for (let a = Atomics.load(mem, base + CTRL.ACTIVE); a !== 0; a = Atomics.load(mem, base + CTRL.ACTIVE)) {
        Atomics.wait(mem, base + CTRL.ACTIVE, a, 1000);
      }
    }
    if (mem[base + CTRL.ERR] !== 0) throw new LowbitError('E_WASM', `${fn} failed in a pool worker`);
  }

  /** Stops the workers; the pool's memory is released with the object. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const mem = new Int32Array(this.memory.buffer);
    Atomics.store(mem, (this.ctrl >> 2) + CTRL.QUIT, 1);
    Atomics.notify(mem, (this.ctrl >> 2) + CTRL.GEN);
    await Promise.all(this.workers.map(async (w) => w.terminate()));
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

