// Worker entry: `new Worker(new URL('@lowbit/runtime/worker', ...))` in browsers, or
// `new Worker(require.resolve-ed path)` with worker_threads in Node; then `wrapRuntime(...)`.
import { exposeRuntime, nodeEndpoint } from './worker-api.js';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;
if (isNode) {
  const { parentPort } = await import('node:worker_threads');
  if (parentPort) exposeRuntime(nodeEndpoint(parentPort));
} else {
  exposeRuntime();
}
