import { describe, expect, it } from 'vitest';
import { createKernelPool, createKernels, isLowbitError, trainAttentionBackward, trainAttentionForward, trainCrossEntropy, trainSwigluBackward, trainSwigluForward } from '../dist/index-node.js';
import { expectClose, randF32, rng } from './helpers.js';

// [n, nHeads, nKvHeads, headDim]: SIMD rows (headDim % 4 == 0, n past a multiple of 4), the scalar
// tail (headDim 6), a 1B-shaped head (64) and one token.
const SHAPES = [
  [37, 8, 4, 8],
  [9, 6, 2, 6],
  [20, 4, 1, 64],
  [1, 2, 2, 4],
] as const;

/** The training attention and its backward in f64 loops, written from the formulas (softmax, then dS = P⊙(dP − rowsum(P⊙dP))·scale). */
function reference(n: number, H: number, KV: number, D: number, q: Float32Array, k: Float32Array, v: Float32Array, dO: Float32Array) {
  const group = H / KV;
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(n * H * D);
  const probs = new Float64Array(H * n * n);
  const dq = new Float64Array(n * H * D);
  const dk = new Float64Array(n * KV * D);
  const dv = new Float64Array(n * KV * D);
  const qi = (t: number, h: number, d: number) => (t * H + h) * D + d;
  const ki = (t: number, g: number, d: number) => (t * KV + g) * D + d;
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < n; t++) {
      const s: number[] = [];
      for (let j = 0; j <= t; j++) {
        let a = 0;
        for (let d = 0; d < D; d++) a += q[qi(t, h, d)] * k[ki(j, g, d)];
        s.push(a * scale);
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, b) => a + b, 0);
      const p = e.map((x) => x / sum);
      p.forEach((x, j) => {
        probs[(h * n + t) * n + j] = x;
      });
      for (let d = 0; d < D; d++) for (let j = 0; j <= t; j++) out[qi(t, h, d)] += p[j] * v[ki(j, g, d)];
      const dp = p.map((_, j) => {
        let a = 0;
        for (let d = 0; d < D; d++) a += dO[qi(t, h, d)] * v[ki(j, g, d)];
        return a;
      });
      const rs = p.reduce((a, x, j) => a + x * dp[j], 0);
      for (let j = 0; j <= t; j++) {
        const ds = p[j] * (dp[j] - rs) * scale;
        for (let d = 0; d < D; d++) {
          dq[qi(t, h, d)] += ds * k[ki(j, g, d)];
          dk[ki(j, g, d)] += ds * q[qi(t, h, d)];
          dv[ki(j, g, d)] += p[j] * dO[qi(t, h, d)];
        }
      }
    }
  }
  return { out, probs, dq, dk, dv };
}

describe.each(['relaxed', 'simd', 'scalar'] as const)('training attention (%s)', (variant) => {
  it('forward and backward equal f64 loops from the formulas', async () => {
    const kernels = await createKernels({ variant });
    for (const [n, H, KV, D] of SHAPES) {
      const r = rng(n * 31 + H * 7 + D);
      const q = randF32(r, n * H * D, 2);
      const k = randF32(r, n * KV * D, 2);
      const v = randF32(r, n * KV * D);
      const dO = randF32(r, n * H * D);
      const ref = reference(n, H, KV, D, q, k, v, dO);
      const s = { n, nHeads: H, nKvHeads: KV, headDim: D };
      const out = new Float32Array(n * H * D);
      const probs = new Float32Array(H * n * n).fill(Number.NaN); // every entry must be written, zeros above the diagonal
      trainAttentionForward(kernels, s, q, k, v, out, probs);
      // f32 accumulation over ≤ 64-term dots and ≤ 37-term sums of values ≤ 4 in size, and the SIMD
      // exp (relative error < 2e-7): 2e-6 of the largest entry bounds it with margin.
      expectClose(probs, ref.probs, 2e-6, 1e-7);
      expectClose(out, ref.out, 2e-6, 1e-7);
      const dq = new Float32Array(n * H * D);
      const dk = new Float32Array(n * KV * D).fill(Number.NaN); // overwritten, not added to
      const dv = new Float32Array(n * KV * D).fill(Number.NaN);
      trainAttentionBackward(kernels, s, q, k, v, probs, dO, dq, dk, dv);
      // dk and dv sum up to n·group terms: 1e-5 relative to the largest entry
      expectClose(dq, ref.dq, 1e-5, 1e-7);
      expectClose(dk, ref.dk, 1e-5, 1e-7);
      expectClose(dv, ref.dv, 1e-5, 1e-7);
    }
  });
});

