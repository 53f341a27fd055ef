import { LowbitError } from '@lowbit/kernels';
import { type MxFormatName, type PackedIntTensor, intStorageBytes } from '@lowbit/formats';
import { type DecoderModel, type MxRowsTensor, linearWeightFromPacked } from '@lowbit/runtime';
import type { Gptq, GptqResult } from './gptq.js';
import { SEQUENTIAL_GROUPS, BlockCalibration, type CalibrationOptions, calibrationWindows, collectHessians } from './calibrate.js';
import { type GgmlType, ggmlBlocks } from './ggml-grid.js';
import { MxGrid } from './mx-grid.js';
import { weightError } from './layer-error.js';
import { f32Weights } from './source-weights.js';
import { calibrationLoss } from './clip-loss.js';
import { createQuantizer } from './quantizer.js';
import { QUANTIZE_DEFAULTS } from './defaults.js';

/** What every format family shares: the method, calibration, and the model-level switches. */
export interface QuantizeCommonOptions extends CalibrationOptions {
  /** Default `QUANTIZE_DEFAULTS.method` ('gptq'). */
  method?: 'rtn' | 'gptq';
  /** GPTQ: quantize columns in order of decreasing H diagonal. */
  actOrder?: boolean;
  /** With actOrder: groups fixed from the original column order before the reordering (needed by ggml blocks). */
  staticGroups?: boolean;
  /** GPTQ dampening as a fraction of mean(diag H). Default 0.01. */
  damp?: number;
  /** Calibration text (GPTQ, SmoothQuant, AdaDim and the clipping search; RTN needs none unless `measure`). */
  calibration?: string;
  /** Also quantize `output.weight` (the LM head). Default false: GPTQ's paper keeps it, and the embeddings, in full precision. */
  includeOutput?: boolean;
  /**
   * SmoothQuant migration strength α ∈ [0, 1] (paper eq. 4: s_j = max|X_j|^α / max|W_j|^(1−α)), applied
   * where a norm feeds the layers (q/k/v after attn_norm, gate/up after ffn_norm): W ← W·diag(s) and the
   * norm weight (and bias) ← /s, an exact rewrite of the model before quantization. Omitted: no smoothing.
   */
  smooth?: number;
  /** Measure each layer's output error on its calibration inputs (costs the calibration passes for RTN too). */
  measure?: boolean;
  /**
   * Keep each calibration window's residual stream at the current block's input, so a sequential
   * group's pass runs one block rather than every block before it (`BlockCalibration`; the same
   * statistics bit for bit). Default true while the streams take at most `cacheBytes` (default 1 GiB);
   * beyond that, or with false, every pass runs the model from the embeddings (`collectHessians`).
   */
  cacheInputs?: boolean;
  cacheBytes?: number;
  onLayer?: (report: LayerReport, done: number, total: number) => void;
}

/** INT-k of `bits` on the @lowbit/formats grid; layers replaced by fake-quantized f32 (or packed, `keepPacked`). */
export interface IntQuantizeOptions extends QuantizeCommonOptions {
  format?: 'int';
  /** 2..8. Default 4. */
  bits?: number;
  /** Columns per group; 0 = one scale per output channel. Default 32. */
  group?: number;
  /** Zero-point-free grid (zero 2^(bits−1)). Default true. */
  symmetric?: boolean;
  /**
   * AdaDim: per layer, quantize with groups along the input dimension (per-OC scales, the usual) and
   * along the output dimension (per-IC scales), and keep the one with the lower output error on the
   * layer's calibration inputs (activation-aware).
   */
  adaDim?: boolean;
  /**
   * Q-Rater-style clipping search: per layer, try each clipping ratio (the grid covers ratio·range) and
   * keep the one with the lowest output error on the layer's calibration inputs, then freeze it and go
   * on to the next layer. `true` = ratios 1, 0.95, …, 0.6.
   */
  clipSearch?: boolean | number[];
  /**
   * What the clipping search minimizes: 'output' (default) the layer's output error on its calibration
   * inputs; 'loss' the model's calibration NLL with the layer replaced (`calibrationLoss`, Q-Rater's
   * optional model-loss criterion; one pass over `lossWindows` windows per candidate).
   */
  clipCriterion?: 'output' | 'loss';
  /** Calibration windows per candidate for clipCriterion 'loss'. Default 4. */
  lossWindows?: number;
  /**
   * Run the quantized layers from their packed tensor (int4 groups of 32k on the int4 matmul)
   * instead of fake-quantized f32, so a model loaded packed (a 1B-class Q8_0) stays within memory.
   */
  keepPacked?: boolean;
}

