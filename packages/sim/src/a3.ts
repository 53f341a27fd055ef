// A3 (Ham et al., HPCA 2020) approximate attention, as we read it: the keys' columns are sorted once;
// for each query a greedy search takes, M times, the largest remaining component product q_j*K[i][j]
// (and, symmetrically, the most negative one) from the ends of the sorted columns, adding it to row
// i's running estimate; rows whose estimate ends positive become candidates, only their dot products
// are computed exactly, and of those only the rows within `threshold` (in logits) of the best, at
// most k of them, enter the softmax. m = 0 skips the search (every row a candidate); k = n and an
// infinite threshold keep every candidate, which is exact attention.
import { LowbitError } from '@lowbit/core';
import { type DecoderModel, Session } from '@lowbit/runtime';

export interface A3Options {
  /** Greedy iterations per query (0: no search, every row is a candidate). */
  m: number;
  /** Rows kept after exact scoring (n: all). */
  k: number;
  /** Rows whose logit is below the best by more than this are dropped (Infinity: none). */
  threshold: number;
  /** Attend only to keys 0..t for query t (decoder self-attention). */
  causal?: boolean;
}

export interface A3Result {
  /** Outputs [nq, dv]. */
  out: Float64Array;
  /** Exact dot products computed. */
  dots: number;
  /** Dot products exact attention computes. */
  exactDots: number;
  /** Component multiplications the greedy search spent. */
  searchProducts: number;
}

/** Softmax attention over the given rows, written into out[offset..offset+dv). */
function attendRows(rows: number[], logits: Float64Array, V: Float64Array | Float32Array, dv: number, out: Float64Array, offset: number): void {
  let mx = Number.NEGATIVE_INFINITY;
  for (const r of rows) mx = Math.max(mx, logits[r]);
  let z = 0;
  for (const r of rows) z += Math.exp(logits[r] - mx);
  for (const r of rows) {
    const p = Math.exp(logits[r] - mx) / z;
    for (let j = 0; j < dv; j++) out[offset + j] += p * V[r * dv + j];
  }
}

/** Q [nq, d], K [n, d], V [n, dv]; logits are q.k / sqrt(d). */
export function a3Attention(Q: ArrayLike<number>, K: ArrayLike<number>, V: Float64Array | Float32Array, nq: number, n: number, d: number, dv: number, o: A3Options): A3Result {
  if (Q.length !== nq * d || K.length !== n * d || V.length !== n * dv) throw new LowbitError('E_SHAPE', `a3: Q [${nq}, ${d}], K [${n}, ${d}], V [${n}, ${dv}] do not match the arrays (${Q.length}, ${K.length}, ${V.length})`);
  if (!Number.isInteger(o.m) || o.m < 0) throw new LowbitError('E_ARG', `a3: m must be an integer >= 0, got ${o.m}`);
  if (!Number.isInteger(o.k) || o.k < 1) throw new LowbitError('E_ARG', `a3: k must be an integer >= 1, got ${o.k}`);
  if (!(o.threshold >= 0)) throw new LowbitError('E_ARG', `a3: threshold must be >= 0, got ${o.threshold}`);
  const scale = 1 / Math.sqrt(d);
  // sorted[j*n + r]: key row with the r-th smallest value in column j
  const sorted = new Int32Array(n * d);
  for (let j = 0; j < d; j++) {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => K[a * d + j] - K[b * d + j]);
    sorted.set(idx, j * n);
  }
  const out = new Float64Array(nq * dv);
  const logits = new Float64Array(n);
  const est = new Float64Array(n);
  const hiPtr = new Int32Array(d);
  const loPtr = new Int32Array(d);
  let dots = 0;
  let exactDots = 0;
  let searchProducts = 0;
  for (let t = 0; t < nq; t++) {
    const last = o.causal ? Math.min(n - 1, t) : n - 1; // keys 0..last are visible
    const visible = last + 1;
    exactDots += visible;
    let cand: number[] = [];
    if (o.m === 0) {
      for (let i = 0; i <= last; i++) cand.push(i);
    } else {
      est.fill(0, 0, visible);
      // largest products come from the top of column j when q_j >= 0, from the bottom otherwise
      for (let j = 0; j < d; j++) {
        const up = Q[t * d + j] >= 0;
        hiPtr[j] = up ? n - 1 : 0;
        loPtr[j] = up ? 0 : n - 1;
      }
      const step = (p: Int32Array, j: number, dir: number) => {
        while (p[j] >= 0 && p[j] < n && sorted[j * n + p[j]] > last) p[j] += dir;
      };
      const used = new Set<number>();
      for (let it = 0; it < o.m; it++) {
        for (const side of [0, 1]) {
          let best = -1;
          let bestV = side === 0 ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
          for (let j = 0; j < d; j++) {
            const q = Q[t * d + j];
            const p = side === 0 ? hiPtr : loPtr;
            const dir = (side === 0) === q >= 0 ? -1 : 1;
            step(p, j, dir);
            if (p[j] < 0 || p[j] >= n) continue;
            const key = j * n + p[j];
            if (used.has(key)) continue;
            const v = q * K[sorted[key] * d + j];
            searchProducts++;
            if (side === 0 ? v > bestV : v < bestV) [best, bestV] = [j, v];
          }
          if (best < 0) continue;
          const p = side === 0 ? hiPtr : loPtr;
          const key = best * n + p[best];
          used.add(key);
          est[sorted[key]] += bestV;
          p[best] += (side === 0) === Q[t * d + best] >= 0 ? -1 : 1;
        }
      }
      for (let i = 0; i <= last; i++) if (est[i] > 0) cand.push(i);
      if (cand.length === 0) {
        let b = 0;
        for (let i = 1; i <= last; i++) if (est[i] > est[b]) b = i;
        cand = [b];
      }
    }
    for (const i of cand) {
      let s = 0;
      for (let j = 0; j < d; j++) s += Q[t * d + j] * K[i * d + j];
      logits[i] = s * scale;
    }
    dots += cand.length;
    let best = Number.NEGATIVE_INFINITY;
    for (const i of cand) best = Math.max(best, logits[i]);
    let kept = cand.filter((i) => logits[i] >= best - o.threshold);
    if (kept.length > o.k) kept = kept.sort((a, b) => logits[b] - logits[a]).slice(0, o.k);
    attendRows(kept, logits, V, dv, out, t * dv);
  }
  return { out, dots, exactDots, searchProducts };
}

