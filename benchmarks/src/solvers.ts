// Solver rows: Cholesky and inverse (GPTQ's numerical core), exact 1-D k-means (codebooks), and HiGHS
// on the embedded model's CLADO instance (bit allocation), from a cached measurement of G.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadKernels } from '@lowbit/kernels';
import { cholesky, choleskyBlocked, choleskyInverse, kmeans1d, oneHotSizeRange, solveOneHotQuadratic } from '@lowbit/solvers';
import { type CladoFixture, FIXTURE_URL, fixtureG } from './clado-fixture.js';
import { type Area, type Context, type Row, ratioRows } from './harness.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Symmetric positive definite by diagonal dominance (off-diagonal |a| < 1, diagonal n): O(n²) to build, unlike B·Bᵀ. */
function spd(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    A[i * n + i] = n;
    for (let j = 0; j < i; j++) A[i * n + j] = A[j * n + i] = r() * 2 - 1;
  }
  return A;
}

/** Median ms of `runs` awaited calls. */
async function timeAsync(fn: () => Promise<unknown>, runs: number): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[t.length >> 1];
}

async function choleskyRows(ctx: Context, quick: boolean): Promise<Row[]> {
  const rows: Row[] = [];
  const k = await loadKernels();
  for (const n of quick ? [512] : [512, 1024, 2048]) {
    const A = spd(n, n);
    // one run at the sizes where a plain TypeScript factorization takes seconds
    const runs = n >= 1024 ? 1 : 3;
    const factor = n ** 3 / 3;
    ctx.log(`  solvers: Cholesky n = ${n}`);
    const ts = await ctx.timeRuns(() => cholesky(A, n), runs);
    const blocked = await ctx.timeRuns(() => choleskyBlocked(A, n), runs);
    const wasm = await ctx.timeRuns(() => choleskyBlocked(A, n, { kernels: k }), runs);
    rows.push(...ratioRows('solvers', `Cholesky n = ${n}`, [
      { variant: 'TypeScript (cholesky, f64)', ms: ts, flops: factor },
      { variant: 'TypeScript blocked (choleskyBlocked, f64)', ms: blocked, flops: factor },
      { variant: `wasm ${k.variant} (choleskyBlocked, f32 trailing updates)`, ms: wasm, flops: factor, note: 'trailing updates as f32 matmuls on the kernels; diagonal blocks and panels f64' },
    ]));
    // the inverse from the factor has no WASM path: one TypeScript time, added to each factorization
    const L = cholesky(A, n);
    const inv = await ctx.timeRuns(() => choleskyInverse(L, n), runs);
    const both = n ** 3; // n³/3 factor + n³/3 for L⁻¹ + n³/3 for L⁻ᵀ·L⁻¹
    const note = 'choleskyInverse (TypeScript; no WASM path) timed once and added to the factorization';
    rows.push(...ratioRows('solvers', `Cholesky + inverse n = ${n}`, [
      { variant: 'TypeScript (cholesky + choleskyInverse)', ms: ts + inv, flops: both, note },
      { variant: 'TypeScript blocked + choleskyInverse', ms: blocked + inv, flops: both, note },
      { variant: `wasm ${k.variant} blocked + choleskyInverse`, ms: wasm + inv, flops: both, note },
    ]));
  }
  return rows;
}

async function kmeansRows(ctx: Context, quick: boolean): Promise<Row[]> {
  const n = quick ? 100_000 : 1_000_000;
  const k = 16;
  const r = rng(7);
  // weights-like values: a sum of uniforms (bell-shaped), as a layer's weights are
  const v = Float32Array.from({ length: n }, () => r() + r() + r() - 1.5);
  ctx.log(`  solvers: kmeans1d n = ${n}, k = ${k}`);
  const ms = await ctx.timeRuns(() => kmeans1d(v, k), quick ? 1 : 2);
  return [{
    area: 'solvers', name: `kmeans1d n = ${n}, k = ${k}`, variant: 'TypeScript (exact DP, divide and conquer)', ms,
    rate: { value: n / ms / 1e3, unit: 'M values/s' }, ratio: 1, baseline: 'TypeScript (exact DP, divide and conquer)', note: 'no WASM path',
  }];
}

export async function highsRows(ctx: Context, quick: boolean): Promise<Row[]> {
  if (!existsSync(FIXTURE_URL)) {
    ctx.log(`  solvers: no ${fileURLToPath(FIXTURE_URL)} (node benchmarks/dist/clado-fixture.js writes it): HiGHS rows skipped`);
    return [];
  }
  const f = JSON.parse(readFileSync(FIXTURE_URL, 'utf8')) as CladoFixture;
  const K = f.settings.bits.length;
  const G = fixtureG(f);
  const total = f.counts.reduce((a, b) => a + b, 0);
  const base = { choices: f.layers.map(() => K), G, sizes: f.sizeBits, budget: 0 };
  const range = oneHotSizeRange(base);
  const rows: Row[] = [];
  // HiGHS's WASM module loads on the first solve: not part of any row
  await solveOneHotQuadratic({ choices: [1], G: [0], sizes: [0], budget: 0 });
  for (const bits of quick ? [3] : [3, 4]) {
    const p = { ...base, budget: Math.min(Math.max(bits * total, range.min), range.max) };
    const m: { variant: string; ms: number; note?: string }[] = [];
    for (const [variant, diagonalOnly] of [['diagonal (no cross terms)', true], ['CLADO (block pairs)', false]] as const) {
      let status = '';
      const ms = await timeAsync(async () => {
        const s = await solveOneHotQuadratic(p, { diagonalOnly });
        status = `${s.solver.status}, gap ${(100 * s.solver.gap).toFixed(3)}%, ${s.solver.columns} columns × ${s.solver.rows} rows, ${s.solver.nodes} nodes`;
      }, quick ? 1 : 3);
      m.push({ variant: `HiGHS ${variant}`, ms, note: status });
    }
    rows.push(...ratioRows('solvers', `HiGHS CLADO instance stories260K (${f.layers.length} layers × ${K}: int${f.settings.bits.join('/')} g${f.settings.group}), ${bits} bits/weight`, m));
  }
  return rows;
}

export const solversArea: Area = {
  name: 'solvers',
  async run(ctx: Context): Promise<Row[]> {
    const quick = process.argv.includes('--quick');
    return [...(await highsRows(ctx, quick)), ...(await kmeansRows(ctx, quick)), ...(await choleskyRows(ctx, quick))];
  },
};
