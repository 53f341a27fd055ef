import { LowbitError } from '@lowbit/core';
import type { Kernels } from '@lowbit/kernels';

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

/**
 * What the blocked factorization needs from `@lowbit/kernels` (a `Kernels` or a `KernelPool`):
 * `matmulF32` computes out[b, r] = Σc W[r, c]·x[b, c] in f32 on WASM SIMD, `upload` makes W resident.
 * A type only: solvers runs without the WebAssembly package (an optional peer) when none is passed.
 */
export type MatmulKernels = Pick<Kernels, 'upload' | 'matmulF32'>;

export interface BlockedCholeskyOptions extends CholeskyOptions {
  /**
   * Do the trailing updates (all but O(n²·block) of the n³/6 multiply-adds) as f32 matmuls on these
   * kernels; diagonal blocks and panels stay f64. Without kernels the same blocked order runs in f64.
   */
  kernels?: MatmulKernels;
  /** Columns per block. Default 128. */
  block?: number;
  /**
   * Factor P·A·Pᵀ instead of A, where (P·A·Pᵀ)[i, j] = A[order[i], order[j]] (GPTQ's act-order
   * permutation), read straight from A so no permuted copy of A is made.
   */
  order?: ArrayLike<number>;
}

/** Output rows per kernel call of a trailing update (bounds its f32 result to strip × m values). */
const STRIP = 256;

/**
 * Lower Cholesky factor L (L·Lᵀ = A + damp·mean(diag A)·I, upper part zero), right-looking and
 * blocked so that the O(n³) part is one rank-`block` update per block column: with `kernels` a
 * 5632² Hessian factors in seconds instead of minutes (the unblocked `cholesky` reads L by columns).
 * Same result as `cholesky` up to rounding: f64 summation order without kernels, f32 products with.
 */
export function choleskyBlocked(A: ArrayLike<number>, n: number, options: BlockedCholeskyOptions = {}): Float64Array {
  checkSquare('choleskyBlocked', A, n);
  const L = new Float64Array(n * n);
  const order = options.order;
  if (order && order.length !== n) throw new LowbitError('E_SHAPE', `choleskyBlocked: order must have ${n} entries, got ${order.length}`);
  for (let i = 0; i < n; i++) {
    const src = (order ? order[i] : i) * n;
    for (let j = 0; j <= i; j++) L[i * n + j] = A[src + (order ? order[j] : j)];
  }
  return choleskyBlockedInPlace(L, n, options);
}

/** `choleskyBlocked` on the lower triangle of L itself (the upper part is ignored, then zeroed). */
export function choleskyBlockedInPlace(L: Float64Array, n: number, options: BlockedCholeskyOptions = {}): Float64Array {
  checkSquare('choleskyBlocked', L, n);
  const damp = options.damp ?? 0;
  if (!(damp >= 0)) throw new LowbitError('E_ARG', `choleskyBlocked: damp must be >= 0, got ${damp}`);
  const nb = options.block ?? 128;
  if (!Number.isInteger(nb) || nb < 1) throw new LowbitError('E_ARG', `choleskyBlocked: block must be a positive integer, got ${nb}`);
  if (damp > 0) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += L[i * n + i];
    const add = (damp * mean) / Math.max(1, n);
    for (let i = 0; i < n; i++) L[i * n + i] += add;
  }
  const k = options.kernels;
  for (let k0 = 0; k0 < n; k0 += nb) {
    const k1 = Math.min(n, k0 + nb);
    // Diagonal block and the panel below it: the updates from columns < k0 are already applied.
    // With kernels only the diagonal block is solved here; the panel is A_panel·L_kk⁻ᵀ, one matmul.
    const rowEnd = k ? k1 : n;
    for (let j = k0; j < k1; j++) {
      const rj = j * n;
      let d = L[rj + j];
      for (let p = k0; p < j; p++) d -= L[rj + p] * L[rj + p];
      if (!(d > 0) || !Number.isFinite(d)) {
        throw new LowbitError('E_ARG', `choleskyBlocked: matrix is not positive definite (pivot ${j} of ${n} is ${d}); increase damp`);
      }
      const ljj = Math.sqrt(d);
      L[rj + j] = ljj;
      for (let i = j + 1; i < rowEnd; i++) {
        const ri = i * n;
        let s = L[ri + j];
        for (let p = k0; p < j; p++) s -= L[ri + p] * L[rj + p];
        L[ri + j] = s / ljj;
      }
    }
    const m = n - k1;
    if (m === 0) break;
    const w = k1 - k0;
    if (k) panelKernels(k, L, n, k0, k1);
    // Trailing update L[i, j] −= Σ_p L[i, p]·L[j, p] over this block's columns p, lower triangle only.
    if (k) {
      const P = new Float32Array(m * w);
      for (let a = 0; a < m; a++) for (let p = 0; p < w; p++) P[a * w + p] = L[(k1 + a) * n + k0 + p];
      const pt = k.upload(P);
      try {
        for (let s0 = 0; s0 < m; s0 += STRIP) {
          const s1 = Math.min(m, s0 + STRIP);
          // Rows r < s1 of P against the strip's rows b: out[b, r] = (P·Pᵀ)[s0 + b, r], r ≤ s0 + b used.
          const out = k.matmulF32(pt, s1, w, P.subarray(s0 * w, s1 * w), s1 - s0);
          for (let b = 0; b < s1 - s0; b++) {
            const ri = (k1 + s0 + b) * n + k1;
            const ob = b * s1;
            for (let r = 0; r <= s0 + b; r++) L[ri + r] -= out[ob + r];
          }
        }
      } finally {
        pt.free();
      }
    } else {
      for (let i = k1; i < n; i++) {
        const ri = i * n;
        for (let j = k1; j <= i; j++) {
          const rj = j * n;
          let s = 0;
          for (let p = k0; p < k1; p++) s += L[ri + p] * L[rj + p];
          L[ri + j] -= s;
        }
      }
    }
  }
  for (let i = 0; i < n; i++) L.fill(0, i * n + i + 1, (i + 1) * n);
  return L;
}

