import { afterAll, describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { type KernelPool, type Kernels, createKernelPool, createKernels, f16ToF32, f32ToF16, quantizeKvQ8, reference } from '../dist/index-node.js';
import { expectClose, randF32, rng } from './helpers.js';

const pools: KernelPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

// [nHeads, nKvHeads, headDim, pos, n]: SIMD (headDim % 4 == 0) and scalar tail (6); decode and prefill.
const SHAPES = [
  [8, 4, 8, 0, 1],
  [8, 4, 8, 20, 3],
  [32, 4, 64, 37, 1],
  [6, 2, 6, 3, 4],
  // past one block of positions (64 at headDim 64, 512 at headDim 8)
  [16, 2, 64, 150, 2],
  [4, 2, 8, 517, 3],
] as const;

function run(k: Kernels, shape: readonly number[]) {
  const [nHeads, nKvHeads, headDim, pos, n] = shape;
  const r = rng(nHeads * 31 + headDim + pos * 3 + n);
  const kvDim = nKvHeads * headDim;
  const ctx = pos + n;
  const keys = randF32(r, ctx * kvDim, 3);
  const values = randF32(r, ctx * kvDim);
  const q = randF32(r, n * nHeads * headDim, 2);
  // the cache sits in the second of two layers (offset), the first stays zero
  const layer = ctx * kvDim;
  const kc = k.upload(new Int8Array(2 * layer));
  const vc = k.upload(new Int8Array(2 * layer));
  const ks = k.upload(new Float32Array((2 * layer) / headDim));
  const vs = k.upload(new Float32Array((2 * layer) / headDim));
  // earlier positions quantized by the same rule, as the kernel quantizes the new ones
  const groups = (pos * kvDim) / headDim;
  const buf = () => k.memory.buffer;
  quantizeKvQ8(keys, groups, headDim, new Int8Array(buf(), kc.ptr + layer, pos * kvDim), new Float32Array(buf(), ks.ptr + (layer / headDim) * 4, groups));
  quantizeKvQ8(values, groups, headDim, new Int8Array(buf(), vc.ptr + layer, pos * kvDim), new Float32Array(buf(), vs.ptr + (layer / headDim) * 4, groups));
  const scale = 1 / Math.sqrt(headDim);
  const got = k.attentionQ8(q, keys.slice(pos * kvDim), values.slice(pos * kvDim), kc, ks, vc, vs, layer, pos, n, nHeads, nKvHeads, headDim, scale);
  const codes = (t: { ptr: number }) => new Int8Array(buf(), t.ptr + layer, layer).slice();
  const scales = (t: { ptr: number }) => new Float32Array(buf(), t.ptr + (layer / headDim) * 4, layer / headDim).slice();
  const state = { kc: codes(kc), vc: codes(vc), ks: scales(ks), vs: scales(vs), firstZero: new Int8Array(buf(), kc.ptr, layer).every((v) => v === 0) };
  for (const t of [kc, vc, ks, vs]) t.free();
  return { nHeads, nKvHeads, headDim, pos, n, kvDim, keys, values, q, scale, got, ...state };
}

describe.each(['relaxed', 'simd', 'scalar'] as const)('attentionQ8 (%s)', (variant) => {
  it('matches reference.attentionQ8 on the codes it stored, and those codes follow the int8 rule', async () => {
    const k = await createKernels({ variant });
    for (const shape of SHAPES) {
      const c = run(k, shape);
      const want = reference.attentionQ8(c.q, c.kc, c.ks, c.vc, c.vs, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale);
      // f32 throughout; the SIMD builds sum each dot in four lanes (another rounding order)
      expectClose(c.got, want, variant === 'scalar' ? 1e-6 : 1e-5, 1e-6);
      expect(c.firstZero).toBe(true);
      // independent check of the stored codes: scale = fp16(absmax/127), |x − code·scale| ≤ scale/2
      for (let grp = 0; grp < c.ks.length; grp++) {
        const xs = c.keys.subarray(grp * c.headDim, (grp + 1) * c.headDim);
        expect(c.ks[grp]).toBe(f16ToF32(f32ToF16(Math.max(...xs.map(Math.abs)) / 127)));
        for (let i = 0; i < c.headDim; i++) expect(Math.abs(xs[i] - c.kc[grp * c.headDim + i] * c.ks[grp])).toBeLessThanOrEqual(c.ks[grp] / 2 + 1e-6);
      }
      // and the result is f32 attention over the dequantized states, up to rounding
      const deq = (codes: Int8Array, s: Float32Array) => Float32Array.from(codes, (v, i) => v * s[Math.floor(i / c.headDim)]);
      const f32 = reference.attentionF32(c.q, deq(c.kc, c.ks), deq(c.vc, c.vs), c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale);
      expectClose(c.got, f32, 1e-5, 1e-6);
    }
  });
});

describe('attentionQ8 in a pool', () => {
  it('equals one thread bit for bit', async () => {
    const pool = await createKernelPool({ threads: 2, variant: 'simd-threads' });
    pools.push(pool);
    const one = await createKernels({ variant: 'simd' });
    expect(Array.from(run(pool, SHAPES[2]).got)).toEqual(Array.from(run(one, SHAPES[2]).got));
  });
});
