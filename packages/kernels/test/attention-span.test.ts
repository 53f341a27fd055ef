import { afterAll, describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, isLowbitError, type Kernels, type KernelPool, reference } from '../dist/index-node.js';
import { expectClose, randF32, rng } from './helpers.js';

const pools: KernelPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

// [nHeads, nKvHeads, headDim, pos, n]: the SIMD path (headDim % 4 == 0) and the scalar tail (6);
// one context past a block of positions (64 at headDim 64).
const SHAPES = [
  [8, 4, 8, 0, 1],
  [8, 4, 8, 20, 7],
  [4, 1, 64, 30, 1],
  [6, 2, 6, 3, 9],
  [8, 2, 64, 140, 2],
] as const;

function setup(k: Kernels, shape: readonly number[]) {
  const [nHeads, nKvHeads, headDim, pos, n] = shape;
  const r = rng(nHeads * 17 + headDim * 5 + pos + n);
  const kvDim = nKvHeads * headDim;
  const ctx = pos + n;
  const keys = randF32(r, ctx * kvDim);
  const values = randF32(r, ctx * kvDim);
  const q = randF32(r, n * nHeads * headDim, 2);
  const kc = k.upload(keys);
  const vc = k.upload(values);
  const kNew = keys.slice(pos * kvDim);
  const vNew = values.slice(pos * kvDim);
  const scale = 1 / Math.sqrt(headDim);
  return { nHeads, nKvHeads, headDim, pos, n, ctx, keys, values, q, kc, vc, kNew, vNew, scale };
}

describe.each(['relaxed', 'simd', 'scalar'] as const)('attentionSpan (%s)', (variant) => {
  it('with every span covering the context equals attention bit for bit', async () => {
    const k = await createKernels({ variant });
    for (const shape of SHAPES) {
      const c = setup(k, shape);
      const full = k.attention(c.q, c.kNew, c.vNew, c.kc, c.vc, 0, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale);
      for (const span of [c.ctx, c.ctx + 100, 2 ** 30]) {
        const got = k.attentionSpan(c.q, c.kNew, c.vNew, c.kc, c.vc, 0, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale, new Int32Array(c.nHeads).fill(span));
        expect(Array.from(got)).toEqual(Array.from(full));
      }
    }
  });

  it('short spans match reference.attentionSpanF32 and a full attention over the last span keys', async () => {
    const k = await createKernels({ variant });
    for (const shape of SHAPES) {
      const c = setup(k, shape);
      const spans = Int32Array.from({ length: c.nHeads }, (_, h) => 1 + ((h * 5) % (c.ctx + 2)));
      const got = k.attentionSpan(c.q, c.kNew, c.vNew, c.kc, c.vc, 0, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale, spans);
      const want = reference.attentionSpanF32(c.q, c.keys, c.values, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale, spans);
      // f32 throughout; the SIMD builds sum each dot in four lanes (another rounding order).
      expectClose(got, want, variant === 'scalar' ? 1e-6 : 1e-5, 1e-6);
      // Independent of the span code: the last query with span s is full attention over the last s keys alone.
      const kvDim = c.nKvHeads * c.headDim;
      const dim = c.nHeads * c.headDim;
      for (let h = 0; h < c.nHeads; h++) {
        const lo = Math.max(0, c.ctx - spans[h]);
        const one = new Int32Array(c.nHeads).fill(2 ** 30);
        const qLast = c.q.slice((c.n - 1) * dim, c.n * dim);
        const ref = reference.attentionSpanF32(qLast, c.keys.slice(lo * kvDim), c.values.slice(lo * kvDim), c.ctx - lo - 1, 1, c.nHeads, c.nKvHeads, c.headDim, c.scale, one);
        const g = got.subarray((c.n - 1) * dim + h * c.headDim, (c.n - 1) * dim + (h + 1) * c.headDim);
        expectClose(g, ref.subarray(h * c.headDim, (h + 1) * c.headDim), 1e-5, 1e-6);
      }
    }
  });

  it('refuses spans below 1 or of the wrong length', async () => {
    const k = await createKernels({ variant });
    const c = setup(k, SHAPES[0]);
    for (const spans of [new Int32Array(c.nHeads), new Int32Array(c.nHeads - 1).fill(4)]) {
      let err: unknown;
      try {
        k.attentionSpan(c.q, c.kNew, c.vNew, c.kc, c.vc, 0, c.pos, c.n, c.nHeads, c.nKvHeads, c.headDim, c.scale, spans);
      } catch (e) {
        err = e;
      }
      expect(isLowbitError(err)).toBe(true);
    }
  });
});

describe('attentionSpan in a pool', () => {
  it('splits heads over threads with results equal to one thread', async () => {
    const pool = await createKernelPool({ threads: 2, variant: 'simd-threads' });
    pools.push(pool);
    const one = await createKernels({ variant: 'simd' });
    const a = setup(pool, SHAPES[1]);
    const b = setup(one, SHAPES[1]);
    const spans = Int32Array.from({ length: a.nHeads }, (_, h) => 2 + h * 3);
    const got = pool.attentionSpan(a.q, a.kNew, a.vNew, a.kc, a.vc, 0, a.pos, a.n, a.nHeads, a.nKvHeads, a.headDim, a.scale, spans);
    const want = one.attentionSpan(b.q, b.kNew, b.vNew, b.kc, b.vc, 0, b.pos, b.n, b.nHeads, b.nKvHeads, b.headDim, b.scale, spans);
    expect(Array.from(got)).toEqual(Array.from(want));
  });
});
