// AlphaTuning (Kwon et al., EMNLP Findings 2022): binary-coding quantization W ≈ Σᵢ αᵢ·bᵢ (bᵢ ∈ {−1, +1},
// one α per bit-plane per group of a row; `@lowbit/formats` quantizeBcq) with the sign planes frozen
// and only the scales α trained. Every other weight of the model (embeddings, norms, LM head) is
// frozen too, so the trained state is the α alone: 1/g of the weights per plane.
//
// The gradient is exact, no estimator: W[r, c] = Σᵢ α[r, g(c), i]·b_i[r, c] is linear in α, so
// ∂L/∂α[r, g, i] = Σ_{c ∈ g} ∂L/∂W[r, c]·b_i[r, c].
import { type BcqTensor, quantizeBcq } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, type TrainHooks, trainParams } from '@lowbit/runtime';
import { quantizedLinears } from './fake-quant.js';

export interface AlphaTuningOptions {
  /** Bit-planes, 1..8 (the paper trains 1–3). */
  bits: number;
  /** Columns per α; 0 = one per row (per bit-plane). */
  group: number;
  /** Alternating least-squares passes of the initial BCQ fit (quantizeBcq's `iterations`). Default 8. */
  iterations?: number;
}

interface BcqLayer {
  rows: number;
  cols: number;
  group: number;
  bits: number;
  /** b_i[r, c] as ±1, plane-major [bits][rows·cols]. */
  signs: Int8Array;
  planes: Uint8Array;
}

export interface AlphaTuning {
  hooks: TrainHooks;
  /** The trained α as formats BCQ tensors (planes as fitted, α as they stand in `params`). */
  tensors(params: Map<string, Float32Array>): Map<string, BcqTensor>;
  /** Bits per weight as stored: `bits` sign bits plus `bits` fp16 α per group. */
  bitsPerWeight: number;
}

/** The α tensor's name for a layer. */
export const alphaName = (layer: string) => `${layer}.alpha`;

/** W from the planes and α of one layer into `out`. */
function expand(l: BcqLayer, alpha: Float32Array, out: Float32Array): Float32Array {
  const ng = Math.ceil(l.cols / l.group);
  const n = l.rows * l.cols;
  out.fill(0);
  for (let i = 0; i < l.bits; i++) {
    const s = l.signs.subarray(i * n, (i + 1) * n);
    for (let r = 0; r < l.rows; r++) {
      for (let c = 0; c < l.cols; c++) out[r * l.cols + c] += s[r * l.cols + c] * alpha[(r * ng + Math.floor(c / l.group)) * l.bits + i];
    }
  }
  return out;
}

export function alphaTuning(model: DecoderModel, o: AlphaTuningOptions): AlphaTuning {
  if (!Number.isInteger(o.bits) || o.bits < 1 || o.bits > 8) throw new LowbitError('E_ARG', `AlphaTuning: 1 to 8 bit-planes, got ${o.bits}`);
  if (!Number.isInteger(o.group) || o.group < 0) throw new LowbitError('E_ARG', `AlphaTuning: group must be a non-negative integer, got ${o.group}`);
  const frozen = trainParams(model);
  const params = new Map<string, Float32Array>();
  const layers = new Map<string, BcqLayer>();
  let bits = 0;
  let weights = 0;
  for (const [name, [rows, cols]] of quantizedLinears(model, false)) {
    const group = o.group > 0 ? o.group : cols;
    const t = quantizeBcq(frozen.get(name) as Float32Array, [rows, cols], { bits: o.bits, group, iterations: o.iterations });
    const rpb = Math.ceil(cols / 8);
    const signs = new Int8Array(o.bits * rows * cols);
    for (let i = 0; i < o.bits; i++) {
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) signs[(i * rows + r) * cols + c] = (t.planes[(i * rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1 ? 1 : -1;
      }
    }
    layers.set(name, { rows, cols, group, bits: o.bits, signs, planes: t.planes });
    params.set(alphaName(name), Float32Array.from(t.alphas));
    bits += rows * cols * o.bits + t.alphas.length * 16;
    weights += rows * cols;
  }
  const forward = (p: Map<string, Float32Array>) => {
    const w = new Map(frozen);
    for (const [name, l] of layers) w.set(name, expand(l, p.get(alphaName(name)) as Float32Array, new Float32Array(l.rows * l.cols)));
    return w;
  };
  const hooks: TrainHooks = {
    params,
    forward,
    weights: forward,
    // the planes are fitted to the pretrained weights, which a checkpoint's model no longer holds
    state: () => new Map([...layers].map(([name, l]) => [`bcq.signs.${name}`, Float32Array.from(l.signs)])),
    loadState(st) {
      for (const [name, l] of layers) {
        const s = st.get(`bcq.signs.${name}`) as Float32Array;
        const rpb = Math.ceil(l.cols / 8);
        l.planes.fill(0);
        for (let i = 0; i < s.length; i++) {
          if (s[i] !== 1 && s[i] !== -1) throw new LowbitError('E_BAD_FILE', `AlphaTuning checkpoint: bcq.signs.${name}[${i}] is ${s[i]}, not ±1`);
          l.signs[i] = s[i];
          const c = i % l.cols;
          const row = (i - c) / l.cols; // plane-major: (plane·rows + r)
          if (s[i] === 1) l.planes[row * rpb + (c >> 3)] |= 1 << (c & 7);
        }
      }
    },
    backward(grads) {
      const out = new Map<string, Float32Array>();
      for (const [name, l] of layers) {
        const dw = grads.get(name) as Float32Array;
        const ng = Math.ceil(l.cols / l.group);
        const n = l.rows * l.cols;
        const da = new Float32Array(l.rows * ng * l.bits);
        for (let i = 0; i < l.bits; i++) {
          for (let r = 0; r < l.rows; r++) {
            for (let c = 0; c < l.cols; c++) da[(r * ng + Math.floor(c / l.group)) * l.bits + i] += dw[r * l.cols + c] * l.signs[i * n + r * l.cols + c];
          }
        }
        out.set(alphaName(name), da);
      }
      return out;
    },
  };
  const tensors = (p: Map<string, Float32Array>) => {
    const out = new Map<string, BcqTensor>();
    for (const [name, l] of layers) {
      out.set(name, { kind: 'bcq', bits: l.bits, shape: [l.rows, l.cols], group: l.group, alphas: Float32Array.from(p.get(alphaName(name)) as Float32Array), planes: l.planes });
    }
    return out;
  };
  return { hooks, tensors, bitsPerWeight: weights ? bits / weights : 0 };
}
