import { LowbitError } from '@lowbit/kernels';
import { type PackedIntTensor, intSections, intStorageBytes } from '@lowbit/formats';
import { IntGrid } from './grid.js';
import type { MatmulKernels } from '@lowbit/solvers';
import { Gptq, KERNEL_MIN_COLS, gptqQuantize } from './gptq.js';
import { gramMatrix, outputError, weightError } from './layer-error.js';
import { rtnQuantize } from './rtn.js';
import { QUANTIZE_DEFAULTS } from './defaults.js';

export interface QuantizeLayerOptions {
  method: 'rtn' | 'gptq';
  /** 2..8 (default 4, `QUANTIZE_DEFAULTS`). */
  bits?: number;
  /** Columns per group; 0 = one scale per output channel. Default 32 (`QUANTIZE_DEFAULTS`). */
  group?: number;
  /** Symmetric grid (zero 2^(bits−1)); default true, as quantizeModel (`QUANTIZE_DEFAULTS`; gptq.py defaults to asymmetric). */
  symmetric?: boolean;
  actOrder?: boolean;
  staticGroups?: boolean;
  /** GPTQ dampening as a fraction of mean(diag H); default 0.01. */
  damp?: number;
  /** `@lowbit/kernels` for layers with ≥ 512 inputs: XᵀX, GPTQ and the errors as f32 WASM matmuls (see `GptqOptions.kernels`). */
  kernels?: MatmulKernels;
}

export interface QuantizeLayerResult {
  method: 'rtn' | 'gptq';
  bits: number;
  /** Group size, or 0 for per output channel. */
  group: number;
  sym: boolean;
  act_order: boolean;
  static_groups: boolean;
  damp: number;
  rows: number;
  cols: number;
  samples: number;
  /** ‖W·Xᵀ − Ŵ·Xᵀ‖²_F */
  err_output: number;
  /** ‖W − Ŵ‖²_F */
  err_weight: number;
  /** err_output divided by ‖W·Xᵀ‖²_F. */
  err_output_rel: number;
  /** Codes plus fp16 scales (and packed zero points when asymmetric) per weight, as stored (formats intBitsPerWeight). */
  bits_per_weight: number;
  seconds: number;
  /** Ŵ [rows, cols] f32. */
  weights: Float32Array;
  packed: PackedIntTensor | null;
}

/**
 * One layer, for users who bring their own tensors: W [rows, cols] (out × in) and calibration
 * inputs X [samples, cols]. Reports the output error on those same inputs.
 */
export function quantizeLayer(w: Float32Array, wShape: [number, number], x: Float32Array, xShape: [number, number], o: QuantizeLayerOptions): QuantizeLayerResult {
  const [rows, cols] = wShape;
  const [samples, xcols] = xShape;
  if (xcols !== cols) throw new LowbitError('E_SHAPE', `inputs have ${xcols} columns but the weights have ${cols} input channels (W is out × in, X is samples × in)`);
  if (samples < 1) throw new LowbitError('E_ARG', 'inputs hold no samples');
  if (o.method !== 'rtn' && o.method !== 'gptq') throw new LowbitError('E_ARG', `method must be rtn or gptq, got "${o.method as string}"`);
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw new LowbitError('E_NAN', `input [${Math.floor(i / cols)}, ${i % cols}] is ${x[i]}`);
  for (let i = 0; i < w.length; i++) if (!Number.isFinite(w[i])) throw new LowbitError('E_NAN', `weight [${Math.floor(i / cols)}, ${i % cols}] is ${w[i]}`);
  const bits = o.bits ?? QUANTIZE_DEFAULTS.bits;
  const group = o.group ?? QUANTIZE_DEFAULTS.group;
  if (!Number.isInteger(group) || group < 0) throw new LowbitError('E_ARG', `group must be a non-negative integer, got ${group}`);
  const symmetric = o.symmetric ?? QUANTIZE_DEFAULTS.symmetric;
  const damp = o.damp ?? QUANTIZE_DEFAULTS.damp;
  const t0 = performance.now();
  let gram: Float64Array;
  if (o.kernels && cols >= KERNEL_MIN_COLS) {
    const g = new Gptq(cols, { kernels: o.kernels });
    g.addBatch(x, samples);
    gram = g.gram();
  } else gram = gramMatrix(x, samples, cols);
  let r: { weights: Float32Array; packed: PackedIntTensor | null };
  if (o.method === 'gptq') {
    const H = Float64Array.from(gram, (v) => (2 * v) / samples);
    r = gptqQuantize(w, wShape, H, { grid: new IntGrid({ bits, symmetric }), group, actOrder: o.actOrder, staticGroups: o.staticGroups, damp, kernels: o.kernels });
  } else {
    r = rtnQuantize(w, wShape, { bits, symmetric, group: group || undefined });
  }
  const seconds = (performance.now() - t0) / 1000;
  const errOutput = outputError(w, r.weights, wShape, gram, { kernels: o.kernels });
  const zeros = new Float32Array(w.length);
  const signal = outputError(w, zeros, wShape, gram, { kernels: o.kernels });
  // as stored; gptqQuantize leaves act-order groups unpacked, they are stored with their group index
  const count = rows * (group > 0 ? Math.ceil(cols / group) : 1);
  const bytes = r.packed ? intStorageBytes(r.packed) : intSections({ rows, cols, bits, count, symmetric, group: group || cols, gIdx: true }).total;
  return {
    method: o.method, bits, group, sym: symmetric, act_order: o.actOrder ?? false, static_groups: o.staticGroups ?? false, damp,
    rows, cols, samples,
    err_output: errOutput,
    err_weight: weightError(w, r.weights),
    err_output_rel: signal > 0 ? errOutput / signal : 0,
    bits_per_weight: (8 * bytes) / (rows * cols),
    seconds,
    weights: r.weights,
    packed: r.packed,
  };
}
