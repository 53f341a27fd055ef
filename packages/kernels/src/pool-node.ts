// Node's way to start a pool worker: a worker_threads thread running pool-worker.js.
import { Worker } from 'node:worker_threads';
import type { PoolWorkerData } from './pool.js';

export function spawnNodeWorker(data: PoolWorkerData): Promise<{ terminate(): unknown }> {
  const w = new Worker(new URL('./pool-worker.js', import.meta.url), { workerData: data });
  // A pool left open must not keep the process alive.
  w.unref();
  return new Promise((resolve, reject) => {
    w.once('message', () => resolve(w));
    w.once('error', reject);
  });
}
