import { describe, expect, it } from 'vitest';
import {
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
