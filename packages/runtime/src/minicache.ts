// MiniCache (Liu et al. 2024, arXiv 2405.14366): KV states of adjacent layers in the middle-to-deep
// part of a model point in nearly the same directions, so one direction per token serves a pair of
// layers. Each state x is split into its magnitude ‖x‖ and direction x/‖x‖ (their eq. 2); the two
// directions are interpolated by SLERP (eq. 3, t = 0.6 in the paper); each layer keeps its own
// per-token magnitude, and restores ‖x_l‖·e. Tokens whose pair of states is too far apart to share
// a direction are retained unmerged (section 4.2): with the angular distance d = arccos(cos)/π of
// the pair, a token is retained when d > d_min + (d_max − d_min)·γ, d_min/d_max taken over the
// sequence's tokens so far (γ = 0.05 in the paper; γ = 1 merges every token).
import { LowbitError } from '@lowbit/kernels';
import type { KvCacheHook } from './forward.js';
import type { DecoderModel } from './model.js';
import { perplexity } from './perplexity.js';

export interface MiniCacheOptions {
  /** Pairs of adjacent layers [l, l + 1] sharing one cache, disjoint. Default: `miniCachePairs(nLayers)`. */
  pairs?: [number, number][];
  /** SLERP position: 0 keeps the first layer's direction, 1 the second's (default 0.6, the paper's). */
  t?: number;
  /** Retention threshold γ ∈ [0, 1] (default 0.05, the paper's). */
  gamma?: number;
  /**
   * Fixed [d_min, d_max] per pair (same order as pairs), for keys and values, from calibration text
   * (calibrateMiniCache); absent: the range of the sequence so far.
   */
  ranges?: { keys: [number, number]; values: [number, number] }[];
}

/**
 * The middle-to-deep pairs: (s, s+1), (s+2, s+3), … from s = ⌈nLayers/2⌉ (stories260K, 5 layers:
 * [3, 4]), or from the last possible pair where that leaves none. The paper merges from the model's
 * middle on, where it measured the states to be similar. A `from` that leaves no pair is E_RANGE.
 */
export function miniCachePairs(nLayers: number, from = Math.min(Math.ceil(nLayers / 2), nLayers - 2)): [number, number][] {
  if (!(Number.isInteger(from) && from >= 0 && from + 1 < nLayers)) {
    throw new LowbitError('E_RANGE', `minicache: merging from layer ${from} leaves no pair of adjacent layers in 0..${nLayers - 1}`);
  }
  const pairs: [number, number][] = [];
  for (let l = from; l + 1 < nLayers; l += 2) pairs.push([l, l + 1]);
  return pairs;
}

/** Checks pairs, t and γ against a model of nLayers layers; returns them with defaults filled in. */
export function checkMiniCache(options: MiniCacheOptions, nLayers: number): Required<Omit<MiniCacheOptions, 'ranges'>> & Pick<MiniCacheOptions, 'ranges'> {
  const t = options.t ?? 0.6;
  const gamma = options.gamma ?? 0.05;
  if (!(t >= 0 && t <= 1)) throw new LowbitError('E_RANGE', `minicache: t ${t} is outside [0, 1]`);
  if (!(gamma >= 0 && gamma <= 1)) throw new LowbitError('E_RANGE', `minicache: gamma ${gamma} is outside [0, 1]`);
  const pairs = options.pairs ?? miniCachePairs(nLayers);
  const seen = new Set<number>();
  for (const p of pairs) {
    const [a, b] = p;
    if (!(Number.isInteger(a) && b === a + 1 && a >= 0 && b < nLayers)) {
      throw new LowbitError('E_RANGE', `minicache: pair [${p}] is not two adjacent layers of 0..${nLayers - 1}`);
    }
    if (seen.has(a) || seen.has(b)) throw new LowbitError('E_RANGE', `minicache: layer ${seen.has(a) ? a : b} is in two pairs`);
    seen.add(a).add(b);
  }
  const ranges = options.ranges;
  if (ranges !== undefined) {
    if (ranges.length !== pairs.length) throw new LowbitError('E_RANGE', `minicache: ${ranges.length} ranges for ${pairs.length} pairs`);
    for (const r of ranges) {
      for (const [lo, hi] of [r.keys, r.values]) {
        if (!(lo >= 0 && hi <= 1 && lo <= hi)) throw new LowbitError('E_RANGE', `minicache: distance range [${lo}, ${hi}] is not within [0, 1]`);
      }
    }
  }
  return { pairs, t, gamma, ranges };
}

/** ‖x‖ over x[o, o + n), in f64. */
export function norm(x: Float32Array, o: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[o + i] * x[o + i];
  return Math.sqrt(s);
}

/**
 * SLERP of the directions of a and b (any lengths; zero vectors take the other's direction) into
 * out, a unit vector (or zeros when both are zero): sin((1−t)Ω)/sin Ω·â + sin(tΩ)/sin Ω·b̂ with
 * Ω = ∠(a, b). Nearly parallel (sin Ω < 1e-7) it is the normalized linear blend; opposite
 * directions have no great circle between them, so the nearer end (t ≤ 0.5: â) is returned.
 * Returns the angular distance Ω/π ∈ [0, 1].
 */
