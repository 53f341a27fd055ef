// Worker entry for Node (worker_threads: `new Worker(new URL(import.meta.resolve('@lowbit/runtime/worker')))`,
// then `wrapRuntime(nodeEndpoint(worker))`) and for any host with a Web Worker global scope.
// Browsers with a bundler: `createRuntimeWorker()` from `@lowbit/runtime/browser` starts
// worker-browser-entry.js instead, which bundlers can follow without Node built-ins.
import { exposeRuntime, nodeEndpoint } from './worker-api.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
if (isNode) {
  const { parentPort } = await import('node:worker_threads');
  // a Node worker loads models from paths: the file functions the universal modules ask for
  await import('./file-system-node.js');
  if (parentPort) exposeRuntime(nodeEndpoint(parentPort));
} else {
  exposeRuntime();
}
