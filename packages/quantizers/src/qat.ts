// Quantization-aware training with the straight-through estimator (Bengio et al. 2013; the QAT arm of
// the PTQ-vs-QAT study): AdamW keeps latent f32 weights, every forward runs on their fake-quantized
// values Ŵ = RTN(W), and the gradient w.r.t. Ŵ is applied to W as if the rounding were the identity
// (d round(x)/dx := 1). Weights outside the quantized layers (embeddings, norms, the LM head) train
// as they are. At the end the latent weights are rounded once more, which stores exactly the Ŵ the
// last forward would have seen.
import { type PackedIntTensor, encodeIntWith, f16Scale, roundEven } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import { type TrainHooks, trainParams } from '@lowbit/runtime';
import type { DecoderModel } from '@lowbit/runtime';
import { type FakeQuant, quantizedLinears } from './fake-quant.js';

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

/** The learned clipping factor tensor's name for a layer (one factor per scale group). */
export const clipName = (layer: string) => `${layer}.clip`;

/** INT-k QAT whose clipping is trained too (learnedClipQat). */
export interface LearnedClipQat {
  hooks: TrainHooks;
  /** The INT-k tensors at the learned scales: exactly the Ŵ a forward on `params` sees. */
  packed(params: Map<string, Float32Array>): Map<string, PackedIntTensor>;
  /** Bits per weight as stored (codes plus one fp16 scale per group). */
  bitsPerWeight: number;
}

/**
 * STE QAT on a symmetric INT-k grid with a learned clipping factor γ ∈ [1/64, 1] per scale group
 * (per group of `group` columns of a row, or per output channel for group 0), trained with the
 * weights as in LSQ (Esser et al. 2020) and PACT (Choi et al. 2018): the group's scale is
 * s = f16(γ·amax/((2^k − 1)/2)), amax the group's current max |w| (the RTN scale at γ = 1), and
 * Ŵ = s·clamp(round(w/s), −2^(k−1), 2^(k−1) − 1), the value encodeIntWith stores with s.
 *
 * Gradients, with every discrete choice (each weight's rounding residual r = round(w/s) − w/s, and
 * whether the clamp holds it) fixed at the current point, s moving in proportion to γ (straight
 * through the fp16 rounding) and amax taken as a constant:
 *   inside the range:  Ŵ = w + s·r      → ∂Ŵ/∂w = 1, ∂Ŵ/∂s = r = q − w/s  (LSQ's step-size gradient)
 *   clamped:           Ŵ = s·q_clamp    → ∂Ŵ/∂w = 0, ∂Ŵ/∂s = q_clamp
 *   ∂L/∂γ = (s/γ)·Σ_group ∂L/∂Ŵ·∂Ŵ/∂s.
 * LSQ also scales the step-size gradient by 1/√(n·Qp); AdamW's per-parameter normalization makes
 * that scale moot here. What matters under AdamW is the step: ~lr per update whatever the
 * gradient's size. LSQ trains s itself, so s moves by ~lr, about lr/s relative; stories260K's INT-3
 * g32 RTN scales have quartiles 0.063 / 0.078 / 0.097 (1/s ≈ 10–16), so γ (relative by construction)
 * moves `lrScale` = 20 times AdamW's step, of that order (not tuned; applied after each update as
 * γ ← γ₀ + lrScale·(γ − γ₀)). γ is kept in [1/64, 1].
 */
