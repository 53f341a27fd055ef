// Perplexity protocol (lowbit eval): every non-empty line of the text is one document; each document
// is tokenized with BOS prepended and the ids are concatenated. The stream is cut into
// non-overlapping windows of `ctx` tokens; each window starts from an empty KV cache and predicts
// its own tokens 1..len−1 from the ones before them (a trailing window of one token predicts
// nothing). perplexity = exp(mean negative log-likelihood over all predicted tokens).
//
// Its standard error treats windows, not tokens, as the independent samples (tokens of one window
// share their context, windows share nothing): with n_w tokens and mean NLL m_w in window w, and
// m = Σ n_w m_w / N the reported mean, the ratio estimator's variance over W windows is
//   se(m)² = W/(W−1) · Σ n_w² (m_w − m)² / N²
// (for equal windows, sd(m_w)²/W), and exp carries it to the perplexity by the delta method:
//   se(ppl) ≈ ppl · se(m).
import { LowbitError } from '@lowbit/kernels';
import { type KvCacheHook, type LinearInputHook, Session } from './forward.js';
import type { DecoderModel } from './model.js';
import { exp64, log64 } from './portable-math.js';

export interface PerplexityOptions {
  ctx?: number;
  /** Stop after this many windows (quick looks; the full text is the reported number). */
  maxWindows?: number;
  onProgress?: (done: number, total: number) => void;
  onLinearInput?: LinearInputHook;
  /** Width of the model's any-precision layers (Session's `bits`). */
  bits?: number;
  /** A compressed KV cache (CompressedKvCache) the session writes through (Session's `kvCache`). */
  kvCache?: KvCacheHook;
  /** Attention spans, nLayers × nHeads (Session's `spans`). */
  spans?: Int32Array;
  /**
   * Run each window token by token, as generation does, instead of as one prefill: every token
   * then attends to the cache as stored (compressed) rather than to its window's exact states.
   * The predictions and their count are the same; without a kvCache only rounding differs.
   */
  decode?: boolean;
  /** Keys and values resident as int8 (Session's `int8Cache`, kernels.attentionQ8). */
  int8Cache?: boolean;
}

export interface PerplexityResult {
  model: string;
  tokens: number; // tokens predicted
  windows: number;
  ctx: number;
  perplexity: number;
  nll: number; // mean negative log-likelihood (nats)
  /** Standard error of `nll` over windows (see the file head); NaN with a single window. */
  nllStderr: number;
  /** Standard error of `perplexity`, perplexity · nllStderr (delta method); NaN with a single window. */
  stderr: number;
  seconds: number;
}

/** Documents → one id stream (BOS + ids per non-empty line). */
export function tokenizeDocuments(model: DecoderModel, text: string): number[] {
  const ids: number[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim().length === 0) continue;
    for (const id of model.tokenizer.encode(line, { bos: true })) ids.push(id);
  }
  return ids;
}

/** −log softmax(logits)[target], in f64, by portable-math.ts's exp and log (the same in every engine). */
export function negLogLikelihood(logits: Float32Array, offset: number, vocab: number, target: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += exp64(logits[offset + i] - max);
  return log64(sum) + max - logits[offset + target];
}

export function perplexity(model: DecoderModel, text: string, options: PerplexityOptions = {}): PerplexityResult {
  const ctx = options.ctx ?? 256;
  if (!Number.isInteger(ctx) || ctx < 2 || ctx > model.config.contextLength) {
    throw new LowbitError('E_RANGE', `perplexity: ctx ${ctx} is outside 2..${model.config.contextLength} (the model's context length)`);
  }
  const t0 = performance.now();
  const ids = tokenizeDocuments(model, text);
  if (ids.length < 2) throw new LowbitError('E_ARG', 'perplexity: the text has fewer than two tokens');
  let total = Math.ceil(ids.length / ctx);
  if (ids.length % ctx === 1) total--; // a lone trailing token predicts nothing
  if (options.maxWindows !== undefined) total = Math.min(total, options.maxWindows);
  const vocab = model.config.vocabSize;
  const session = new Session(model, { ctx, onLinearInput: options.onLinearInput, bits: options.bits, kvCache: options.kvCache, spans: options.spans, int8Cache: options.int8Cache });
  let nll = 0;
  let count = 0;
  const windowSums: number[] = [];
  const windowCounts: number[] = [];
  for (let w = 0; w < total; w++) {
    const win = ids.slice(w * ctx, (w + 1) * ctx);
    session.reset();
    const logits = options.decode ? decodeLogits(session, win, vocab) : session.forward(win, { logits: 'all' });
    // nll keeps its token-by-token sum (the figure other code reproduces bit for bit); sum is this window's
    let sum = 0;
    for (let i = 0; i + 1 < win.length; i++) {
      const l = negLogLikelihood(logits, i * vocab, vocab, win[i + 1]);
      nll += l;
      sum += l;
      count++;
    }
    windowSums.push(sum);
    windowCounts.push(win.length - 1);
    options.onProgress?.(w + 1, total);
  }
  const mean = nll / count;
  let spread = 0; // Σ n_w² (m_w − m)² = Σ (S_w − n_w m)²
  for (let w = 0; w < total; w++) spread += (windowSums[w] - windowCounts[w] * mean) ** 2;
  const nllStderr = total > 1 ? Math.sqrt((total / (total - 1)) * spread) / count : Number.NaN;
  const ppl = exp64(mean);
  return { model: model.name, tokens: count, windows: total, ctx, perplexity: ppl, nll: mean, nllStderr, stderr: ppl * nllStderr, seconds: (performance.now() - t0) / 1000 };
}

/** Logits [n, vocab] of `win` run one token at a time. */
function decodeLogits(session: Session, win: readonly number[], vocab: number): Float32Array {
  const out = new Float32Array(win.length * vocab);
  for (let i = 0; i < win.length; i++) out.set(session.forward([win[i]]), i * vocab);
  return out;
}
