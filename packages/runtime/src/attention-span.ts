// Attention spans (Sukhbaatar et al. 2019, arXiv 1905.07799, "Adaptive Attention Span in
// Transformers"): most heads put nearly all their attention on the recent past, so each head h gets a
// span z_h and reads only its last z_h keys (kernels.attentionSpan skips the rest: reads and flops
// per token fall from the context length to z_h). The paper learns z_h through a soft mask
// m_z(x) = clamp((R + z − x)/R, 0, 1) trained with the model; here z_h is read off attention
// statistics on calibration text instead: for each query, the fewest most-recent keys that hold
// ≥ 1 − ε of its attention mass, and per head a quantile of that over the queries. Learning z_h
// with the soft mask through the training path: attention-span-learn.ts.
import { LowbitError } from '@lowbit/kernels';
import type { KvCacheHook } from './forward.js';
import type { DecoderModel } from './model.js';
import { perplexity } from './perplexity.js';

export interface SpanCalibrationOptions {
  /** Window length of the calibration passes (default 256). */
  ctx?: number;
  maxWindows?: number;
  /** Attention mass a span may leave out, per query (default 0.01). */
  eps?: number;
  /** Quantile over a head's queries of their needed spans (default 0.9; 1 = the largest). */
  quantile?: number;
}

export interface SpanCalibration {
  /** nLayers × nHeads spans, each ≥ 1 (Session's `spans`). */
  spans: Int32Array;
  /** Mean over queries of the needed span, nLayers × nHeads. */
  meanNeeded: Float64Array;
  /** Queries observed per head. */
  queries: number;
}

export function checkSpanOptions(options: SpanCalibrationOptions): Required<Omit<SpanCalibrationOptions, 'maxWindows' | 'ctx'>> {
  const eps = options.eps ?? 0.01;
  const quantile = options.quantile ?? 0.9;
  if (!(eps >= 0 && eps < 1)) throw new LowbitError('E_RANGE', `spans: eps ${eps} is outside [0, 1)`);
  if (!(quantile > 0 && quantile <= 1)) throw new LowbitError('E_RANGE', `spans: quantile ${quantile} is outside (0, 1]`);
  return { eps, quantile };
}

/** Spans from attention statistics on `text` (see the file head); full attention runs meanwhile. */
export function calibrateSpans(model: DecoderModel, text: string, options: SpanCalibrationOptions = {}): SpanCalibration {
  const { eps, quantile } = checkSpanOptions(options);
  const c = model.config;
  const { nHeads, nKvHeads, headDim, nLayers } = c;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scale = 1 / Math.sqrt(headDim);
  const ctx = options.ctx ?? 256;
  // needed[l·nHeads + h][r − 1]: how many queries needed span r (a histogram up to ctx)
  const needed = Array.from({ length: nLayers * nHeads }, () => new Float64Array(ctx));
  const att = new Float64Array(ctx);
  const hook: KvCacheHook = {
    afterAttention(layer, pos, n, q, cache) {
      const keys = cache(layer).keys;
      for (let t = 0; t < n; t++) {
        const npos = pos + t + 1;
        for (let h = 0; h < nHeads; h++) {
          const qo = (t * nHeads + h) * headDim;
          const ko = Math.floor(h / group) * headDim;
          let max = Number.NEGATIVE_INFINITY;
          for (let p = 0; p < npos; p++) {
            let s = 0;
            for (let i = 0; i < headDim; i++) s += q[qo + i] * keys[p * kvDim + ko + i];
            att[p] = s * scale;
            if (att[p] > max) max = att[p];
          }
          let sum = 0;
          for (let p = 0; p < npos; p++) sum += att[p] = Math.exp(att[p] - max);
          // the most recent keys first, until 1 − ε of the mass is in
          let acc = 0;
          let r = 0;
          while (r < npos && acc < (1 - eps) * sum) acc += att[npos - 1 - r++];
          needed[layer * nHeads + h][Math.max(1, r) - 1]++;
        }
      }
    },
  };
  perplexity(model, text, { ctx, maxWindows: options.maxWindows, kvCache: hook });
  const spans = new Int32Array(nLayers * nHeads);
  const meanNeeded = new Float64Array(nLayers * nHeads);
  let queries = 0;
  needed.forEach((hist, i) => {
    const total = hist.reduce((a, b) => a + b, 0);
    queries = total;
    let acc = 0;
    let mean = 0;
    let span = 0;
    for (let r = 1; r <= ctx; r++) {
      acc += hist[r - 1];
      mean += r * hist[r - 1];
      if (span === 0 && acc >= quantile * total) span = r;
    }
    spans[i] = Math.max(1, span);
    meanNeeded[i] = mean / total;
  });
  return { spans, meanNeeded, queries };
}

/**
 * Fraction of the key reads a window of `ctx` tokens (every query from position 0 to ctx − 1, each
 * head) skips with these spans: 1 − Σ min(p + 1, z_h) / Σ (p + 1).
 */
export function spanSkippedFraction(spans: Int32Array, ctx: number): number {
  let full = 0;
  let read = 0;
  for (const z of spans) {
    for (let p = 0; p < ctx; p++) {
      full += p + 1;
      read += Math.min(p + 1, z);
    }
  }
  return 1 - read / full;
}

/**
 * Seconds one decode token spends in attention over every layer at position ctx − 1 (caches full),
 * full attention against the spans: the median of `reps` runs of 8 tokens each, on the model's kernels and
 * shapes with random states (the time does not depend on the values).
 */
export function attentionDecodeSeconds(model: DecoderModel, ctx: number, spans: Int32Array, reps = 9): { full: number; spans: number } {
  const { nLayers, nHeads, nKvHeads, headDim, contextLength } = model.config;
  if (!(Number.isInteger(ctx) && ctx >= 1 && ctx <= contextLength)) throw new LowbitError('E_RANGE', `attention timing: ctx ${ctx} is outside 1..${contextLength}`);
  if (!Number.isInteger(reps) || reps < 1) throw new LowbitError('E_RANGE', `attention timing: reps ${reps} must be a positive integer`);
  const k = model.kernels;
  const kvDim = nKvHeads * headDim;
  let seed = 1;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  };
  const rand = (n: number) => Float32Array.from({ length: n }, next);
  const keys = k.upload(rand(nLayers * ctx * kvDim));
  const values = k.upload(rand(nLayers * ctx * kvDim));
  const q = rand(nHeads * headDim);
  const kv = rand(kvDim);
  const out = new Float32Array(nHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const time = (withSpans: boolean) => {
    const runs: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < 8; i++) for (let l = 0; l < nLayers; l++) {
        const off = l * ctx * kvDim;
        if (withSpans) k.attentionSpan(q, kv, kv, keys, values, off, ctx - 1, 1, nHeads, nKvHeads, headDim, scale, spans.subarray(l * nHeads, (l + 1) * nHeads), out);
        else k.attention(q, kv, kv, keys, values, off, ctx - 1, 1, nHeads, nKvHeads, headDim, scale, out);
      }
      runs.push((performance.now() - t0) / 8000);
    }
    return runs.sort((a, b) => a - b)[reps >> 1];
  };
  try {
    time(false); // warm-up
    return { full: time(false), spans: time(true) };
  } finally {
    keys.free();
    values.free();
  }
}
