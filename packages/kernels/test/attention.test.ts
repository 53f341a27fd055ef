import { afterAll, describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, type KernelPool, reference } from '../dist/index-node.js';
import { expectClose, randF32, rng } from './helpers.js';

const pools: KernelPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

// [nHeads, nKvHeads, headDim, pos, n]: SIMD paths for headDim % 32 == 0 (values in registers),
// % 4 == 0, and the scalar tail (headDim 6); decode (n = 1) and prefill with a cache already filled;
// contexts past one block of positions (64 at headDim 64, 512 at headDim 8: attendGroup).
const SHAPES = [
  [8, 4, 8, 0, 1],
  [8, 4, 8, 5, 7],
  [4, 1, 64, 0, 9],
  [32, 4, 64, 37, 1],
  [6, 2, 6, 3, 4],
  [3, 3, 96, 10, 2],
  [16, 2, 64, 150, 2],
  [4, 2, 8, 517, 3],
] as const;

function caseData(shape: readonly number[]) {
  const [nHeads, nKvHeads, headDim, pos, n] = shape;
  const r = rng(nHeads * 131 + headDim * 7 + pos + n);
  const kvDim = nKvHeads * headDim;
  const ctx = pos + n + 3;
  const keys = randF32(r, ctx * kvDim);
  const values = randF32(r, ctx * kvDim);
  const q = randF32(r, n * nHeads * headDim, 2);
  const kNew = keys.slice(pos * kvDim, (pos + n) * kvDim);
  const vNew = values.slice(pos * kvDim, (pos + n) * kvDim);
  const scale = 1 / Math.sqrt(headDim);
  const want = reference.attentionF32(q, keys, values, pos, n, nHeads, nKvHeads, headDim, scale);
  return { nHeads, nKvHeads, headDim, pos, n, kvDim, ctx, keys, values, q, kNew, vNew, scale, want };
}

describe.each(['relaxed', 'simd', 'scalar'] as const)('attention (%s)', (variant) => {
  it('matches reference.attentionF32 and writes the new keys/values into the cache', async () => {
    const k = await createKernels({ variant });
    for (const shape of SHAPES) {
      const c = caseData(shape);
      // Two layers in one cache: the case sits in the second (offset), the first stays untouched.
      const layer = c.ctx * c.kvDim;
      const kc = k.upload(new Float32Array(2 * layer));
      const vc = k.upload(new Float32Array(2 * layer));
      new Float32Array(k.memory.buffer, kc.ptr + layer * 4, c.pos * c.kvDim).set(c.keys.subarray(0, c.pos * c.kvDim));
      new Float32Array(k.memory.buffer, vc.ptr + layer * 4, c.pos * c.kvDim).set(c.values.subarray(0, c.pos * c.kvDim));
      const got = k.attention(c.q, c.kNew, c.vNew, kc, vc, layer, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale);
      // f32 throughout; the SIMD builds sum each dot in four lanes (another rounding order).
      expectClose(got, c.want, variant === 'scalar' ? 1e-6 : 1e-5, 1e-6);
      const stored = new Float32Array(k.memory.buffer, kc.ptr + (layer + c.pos * c.kvDim) * 4, c.n * c.kvDim);
      expect(Array.from(stored)).toEqual(Array.from(c.kNew));
      expect(new Float32Array(k.memory.buffer, kc.ptr, layer).every((v) => v === 0)).toBe(true);
      kc.free();
      vc.free();
    }
  });
});

describe('attention in a pool', () => {
  it('splits heads over threads and equals one thread of the same build', async () => {
    const pool = await createKernelPool({ threads: 2 });
    pools.push(pool);
    const single = await createKernels({ variant: pool.variant === 'relaxed-threads' ? 'relaxed' : 'simd' });
    for (const shape of SHAPES) {
      const c = caseData(shape);
      const run = (k: typeof single) => {
        const kc = k.upload(new Float32Array(c.ctx * c.kvDim));
        const vc = k.upload(new Float32Array(c.ctx * c.kvDim));
        new Float32Array(k.memory.buffer, kc.ptr, c.pos * c.kvDim).set(c.keys.subarray(0, c.pos * c.kvDim));
        new Float32Array(k.memory.buffer, vc.ptr, c.pos * c.kvDim).set(c.values.subarray(0, c.pos * c.kvDim));
        const o = k.attention(c.q, c.kNew, c.vNew, kc, vc, 0, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale);
        kc.free();
        vc.free();
        return o;
      };
      expect(Array.from(run(pool))).toEqual(Array.from(run(single)));
    }
  });

  it('rejects a cache too small for pos + n', async () => {
    const k = await createKernels();
    const kc = k.upload(new Float32Array(4 * 8));
    const q = new Float32Array(16);
    expect(() => k.attention(q, new Float32Array(8), new Float32Array(8), kc, kc, 0, 4, 1, 2, 1, 8, 1)).toThrow(/keys holds 128 bytes/);
    kc.free();
  });
});

describe.each(['relaxed', 'simd', 'scalar'] as const)('siluMul (%s)', (variant) => {
  it('equals reference.siluMul to a few ulp, including large |g|', async () => {
    const k = await createKernels({ variant });
    const r = rng(5);
    const g = Float32Array.from({ length: 1003 }, (_, i) => (i < 8 ? [-200, -90, -88, -20, 20, 88, 90, 200][i] : (r() * 2 - 1) * 12));
    const u = randF32(r, g.length, 3);
    const got = k.siluMul(g, u.slice());
    const want = reference.siluMul(g, u.slice());
    // e^x to ~2 ulp, then one division and one product: relative 1e-6 per element
    for (let i = 0; i < g.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]) + 1e-30);
  });
});