export interface A3StudyRow extends A3Options {
  /** Fraction of the exact dot products A3 did not compute. */
  skipped: number;
  /** ||out - exact|| / ||exact|| over every query, head and layer. */
  relError: number;
  /** Greedy-search component products per exact dot product avoided (the search's own cost). */
  searchProductsPerQuery: number;
}

/**
 * A3 on a model's real attention: the queries, keys and values of every layer and head, computed from
 * the attention inputs the runtime captured on `text` (RoPE "normal" pairs applied as the runtime does,
 * none for learned-position models), causal, for each knob setting.
 */
export function a3Study(model: DecoderModel, text: string, settings: A3Options[], seqWanted = 64): { seq: number; rows: A3StudyRow[] } {
  const tokens = model.tokenizer.encode(text, { bos: true }).slice(0, Math.min(seqWanted, model.config.contextLength));
  if (tokens.length < 2) throw new LowbitError('E_ARG', `${model.name}: the text gives ${tokens.length} tokens; A3 needs at least 2`);
  const seq = tokens.length;
  const c = model.config;
  const inputs = new Map<string, Float32Array>();
  return runtimeSession(model, seq, tokens, inputs, () => {
    const per: { Q: Float64Array; K: Float64Array; V: Float64Array }[] = [];
    model.weights.layers.forEach((layer, li) => {
      const x = inputs.get(`blk.${li}.attn_q.weight`);
      if (!x) throw new LowbitError('E_MISSING', `${model.name}: no attention input captured for layer ${li}`);
      const q = layer.wq.apply(x, seq);
      const k = layer.wk.apply(x, seq);
      const v = layer.wv.apply(x, seq);
      if (!c.variant) {
        ropeInPlace(q, seq, c.nHeads, c.headDim, c.ropeDim, c.ropeTheta);
        ropeInPlace(k, seq, c.nKvHeads, c.headDim, c.ropeDim, c.ropeTheta);
      }
      for (let h = 0; h < c.nHeads; h++) {
        const kh = Math.floor(h / (c.nHeads / c.nKvHeads));
        const take = (src: Float32Array, heads: number, head: number) => {
          const o = new Float64Array(seq * c.headDim);
          for (let t = 0; t < seq; t++) for (let j = 0; j < c.headDim; j++) o[t * c.headDim + j] = src[(t * heads + head) * c.headDim + j];
          return o;
        };
        per.push({ Q: take(q, c.nHeads, h), K: take(k, c.nKvHeads, kh), V: take(v, c.nKvHeads, kh) });
      }
    });
    const rows = settings.map((s) => {
      let dots = 0;
      let exactDots = 0;
      let search = 0;
      let e = 0;
      let z = 0;
      for (const { Q, K, V } of per) {
        const d = c.headDim;
        const r = a3Attention(Q, K, V, seq, seq, d, d, { ...s, causal: true });
        const ref = a3Attention(Q, K, V, seq, seq, d, d, { m: 0, k: seq, threshold: Number.POSITIVE_INFINITY, causal: true });
        dots += r.dots;
        exactDots += r.exactDots;
        search += r.searchProducts;
        for (let i = 0; i < ref.out.length; i++) [e, z] = [e + (r.out[i] - ref.out[i]) ** 2, z + ref.out[i] ** 2];
      }
      return { ...s, skipped: 1 - dots / exactDots, relError: Math.sqrt(e / z), searchProductsPerQuery: search / (per.length * seq) };
    });
    return { seq, rows };
  });
}

function ropeInPlace(v: Float32Array, n: number, heads: number, headDim: number, ropeDim: number, theta: number): void {
  const half = ropeDim / 2;
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = t * theta ** ((-2 * i) / ropeDim);
        const [cs, sn] = [Math.cos(a), Math.sin(a)];
        const x = v[o + 2 * i];
        const y = v[o + 2 * i + 1];
        v[o + 2 * i] = x * cs - y * sn;
        v[o + 2 * i + 1] = x * sn + y * cs;
      }
    }
  }
}

function runtimeSession<T>(model: DecoderModel, seq: number, tokens: number[], inputs: Map<string, Float32Array>, then: () => T): T {
  const session = new Session(model, { ctx: seq, onLinearInput: (name, x, batch, cols) => { if (/attn_q\.weight$/.test(name) && batch === seq) inputs.set(name, x.slice(0, batch * cols)); } });
  try {
    session.forward(tokens, { logits: 'last' });
  } finally {
    session.free();
  }
  return then();
}
