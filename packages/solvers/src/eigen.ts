import { LowbitError } from '@lowbit/core';

export interface SymmetricEigen {
  /** Eigenvalues, descending. */
  values: Float64Array;
  /** Eigenvectors as rows [n, n], row i belonging to values[i], unit length. */
  vectors: Float64Array;
}

/**
 * All eigenpairs of a symmetric A [n, n] by cyclic Jacobi rotations. Slow (O(n³) per sweep) but
 * unconditionally stable and accurate to machine precision, which is what reference PCA and
 * small covariance matrices (GradiVeQ buckets, activation statistics) need.
 */
export function symmetricEigen(A: ArrayLike<number>, n: number, maxSweeps = 100): SymmetricEigen {
  if (A.length !== n * n) throw new LowbitError('E_SHAPE', `symmetricEigen: matrix must be [${n}, ${n}], got ${A.length} values`);
  const a = Float64Array.from(A);
  for (let i = 0; i < n * n; i++) if (!Number.isFinite(a[i])) throw new LowbitError('E_NAN', `symmetricEigen: entry ${i} is ${a[i]}`);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += a[i] * a[i];
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        // Rotation angle that zeroes a[p,q] (Golub & Van Loan, Alg. 8.4.1).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((col, row) => {
    for (let k = 0; k < n; k++) vectors[row * n + k] = v[k * n + col];
  });
  return { values, vectors };
}

export interface Pca {
  /** Column means [n] subtracted before the decomposition. */
  mean: Float64Array;
  /** Principal directions as rows [k, n], unit length, by descending variance. */
  components: Float64Array;
  /** Variance along each component [k] (covariance eigenvalues, divided by m − 1). */
  variance: Float64Array;
  /** Fraction of the total variance each component explains [k]. */
  explained: Float64Array;
}

/** PCA of X [m, n] (m samples): the top-k eigenvectors of the sample covariance. */
export function pca(X: ArrayLike<number>, m: number, n: number, k: number): Pca {
  if (X.length !== m * n) throw new LowbitError('E_SHAPE', `pca: X must be [${m}, ${n}], got ${X.length} values`);
  if (!Number.isInteger(k) || k < 1 || k > n) throw new LowbitError('E_ARG', `pca: k must be an integer in [1, ${n}], got ${k}`);
  if (m < 2) throw new LowbitError('E_ARG', `pca: needs at least 2 samples, got ${m}`);
  const mean = new Float64Array(n);
  for (let r = 0; r < m; r++) for (let c = 0; c < n; c++) mean[c] += X[r * n + c];
  for (let c = 0; c < n; c++) mean[c] /= m;
  const C = new Float64Array(n * n);
  const row = new Float64Array(n);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) row[c] = X[r * n + c] - mean[c];
    for (let i = 0; i < n; i++) {
      const xi = row[i];
      for (let j = 0; j <= i; j++) C[i * n + j] += xi * row[j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) C[j * n + i] = C[i * n + j] /= m - 1;
  const { values, vectors } = symmetricEigen(C, n);
  let total = 0;
  for (let i = 0; i < n; i++) total += Math.max(0, values[i]);
  const variance = Float64Array.from(values.subarray(0, k), (v) => Math.max(0, v));
  return {
    mean,
    components: vectors.slice(0, k * n),
    variance,
    explained: Float64Array.from(variance, (v) => (total > 0 ? v / total : 0)),
  };
}
