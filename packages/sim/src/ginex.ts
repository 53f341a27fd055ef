// Ginex (Park et al., VLDB 2022) keeps node features of an out-of-core GNN in a memory cache and, by
// looking at the mini-batches it has already sampled for the next superbatch, evicts like Belady's
// optimal policy instead of LRU. This models the I/O of that choice: neighbour-sampling access traces
// on a graph, and the misses of an LRU cache vs a Belady (farthest next use) cache of the same size.
// No graph dataset ships in an npm or Debian package we could use here, so the graph is a documented
// synthetic power-law graph (Chung-Lu, seeded): see powerLawGraph.
import { LowbitError } from '@lowbit/core';
import { seededRandom } from './random.js';

/** Adjacency in CSR form: neighbours of v are adj[offsets[v] .. offsets[v+1]). */
export interface Graph {
  n: number;
  offsets: Int32Array;
  adj: Int32Array;
}

/**
 * Chung-Lu graph: node i has expected degree proportional to (i+1)^(-1/(gamma-1)) (a power-law degree
 * distribution with exponent gamma), n*avgDegree/2 undirected edges drawn with endpoints proportional
 * to those weights; self-loops dropped, duplicate edges kept once.
 */
export function powerLawGraph(n: number, avgDegree: number, gamma: number, seed = 1): Graph {
  if (!Number.isInteger(n) || n < 2) throw new LowbitError('E_ARG', `ginex graph: n must be an integer >= 2, got ${n}`);
  if (!(avgDegree > 0) || !(gamma > 2)) throw new LowbitError('E_ARG', `ginex graph: need avgDegree > 0 and gamma > 2, got ${avgDegree} and ${gamma}`);
  const rand = seededRandom(seed);
  const cdf = new Float64Array(n);
  let s = 0;
  for (let i = 0; i < n; i++) cdf[i] = s += (i + 1) ** (-1 / (gamma - 1));
  const pick = () => {
    const x = rand() * s;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const m = Math.round((n * avgDegree) / 2);
  const edges = new Set<number>();
  for (let e = 0; e < m; e++) {
    const a = pick();
    const b = pick();
    if (a !== b) edges.add(Math.min(a, b) * n + Math.max(a, b));
  }
  const deg = new Int32Array(n);
  for (const e of edges) {
    deg[Math.floor(e / n)]++;
    deg[e % n]++;
  }
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + deg[i];
  const fill = offsets.slice(0, n);
  const adj = new Int32Array(offsets[n]);
  for (const e of edges) {
    const a = Math.floor(e / n);
    const b = e % n;
    adj[fill[a]++] = b;
    adj[fill[b]++] = a;
  }
  return { n, offsets, adj };
}

export interface SamplingOptions {
  batchSize: number;
  /** Neighbours sampled per node at each hop (GraphSAGE-style), e.g. [10, 5]. */
  fanouts: number[];
  batches: number;
  seed?: number;
}

/** Node-feature accesses of neighbour-sampled mini-batches: each batch's distinct nodes, batch after batch. */
export function samplingTrace(g: Graph, o: SamplingOptions): { trace: Int32Array; batchStarts: number[] } {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1 || !Number.isInteger(o.batches) || o.batches < 1) throw new LowbitError('E_ARG', `ginex sampling: batchSize and batches must be positive integers`);
  if (!o.fanouts.every((f) => Number.isInteger(f) && f >= 1)) throw new LowbitError('E_ARG', `ginex sampling: fanouts must be positive integers, got ${o.fanouts.join(',')}`);
  const rand = seededRandom(o.seed ?? 7);
  const order = Int32Array.from({ length: g.n }, (_, i) => i);
  let cursor = g.n;
  const out: number[] = [];
  const batchStarts: number[] = [];
  for (let b = 0; b < o.batches; b++) {
    batchStarts.push(out.length);
    const seen = new Set<number>();
    let frontier: number[] = [];
    for (let i = 0; i < o.batchSize; i++) {
      if (cursor >= g.n) {
        // a new epoch: shuffle the training order (Fisher-Yates)
        for (let k = g.n - 1; k > 0; k--) {
          const j = Math.floor(rand() * (k + 1));
          [order[k], order[j]] = [order[j], order[k]];
        }
        cursor = 0;
      }
      const v = order[cursor++];
      if (!seen.has(v)) frontier.push(v);
      seen.add(v);
    }
    for (const f of o.fanouts) {
      const next: number[] = [];
      for (const v of frontier) {
        const deg = g.offsets[v + 1] - g.offsets[v];
        for (let k = 0; k < Math.min(f, deg); k++) {
          const u = g.adj[g.offsets[v] + Math.floor(rand() * deg)];
          if (!seen.has(u)) {
            seen.add(u);
            next.push(u);
          }
        }
      }
      frontier = next;
    }
    for (const v of seen) out.push(v);
  }
  return { trace: Int32Array.from(out), batchStarts };
}

