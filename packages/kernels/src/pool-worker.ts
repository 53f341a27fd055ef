// One pool thread: instantiates the kernel module on the pool's shared memory and runs the row
// shares posted to its control slot until told to quit (protocol in pool.ts).
import { parentPort, workerData } from 'node:worker_threads';

const { module, memory, slot, fns } = workerData as { module: WebAssembly.Module; memory: WebAssembly.Memory; slot: number; fns: string[] };
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort() {
      throw new Error('kernel abort');
    },
  },
});
const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
const table = fns.map((name) => exports[name]);
const base = slot >> 2;
const SLOT_INTS = 32;
const ERR = SLOT_INTS - 1;

parentPort!.postMessage('ready');
let seen = 0;
for (;;) {
  const mem = new Int32Array(memory.buffer); // re-read: the buffer grows with the heap
  for (let spin = 0; spin < 2000 && Atomics.load(mem, base) === seen; spin++);
  Atomics.wait(mem, base, seen);
  const state = Atomics.load(mem, base);
  if (state === 3) break;
  if (state !== 1) {
    seen = state;
    continue;
  }
  const n = mem[base + 2];
  const args: number[] = [];
  for (let i = 0; i < n; i++) args.push(mem[base + 3 + i]);
  try {
    table[mem[base + 1]](...args);
  } catch {
    mem[base + ERR] = 1;
  }
  Atomics.store(mem, base, 2);
  Atomics.notify(mem, base);
  seen = 2;
}
