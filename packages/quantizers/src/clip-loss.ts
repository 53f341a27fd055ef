import { type DecoderModel, perplexity } from '@lowbit/runtime';

export interface CalibrationLossOptions {
  ctx?: number;
  /** Calibration windows per evaluation (each candidate costs one pass of the model over them). Default 4. */
  windows?: number;
}

/**
 * Q-Rater's model-loss criterion for one candidate: the mean next-token NLL of the calibration windows
 * with layer `name` replaced by `weights` (f32) and every earlier layer already frozen. Unlike the
 * layer's output error it sees what the rest of the network does with the error (attention softmax,
 * SwiGLU, the residual stream), at the price of one forward pass per candidate. The layer keeps the
 * candidate's weights afterwards: the caller sets the winner.
 */
export function calibrationLoss(model: DecoderModel, name: string, shape: [number, number], weights: Float32Array, text: string, o: CalibrationLossOptions = {}): number {
  model.setLinear(name, { format: 'f32', shape, data: weights });
  return perplexity(model, text, { ctx: o.ctx ?? 256, maxWindows: o.windows ?? 4 }).nll;
}
