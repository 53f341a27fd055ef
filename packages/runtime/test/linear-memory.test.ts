import { LowbitError, createKernels, isLowbitError } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Linear } from '../src/linear.js';

describe('a layer that does not fit in WebAssembly memory', () => {
  it('names the tensor and the 4 GiB wasm32 limit, and frees what it had uploaded', async () => {
    const k = await createKernels();
    // The real heap error needs 4 GiB of memory to provoke; the kernels' own message is injected on
    // the second upload (an int4 layer uploads codes, then scales).
    let uploads = 0;
    const before = k.heap.liveBytes;
    const tight = new Proxy(k, {
      get(target, prop, receiver) {
        if (prop === 'upload') {
          return (a: Float32Array | Uint8Array) => {
            if (++uploads === 2) throw new LowbitError('E_ARG', 'WebAssembly memory is limited to 4 GiB; 8192 more bytes do not fit (in use: 4294000000)');
            return target.upload(a);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    let err: unknown;
    try {
      new Linear(tight, 'blk.31.ffn_up.weight', { format: 'int4', shape: [64, 64], packed: new Uint8Array(64 * 32), scales: new Float32Array(64 * 2), zeros: null, group: 32 });
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err)).toBe(true);
    expect((err as LowbitError).code).toBe('E_ARG');
    expect((err as Error).message).toMatch(/^blk\.31\.ffn_up\.weight: .*int4 weights do not fit .*4 GiB/);
    expect(k.heap.liveBytes).toBe(before); // the codes uploaded first were freed again
  });
});
