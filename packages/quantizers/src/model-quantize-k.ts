// GPTQ on llama.cpp's K-quant grids for a whole loaded model: the per-layer types of `quantizeModelK`
// (one K type, or the Q4_K_M mix), each K layer quantized by `gptqKQuantize` on the Hessian of its
// inputs captured in GPTQ's sequential order, so the model runs (and saves) the blocks llama.cpp loads.
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, type KQuantLayerType, type KQuantScheme, type LinearWeight, fallbackWeight, isKQuantFallback, kquantLayerType } from '@lowbit/runtime';
import { SEQUENTIAL_GROUPS, BlockCalibration, type CalibrationOptions, calibrationWindows, collectHessians } from './calibrate.js';
import { QUANTIZE_DEFAULTS } from './defaults.js';
import type { Gptq } from './gptq.js';
import { gptqKQuantize } from './gptq-kquant.js';
import { f32Weights } from './source-weights.js';

export interface KQuantizeModelOptions extends CalibrationOptions {
  /** One K type for every matrix, or llama.cpp's Q4_K_M mix (see `kquantLayerType`). */
  scheme: KQuantScheme;
  /** Calibration text, one document per line. */
  calibration: string;
  /** GPTQ dampening as a fraction of mean(diag H). Default 0.01. */
  damp?: number;
  /** Columns by decreasing diag(H); the super-block scales are then fixed from the original weights. */
  actOrder?: boolean;
  /** Fix the super-block scales from the original weights without act-order. */
  staticGroups?: boolean;
  /** Keep the residual stream at the current block's input (as `quantizeModel`). Default true up to 1 GiB. */
  cacheInputs?: boolean;
  onLayer?: (report: KLayerReport, done: number, total: number) => void;
}

export interface KLayerReport {
  name: string;
  type: KQuantLayerType;
  rows: number;
  cols: number;
  /** 'gptq' for the K layers; 'rtn' for the rows that are not whole super-blocks (the fallback type by ggml's quantizer, or F32 as they are). */
  method: 'gptq' | 'rtn';
  /** GPTQ's OBS estimate Σ (w − q)²/(2·[H⁻¹]qq); NaN for the fallback layers. */
  loss: number;
  seconds: number;
}

export interface KQuantizeModelResult {
  layers: KLayerReport[];
  /** Bits per weight as stored over every linear layer (the fallback layers included, as `quantizeModelK` counts). */
  bitsPerWeight: number;
  seconds: number;
}

/** GPTQ's "true sequential" order inside a block (as `quantizeModel`): q/k/v share one input, then attention output, gate/up, down. */
const CACHE_BYTES = 2 ** 30;

/**
 * K-quantizes every linear layer of `model` in place with GPTQ on the K grid. Rows that are not whole
 * 256-weight super-blocks take exactly `quantizeModelK`'s fallback (llama.cpp's 32-block type for the
 * K type, by ggml's quantizer; F32 where rows are not whole 32-blocks), by round to nearest.
 */
export function gptqQuantizeModelK(model: DecoderModel, o: KQuantizeModelOptions): KQuantizeModelResult {
  const t0 = performance.now();
  if (!o.calibration) throw new LowbitError('E_ARG', 'gptqQuantizeModelK: GPTQ needs calibration text');
  const { nLayers } = model.config;
  const calibOptions: CalibrationOptions = { ctx: o.ctx ?? QUANTIZE_DEFAULTS.ctx, maxWindows: o.maxWindows ?? QUANTIZE_DEFAULTS.maxWindows, kernelMinCols: o.kernelMinCols };
  const linears = model.linears();
  const types = new Map(linears.map((l) => [l.name, kquantLayerType(o.scheme, l.name, nLayers, l.cols)]));
  const steps: string[][] = [];
  for (let i = 0; i < nLayers; i++) {
    for (const g of SEQUENTIAL_GROUPS) steps.push(g.map((n) => `blk.${i}.${n}.weight`).filter((n) => types.has(n)));
  }
  steps.push(['output.weight']);
  const covered = new Set(steps.flat());
  const other = linears.filter((l) => !covered.has(l.name)).map((l) => l.name);
  if (other.length > 0) throw new LowbitError('E_UNSUPPORTED', `${model.name}: GPTQ on the K grid knows Llama-style layers only; no sequential step for ${other.join(', ')}`);
  const cut = calibrationWindows(model, o.calibration, calibOptions);
  const calib = o.cacheInputs !== false && BlockCalibration.bytes(model, cut) <= CACHE_BYTES ? new BlockCalibration(model, cut, calibOptions) : null;
  const layers: KLayerReport[] = [];
  let bytes = 0;
  let weights = 0;
  try {
    for (const step of steps) {
      const block = step[0] === 'output.weight' ? nLayers : Number(/^blk\.(\d+)\./.exec(step[0] ?? '')?.[1] ?? -1);
      if (block < 0) continue;
      while (calib && calib.block < block) calib.advance();
      const k = step.filter((n) => (types.get(n) as string).endsWith('_K'));
      const stats = k.length === 0 ? new Map<string, Gptq>() : calib ? calib.collect(k) : collectHessians(model, cut, k, calibOptions);
      for (const name of step) quantizeLayer(name, stats.get(name));
    }
  } finally {
    calib?.free();
  }
  return { layers, bitsPerWeight: weights ? (bytes * 8) / weights : 0, seconds: (performance.now() - t0) / 1000 };

  function quantizeLayer(name: string, stats: Gptq | undefined): void {
    const t = performance.now();
    const lin = model.linear(name);
    const type = types.get(name) as KQuantLayerType;
    const shape: [number, number] = [lin.rows, lin.cols];
    const x = f32Weights(name, lin.source).data;
    let w: LinearWeight & { data: Float32Array | Uint8Array };
    let loss = Number.NaN;
    if (type === 'F32') w = { format: 'f32', shape, data: x.slice() };
    else if (isKQuantFallback(type)) w = fallbackWeight(type, shape, x, `${model.name}: ${name}`);
    else {
      if (!stats || stats.samples === 0) throw new LowbitError('E_ARG', `${model.name}: ${name} saw no calibration input`);
      const r = gptqKQuantize(x, shape, stats.hessian(), { type, damp: o.damp, actOrder: o.actOrder, staticGroups: o.staticGroups, kernels: model.kernels, kernelMinCols: o.kernelMinCols });
      loss = r.loss;
      w = { format: 'kquant', type, shape, data: r.data };
    }
    bytes += w.data.byteLength;
    weights += lin.rows * lin.cols;
    model.setLinear(name, w);
    const report: KLayerReport = { name, type, rows: lin.rows, cols: lin.cols, method: w.format === 'kquant' ? 'gptq' : 'rtn', loss, seconds: (performance.now() - t) / 1000 };
    layers.push(report);
    o.onLayer?.(report, layers.length, linears.length);
  }
}

