import { loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import {
  choleskyBlocked, ldlUpper,
  cholesky, choleskyInverse, inverseCholeskyUpper, inverseSpd, isLowbitError, pca, solveLower, solveLowerTransposed, solveSpd, solveUpper, symmetricEigen,
} from '../src/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** H = 2·XᵀX + tiny ridge: the shape of matrix GPTQ factors. */
function spd(n: number, m: number, seed: number): Float64Array {
  const r = rng(seed);
  const X = Float64Array.from({ length: m * n }, r);
  const H = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < m; k++) s += X[k * n + i] * X[k * n + j];
    H[i * n + j] = 2 * s;
  }
  return H;
}

function matmul(A: Float64Array, B: Float64Array, n: number, tA = false): Float64Array {
  const C = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += (tA ? A[k * n + i] : A[i * n + k]) * B[k * n + j];
    C[i * n + j] = s;
  }
  return C;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const eye = (n: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));

describe('cholesky', () => {
  for (const n of [1, 5, 33]) {
    it(`L·Lᵀ = H for a random ${n}×${n} Hessian`, () => {
      const H = spd(n, 2 * n + 3, n);
      const L = cholesky(H, n);
      for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(L[i * n + j]).toBe(0);
      const LLt = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += L[i * n + k] * L[j * n + k];
        LLt[i * n + j] = s;
      }
      // f64 round-off of an O(n)-term sum of O(‖H‖) products
      expect(maxAbsDiff(LLt, H)).toBeLessThan(1e-12 * n * Math.max(...H));
    });
  }

  it('dampening adds damp·mean(diag) to the diagonal', () => {
    const H = Float64Array.of(2, 0, 0, 4);
    const L = cholesky(H, 2, { damp: 0.5 }); // mean diag 3 → +1.5
    expect(L[0] ** 2).toBeCloseTo(3.5, 12);
    expect(L[3] ** 2).toBeCloseTo(5.5, 12);
  });

  it('names the failing pivot of a non positive definite matrix', () => {
    const H = Float64Array.of(1, 2, 2, 1); // eigenvalues 3 and −1
    try {
      cholesky(H, 2);
      expect.unreachable();
    } catch (e) {
      expect(isLowbitError(e) && e.code).toBe('E_ARG');
      expect((e as Error).message).toMatch(/pivot 1 of 2/);
    }
    // a singular (rank-deficient) Hessian becomes factorable with dampening, as in GPTQ
    const S = Float64Array.of(1, 1, 1, 1);
    expect(() => cholesky(S, 2)).toThrow(/not positive definite/);
    expect(cholesky(S, 2, { damp: 0.01 })[3]).toBeGreaterThan(0);
  });

  it('rejects wrong shapes', () => {
    expect(() => cholesky(new Float64Array(5), 2)).toThrow(/\[2, 2\]/);
  });
});

describe('inverses and triangular solves', () => {
  const n = 24;
  const H = spd(n, 40, 7);
  const L = cholesky(H, n);

  it('H·H⁻¹ = I', () => {
    const Hi = choleskyInverse(L, n);
    expect(maxAbsDiff(matmul(H, Hi, n), eye(n))).toBeLessThan(1e-9); // cond(H) ~ 1e2–1e3 here
    expect(maxAbsDiff(inverseSpd(H, n), Hi)).toBe(0);
  });

  it('upper Cholesky of H⁻¹: UᵀU = H⁻¹, U upper triangular', () => {
    const U = inverseCholeskyUpper(H, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(U[i * n + j]).toBe(0);
    expect(maxAbsDiff(matmul(U, U, n, true), choleskyInverse(L, n))).toBeLessThan(1e-12);
  });

  it('row q of U is the inverse Hessian of the remaining columns q.. (GPTQ §4)', () => {
    const U = inverseCholeskyUpper(H, n);
    for (const q of [0, 5, n - 2]) {
      const m = n - q;
      const Hsub = new Float64Array(m * m);
      for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) Hsub[i * m + j] = H[(q + i) * n + q + j];
      const Hsubinv = inverseSpd(Hsub, m);
      const d = U[q * n + q];
      for (let j = 0; j < m; j++) expect(U[q * n + q + j] * d).toBeCloseTo(Hsubinv[j], 10);
    }
  });

  it('triangular solves agree with solveSpd', () => {
    const b = Float64Array.from({ length: n }, rng(3));
    const x = solveLowerTransposed(L, solveLower(L, b, n), n);
    expect(maxAbsDiff(x, solveSpd(H, b, n))).toBeLessThan(1e-10);
    const Lt = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Lt[i * n + j] = L[j * n + i];
    expect(maxAbsDiff(solveUpper(Lt, b, n), solveLowerTransposed(L, b, n))).toBe(0);
  });
});

