// Any-precision LLM (Park et al. 2024), the producing half: a sensitivity-weighted non-uniform seed
// model (SqueezeLLM-style weighted k-means per output channel) grown by incremental upscaling. At
// each step every parent cluster's members are re-clustered into two children, so the b-bit code of
// a weight is the top b bits of its (b+1)-bit code and one nested bit-plane tensor (@lowbit/formats
// AnyPrecisionTensor) holds every width from the seed up. The serving half is @lowbit/runtime's
// 'any-precision' Linear format.
import { type AnyPrecisionTensor, quantizeAnyPrecision, validatePacked } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import type { DecoderModel } from '@lowbit/runtime';
import { type CalibrationOptions, collectHessians } from './calibrate.js';
import { f32Weights } from './source-weights.js';

export interface UpscaleOptions {
  /** Width of the seed k-means model (default 3). */
  seedBits?: number;
  /** Widest model grown from it (default 8). */
  maxBits?: number;
  /**
   * Per-input-column sensitivity (length cols), e.g. diag(XᵀX) from calibration: the k-means
   * objective is Σ_c w_c·(W_rc − Ŵ_rc)², the diagonal approximation of the layer's output error.
   * Default: all ones (plain k-means).
   */
  weights?: ArrayLike<number>;
}

/**
 * Seed k-means at `seedBits`, then upscaled one bit at a time to `maxBits` (default 8):
 * @lowbit/formats' quantizeAnyPrecision with the sensitivities as its k-means weights. Every width's
 * table is the weighted optimum given the parent clusters (each split is an exact weighted 2-means of
 * the parent's members), so the b-bit model of this tensor equals a b-bit seed only at b = seedBits.
 */
export function upscaleAnyPrecision(data: Float32Array, shape: [number, number], o: UpscaleOptions = {}): AnyPrecisionTensor {
  const [rows, cols] = shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) throw new LowbitError('E_SHAPE', `upscaleAnyPrecision: shape [${shape}] is not a positive [rows, cols]`);
  const t = quantizeAnyPrecision(data, shape, { seedBits: o.seedBits, maxBits: o.maxBits ?? 8, weights: o.weights });
  validatePacked('upscaleAnyPrecision', t);
  return t;
}

export interface AnyPrecisionModelOptions extends CalibrationOptions {
  seedBits?: number;
  maxBits?: number;
  /** Calibration text for the sensitivities diag(XᵀX); without it, plain k-means. */
  calibration?: string;
  /** diag(XᵀX) per layer already measured (layerSensitivities), used instead of `calibration`. */
  sensitivities?: ReadonlyMap<string, Float64Array>;
  /** Also the LM head (default false, as quantizeModel). */
  includeOutput?: boolean;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Every block linear of the model (and the LM head with includeOutput) upscaled from one seed. The
 * sensitivities come from one calibration pass over the unquantized model (each layer sees the
 * full-precision inputs: the weights of every width are fitted to the same statistics).
 */
export function anyPrecisionModel(model: DecoderModel, o: AnyPrecisionModelOptions = {}): Map<string, AnyPrecisionTensor> {
  const names = model.linears().map((l) => l.name).filter((n) => o.includeOutput || n !== 'output.weight');
  const diags = o.sensitivities ?? (o.calibration !== undefined ? layerSensitivities(model, o.calibration, names, o) : null);
  const out = new Map<string, AnyPrecisionTensor>();
  names.forEach((name, i) => {
    const w = f32Weights(name, model.linear(name).source);
    out.set(name, upscaleAnyPrecision(w.data, w.shape, { seedBits: o.seedBits, maxBits: o.maxBits, weights: diags?.get(name) }));
    o.onProgress?.(i + 1, names.length);
  });
  return out;
}

/** diag(XᵀX)/N per named layer from one calibration pass (the k-means sensitivities). */
export function layerSensitivities(model: DecoderModel, calibration: string, names: Iterable<string>, o: CalibrationOptions = {}): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, g] of collectHessians(model, calibration, names, o)) {
    const H = g.hessian();
    out.set(name, Float64Array.from({ length: g.cols }, (_, c) => H[c * g.cols + c]));
  }
  return out;
}

/** Puts each tensor into the model as an any-precision layer (one resident copy, every width servable). */
export function applyAnyPrecision(model: DecoderModel, tensors: ReadonlyMap<string, AnyPrecisionTensor>): void {
  for (const [name, t] of tensors) model.setLinear(name, { format: 'any-precision', shape: t.shape, tensor: t });
}
