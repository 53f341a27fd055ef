// One pool thread (Node worker_threads): instantiates the kernel module on the pool's shared memory
// and runs chunks of the posted jobs until the pool quits (protocol in pool-protocol.ts).
import { parentPort, workerData } from 'node:worker_threads';
import type { PoolWorkerData } from './pool.js';
import { runPoolWorker } from './pool-protocol.js';

runPoolWorker(workerData as PoolWorkerData, (m) => parentPort!.postMessage(m));
