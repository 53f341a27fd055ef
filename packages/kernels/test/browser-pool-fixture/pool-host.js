// The documented browser set-up for threads: the pool lives in a dedicated worker (Atomics.wait is
// not allowed on the page's thread) and the page calls it through comlink. `expose` runs at once:
// comlink drops calls that arrive before it, so the methods wait for the pool instead.
import { expose } from 'comlink';
import { createKernelPool } from '@lowbit/kernels';

const ready = createKernelPool({ threads: 2 });
expose({
  variant: async () => (await ready).variant,
  gemvF32: async (w, rows, cols, x) => (await ready).gemvF32(w, rows, cols, x),
  gemvQ4: async (packed, scales, rows, cols, group, x) => (await ready).gemvQ4(packed, scales, null, rows, cols, group, x),
  close: async () => (await ready).close(),
});