export function learnedClipQat(model: DecoderModel, grid: { format: 'int'; bits: number; group: number; symmetric?: boolean }, o: { lrScale?: number } = {}): LearnedClipQat {
  const lrScale = o.lrScale ?? 20;
  if (!(lrScale > 0 && Number.isFinite(lrScale))) throw new LowbitError('E_RANGE', `learned clipping: lrScale is ${lrScale}, not a positive number`);
  const { bits, group } = grid;
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new LowbitError('E_ARG', `learned clipping: bits must be 2..8, got ${bits}`);
  if (!Number.isInteger(group) || group < 0) throw new LowbitError('E_ARG', `learned clipping: group must be a non-negative integer, got ${group}`);
  if (grid.symmetric === false) throw new LowbitError('E_ARG', 'learned clipping: symmetric INT-k grids only (one scale per group, no zero point)');
  const params = trainParams(model);
  const shapes = quantizedLinears(model, false);
  const qmax = 2 ** bits - 1;
  const zs = 2 ** (bits - 1);
  let stored = 0;
  let count = 0;
  for (const [name, [rows, cols]] of shapes) {
    const ng = group > 0 ? Math.ceil(cols / group) : 1;
    params.set(clipName(name), new Float32Array(rows * ng).fill(1));
    stored += rows * cols * bits + rows * ng * 16;
    count += rows * cols;
  }
  // the scales of the last forward, by layer: the backward and `packed` use exactly those
  const scales = new Map<string, Float32Array>();
  const scalesOf = (name: string, w: Float32Array, gamma: Float32Array): Float32Array => {
    const [rows, cols] = shapes.get(name) as [number, number];
    const g = group > 0 ? group : cols;
    const ng = Math.ceil(cols / g);
    const s = new Float32Array(rows * ng);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < ng; j++) {
        let amax = 0;
        for (let c = j * g; c < Math.min(cols, (j + 1) * g); c++) amax = Math.max(amax, Math.abs(w[r * cols + c]));
        s[r * ng + j] = amax > 0 ? f16Scale((gamma[r * ng + j] * amax) / (qmax / 2)) : 1;
      }
    }
    return s;
  };
  const code = (x: number) => Math.min(zs - 1, Math.max(-zs, roundEven(x)));
  // γ as each step's forward saw it: afterStep scales that step's update of it by lrScale
  const before = new Map<string, Float32Array>();
  const forward = (p: Map<string, Float32Array>) => {
    const out = new Map(p);
    for (const [name, [rows, cols]] of shapes) {
      out.delete(clipName(name));
      before.set(name, Float32Array.from(p.get(clipName(name)) as Float32Array));
      const w = p.get(name) as Float32Array;
      const s = scalesOf(name, w, p.get(clipName(name)) as Float32Array);
      scales.set(name, s);
      const g = group > 0 ? group : cols;
      const ng = Math.ceil(cols / g);
      const wq = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const si = s[r * ng + Math.floor(c / g)];
          wq[r * cols + c] = si * code(w[r * cols + c] / si) + 0; // + 0: −0 → 0, as dequantizeInt gives
        }
      }
      out.set(name, wq);
    }
    return out;
  };
  const hooks: TrainHooks = {
    params,
    forward,
    backward(grads) {
      const out = new Map(grads);
      for (const [name, [rows, cols]] of shapes) {
        const w = params.get(name) as Float32Array;
        const gamma = params.get(clipName(name)) as Float32Array;
        const s = scales.get(name) as Float32Array;
        const dW = grads.get(name) as Float32Array;
        const g = group > 0 ? group : cols;
        const ng = Math.ceil(cols / g);
        const dw = new Float32Array(rows * cols);
        const dgamma = new Float64Array(rows * ng);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const i = r * cols + c;
            const gi = r * ng + Math.floor(c / g);
            const x = w[i] / s[gi];
            const rounded = roundEven(x);
            const q = Math.min(zs - 1, Math.max(-zs, rounded));
            if (q === rounded) {
              dw[i] = dW[i];
              dgamma[gi] += dW[i] * (q - x);
            } else dgamma[gi] += dW[i] * q;
          }
        }
        const dg = new Float32Array(rows * ng);
        for (let i = 0; i < dg.length; i++) dg[i] = (dgamma[i] * s[i]) / gamma[i];
        out.set(name, dw);
        out.set(clipName(name), dg);
      }
      return out;
    },
    afterStep(p) {
      for (const name of shapes.keys()) {
        const gamma = p.get(clipName(name)) as Float32Array;
        const g0 = before.get(name) ?? gamma;
        for (let i = 0; i < gamma.length; i++) gamma[i] = Math.min(1, Math.max(1 / 64, g0[i] + lrScale * (gamma[i] - g0[i])));
      }
    },
    // the model (and its checkpoints) hold the latent weights; the factors travel in the state file
    weights(p) {
      const out = new Map(p);
      for (const name of shapes.keys()) out.delete(clipName(name));
      return out;
    },
  };
  const packed = (p: Map<string, Float32Array>) => {
    const out = new Map<string, PackedIntTensor>();
    for (const [name, shape] of shapes) {
      const w = p.get(name) as Float32Array;
      const s = scalesOf(name, w, p.get(clipName(name)) as Float32Array);
      out.set(name, encodeIntWith(w, shape, { bits, symmetric: true, granularity: group > 0 ? 'group-cols' : 'per-oc', group, scales: s, zeros: null }));
    }
    return out;
  };
  return { hooks, packed, bitsPerWeight: count ? stored / count : 0 };
}
