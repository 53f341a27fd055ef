import { describe, expect, it } from 'vitest';
import { createKernels, type Kernels } from '../src/index-node.js';
import { randF32, rng } from './helpers.js';

// The SIMD activation quantizer of the int4 kernel (quantize_act_int4, q4.ts) must write exactly the
// bytes of the scalar one (quantize_act_groups, act-quant.ts): codes in both layouts, scales, sums.
function runBoth(k: Kernels, x: Float32Array, cols: number, batch: number, group: number) {
  const nblk = Math.ceil(cols / 32);
  const ngroups = Math.ceil(cols / group);
  const sizes = [batch * nblk * 32, batch * nblk * 64, batch * ngroups * 4, batch * ngroups * 4];
  const run = (simd: boolean) => {
    const xt = k.upload(x);
    const bufs = sizes.map((n) => k.upload(new Uint8Array(n).fill(0xa5)));
    const tmp = k.upload(new Uint8Array(group));
    const [xq, xq16, xs, xsum] = bufs.map((b) => b.ptr);
    const rc = simd
      ? k.exports.quantize_act_int4(xt.ptr, cols, batch, group, xq, xq16, xs, xsum)
      : k.exports.quantize_act_groups(xt.ptr, cols, batch, group, xq, xq16, xs, xsum, tmp.ptr);
    const bytes = bufs.map((b, i) => new Uint8Array(k.exports.memory.buffer, b.ptr, sizes[i]).slice());
    for (const b of [xt, tmp, ...bufs]) b.free();
    return { rc, bytes };
  };
  return { simd: run(true), scalar: run(false) };
}

describe('int4 activation quantizer, SIMD vs scalar', () => {
  for (const variant of ['simd', 'relaxed'] as const) {
    it(`${variant}: identical bytes for whole groups (incl. an all-zero group and ties)`, async () => {
      const k = await createKernels({ variant });
      const r = rng(11);
      for (const [cols, group, batch] of [[128, 32, 1], [256, 128, 2], [4096, 128, 1], [384, 64, 3]] as const) {
        const x = randF32(r, cols * batch, 3);
        x.fill(0, 0, group); // a group of zeros: scale 0, codes 0
        // Values landing on .5 after scaling exercise nearest-even: amax 127 makes the scale 1.
        x[group] = 127; x[group + 1] = 2.5; x[group + 2] = -3.5; x[group + 3] = 0.5;
        const { simd, scalar } = runBoth(k, x, cols, batch, group);
        expect(simd.rc).toBe(0);
        expect(scalar.rc).toBe(0);
        for (let i = 0; i < 4; i++) expect(simd.bytes[i]).toEqual(scalar.bytes[i]);
      }
    });
  }

  it('reports NaN/Inf, and leaves a partial last group to the scalar one', async () => {
    const k = await createKernels({ variant: 'simd' });
    const x = new Float32Array(64).fill(1);
    x[40] = Number.POSITIVE_INFINITY;
    expect(runBoth(k, x, 64, 1, 32).simd.rc).toBe(1);
    expect(runBoth(k, new Float32Array(96).fill(1), 96, 1, 64).simd.rc).toBe(2);
  });
});
