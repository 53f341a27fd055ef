// Quantization-aware training with the straight-through estimator (Bengio et al. 2013; the QAT arm of
// the PTQ-vs-QAT study): AdamW keeps latent f32 weights, every forward runs on their fake-quantized
// values Ŵ = RTN(W), and the gradient w.r.t. Ŵ is applied to W as if the rounding were the identity
// (d round(x)/dx := 1). Weights outside the quantized layers (embeddings, norms, the LM head) train
// as they are. At the end the latent weights are rounded once more, which stores exactly the Ŵ the
// last forward would have seen.
import { type TrainHooks, trainParams } from '@lowbit/runtime';
import type { DecoderModel } from '@lowbit/runtime';
import type { FakeQuant } from './fake-quant.js';

/** The weights a forward sees: `params` with every fake-quantized layer replaced by Ŵ. */
export function fakeQuantWeights(fq: FakeQuant, params: Map<string, Float32Array>): Map<string, Float32Array> {
  const out = new Map(params);
  for (const name of fq.names) out.set(name, fq.quantize(name, params.get(name) as Float32Array));
  return out;
}

/**
 * finetune hooks for STE QAT. The plain STE, without clipping the gradient to the grid's range: the
 * scales here come from each group's own min and max, so no latent weight lies outside its grid
 * except a symmetric INT-k group's positive extreme (half a step past the top code); a clipped STE
 * would differ only there.
 */
export function qatHooks(model: DecoderModel, fq: FakeQuant): TrainHooks {
  return { params: trainParams(model), forward: (p) => fakeQuantWeights(fq, p) };
}