/**
 * llama.cpp's block grids (groups of 32, f16 scales); layers replaced by the blocks themselves, so
 * the model runs (and saves) as llama.cpp would; layers whose rows are not a multiple of 32 are left
 * in full precision (llama.cpp's own quantizer keeps them F16). Act-order needs `staticGroups`.
 */
export interface GgmlQuantizeOptions extends QuantizeCommonOptions {
  format: GgmlType;
}

/**
 * An OCP MX format: blocks of 32 along each row with one E8M0 scale (a partial last block on
 * 172-wide rows), layers replaced by fake-quantized f32.
 */
export interface MxQuantizeOptions extends QuantizeCommonOptions {
  format: MxFormatName;
}

/** One option set per format family: only the fields that family uses. */
export type ModelQuantizeOptions = IntQuantizeOptions | GgmlQuantizeOptions | MxQuantizeOptions;

const isInt = (o: ModelQuantizeOptions): o is IntQuantizeOptions => (o.format ?? 'int') === 'int';

export interface LayerReport {
  name: string;
  rows: number;
  cols: number;
  /** ‖W·Xᵀ − Ŵ·Xᵀ‖²_F over this layer's calibration inputs (as produced by the already-quantized layers before it); NaN when not measured. */
  errOutput: number;
  errWeight: number;
  seconds: number;
  /** Clipping ratio used (1 = min-max range). */
  clip: number;
  /** Grouping used: 'oc' (scales per output channel / row groups of columns) or 'ic' (per input channel). */
  dim: 'oc' | 'ic';
}

export interface ModelQuantizeResult {
  layers: LayerReport[];
  /**
   * The packed tensor of every quantized layer, by GGUF tensor name, as `saveModel({ packed })` stores
   * it: INT-k as a formats PackedIntTensor (act-order without static groups carries its `gIdx`), MX as
   * blocks of 32 per row (`MxRowsTensor`); null for ggml formats, whose layers already hold the blocks.
   */
  packed: Map<string, PackedIntTensor | MxRowsTensor | null>;
  /** Bits per quantized weight as stored (int: codes + f32 scales and zeros; ggml: the block size). Layers left in full precision are not counted. */
  bitsPerWeight: number;
  seconds: number;
}

/**
 * Which layers are quantized together: each group's inputs are captured after every earlier group
 * was replaced by its quantized weights (GPTQ's "true sequential" order inside a transformer block:
 * q/k/v share one input, then the attention output, then gate/up, then down).
 */
const CACHE_BYTES = 2 ** 30;


/**
 * Quantizes every linear layer of a loaded model in place (fake-quantized f32 weights via
 * `setLinear`, so the model can be evaluated at once) and returns the packed tensors. Memory beyond
 * the model is the H of the layers of one sequential group, plus the cached block inputs
 * (windows × ctx × dim f32, see `cacheInputs`).
 */
