// The one interface every post-training method sits behind: a layer's weights and the statistics of
// the inputs it sees go in, the quantized weights and their packed @lowbit/formats tensor come out.
// quantizeModel runs a Quantizer layer by layer on calibration text; users with their own tensors
// call it directly.
import { type MxFormatName, type PackedIntTensor, rowBytes, writeBits } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import type { MatmulKernels } from '@lowbit/solvers';
import type { MxRowsTensor } from '@lowbit/runtime';
import { type GgmlType, GgmlGrid } from './ggml-grid.js';
import { type Grid, IntGrid } from './grid.js';
import { type Gptq, type GptqResult, gptqQuantize } from './gptq.js';
import { outputError } from './layer-error.js';
import { MxGrid } from './mx-grid.js';
import { rtnQuantize } from './rtn.js';

/** One linear layer as a quantizer sees it. */
export interface LayerInput {
  /** Row-major [rows, cols] (out × in) f32 weights. */
  weights: Float32Array;
  shape: [number, number];
  /** Statistics of the layer's calibration inputs (H = 2XᵀX/N and Gram matrix); required when `needsStats`. */
  stats?: Gptq;
  /**
   * Scores a candidate Ŵ when the quantizer chooses among several (AdaDim's dimension, clipping
   * ratios): lower is better. Default: the output error ‖(W − Ŵ)·Xᵀ‖² from `stats`.
   */
  score?: (weights: Float32Array) => number;
}

export interface QuantizedLayer {
  /** Ŵ, the values the packed tensor decodes to, [rows, cols]. */
  weights: Float32Array;
  /** INT-k: a formats INT-k tensor (act-order groups through `gIdx`); MX: E8M0 blocks per row; ggml block types: null (see `raw`). */
  packed: PackedIntTensor | MxRowsTensor | null;
  /** Grouping chosen: 'oc' (scales per output row / groups of columns) or 'ic' (per input channel). */
  dim: 'oc' | 'ic';
  /** Clipping ratio chosen (1 = min-max range). */
  clip: number;
  /** ‖(W − Ŵ)·Xᵀ‖²_F on the calibration inputs; NaN without `stats`. */
  errOutput: number;
  /** Codes, scales and zeros on the grid (GPTQ and grid RTN; absent for INT-k RTN), for other containers such as ggml blocks. */
  raw?: GptqResult;
}

export interface Quantizer {
  /** e.g. "gptq int4 g32", "rtn mxfp4", with "+adadim" / "+clip" when those searches run. */
  readonly name: string;
  /** Whether `quantize` needs `LayerInput.stats` (GPTQ, and any search scored by output error). */
  readonly needsStats: boolean;
  quantize(layer: LayerInput): QuantizedLayer;
}

export interface QuantizerOptions {
  method: 'rtn' | 'gptq';
  /** 'int' (INT-k of `bits`), a ggml block type, or an OCP MX element format. Default 'int'. */
  format?: 'int' | GgmlType | MxFormatName;
  bits?: number;
  symmetric?: boolean;
  /** Columns per group; 0 = one scale per output channel. ggml and MX store groups of 32. */
  group?: number;
  actOrder?: boolean;
  staticGroups?: boolean;
  damp?: number;
  /** AdaDim: try per-OC and per-IC grouping, keep the lower score. */
  adaDim?: boolean;
  /** Clipping ratios to search (Q-Rater); default [1]. */
  clips?: number[];
  /** f32 WASM matmuls for layers with >= 512 inputs (GPTQ, output error). */
  kernels?: MatmulKernels;
}

/** RTN onto any grid: GPTQ with H = I spreads no error, so each weight is simply rounded. */
function rtnOnGrid(w: Float32Array, shape: [number, number], grid: Grid, group: number): GptqResult {
  const I = new Float64Array(shape[1] * shape[1]);
  for (let i = 0; i < shape[1]; i++) I[i * shape[1] + i] = 1;
  return gptqQuantize(w, shape, I, { grid, group, damp: 0 });
}

/** Act-order without static groups: groups are not runs of columns, so the tensor carries GPTQ's column → group map. */
function withGroupIndex(g: GptqResult, [rows, cols]: [number, number], bits: number, group: number): PackedIntTensor {
  const rb = rowBytes(cols, bits);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) writeBits(codes, r * rb * 8 + c * bits, bits, g.codes[r * cols + c]);
  return {
    kind: 'int', bits, symmetric: g.zeros === null, shape: [rows, cols], granularity: group > 0 ? 'group-cols' : 'per-oc', group: group > 0 ? group : cols,
    scales: g.scales, zeros: g.zeros, codes, gIdx: group > 0 ? g.groupIndex : null,
  };
}

