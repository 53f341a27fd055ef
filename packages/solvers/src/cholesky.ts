import { LowbitError } from '@lowbit/kernels';

/** Dense symmetric matrices are row-major Float64Array [n, n]; only the values matter, not a class. */
function checkSquare(fn: string, A: ArrayLike<number>, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new LowbitError('E_ARG', `${fn}: n must be a non-negative integer, got ${n}`);
  if (A.length !== n * n) throw new LowbitError('E_SHAPE', `${fn}: matrix must be [${n}, ${n}] (${n * n} values), got ${A.length}`);
}

export interface CholeskyOptions {
  /** Adds `damp`·mean(diag A) to the diagonal first (GPTQ's percdamp, §4 "Cholesky reformulation"). */
  damp?: number;
}

/**
 * Lower Cholesky factor L with L·Lᵀ = A + damp·mean(diag A)·I. Throws E_ARG naming the first
 * pivot that is not positive, since a silent NaN here would turn a whole GPTQ layer into NaNs.
 */
export function cholesky(A: ArrayLike<number>, n: number, options: CholeskyOptions = {}): Float64Array {
  checkSquare('cholesky', A, n);
  const damp = options.damp ?? 0;
  if (!(damp >= 0)) throw new LowbitError('E_ARG', `cholesky: damp must be >= 0, got ${damp}`);
  let add = 0;
  if (damp > 0) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += A[i * n + i];
    add = (damp * mean) / Math.max(1, n);
  }
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    // Column-oriented (left-looking) so every inner loop runs along contiguous rows of L.
    let d = A[j * n + j] + add;
    const rj = j * n;
    for (let k = 0; k < j; k++) d -= L[rj + k] * L[rj + k];
    if (!(d > 0) || !Number.isFinite(d)) {
      throw new LowbitError('E_ARG', `cholesky: matrix is not positive definite (pivot ${j} of ${n} is ${d}); increase damp`);
    }
    const ljj = Math.sqrt(d);
    L[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = A[ri + j];
      for (let k = 0; k < j; k++) s -= L[ri + k] * L[rj + k];
      L[ri + j] = s / ljj;
    }
  }
  return L;
}

/** Solves L·x = b (L lower triangular [n, n]) in place of a copy of b. */
export function solveLower(L: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  checkSquare('solveLower', L, n);
  if (b.length !== n) throw new LowbitError('E_SHAPE', `solveLower: b must have ${n} values, got ${b.length}`);
  const x = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = x[i];
    for (let k = 0; k < i; k++) s -= L[i * n + k] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

/** Solves Lᵀ·x = b for the same lower L (i.e. an upper-triangular solve without transposing). */
export function solveLowerTransposed(L: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  checkSquare('solveLowerTransposed', L, n);
  if (b.length !== n) throw new LowbitError('E_SHAPE', `solveLowerTransposed: b must have ${n} values, got ${b.length}`);
  const x = Float64Array.from(b);
  for (let i = n - 1; i >= 0; i--) {
    let s = x[i];
    for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k];
    x[i] = s / L[i * n + i];
  }
  return x;
}

/** Solves U·x = b for an upper-triangular U [n, n]. */
export function solveUpper(U: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  checkSquare('solveUpper', U, n);
  if (b.length !== n) throw new LowbitError('E_SHAPE', `solveUpper: b must have ${n} values, got ${b.length}`);
  const x = Float64Array.from(b);
  for (let i = n - 1; i >= 0; i--) {
    let s = x[i];
    for (let k = i + 1; k < n; k++) s -= U[i * n + k] * x[k];
    x[i] = s / U[i * n + i];
  }
  return x;
}

/** A⁻¹ from the lower Cholesky factor of A: A⁻¹ = L⁻ᵀ·L⁻¹ (symmetric, returned in full). */
export function choleskyInverse(L: ArrayLike<number>, n: number): Float64Array {
  checkSquare('choleskyInverse', L, n);
  // Linv = L⁻¹ (lower), by forward substitution on the identity, column by column.
  const Li = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    Li[j * n + j] = 1 / L[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s -= L[i * n + k] * Li[k * n + j];
      Li[i * n + j] = s / L[i * n + i];
    }
  }
  // (A⁻¹)ij = Σ_k≥max(i,j) Li[k,i]·Li[k,j]
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += Li[k * n + i] * Li[k * n + j];
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** A⁻¹ of a symmetric positive definite A (with optional dampening), by Cholesky. */
export function inverseSpd(A: ArrayLike<number>, n: number, options: CholeskyOptions = {}): Float64Array {
  return choleskyInverse(cholesky(A, n, options), n);
}

/**
 * Upper-triangular U with UᵀU = H⁻¹: the matrix GPTQ's loop reads (paper §4, "Cholesky
 * reformulation"). Row q of U, divided by U[q,q], is exactly the OBS update direction
 * H⁻¹[q, q:]/H⁻¹[q,q] of the inverse Hessian after columns 0..q−1 were eliminated, so the
 * sequence of Gaussian eliminations collapses into one factorization.
 */
export function inverseCholeskyUpper(H: ArrayLike<number>, n: number, options: CholeskyOptions = {}): Float64Array {
  const Hinv = inverseSpd(H, n, options);
  // Upper factor from the lower one: H⁻¹ = L·Lᵀ = (Lᵀ)ᵀ·Lᵀ, so U = Lᵀ.
  const L = cholesky(Hinv, n);
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) U[i * n + j] = L[j * n + i];
  return U;
}