export function quantizeModel(model: DecoderModel, o: ModelQuantizeOptions): ModelQuantizeResult {
  const t0 = performance.now();
  const int = isInt(o) ? o : null;
  const method = o.method ?? QUANTIZE_DEFAULTS.method;
  const bits = int?.bits ?? QUANTIZE_DEFAULTS.bits;
  // ggml and MX store blocks of 32 along each row: the grid, not an option, fixes the group
  const group = int ? (int.group ?? QUANTIZE_DEFAULTS.group) : 32;
  const symmetric = int?.symmetric ?? QUANTIZE_DEFAULTS.symmetric;
  const calibOptions: CalibrationOptions = { ctx: o.ctx ?? QUANTIZE_DEFAULTS.ctx, maxWindows: o.maxWindows ?? QUANTIZE_DEFAULTS.maxWindows, kernelMinCols: o.kernelMinCols };
  const smooth = o.smooth;
  if (smooth !== undefined && !(smooth >= 0 && smooth <= 1)) throw new LowbitError('E_ARG', `smooth (SmoothQuant α) must be in [0, 1], got ${smooth}`);
  // read from any family: a ggml or MX call with INT-k-only fields (untyped JS) reaches createQuantizer, which names the misuse
  const { clipSearch, clipCriterion, adaDim } = o as IntQuantizeOptions;
  const clips = clipSearch === true ? [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6] : clipSearch ? clipSearch : [1];
  if (!clips.every((c) => c > 0 && c <= 1)) throw new LowbitError('E_ARG', `clipSearch ratios must be in (0, 1], got ${clips.join(', ')}`);
  if (clipCriterion !== undefined && clipCriterion !== 'output' && clipCriterion !== 'loss') throw new LowbitError('E_ARG', `clipCriterion must be 'output' or 'loss', got ${String(clipCriterion)}`);
  const needCalibration = method === 'gptq' || o.measure === true || smooth !== undefined || adaDim === true || clips.length > 1;
  if (needCalibration && !o.calibration) throw new LowbitError('E_ARG', `quantizeModel: method ${method} needs calibration text`);
  const format = o.format ?? 'int';
  const mx = format.startsWith('mx');
  const ggml = format !== 'int' && !mx;
  const quantizer = createQuantizer({
    method, format, bits, symmetric, group, actOrder: o.actOrder, staticGroups: o.staticGroups,
    damp: o.damp ?? QUANTIZE_DEFAULTS.damp, adaDim, clips, kernels: model.kernels,
  });
  const mxBits = mx ? new MxGrid(format as MxFormatName).bits : 0;
  const names = new Set(model.linears().filter((l) => !ggml || l.cols % 32 === 0).map((l) => l.name));
  // steps[i]: block i's sequential groups (the last entry: the LM head alone)
  const steps: string[][][] = [];
  for (let i = 0; names.has(`blk.${i}.attn_q.weight`); i++) {
    steps.push(SEQUENTIAL_GROUPS.map((g) => g.map((n) => `blk.${i}.${n}.weight`).filter((n) => names.has(n))));
  }
  if (o.includeOutput) {
    while (steps.length < model.config.nLayers) steps.push([]);
    steps.push([['output.weight']]);
  }
  const total = steps.flat(2).length;
  const layers: LayerReport[] = [];
  const packed = new Map<string, PackedIntTensor | MxRowsTensor | null>();
  let storedBits = 0;
  let count = 0;
  // the calibration text is tokenized and cut once, for whichever calibration runs
  const cut = needCalibration ? calibrationWindows(model, o.calibration as string, calibOptions) : null;
  const cache = cut && o.cacheInputs !== false && BlockCalibration.bytes(model, cut) <= (o.cacheBytes ?? CACHE_BYTES);
  const calib = cut && cache ? new BlockCalibration(model, cut, calibOptions) : null;
  try {
    for (const block of steps) {
      for (const step of block) quantizeStep(step);
      if (calib && calib.block < model.config.nLayers) calib.advance();
    }
  } finally {
    calib?.free();
  }
  return { layers, packed, bitsPerWeight: count ? storedBits / count : 0, seconds: (performance.now() - t0) / 1000 };

  // Q-Rater's model-loss criterion; from the cached block inputs when they cover the loss windows
  // (the same NLL bit for bit, without re-running the blocks before this one)
  function scoreByLoss(name: string, shape: [number, number], w: Float32Array): number {
    const windows = int?.lossWindows ?? QUANTIZE_DEFAULTS.lossWindows;
    if (!calib || windows > calib.windowCount) return calibrationLoss(model, name, shape, w, o.calibration as string, { ctx: calibOptions.ctx, windows });
    model.setLinear(name, { format: 'f32', shape, data: w });
    return calib.loss(windows);
  }

  function quantizeStep(step: string[]): void {
    const stats = !cut ? null : calib ? calib.collect(step) : collectHessians(model, cut, step, calibOptions);
    if (smooth !== undefined && stats) smoothGroup(model, step, stats, smooth);
    for (const name of step) {
      const t = performance.now();
      const lin = model.linear(name);
      const src = f32Weights(name, lin.source);
      const shape: [number, number] = [lin.rows, lin.cols];
      const byLoss = clipCriterion === 'loss' && clips.length > 1;
      const r = quantizer.quantize({
        weights: src.data, shape, stats: stats?.get(name),
        score: byLoss ? (w) => scoreByLoss(name, shape, w) : undefined,
      });
      const { dim, clip } = r;
      const report: LayerReport = {
        name, rows: lin.rows, cols: lin.cols, dim, clip,
        errOutput: r.errOutput,
        errWeight: weightError(src.data, r.weights),
        seconds: (performance.now() - t) / 1000,
      };
      if (mx) {
        model.setLinear(name, { format: 'f32', shape, data: r.weights });
        packed.set(name, r.packed);
        storedBits += lin.rows * (lin.cols * mxBits + Math.ceil(lin.cols / 32) * 8); // element codes + one E8M0 per block
      } else if (format === 'int') {
        model.setLinear(name, int?.keepPacked && r.packed ? linearWeightFromPacked(r.packed as PackedIntTensor) : { format: 'f32', shape, data: r.weights });
        packed.set(name, r.packed);
        // as stored: codes, fp16 scales, packed zeros and group index (formats intStorageBytes)
        storedBits += 8 * intStorageBytes(r.packed as PackedIntTensor);
      } else {
        const g = r.raw as GptqResult;
        const t = format as GgmlType;
        model.setLinear(name, { format: t, shape, data: ggmlBlocks(t, g.codes, lin.rows, lin.cols, g.scales, g.zeros) });
        packed.set(name, null);
        storedBits += lin.rows * lin.cols * ({ q4_0: 4.5, q4_1: 5, q8_0: 8.5 } as const)[t];
      }
      count += lin.rows * lin.cols;
      layers.push(report);
      o.onLayer?.(report, layers.length, total);
    }
  }
}