/** Misses of a cache of `capacity` items on `trace`, under LRU or Belady (evict the farthest next use). */
export function cacheMisses(trace: Int32Array | number[], capacity: number, policy: 'lru' | 'belady'): number {
  if (!Number.isInteger(capacity) || capacity < 0) throw new LowbitError('E_ARG', `ginex cache: capacity must be an integer >= 0, got ${capacity}`);
  if (policy !== 'lru' && policy !== 'belady') throw new LowbitError('E_ARG', `ginex cache: unknown policy "${String(policy)}" (lru or belady)`);
  if (capacity === 0) return trace.length;
  let misses = 0;
  if (policy === 'lru') {
    const cache = new Map<number, true>(); // insertion order = recency order
    for (const v of trace) {
      if (cache.has(v)) {
        cache.delete(v);
      } else {
        misses++;
        if (cache.size >= capacity) cache.delete(cache.keys().next().value as number);
      }
      cache.set(v, true);
    }
    return misses;
  }
  // next[i]: index of the next access to trace[i]'s item (Infinity when none)
  const next = new Float64Array(trace.length);
  const lastSeen = new Map<number, number>();
  for (let i = trace.length - 1; i >= 0; i--) {
    next[i] = lastSeen.get(trace[i]) ?? Number.POSITIVE_INFINITY;
    lastSeen.set(trace[i], i);
  }
  // max-heap of (next use, item) with lazy deletion: an entry is current when nextUse matches
  const nextUse = new Map<number, number>();
  const heapT: number[] = [];
  const heapV: number[] = [];
  const push = (t: number, v: number) => {
    let i = heapT.length;
    heapT.push(t);
    heapV.push(v);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (heapT[p] >= heapT[i]) break;
      [heapT[p], heapT[i]] = [heapT[i], heapT[p]];
      [heapV[p], heapV[i]] = [heapV[i], heapV[p]];
      i = p;
    }
  };
  const pop = (): number => {
    for (;;) {
      const t = heapT[0];
      const v = heapV[0];
      const lt = heapT.pop() as number;
      const lv = heapV.pop() as number;
      if (heapT.length > 0) {
        heapT[0] = lt;
        heapV[0] = lv;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < heapT.length && heapT[l] > heapT[m]) m = l;
          if (r < heapT.length && heapT[r] > heapT[m]) m = r;
          if (m === i) break;
          [heapT[m], heapT[i]] = [heapT[i], heapT[m]];
          [heapV[m], heapV[i]] = [heapV[i], heapV[m]];
          i = m;
        }
      }
      if (nextUse.get(v) === t) return v;
    }
  };
  for (let i = 0; i < trace.length; i++) {
    const v = trace[i];
    if (!nextUse.has(v)) {
      misses++;
      if (nextUse.size >= capacity) nextUse.delete(pop());
    }
    nextUse.set(v, next[i]);
    push(next[i], v);
  }
  return misses;
}

export interface GinexRow {
  cacheFraction: number;
  capacity: number;
  lruHitRate: number;
  beladyHitRate: number;
  lruBytes: number;
  beladyBytes: number;
}

/** Hit rates and feature I/O of LRU and Belady caches holding the given fractions of the graph's nodes. */
export function ginexStudy(trace: Int32Array, n: number, fractions: number[], featureBytes: number): GinexRow[] {
  return fractions.map((f) => {
    if (!(f >= 0 && f <= 1)) throw new LowbitError('E_ARG', `ginex: cache fraction must be in [0, 1], got ${f}`);
    const capacity = Math.round(f * n);
    const lru = cacheMisses(trace, capacity, 'lru');
    const belady = cacheMisses(trace, capacity, 'belady');
    return {
      cacheFraction: f, capacity, lruHitRate: 1 - lru / trace.length, beladyHitRate: 1 - belady / trace.length,
      lruBytes: lru * featureBytes, beladyBytes: belady * featureBytes,
    };
  });
}
