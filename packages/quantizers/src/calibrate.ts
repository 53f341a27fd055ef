import { LowbitError } from '@lowbit/kernels';
import { type LlamaModel, perplexity, tokenizeDocuments } from '@lowbit/runtime';
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
 */
export function collectHessians(model: LlamaModel, text: string, names: Iterable<string>, o: CalibrationOptions = {}): Map<string, Gptq> {
  const tokens = tokenizeDocuments(model, text).length;
  if (tokens < 64) throw new LowbitError('E_ARG', `calibration text is too short: ${tokens} tokens (at least 64 are needed, a few thousand are useful)`);
  const acc = new Map<string, Gptq>();
  // Wide layers (cols ≥ KERNEL_MIN_COLS) accumulate XᵀX as f32 matmuls on the model's own kernels.
  for (const name of names) acc.set(name, new Gptq(model.linear(name).cols, { kernels: model.kernels, kernelMinCols: o.kernelMinCols }));
  perplexity(model, text, {
    ctx: o.ctx ?? 256,
    maxWindows: o.maxWindows,
    onLinearInput: (name, x, batch) => acc.get(name)?.addBatch(x, batch),
  });
  return acc;
}