/**
 * SmoothQuant for one group of layers sharing an input that a norm produces. The migration is folded
 * into the norm so the model stays exact in full precision and any weight format can store the result.
 */
function smoothGroup(model: DecoderModel, step: string[], stats: Map<string, Gptq>, alpha: number): void {
  const m = /^blk\.(\d+)\.(attn_q|ffn_gate|ffn_up)\.weight$/.exec(step[0]);
  if (!m) return; // attn_output / ffn_down: no norm in front to absorb the scale
  const layer = model.weights.layers[Number(m[1])];
  const [norm, bias] = m[2] === 'attn_q' ? [layer.attnNorm, layer.attnNormBias] : [layer.ffnNorm, layer.ffnNormBias];
  const cols = model.linear(step[0]).cols;
  const wmax = new Float64Array(cols);
  for (const name of step) {
    const src = model.linear(name).source;
    if (src.format !== 'f32') throw new LowbitError('E_UNSUPPORTED', `${name}: SmoothQuant needs f32 weights, the layer is ${src.format}`);
    for (let i = 0; i < src.data.length; i++) wmax[i % cols] = Math.max(wmax[i % cols], Math.abs(src.data[i]));
  }
  const xmax = (stats.get(step[0]) as Gptq).absMax;
  // Clamps keep dead channels (x or w all zero) from producing 0 or ∞ scales.
  const s = Float64Array.from(wmax, (w, j) => Math.fround(Math.max(1e-5, Math.max(xmax[j], 1e-5) ** alpha / Math.max(w, 1e-5) ** (1 - alpha))));
  for (const name of step) {
    const lin = model.linear(name);
    const src = lin.source as { data: Float32Array };
    const data = Float32Array.from(src.data, (v, i) => v * s[i % cols]);
    model.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data });
    (stats.get(name) as Gptq).scaleInputs(s);
  }
  for (let j = 0; j < cols; j++) {
    norm[j] /= s[j];
    if (bias) bias[j] /= s[j];
  }
}

