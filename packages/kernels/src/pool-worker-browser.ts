// One pool thread in a browser (a module Web Worker started by createKernelPool of the `browser`
// entry): receives the module and the shared memory in its first message, then runs the pool
// protocol (pool-protocol.ts). Needs a cross-origin isolated page (COOP/COEP) for shared memory.
import type { PoolWorkerData } from './pool.js';
import { runPoolWorker } from './pool-protocol.js';

interface WorkerScope {
  onmessage: ((e: { data: PoolWorkerData }) => void) | null;
  postMessage(m: unknown): void;
}
const scope = globalThis as unknown as WorkerScope;

scope.onmessage = (e) => {
  scope.onmessage = null;
  runPoolWorker(e.data, (m) => scope.postMessage(m));
};
