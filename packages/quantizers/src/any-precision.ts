// Any-precision LLM (Park et al. 2024), the producing half: a sensitivity-weighted non-uniform seed
// model (SqueezeLLM-style weighted k-means per output channel) grown by incremental upscaling. At
// each step every parent cluster's members are re-clustered into two children, so the b-bit code of
// a weight is the top b bits of its (b+1)-bit code and one nested bit-plane tensor (@lowbit/formats
// AnyPrecisionTensor) holds every width from the seed up. The serving half is @lowbit/runtime's
// 'any-precision' Linear format.
import { type AnyPrecisionTensor, validatePacked } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import type { DecoderModel } from '@lowbit/runtime';
import { kmeans1d } from '@lowbit/solvers';
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
 * Seed k-means at `seedBits`, then upscaled one bit at a time to `maxBits`. Every width's table is
 * the weighted optimum given the parent clusters (each split is an exact weighted 2-means of the
 * parent's members), so the b-bit model of this tensor equals a b-bit seed only at b = seedBits.
 */
export function upscaleAnyPrecision(data: Float32Array, shape: [number, number], o: UpscaleOptions = {}): AnyPrecisionTensor {
  const [rows, cols] = shape;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) throw new LowbitError('E_SHAPE', `upscaleAnyPrecision: shape [${shape}] is not a positive [rows, cols]`);
  if (data.length !== rows * cols) throw new LowbitError('E_SHAPE', `upscaleAnyPrecision: ${data.length} values, shape [${shape}] needs ${rows * cols}`);
  const seed = o.seedBits ?? 3;
  const n = o.maxBits ?? 8;
  if (!Number.isInteger(seed) || seed < 1 || !Number.isInteger(n) || n < seed || n > 8) {
    throw new LowbitError('E_ARG', `upscaleAnyPrecision: need 1 <= seedBits <= maxBits <= 8, got ${seed} and ${n}`);
  }
  const w = sensitivity(o.weights, cols);
  const rpb = Math.ceil(cols / 8);
  const planes = new Uint8Array(n * rows * rpb);
  const luts = Array.from({ length: n - seed + 1 }, (_, i) => new Float32Array(rows * 2 ** (seed + i)));
  const code = new Int32Array(cols);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * cols, (r + 1) * cols);
    for (let c = 0; c < cols; c++) if (!Number.isFinite(row[c])) throw new LowbitError('E_NAN', `upscaleAnyPrecision: value at [${r}, ${c}] is ${row[c]}`);
    const k0 = 2 ** seed;
    const km = kmeans1d(row, k0, w);
    code.set(km.assignment);
    // fewer distinct values than levels: kmeans1d returns fewer centroids; the spare levels repeat
    // the largest, which no weight uses
    for (let j = 0; j < k0; j++) luts[0][r * k0 + j] = km.centroids[Math.min(j, km.centroids.length - 1)];
    for (let m = seed + 1; m <= n; m++) {
      const parents = 2 ** (m - 1);
      const members: number[][] = Array.from({ length: parents }, () => []);
      for (let c = 0; c < cols; c++) members[code[c]].push(c);
      const lut = luts[m - seed];
      const prev = luts[m - 1 - seed];
      for (let p = 0; p < parents; p++) {
        const idx = members[p];
        const at = r * 2 * parents + 2 * p;
        if (idx.length === 0) {
          lut[at] = lut[at + 1] = prev[r * parents + p];
          continue;
        }
        const km2 = kmeans1d(idx.map((c) => row[c]), 2, idx.map((c) => w[c]));
        lut[at] = km2.centroids[0];
        // one distinct value: both children are it (the parent's value is already optimal)
        lut[at + 1] = km2.centroids[km2.centroids.length - 1];
        idx.forEach((c, j) => {
          code[c] = 2 * p + km2.assignment[j];
        });
      }
    }
    for (let c = 0; c < cols; c++) {
      for (let b = 0; b < n; b++) if ((code[c] >> (n - 1 - b)) & 1) planes[(b * rows + r) * rpb + (c >> 3)] |= 1 << (c & 7);
    }
  }
  const t: AnyPrecisionTensor = { kind: 'any-precision', seedBits: seed, maxBits: n, shape: [rows, cols], luts, planes };
  validatePacked('upscaleAnyPrecision', t);
  return t;
}

/** Positive weights: zero-sensitivity columns (dead inputs) get a small floor so every cluster has mass. */
function sensitivity(weights: ArrayLike<number> | undefined, cols: number): Float64Array {
  if (!weights) return new Float64Array(cols).fill(1);
  if (weights.length !== cols) throw new LowbitError('E_SHAPE', `upscaleAnyPrecision: ${weights.length} sensitivity weights for ${cols} columns`);
  let mean = 0;
  for (let c = 0; c < cols; c++) {
    if (!(weights[c] >= 0) || !Number.isFinite(weights[c])) throw new LowbitError('E_ARG', `upscaleAnyPrecision: sensitivity weight ${c} is ${weights[c]}; weights must be finite and >= 0`);
    mean += weights[c] / cols;
  }
  const floor = mean > 0 ? mean * 1e-6 : 1;
  return Float64Array.from({ length: cols }, (_, c) => (weights[c] > 0 ? weights[c] : floor));
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