/** RTN or GPTQ on INT-k, ggml or MX grids, with optional AdaDim and clipping searches, as one Quantizer. */
export function createQuantizer(o: QuantizerOptions): Quantizer {
  const format = o.format ?? 'int';
  const mx = format.startsWith('mx');
  const group = o.group ?? 0;
  const bits = o.bits ?? 0;
  const symmetric = o.symmetric ?? true;
  const clips = o.clips ?? [1];
  if (!clips.length || !clips.every((c) => c > 0 && c <= 1)) throw new LowbitError('E_ARG', `clipping ratios must be in (0, 1], got ${clips.join(', ')}`);
  if (format === 'int' && !(Number.isInteger(bits) && bits >= 2 && bits <= 8)) throw new LowbitError('E_ARG', `INT-k quantizers take 2..8 bits, got ${o.bits}`);
  if (format !== 'int' && group !== 32) throw new LowbitError('E_ARG', `${format} stores groups of 32 (got group ${group})`);
  if (format !== 'int' && clips.length > 1) throw new LowbitError('E_ARG', `${format}: clipping search is for INT-k grids`);
  if (format !== 'int' && o.adaDim) throw new LowbitError('E_ARG', `${format}: AdaDim is for INT-k grids`);
  if (format !== 'int' && !mx && o.actOrder && !o.staticGroups) throw new LowbitError('E_ARG', `${format}: act-order needs static groups (ggml blocks are contiguous)`);
  const grid: Grid = format === 'int' ? new IntGrid({ bits, symmetric }) : mx ? new MxGrid(format as MxFormatName) : new GgmlGrid(format as GgmlType);
  const dims = o.adaDim ? (['oc', 'ic'] as const) : (['oc'] as const);
  const searching = dims.length * clips.length > 1;
  const name = `${o.method} ${format === 'int' ? `int${bits} ${group ? `g${group}` : 'per-channel'}` : format}${o.adaDim ? '+adadim' : ''}${clips.length > 1 ? '+clip' : ''}`;

  const candidate = (w: Float32Array, shape: [number, number], H: Float64Array | undefined, dim: 'oc' | 'ic', clip: number): { weights: Float32Array; packed: PackedIntTensor | null; raw?: GptqResult } => {
    if (o.method === 'gptq') {
      const g = gptqQuantize(w, shape, H as Float64Array, { grid: clip === 1 ? grid : new IntGrid({ bits, symmetric, clip }), group, dim, actOrder: o.actOrder, staticGroups: o.staticGroups, damp: o.damp, kernels: o.kernels });
      return { weights: g.weights, packed: g.packed, raw: g };
    }
    if (format === 'int') return rtnQuantize(w, shape, { bits, symmetric, group: group || undefined, clip, granularity: dim === 'ic' ? (group ? 'group-rows' : 'per-ic') : undefined });
    const g = rtnOnGrid(w, shape, grid, group);
    return { weights: g.weights, packed: g.packed, raw: g };
  };

  return {
    name,
    needsStats: o.method === 'gptq' || searching,
    quantize(layer: LayerInput): QuantizedLayer {
      const { weights: w, shape, stats } = layer;
      if (w.length !== shape[0] * shape[1]) throw new LowbitError('E_SHAPE', `${name}: ${w.length} weights do not fill shape [${shape}]`);
      if ((o.method === 'gptq' || (searching && !layer.score)) && !stats) throw new LowbitError('E_ARG', `${name} needs the layer's calibration statistics (stats)`);
      if (stats && stats.samples === 0) throw new LowbitError('E_ARG', `${name}: the calibration text produced no inputs for this layer`);
      const H = o.method === 'gptq' ? stats?.hessian() : undefined;
      const gram = stats?.gram();
      let best: { c: ReturnType<typeof candidate>; dim: 'oc' | 'ic'; clip: number; err: number; score: number } | null = null;
      for (const dim of dims) {
        for (const clip of clips) {
          const c = candidate(w, shape, H, dim, clip);
          const err = gram ? outputError(w, c.weights, shape, gram, { kernels: o.kernels }) : Number.NaN;
          const score = layer.score ? layer.score(c.weights) : err;
          if (best === null || score < best.score) best = { c, dim, clip, err, score };
        }
      }
      const b = best as NonNullable<typeof best>;
      const raw = b.c.raw;
      const packed: PackedIntTensor | MxRowsTensor | null = mx
        ? { kind: 'mx-rows', format: format as MxFormatName, shape, scales: Uint8Array.from((raw as GptqResult).scales, (s) => Math.log2(s) + 127), codes: (raw as GptqResult).codes }
        : format === 'int'
          ? (b.c.packed ?? withGroupIndex(raw as GptqResult, shape, bits, group))
          : null;
      return { weights: b.c.weights, packed, dim: b.dim, clip: b.clip, errOutput: b.err, raw };
    },
  };
}
