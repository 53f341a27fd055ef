// The misalignment the PTQ-vs-QAT study measures: PTQ minimizes each layer's local reconstruction
// error, but what matters is the global loss. Per layer, with every other layer left in full
// precision: the local error ‖(W − Ŵ)·Xᵀ‖²_F on the layer's calibration inputs, and its contribution
// to the global loss, the calibration NLL with that layer alone rounded minus the NLL with none. A
// Spearman rank correlation near 1 means the local error ranks layers as the loss does.
import { LowbitError } from '@lowbit/kernels';
import type { DecoderModel } from '@lowbit/runtime';
import { calibrationWindows, collectHessians } from './calibrate.js';
import type { FakeQuant } from './fake-quant.js';
import { outputError } from './layer-error.js';
import { f32Weights } from './source-weights.js';
import { perplexity } from '@lowbit/runtime';

export interface LayerMisalignment {
  name: string;
  /** ‖(W − Ŵ)·Xᵀ‖²_F over the calibration windows. */
  localError: number;
  /** NLL (nats/token) with this layer alone on the grid, minus the full-precision NLL. */
  lossIncrease: number;
}

export interface Misalignment {
  /** Calibration NLL with no layer rounded. */
  nll: number;
  layers: LayerMisalignment[];
  /** Spearman's ρ between localError and lossIncrease over the layers. */
  spearman: number;
}

/** Spearman's rank correlation (average ranks for ties). */
export function spearmanRho(a: number[], b: number[]): number {
  if (a.length !== b.length || a.length < 2) throw new LowbitError('E_SHAPE', `spearman: ${a.length} and ${b.length} values; two equal lists of at least 2 are needed`);
  const rank = (v: number[]) => {
    const idx = v.map((_, i) => i).sort((i, j) => v[i] - v[j]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
      for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const [ra, rb] = [rank(a), rank(b)];
  const mean = (a.length - 1) / 2;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < a.length; i++) {
    num += (ra[i] - mean) * (rb[i] - mean);
    da += (ra[i] - mean) ** 2;
    db += (rb[i] - mean) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/**
 * Measures every layer of `fq` on the model's current (full-precision) weights; the model is left as
 * it was. `windows` calibration windows of `ctx` tokens serve both measures.
 */
export function measureMisalignment(model: DecoderModel, fq: FakeQuant, calibration: string, o: { ctx?: number; windows?: number } = {}): Misalignment {
  const ctx = o.ctx ?? 256;
  const windows = o.windows ?? 4;
  const cut = calibrationWindows(model, calibration, { ctx, maxWindows: windows });
  const stats = collectHessians(model, cut, fq.names, { ctx, maxWindows: windows });
  const nllOf = () => perplexity(model, calibration, { ctx, maxWindows: windows }).nll;
  const nll = nllOf();
  const layers: LayerMisalignment[] = [];
  for (const name of fq.names) {
    const lin = model.linear(name);
    const source = lin.source;
    const shape: [number, number] = [lin.rows, lin.cols];
    const w = f32Weights(name, source).data;
    const q = fq.quantize(name, w);
    const gram = stats.get(name)?.gram();
    if (!gram) throw new LowbitError('E_MISSING', `misalignment: no calibration inputs reached ${name}`);
    model.setLinear(name, { format: 'f32', shape, data: q });
    const lossIncrease = nllOf() - nll;
    model.setLinear(name, source);
    layers.push({ name, localError: outputError(w, q, shape, gram), lossIncrease });
  }
  return { nll, layers, spearman: spearmanRho(layers.map((l) => l.localError), layers.map((l) => l.lossIncrease)) };
}
