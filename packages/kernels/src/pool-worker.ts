// One pool thread (Node worker_threads): instantiates the kernel module on the pool's shared memory
// and runs chunks of the posted jobs until the pool quits (protocol in pool-protocol.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { workerLoop } from './pool-protocol.js';

const { module, memory, ctrl, res, fns, needsRes } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctrl: number;
  res: number;
  fns: string[];
  needsRes: boolean[];
};
const instance = new WebAssembly.Instance(module, {
  env: {
    memory,
    abort() {
      throw new Error('kernel abort');
    },
  },
});
const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
parentPort!.postMessage('ready');
workerLoop(memory, ctrl >> 2, res, fns.map((name) => exports[name]), needsRes);
