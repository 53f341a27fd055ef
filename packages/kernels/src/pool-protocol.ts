// The control block a KernelPool shares with its worker threads (Int32 cells in the pool's shared
// WebAssembly memory), and the chunk loop every thread runs. No host APIs here, so Node and browser
// workers use the same code.
//
// A job is a row kernel split into chunks of whole 4-row tiles. Threads take chunks from one
// counter (compare-and-swap), so a worker the OS has not scheduled yet costs nothing: the caller
// takes its chunks too. Measured on this 2-core machine shared with other jobs, fixed halves made
// two threads slower than one whenever the second core was busy.


export const CTRL = {
  GEN: 0, // job generation, 1..0x7fff; workers sleep on this cell
  COUNTER: 1, // (generation << 16) | next chunk index
  ACTIVE: 2, // threads inside a job's chunk loop; the caller waits for 0
  QUIT: 3,
  ERR: 4,
  FN: 5,
  ROWS: 6,
  CHUNK: 7,
  NARGS: 8,
  ARGS: 9, // ...up to CTRL_INTS
} as const;
export const CTRL_INTS = 40;
/** Chunk index that marks a job as finished for threads that arrive late. */
export const CLOSED = 0xffff;

/** Runs chunks of generation `gen` until none is left (or the pool moved on to another job). */
export function runChunks(mem: Int32Array, base: number, gen: number, f: (...a: number[]) => void, args: number[], rows: number, chunk: number): void {
  const at = base + CTRL.COUNTER;
  for (;;) {
    const v = Atomics.load(mem, at);
    if (v >>> 16 !== gen) return;
    const i = v & 0xffff;
    const r0 = i * chunk;
    // CLOSED: the caller has left the job (see KernelPool.runRows); a job has far fewer chunks.
    if (i === CLOSED || r0 >= rows) return;
    if (Atomics.compareExchange(mem, at, v, v + 1) !== v) continue;
    f(...args, r0, Math.min(rows, r0 + chunk));
  }
}

/** What a pool worker is started with (structured-cloned to it): the shared module, memory and layout. */
export interface PoolWorkerData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of the control block (pool-protocol.ts). */
  ctrl: number;
  /** Byte offset of this worker's 16-byte tile scratch. */
  res: number;
  fns: readonly string[];
  needsRes: boolean[];
}

/**
 * A pool thread's whole life, for either host's worker entry: instantiate the kernel module on the
 * pool's shared memory, say 'ready' through `post`, then run the job loop until the pool quits.
 */
export function runPoolWorker(data: PoolWorkerData, post: (message: string) => void): void {
  const { module, memory, ctrl, res, fns, needsRes } = data;
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort() {
        throw new Error('kernel abort');
      },
    },
  });
  const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
  post('ready');
  workerLoop(memory, ctrl >> 2, res, fns.map((name) => exports[name]), needsRes);
}

/** The job loop of one worker thread; returns when the pool quits. `res` is its tile scratch. */
export function workerLoop(memory: WebAssembly.Memory, base: number, res: number, table: ((...a: number[]) => void)[], needsRes: boolean[]): void {
  let seen = 0;
  for (;;) {
    let mem = new Int32Array(memory.buffer); // re-made per job: the buffer grows with the heap
    for (let spin = 0; spin < 4000 && Atomics.load(mem, base + CTRL.GEN) === seen && !Atomics.load(mem, base + CTRL.QUIT); spin++);
    while (Atomics.load(mem, base + CTRL.GEN) === seen && !Atomics.load(mem, base + CTRL.QUIT)) Atomics.wait(mem, base + CTRL.GEN, seen, 1000);
    if (Atomics.load(mem, base + CTRL.QUIT)) return;
    seen = Atomics.load(mem, base + CTRL.GEN);
    Atomics.add(mem, base + CTRL.ACTIVE, 1);
    try {
      mem = new Int32Array(memory.buffer);
      const fn = mem[base + CTRL.FN];
      const n = mem[base + CTRL.NARGS];
      const args: number[] = [];
      for (let i = 0; i < n; i++) args.push(mem[base + CTRL.ARGS + i]);
      if (needsRes[fn]) args.push(res);
      // Arguments read after the job moved on are never used: the counter's generation no longer
      // matches `seen`, so runChunks takes no chunk.
      runChunks(mem, base, seen, table[fn], args, mem[base + CTRL.ROWS], mem[base + CTRL.CHUNK]);
    } catch {
      Atomics.store(mem, base + CTRL.ERR, 1);
    } finally {
      if (Atomics.sub(mem, base + CTRL.ACTIVE, 1) === 1) Atomics.notify(mem, base + CTRL.ACTIVE);
    }
  }
}
