// One pool thread in a browser (a module Web Worker started by createKernelPool of the `browser`
// entry): receives the module and the shared memory in its first message, then runs the pool
// protocol (pool-protocol.ts). Needs a cross-origin isolated page (COOP/COEP) for shared memory.
import type { PoolWorkerData } from './pool.js';
import { workerLoop } from './pool-protocol.js';

interface WorkerScope {
  onmessage: ((e: { data: PoolWorkerData }) => void) | null;
  postMessage(m: unknown): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (e) => {
  scope.onmessage = null;
  const { module, memory, ctrl, res, fns, needsRes } = e.data;
  const instance = new WebAssembly.Instance(module, {
    env: {
      memory,
      abort() {
        throw new Error('kernel abort');
      },
    },
  });
  const exports = instance.exports as unknown as Record<string, (...a: number[]) => void>;
  scope.postMessage('ready');
  workerLoop(memory, ctrl >> 2, res, fns.map((name) => exports[name]), needsRes);
};
