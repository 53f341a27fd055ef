// Regularization frequency (the "compress every N steps" study): the model trains in full precision
// and every N steps its quantized layers are projected onto the grid (W ← RTN(W)); training goes on
// from the projected weights. N = 1 is projected gradient descent (an update survives only if it
// crosses a rounding boundary); large N is nearly plain fine-tuning followed by one RTN. The final
// model is RTN of the last weights, as for QAT.
import { type TrainHooks, trainParams } from '@lowbit/runtime';
import type { DecoderModel } from '@lowbit/runtime';
import { LowbitError } from '@lowbit/kernels';
import type { FakeQuant } from './fake-quant.js';

export function regfreqHooks(model: DecoderModel, fq: FakeQuant, every: number): TrainHooks {
  if (!Number.isSafeInteger(every) || every < 1) throw new LowbitError('E_RANGE', `regularization frequency: every ${every} steps is not a positive integer`);
  return {
    params: trainParams(model),
    afterStep(p, s) {
      if ((s + 1) % every !== 0) return;
      for (const name of fq.names) {
        const w = p.get(name) as Float32Array;
        w.set(fq.quantize(name, w));
      }
    },
  };
}