describe('symmetricEigen and pca', () => {
  it('A·v = λ·v with orthonormal vectors, descending values', () => {
    const n = 12;
    const A = spd(n, 6, 11); // rank 6: six zero eigenvalues
    const { values, vectors } = symmetricEigen(A, n);
    for (let i = 1; i < n; i++) expect(values[i]).toBeLessThanOrEqual(values[i - 1] + 1e-12);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += A[r * n + k] * vectors[i * n + k];
        expect(s).toBeCloseTo(values[i] * vectors[i * n + r], 9);
      }
      for (let j = 0; j < n; j++) {
        let d = 0;
        for (let k = 0; k < n; k++) d += vectors[i * n + k] * vectors[j * n + k];
        expect(d).toBeCloseTo(i === j ? 1 : 0, 10);
      }
    }
    expect(Math.abs(values[n - 1])).toBeLessThan(1e-10);
  });

  it('pca finds the planted direction of a stretched cloud', () => {
    const r = rng(5);
    const m = 400;
    const dir = [3, 4, 0].map((v) => v / 5);
    const X = new Float64Array(m * 3);
    for (let i = 0; i < m; i++) {
      const t = 10 * r();
      for (let c = 0; c < 3; c++) X[i * 3 + c] = 7 + t * dir[c] + 0.1 * r();
    }
    const p = pca(X, m, 3, 1);
    expect(Math.abs(p.components[0] * dir[0] + p.components[1] * dir[1])).toBeGreaterThan(0.999);
    expect(p.explained[0]).toBeGreaterThan(0.99);
    expect(p.mean[0]).toBeCloseTo(7, 0);
    expect(() => pca(X, m, 3, 4)).toThrow(/k must be/);
  });
});

describe('blocked Cholesky and the upper M·D·Mᵀ factorization', () => {
  it('choleskyBlocked matches cholesky within 1e-12 of the largest entry (f64, any block size, with damp and a symmetric permutation)', () => {
    const n = 37;
    const A = spd(n, 50, 21);
    const L0 = cholesky(A, n, { damp: 0.01 });
    for (const block of [1, 5, 16, 64]) {
      // same sums in another order: 1e-12 of the largest entry
      expect(maxAbsDiff(choleskyBlocked(A, n, { damp: 0.01, block }), L0)).toBeLessThan(1e-12 * Math.max(...L0));
    }
    const order = Array.from({ length: n }, (_, i) => (i * 7) % n);
    const P = Float64Array.from({ length: n * n }, (_, k) => A[order[Math.floor(k / n)] * n + order[k % n]]);
    expect(maxAbsDiff(choleskyBlocked(A, n, { order, block: 8 }), cholesky(P, n))).toBeLessThan(1e-12 * Math.max(...L0));
  });

  it('with the WASM kernels the trailing updates are f32: L within 1e-5 relative', async () => {
    const k = await loadKernels();
    const n = 300;
    const A = spd(n, 400, 4);
    const L0 = cholesky(A, n, { damp: 0.01 });
    const L1 = choleskyBlocked(A, n, { damp: 0.01, kernels: k, block: 64 });
    expect(maxAbsDiff(L1, L0) / Math.max(...L0)).toBeLessThan(1e-5);
  });

  it('ldlUpper: A + λI = M·D·Mᵀ, M unit upper, and D, M⁻¹ are the rows GPTQ reads from inverseCholeskyUpper', () => {
    const n = 24;
    const A = spd(n, 30, 9);
    const { m, d } = ldlUpper(A, n, { damp: 0.01, block: 7 });
    let mean = 0;
    for (let i = 0; i < n; i++) mean += A[i * n + i] / n;
    const MD = Float64Array.from(m, (v, k) => v * d[k % n]);
    const R = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += MD[i * n + k] * m[j * n + k];
      R[i * n + j] = s;
    }
    const Ad = Float64Array.from(A, (v, k) => (k % (n + 1) === 0 ? v + 0.01 * mean : v));
    expect(maxAbsDiff(R, Ad)).toBeLessThan(1e-9 * Math.max(...Ad));
    for (let i = 0; i < n; i++) {
      expect(m[i * n + i]).toBe(1);
      for (let j = 0; j < i; j++) expect(m[i * n + j]).toBe(0);
    }
    // U = D^(−1/2)·M⁻¹: U[q,q]² = 1/D[q] and U·M = D^(−1/2) (upper factor of A⁻¹, GPTQ's matrix)
    const U = inverseCholeskyUpper(A, n, { damp: 0.01 });
    for (let q = 0; q < n; q++) {
      expect(U[q * n + q] ** 2 * d[q]).toBeCloseTo(1, 9);
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += U[q * n + k] * m[k * n + c];
        expect(s).toBeCloseTo(q === c ? 1 / Math.sqrt(d[q]) : 0, 8);
      }
    }
  });

  it('bad input: not positive definite, wrong order length', () => {
    const n = 3;
    const A = Float64Array.of(1, 2, 0, 2, 1, 0, 0, 0, 1);
    expect(() => choleskyBlocked(A, n)).toThrow(/not positive definite/);
    expect(() => ldlUpper(A, n, { order: [0, 1] })).toThrow(/order must have 3 entries/);
  });
});
