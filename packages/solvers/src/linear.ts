import { LowbitError } from '@lowbit/core';

/**
 * Solves A·x = b for a small symmetric positive (semi)definite A [n, n] by Cholesky, adding
 * `damp`·mean(diag A) to the diagonal when A is singular (the ridge that keeps BCQ's and GPTQ's
 * normal equations solvable when a column is dead).
 */
export function solveSpd(A: Float64Array, b: Float64Array, n: number, damp = 0): Float64Array {
  if (A.length !== n * n || b.length !== n) throw new LowbitError('E_SHAPE', `solveSpd: A must be [${n}, ${n}] and b [${n}], got ${A.length} and ${b.length}`);
  let mean = 0;
  for (let i = 0; i < n; i++) mean += A[i * n + i];
  mean /= Math.max(1, n);
  for (const d of [damp, 1e-10, 1e-6, 1e-3]) {
    const L = choleskyLower(A, n, d * (mean > 0 ? mean : 1));
    if (L) {
      const y = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = b[i];
        for (let k = 0; k < i; k++) s -= L[i * n + k] * y[k];
        y[i] = s / L[i * n + i];
      }
      const x = new Float64Array(n);
      for (let i = n - 1; i >= 0; i--) {
        let s = y[i];
        for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
        x[i] = s / L[i * n + i];
      }
      return x;
    }
  }
  throw new LowbitError('E_ARG', 'solveSpd: matrix is not positive definite even after dampening');
}

function choleskyLower(A: Float64Array, n: number, add: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * n + j] + (i === j ? add : 0);
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * n + i] = Math.sqrt(s);
      } else L[i * n + j] = s / L[j * n + j];
    }
  }
  return L;
}

/** min ‖M·x − y‖² for M [m, n] (n small) via the normal equations MᵀM x = Mᵀy. */
export function leastSquares(M: Float64Array, m: number, n: number, y: ArrayLike<number>, damp = 0): Float64Array {
  if (M.length !== m * n || y.length !== m) throw new LowbitError('E_SHAPE', `leastSquares: M must be [${m}, ${n}] and y [${m}]`);
  const A = new Float64Array(n * n);
  const b = new Float64Array(n);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < n; i++) {
      const mi = M[r * n + i];
      b[i] += mi * y[r];
      for (let j = 0; j <= i; j++) A[i * n + j] += mi * M[r * n + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) A[j * n + i] = A[i * n + j];
  return solveSpd(A, b, n, damp);
}
