import { LowbitError } from '@lowbit/core';

export interface KMeans1D {
  /** k centroids, ascending. */
  centroids: Float64Array;
  /** Cluster of each input value (index into centroids), in input order. */
  assignment: Int32Array;
  /** Σ w·(x − centroid)² at the optimum. */
  cost: number;
}

/**
 * Globally optimal 1-D k-means (weighted), by dynamic programming over the sorted values:
 * D[m][i] = min_j D[m−1][j−1] + cost(j..i). The optimal split point is monotone in i, so each
 * layer is filled by divide and conquer in O(n log n) (Grønlund et al. 2017), O(k·n·log n) in all.
 * Exact, unlike Lloyd's iterations, which matters for small codebooks where one bad split costs a
 * whole level.
 */
export function kmeans1d(values: ArrayLike<number>, k: number, weights?: ArrayLike<number>): KMeans1D {
  const n = values.length;
  if (!Number.isInteger(k) || k < 1) throw new LowbitError('E_ARG', `kmeans1d: k must be a positive integer, got ${k}`);
  if (weights && weights.length !== n) throw new LowbitError('E_SHAPE', `kmeans1d: ${n} values but ${weights.length} weights`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(values[i])) throw new LowbitError('E_NAN', `kmeans1d: value ${i} is ${values[i]}`);
    if (weights && !(weights[i] >= 0)) throw new LowbitError('E_ARG', `kmeans1d: weight ${i} is ${weights[i]}; weights must be >= 0`);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const x = Float64Array.from(order, (i) => values[i]);
  const w = Float64Array.from(order, (i) => (weights ? weights[i] : 1));
  // Prefix sums of w, w·x, w·x² (f64: exact enough for the within-cluster sum of squares).
  const W = new Float64Array(n + 1);
  const S = new Float64Array(n + 1);
  const Q = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) {
    W[i + 1] = W[i] + w[i];
    S[i + 1] = S[i] + w[i] * x[i];
    Q[i + 1] = Q[i] + w[i] * x[i] * x[i];
  }
  // cost of cluster x[a..b] inclusive
  const cost = (a: number, b: number): number => {
    const ww = W[b + 1] - W[a];
    if (ww <= 0) return 0;
    const s = S[b + 1] - S[a];
    return Math.max(0, Q[b + 1] - Q[a] - (s * s) / ww);
  };
  const kk = Math.min(k, Math.max(1, n));
  let prev = new Float64Array(n);
  for (let i = 0; i < n; i++) prev[i] = cost(0, i);
  const split: Int32Array[] = [new Int32Array(n)]; // split[m][i]: first index of the last cluster
  for (let m = 1; m < kk; m++) {
    const cur = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
    const arg = new Int32Array(n);
    const solve = (lo: number, hi: number, jlo: number, jhi: number) => {
      if (lo > hi) return;
      const mid = (lo + hi) >> 1;
      let best = Number.POSITIVE_INFINITY;
      let bj = Math.max(jlo, 1);
      for (let j = Math.max(jlo, 1); j <= Math.min(jhi, mid); j++) {
        const c = prev[j - 1] + cost(j, mid);
        if (c < best) {
          best = c;
          bj = j;
        }
      }
      cur[mid] = best;
      arg[mid] = bj;
      solve(lo, mid - 1, jlo, bj);
      solve(mid + 1, hi, bj, jhi);
    };
    solve(m, n - 1, m, n - 1);
    split.push(arg);
    prev = cur;
  }
  // Backtrack the clusters.
  const centroids = new Float64Array(k);
  const sortedCluster = new Int32Array(n);
  let end = n - 1;
  for (let m = kk - 1; m >= 0; m--) {
    const start = m === 0 ? 0 : split[m][end];
    const ww = W[end + 1] - W[start];
    centroids[m] = ww > 0 ? (S[end + 1] - S[start]) / ww : (x[start] + x[end]) / 2;
    for (let i = start; i <= end; i++) sortedCluster[i] = m;
    end = start - 1;
  }
  // Fewer distinct points than k: repeat the top centroid so the codebook still has k entries.
  for (let m = kk; m < k; m++) centroids[m] = centroids[kk - 1];
  const assignment = new Int32Array(n);
  for (let i = 0; i < n; i++) assignment[order[i]] = sortedCluster[i];
  return { centroids, assignment, cost: n ? prev[n - 1] : 0 };
}
