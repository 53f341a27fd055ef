// The script a browser worker runs (started by createRuntimeWorker): the runtime API on the worker's
// global scope. `expose` runs during module evaluation, before the worker takes its first message,
// so no call from the page is dropped.
import { exposeRuntime } from './worker-api.js';

exposeRuntime();
