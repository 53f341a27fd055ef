// Quantization by training, one entry point for the four methods of issue #21 (QAT with the STE,
// regularization frequency, INQ, AlphaTuning): each sets up finetune's hooks, the loop of
// @lowbit/runtime trains, and the result is left in the model as the values a packed file stores.
import type { PackedIntTensor } from '@lowbit/formats';
import { type BcqTensor, dequantizeInt, intStorageBytes } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, type FinetuneOptions, type FinetuneResult, type MxRowsTensor, type TrainHooks, applyTrainParams, finetune, trainParams } from '@lowbit/runtime';
import { alphaTuning } from './alphatuning.js';
import { type TrainGrid, fakeQuantizer } from './fake-quant.js';
import { inq } from './inq.js';
import { quantizeModel } from './model-quantize.js';
import { fakeQuantWeights, learnedClipQat, qatHooks } from './qat.js';
import { regfreqHooks } from './regfreq.js';

export type TrainMethod = 'qat' | 'regfreq' | 'inq' | 'alphatuning';

export interface TrainQuantizeOptions extends Omit<FinetuneOptions, 'hooks' | 'resume'> {
  method: TrainMethod;
  /** qat, regfreq: the storage grid. inq and alphatuning take `bits` and `group` from an INT-k grid here (format 'int'). */
  grid: TrainGrid;
  /** regfreq: project onto the grid every this many steps. */
  every?: number;
  /** inq: the frozen fractions (default 0.5, 0.75, 0.875, 1). */
  fractions?: number[];
  /** qat on a symmetric INT-k grid: learn a clipping factor per scale group with the weights (learnedClipQat). */
  learnClip?: boolean;
  /**
   * An optimizer-state file a checkpoint of the same method and grid wrote: continue from its step
   * (pass the checkpoint's model). INQ's partition (from the pretrained weights) and AlphaTuning's
   * sign planes travel in that file too.
   */
  resume?: string;
}

export interface TrainQuantizeResult extends FinetuneResult {
  /** qat, regfreq: quantizeModel's packed tensors (INT-k, MX) or null entries (ggml, already blocks in the model); inq, alphatuning: null. */
  packed: Map<string, PackedIntTensor | MxRowsTensor | null> | null;
  /** alphatuning: the trained BCQ tensors. */
  bcq: Map<string, BcqTensor> | null;
  bitsPerWeight: number;
}

export interface QuantTrainer {
  hooks: TrainHooks;
  /** The weights of the quantized model before any training (RTN, one-shot INQ, untuned BCQ): the PTQ starting point. */
  startWeights(): Map<string, Float32Array>;
  /** Puts the final quantized weights into the model; returns what the method stores. */
  finish(model: DecoderModel, params: Map<string, Float32Array>): Pick<TrainQuantizeResult, 'packed' | 'bcq' | 'bitsPerWeight'>;
}

const intOf = (method: string, g: TrainGrid) => {
  if (g.format !== 'int') throw new LowbitError('E_ARG', `${method} takes an INT-k width and group (format 'int'), not ${g.format}`);
  return g;
};

/** The trainer of one method on one model (it reads the model's current weights as the pretrained ones). */
export function quantTrainer(model: DecoderModel, o: Pick<TrainQuantizeOptions, 'method' | 'grid' | 'every' | 'fractions' | 'steps' | 'learnClip'>): QuantTrainer {
  if (o.learnClip && o.method !== 'qat') throw new LowbitError('E_ARG', `learned clipping is a QAT option, not one of ${o.method}`);
  if (o.learnClip) {
    const lc = learnedClipQat(model, intOf('qat with learned clipping', o.grid));
    const forward = lc.hooks.forward as NonNullable<TrainHooks['forward']>;
    return {
      hooks: lc.hooks,
      // γ = 1 everywhere: plain RTN, the same starting point as QAT's
      startWeights: () => forward(lc.hooks.params as Map<string, Float32Array>, 0),
      finish(m, params) {
        const packed = lc.packed(params);
        let bits = 0;
        let count = 0;
        for (const [name, t] of packed) {
          m.setLinear(name, { format: 'f32', shape: t.shape, data: dequantizeInt(t) });
          // as stored, counted as quantizeModel counts QAT's RTN tensors (formats intStorageBytes)
          bits += 8 * intStorageBytes(t);
          count += t.shape[0] * t.shape[1];
        }
        return { packed, bcq: null, bitsPerWeight: count ? bits / count : lc.bitsPerWeight };
      },
    };
  }
  switch (o.method) {
    case 'qat':
    case 'regfreq': {
      const fq = fakeQuantizer(model, o.grid);
      const hooks = o.method === 'qat' ? qatHooks(model, fq) : regfreqHooks(model, fq, o.every ?? 1);
      return {
        hooks,
        startWeights: () => fakeQuantWeights(fq, trainParams(model)),
        finish(m) {
          // finetune left the latent weights in the model: one RTN stores what the last forward saw
          const r = quantizeModel(m, fq.modelOptions);
          return { packed: r.packed, bcq: null, bitsPerWeight: r.bitsPerWeight };
        },
      };
    }
    case 'inq': {
      const g = intOf('inq', o.grid);
      const q = inq(model, { bits: g.bits, group: g.group, fractions: o.fractions, steps: o.steps });
      return {
        hooks: q.hooks,
        startWeights() {
          const oneShot = inq(model, { bits: g.bits, group: g.group, fractions: [1], steps: 1 });
          const p = oneShot.hooks.params as Map<string, Float32Array>;
          oneShot.freeze(p, 1);
          return p;
        },
        finish(m, params) {
          q.freeze(params, 1);
          applyTrainParams(m, params);
          return { packed: null, bcq: null, bitsPerWeight: q.bitsPerWeight };
        },
      };
    }
    case 'alphatuning': {
      const g = intOf('alphatuning', o.grid);
      const a = alphaTuning(model, { bits: g.bits, group: g.group });
      const forward = a.hooks.forward as NonNullable<TrainHooks['forward']>;
      return {
        hooks: a.hooks,
        startWeights: () => forward(a.hooks.params as Map<string, Float32Array>, 0),
        finish: (_m, params) => ({ packed: null, bcq: a.tensors(params), bitsPerWeight: a.bitsPerWeight }),
      };
    }
    default:
      throw new LowbitError('E_ARG', `unknown training method "${String(o.method)}" (qat, regfreq, inq, alphatuning)`);
  }
}

/**
 * Trains `model` on `text` with one quantization method and leaves it holding the quantized weights
 * (qat/regfreq: the grid's layers, as quantizeModel leaves them; inq: powers of two as f32;
 * alphatuning: Σ α·b as f32). Checkpoints (finetune's `checkpoint`) hold the trained state: latent
 * f32 weights for qat/regfreq, the current weights for inq and alphatuning.
 */
export async function trainQuantize(model: DecoderModel, text: string, o: TrainQuantizeOptions, trainer: QuantTrainer = quantTrainer(model, o)): Promise<TrainQuantizeResult> {
  const r = await finetune(model, text, { ...o, hooks: trainer.hooks });
  return { ...r, ...trainer.finish(model, trainer.hooks.params as Map<string, Float32Array>) };
}