export function slerp(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number, t: number, out: Float32Array, oo = 0): number {
  const na = norm(a, ao, n);
  const nb = norm(b, bo, n);
  if (na === 0 || nb === 0) {
    const [src, so, ns] = na === 0 ? [b, bo, nb] : [a, ao, na];
    for (let i = 0; i < n; i++) out[oo + i] = ns === 0 ? 0 : src[so + i] / ns;
    return 0;
  }
  let dot = 0;
  for (let i = 0; i < n; i++) dot += a[ao + i] * b[bo + i];
  const cos = Math.min(1, Math.max(-1, dot / (na * nb)));
  const omega = Math.acos(cos);
  const sin = Math.sin(omega);
  let wa: number;
  let wb: number;
  if (sin < 1e-7 && cos > 0) {
    wa = 1 - t;
    wb = t;
  } else if (sin < 1e-7) {
    wa = t <= 0.5 ? 1 : 0;
    wb = 1 - wa;
  } else {
    wa = Math.sin((1 - t) * omega) / sin;
    wb = Math.sin(t * omega) / sin;
  }
  let s = 0;
  for (let i = 0; i < n; i++) {
    const v = (wa * a[ao + i]) / na + (wb * b[bo + i]) / nb;
    out[oo + i] = v;
    s += v * v;
  }
  // Exact SLERP of unit vectors is a unit vector; renormalizing removes the rounding (and makes the
  // nearly-parallel linear blend a direction).
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < n; i++) out[oo + i] *= inv;
  return omega / Math.PI;
}

/**
 * The paper's retention rule over the distances seen so far in one pair's cache (K or V), token by
 * token as a decoder stores them. The paper ranges d over a prefilled sequence; here the range grows
 * with the sequence, so the first token has none to compare with: it is retained unless γ = 1 (it is
 * BOS, the attention sink, and merging it alone cost stories260K most of its quality).
 */
export class RetentionRule {
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private count = 0;
  /** Σ d over the tokens seen (for the mean angle a report gives). */
  sum = 0;
  /** range: a fixed [d_min, d_max] (from calibration text); absent, the sequence's so far. */
  constructor(
    readonly gamma: number,
    readonly range?: [number, number],
  ) {}
  /** Whether a token at angular distance d stays unmerged; d joins the range first. */
  retain(d: number): boolean {
    if (this.range) {
      this.sum += d;
      return d > this.range[0] * (1 - this.gamma) + this.range[1] * this.gamma;
    }
    this.min = Math.min(this.min, d);
    this.max = Math.max(this.max, d);
    this.sum += d;
    if (this.count++ === 0) return this.gamma < 1;
    return d > this.min * (1 - this.gamma) + this.max * this.gamma; // = d_min + (d_max − d_min)·γ, exact at γ = 0 and 1
  }
  reset(): void {
    this.min = Number.POSITIVE_INFINITY;
    this.max = Number.NEGATIVE_INFINITY;
    this.count = 0;
  }
}

export interface PairDistances {
  pair: [number, number];
  keys: { min: number; mean: number; max: number };
  values: { min: number; mean: number; max: number };
}

/**
 * Angular distances between the KV states of every pair of adjacent layers, token by token, over
 * text (perplexity's windows, prefilled): which pairs are similar enough to merge, and the
 * [d_min, d_max] ranges (`ranges` of MiniCacheOptions) the retention rule can take from it.
 */
export function miniCacheDistances(model: DecoderModel, text: string, options: { ctx?: number; maxWindows?: number } = {}): PairDistances[] {
  const c = model.config;
  const d = c.nKvHeads * c.headDim;
  const dir = new Float32Array(d);
  const acc = Array.from({ length: Math.max(0, c.nLayers - 1) }, () => ({ keys: { min: 1, sum: 0, max: 0 }, values: { min: 1, sum: 0, max: 0 }, n: 0 }));
  const hook: KvCacheHook = {
    afterAttention(layer, pos, n, _q, cache) {
      if (layer === 0) return;
      const a = cache(layer - 1);
      const b = cache(layer);
      const s = acc[layer - 1];
      for (let p = pos; p < pos + n; p++) {
        for (const [k, x, y] of [['keys', a.keys, b.keys], ['values', a.values, b.values]] as const) {
          const dist = slerp(x, p * d, y, p * d, d, 0.5, dir);
          const r = s[k];
          r.min = Math.min(r.min, dist);
          r.max = Math.max(r.max, dist);
          r.sum += dist;
        }
        s.n++;
      }
    },
  };
  perplexity(model, text, { ctx: options.ctx ?? 256, maxWindows: options.maxWindows, kvCache: hook });
  return acc.map((s, l) => ({
    pair: [l, l + 1],
    keys: { min: s.keys.min, mean: s.keys.sum / s.n, max: s.keys.max },
    values: { min: s.values.min, mean: s.values.sum / s.n, max: s.values.max },
  }));
}