/** L[k1:, k0:k1] = A[k1:, k0:k1]·L_kk⁻ᵀ with L_kk = L[k0:k1, k0:k1] (lower), as f32 matmuls in strips of rows. */
function panelKernels(k: MatmulKernels, L: Float64Array, n: number, k0: number, k1: number): void {
  const w = k1 - k0;
  // X = L_kk⁻¹ (lower), column by column: X[i, j] = −Σ_{j≤p<i} L[i, p]·X[p, j] / L[i, i].
  const X = new Float64Array(w * w);
  for (let j = 0; j < w; j++) {
    X[j * w + j] = 1 / L[(k0 + j) * n + k0 + j];
    for (let i = j + 1; i < w; i++) {
      let s = 0;
      for (let p = j; p < i; p++) s -= L[(k0 + i) * n + k0 + p] * X[p * w + j];
      X[i * w + j] = s / L[(k0 + i) * n + k0 + i];
    }
  }
  // out[a, j] = Σ_c X[j, c]·A[a, c]: X (lower) is the matmul's W as it is.
  const xt = k.upload(Float32Array.from(X));
  const A = new Float32Array(STRIP * w);
  const out = new Float32Array(STRIP * w);
  try {
    for (let a0 = k1; a0 < n; a0 += STRIP) {
      const na = Math.min(n, a0 + STRIP) - a0;
      for (let a = 0; a < na; a++) for (let c = 0; c < w; c++) A[a * w + c] = L[(a0 + a) * n + k0 + c];
      k.matmulF32(xt, w, w, A.subarray(0, na * w), na, out.subarray(0, na * w));
      for (let a = 0; a < na; a++) for (let j = 0; j < w; j++) L[(a0 + a) * n + k0 + j] = out[a * w + j];
    }
  } finally {
    xt.free();
  }
}

export interface UpperLdl {
  /** Unit upper-triangular M [n, n], row-major (lower part zero). */
  m: Float64Array;
  /** The diagonal D [n]. */
  d: Float64Array;
}

/**
 * A + damp·mean(diag A)·I = M·D·Mᵀ with M unit upper triangular ("UDUᵀ", the Cholesky factor of the
 * reversed matrix read backwards: J·A·J = L·Lᵀ gives A = (J·L·J)(J·L·J)ᵀ with J·L·J upper).
 * This is what GPTQ needs without any inverse: the upper Cholesky factor of A⁻¹ is U = D^(−1/2)·M⁻¹,
 * and GPTQ's sequential updates w_F −= e_q·U[q, F]/U[q, q] add up to
 *   w̃_c = w_c + Σ_{q<c} (w_q − ŵ_q)·M[q, c]          (GPTQ as LDLQ: QuIP, Chee et al. 2023, §3)
 * with loss weights 1/U[q,q]² = D[q]. One n³/6 factorization replaces `inverseCholeskyUpper`'s four.
 * `order` factors P·A·Pᵀ (see `choleskyBlocked`).
 */
export function ldlUpper(A: ArrayLike<number>, n: number, options: BlockedCholeskyOptions = {}): UpperLdl {
  checkSquare('ldlUpper', A, n);
  const order = options.order;
  if (order && order.length !== n) throw new LowbitError('E_SHAPE', `ldlUpper: order must have ${n} entries, got ${order.length}`);
  // B = J·(P·A·Pᵀ)·J, lower triangle: B[i, j] = A[o(n−1−i), o(n−1−j)].
  const B = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = order ? order[n - 1 - i] : n - 1 - i;
    for (let j = 0; j <= i; j++) B[i * n + j] = A[oi * n + (order ? order[n - 1 - j] : n - 1 - j)];
  }
  choleskyBlockedInPlace(B, n, options);
  // V = J·L·J: V[q, c] = L[n−1−q, n−1−c] (upper for c ≥ q), read from the lower triangle while the
  // upper one is written, so one n² buffer holds both; M[q, c] = V[q, c]/V[c, c], D[c] = V[c, c]².
  const d = new Float64Array(n);
  for (let c = 0; c < n; c++) d[c] = B[(n - 1 - c) * n + (n - 1 - c)];
  for (let q = 0; q < n; q++) {
    B[q * n + q] = 1;
    for (let c = q + 1; c < n; c++) B[q * n + c] = B[(n - 1 - q) * n + (n - 1 - c)] / d[c];
  }
  for (let i = 0; i < n; i++) {
    B.fill(0, i * n, i * n + i);
    d[i] *= d[i];
  }
  return { m: B, d };
}