describe.each(['relaxed', 'simd', 'scalar'] as const)('training SwiGLU and cross-entropy (%s)', (variant) => {
  it('equal f64 loops from the formulas, extreme inputs included', async () => {
    const kernels = await createKernels({ variant });
    // 37 values: SIMD body and scalar tail; ±100 and ±90 run exp past f32's range both ways
    const r = rng(7);
    const g = randF32(r, 37, 8);
    g.set([100, -100, 90, -90, 0], 0);
    const u = randF32(r, 37, 2);
    const dh = randF32(r, 37, 1);
    const out = new Float32Array(37);
    trainSwigluForward(kernels, g, u, out);
    const [dg, du] = [new Float32Array(37), new Float32Array(37)];
    trainSwigluBackward(kernels, g, u, dh, dg, du);
    for (let i = 0; i < 37; i++) {
      const sg = 1 / (1 + Math.exp(-g[i]));
      // f32 products of values ≤ 100 and exp with relative error < 2e-7: 1e-6 relative (+1e-30 for the zeros)
      const close = (a: number, b: number, what: string) => expect(Math.abs(a - b), `${what}[${i}] g=${g[i]}`).toBeLessThanOrEqual(1e-6 * Math.abs(b) + 1e-30);
      close(out[i], g[i] * sg * u[i], 'out');
      close(du[i], dh[i] * g[i] * sg, 'du');
      close(dg[i], dh[i] * u[i] * sg * (1 + g[i] * (1 - sg)), 'dg');
    }
    const [rows, vocab] = [5, 67];
    const logits = randF32(r, rows * vocab, 6);
    logits[3] = 40; // one dominant logit
    const targets = [3, 0, 66, 10, 20];
    const probs = new Float32Array(rows * vocab);
    const loss = trainCrossEntropy(kernels, logits, targets, vocab, probs);
    let ref = 0;
    for (let t = 0; t < rows; t++) {
      const row = Array.from(logits.subarray(t * vocab, (t + 1) * vocab));
      const mx = Math.max(...row);
      const lse = mx + Math.log(row.reduce((a, x) => a + Math.exp(x - mx), 0));
      ref += lse - row[targets[t]];
      // a softmax entry in f32 from an f32 sum of ≤ 67 terms: 1e-6 absolute
      for (let i = 0; i < vocab; i++) expect(Math.abs(probs[t * vocab + i] - Math.exp(row[i] - lse))).toBeLessThan(1e-6);
    }
    // the row sums are f32 (relative 1e-6 of ~67 terms), the total f64: 1e-5 absolute on a mean of a few nats
    expect(Math.abs(loss - ref / rows)).toBeLessThan(1e-5);
    expect(() => trainCrossEntropy(kernels, logits, [3, 0, 67, 10, 20], vocab, probs)).toThrow(/target 2 is 67/);
  });
});

describe('training attention on a 2-thread pool', () => {
  it('equals the one-thread kernels bit for bit (heads split over threads, each head the same work)', async () => {
    const one = await createKernels({ variant: 'simd' });
    const pool = await createKernelPool({ threads: 2, variant: 'simd-threads' });
    try {
      for (const [n, H, KV, D] of [[37, 8, 4, 8], [20, 16, 4, 8]] as const) {
        const r = rng(n + H);
        const [q, dO] = [randF32(r, n * H * D, 2), randF32(r, n * H * D)];
        const [k, v] = [randF32(r, n * KV * D, 2), randF32(r, n * KV * D)];
        const s = { n, nHeads: H, nKvHeads: KV, headDim: D };
        const run = (kn: typeof one) => {
          const out = new Float32Array(n * H * D);
          const probs = new Float32Array(H * n * n);
          trainAttentionForward(kn, s, q, k, v, out, probs);
          const [dq, dk, dv] = [new Float32Array(n * H * D), new Float32Array(n * KV * D), new Float32Array(n * KV * D)];
          trainAttentionBackward(kn, s, q, k, v, probs, dO, dq, dk, dv);
          return [out, probs, dq, dk, dv];
        };
        const a = run(one);
        const b = run(pool);
        for (let i = 0; i < a.length; i++) expect(b[i]).toEqual(a[i]);
      }
    } finally {
      await pool.close();
    }
  });
});

describe('training attention arguments', () => {
  it('refuses wrong sizes and head counts with LowbitError', async () => {
    const kernels = await createKernels();
    const a = new Float32Array(8 * 4);
    const probs = new Float32Array(2 * 4 * 4);
    const ok = { n: 4, nHeads: 2, nKvHeads: 2, headDim: 4 };
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        return isLowbitError(e) ? e.code : 'not LowbitError';
      }
      return 'no error';
    };
    expect(code(() => trainAttentionForward(kernels, ok, a, a, a, a, probs.subarray(1)))).toBe('E_SHAPE');
    expect(code(() => trainAttentionForward(kernels, { ...ok, nKvHeads: 3 }, a, a, a, a, probs))).toBe('E_ARG');
    expect(code(() => trainAttentionForward(kernels, { ...ok, n: 0 }, a, a, a, a, probs))).toBe('E_ARG');
    expect(code(() => trainAttentionBackward(kernels, ok, a, a, a, probs, a, a, a, new Float32Array(3)))).toBe('E_SHAPE');
  });
});
