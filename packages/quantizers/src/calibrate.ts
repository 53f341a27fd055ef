import { LowbitError } from '@lowbit/kernels';
import { type LlamaModel, Session, tokenizeDocuments } from '@lowbit/runtime';
import { Gptq } from './gptq.js';

export interface CalibrationOptions {
  /** Window length in tokens (the perplexity protocol's ctx). Default 256. */
  ctx?: number;
  /** Use at most this many windows of the calibration text. */
  maxWindows?: number;
  /** Layers with at least this many inputs use the model's WASM kernels for XᵀX (default KERNEL_MIN_COLS = 512; Infinity: never). */
  kernelMinCols?: number;
}

/**
 * Runs the model over calibration text and accumulates, for each named linear layer, the GPTQ
 * statistics of its inputs (H = (2/N)·XᵀX, one sample per token). Only the named layers are kept,
 * so memory is cols² per layer of interest, never the activations themselves.
 *
 * The windows are exactly those of the perplexity protocol (`perplexity`'s cut of the document
 * stream into `ctx`-token windows), but each window's forward pass stops as soon as every named
 * layer has seen its input: the blocks after them and the LM head cannot change those inputs. On a
 * 22-block model this halves the cost of the sequential pipeline's calibration passes on average.
 */
export function collectHessians(model: LlamaModel, text: string, names: Iterable<string>, o: CalibrationOptions = {}): Map<string, Gptq> {
  const ids = tokenizeDocuments(model, text);
  const tokens = ids.length;
  if (tokens < 64) throw new LowbitError('E_ARG', `calibration text is too short: ${tokens} tokens (at least 64 are needed, a few thousand are useful)`);
  const ctx = o.ctx ?? 256;
  if (!Number.isInteger(ctx) || ctx < 2 || ctx > model.config.contextLength) {
    throw new LowbitError('E_RANGE', `calibration: ctx ${ctx} is outside 2..${model.config.contextLength} (the model's context length)`);
  }
  const acc = new Map<string, Gptq>();
  // Wide layers (cols ≥ KERNEL_MIN_COLS) accumulate XᵀX as f32 matmuls on the model's own kernels.
  for (const name of names) acc.set(name, new Gptq(model.linear(name).cols, { kernels: model.kernels, kernelMinCols: o.kernelMinCols }));
  if (acc.size === 0) return acc;
  let total = Math.ceil(tokens / ctx);
  if (tokens % ctx === 1) total--; // as perplexity: a lone trailing token predicts nothing
  if (o.maxWindows !== undefined) total = Math.min(total, o.maxWindows);
  const seen = new Set<string>();
  const done = new Error('calibration: every named layer has seen this window');
  const session = new Session(model, {
    ctx,
    onLinearInput: (name, x, batch) => {
      const g = acc.get(name);
      if (!g) return;
      g.addBatch(x, batch);
      seen.add(name);
      if (seen.size === acc.size) throw done;
    },
  });
  try {
    for (let w = 0; w < total; w++) {
      seen.clear();
      session.reset();
      try {
        // logits 'all' as perplexity runs it, so output.weight sees every token of the window
        session.forward(ids.slice(w * ctx, (w + 1) * ctx), { logits: 'all' });
      } catch (e) {
        if (e !== done) throw e;
      }
    }
  } finally {
    // the KV caches live in the model's WASM memory: one pass per sequential group must not wait for GC
    session.free();
  }
  return acc;
}
