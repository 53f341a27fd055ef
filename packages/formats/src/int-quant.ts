import { LowbitError } from '@lowbit/kernels';
import { readBits, rowBytes, writeBits } from './bits.js';
import { f16Scale } from './half.js';
import { checkBits } from './integer.js';
import { checkIntParams } from './int-storage.js';
import { scaleLayout } from './int-layout.js';
import { roundEven } from './round.js';
import type { Granularity, PackedIntTensor, ScaleLayout } from './tensor-types.js';
import { validatePacked } from './validate.js';

/**
 * INT-k quantization of a [rows, cols] matrix (rows = output channels, cols = input channels), as
 * RTN and GPTQ use it: value = scale·(u − zero), u ∈ [0, 2^k − 1] unsigned, scale an fp16 value.
 *  - symmetric: zero = 2^(k−1), scale = f16(clip·amax / ((2^k − 1)/2)) (GPTQ's convention);
 *  - asymmetric: scale = f16(clip·(max − min)/(2^k − 1)), zero = round(−clip·min / scale) (an integer).
 * Granularity (`Granularity`) picks which elements share a scale.
 */
export type { Granularity, PackedIntTensor, ScaleLayout } from './tensor-types.js';
export { readBits, rowBytes, scaleLayout, writeBits };

export interface IntQuantOptions {
  bits: number;
  symmetric?: boolean;
  granularity?: Granularity;
  /** Group size for 'group-cols' / 'group-rows'. */
  group?: number;
  /** Range shrink factor in (0, 1] (1 = min-max). */
  clip?: number;
}





export function checkMatrix(fn: string, data: unknown, shape: unknown): asserts data is Float32Array {
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  if (!Array.isArray(shape) || shape.length !== 2 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new LowbitError('E_SHAPE', `${fn}: shape must be [rows, cols] of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (shape[0] * shape[1] !== data.length) throw new LowbitError('E_SHAPE', `${fn}: shape [${shape}] needs ${shape[0] * shape[1]} values, got ${data.length}`);
}

function options(o: IntQuantOptions, shape: [number, number]): Required<IntQuantOptions> {
  checkBits(o.bits);
  const granularity = o.granularity ?? 'per-oc';
  const group = o.group ?? (granularity === 'group-rows' ? shape[0] : shape[1]);
  if ((granularity === 'group-cols' || granularity === 'group-rows') && (!Number.isInteger(group) || group <= 0)) {
    throw new LowbitError('E_ARG', `group size must be a positive integer, got ${group}`);
  }
  const clip = o.clip ?? 1;
  if (!(clip > 0 && clip <= 1)) throw new LowbitError('E_ARG', `clip must be in (0, 1], got ${clip}`);
  return { bits: o.bits, symmetric: o.symmetric ?? true, granularity, group, clip };
}

/** Scales and zero points from each group's range (min-max, shrunk by `clip`). */
export function findIntParams(data: Float32Array, shape: [number, number], o: IntQuantOptions): { scales: Float32Array; zeros: Float32Array | null; layout: ScaleLayout } {
  checkMatrix('findIntParams', data, shape);
  const opt = options(o, shape);
  const layout = scaleLayout(shape, opt.granularity, opt.group);
  const lo = new Float64Array(layout.count).fill(0);
  const hi = new Float64Array(layout.count).fill(0);
  const [rows, cols] = shape;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = data[r * cols + c];
      if (!Number.isFinite(v)) throw new LowbitError('E_NAN', `value at [${r}, ${c}] is ${v}; quantization needs finite weights`);
      const i = layout.index(r, c);
      if (v < lo[i]) lo[i] = v;
      if (v > hi[i]) hi[i] = v;
    }
  }
  const qmax = 2 ** opt.bits - 1;
  const scales = new Float32Array(layout.count);
  const zeros = opt.symmetric ? null : new Float32Array(layout.count);
  for (let i = 0; i < layout.count; i++) {
    // The scale is rounded to fp16 (its storage type) before anything uses it: the zero point and
    // every code are chosen against the scale that will be stored.
    if (opt.symmetric) {
      const amax = Math.max(-lo[i], hi[i]) * opt.clip;
      scales[i] = amax > 0 ? f16Scale(amax / (qmax / 2)) : 1;
    } else {
      const mn = lo[i] * opt.clip;
      const mx = hi[i] * opt.clip;
      const s = mx > mn ? f16Scale((mx - mn) / qmax) : 1;
      scales[i] = s;
      zeros![i] = Math.min(qmax, Math.max(0, roundEven(-mn / s)));
    }
  }
  return { scales, zeros, layout };
}

export function quantizeInt(data: Float32Array, shape: [number, number], o: IntQuantOptions): PackedIntTensor {
  const opt = options(o, shape);
  const { scales, zeros, layout } = findIntParams(data, shape, opt);
  return encodeIntWith(data, shape, { ...opt, scales, zeros, layout });
}

/** The scale layout of a tensor, its column → group map included. */
export function tensorLayout(t: Pick<PackedIntTensor, 'shape' | 'granularity' | 'group' | 'gIdx'>): ScaleLayout {
  const base = scaleLayout(t.shape, t.granularity, t.group);
  const g = t.gIdx;
  if (!g) return base;
  const ng = Math.ceil(t.shape[1] / t.group);
  return { count: base.count, index: (r, c) => r * ng + g[c] };
}

/**
 * Columns sorted by group, stable (ties keep column order): gathering x by this order turns a
 * tensor with `gIdx` into one with ordinary contiguous groups (how GEMVs run act-order tensors).
 */
export function groupOrder(gIdx: Int32Array): Int32Array {
  return Int32Array.from(gIdx.keys()).sort((a, b) => gIdx[a] - gIdx[b] || a - b);
}

const contiguousCache = new WeakMap<PackedIntTensor, { tensor: PackedIntTensor; order: Int32Array }>();

/**
 * A tensor with `gIdx` as an ordinary group-cols tensor over its columns taken in `groupOrder`:
 * W[:, order[j]] = contiguous[:, j], so W·x = contiguous·x[order]. Codes are re-packed once per
 * tensor (cached) so GEMVs pay only the gather of x per call.
 */
export function contiguousInt(t: PackedIntTensor): { tensor: PackedIntTensor; order: Int32Array } {
  const hit = contiguousCache.get(t);
  if (hit) return hit;
  if (!t.gIdx) throw new LowbitError('E_ARG', 'contiguousInt: the tensor has no gIdx');
  validatePacked('contiguousInt', t);
  const [rows, cols] = t.shape;
  const order = groupOrder(t.gIdx);
  const rb = rowBytes(cols, t.bits);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) writeBits(codes, r * rb * 8 + j * t.bits, t.bits, readBits(t.codes, r * rb * 8 + order[j] * t.bits, t.bits));
  }
  const out = { tensor: { ...t, codes, gIdx: null }, order };
  contiguousCache.set(t, out);
  return out;
}

/**
 * The inverse of `contiguousInt`: a tensor of ordinary contiguous groups (no `gIdx`) with its column j
 * moved to column order[j] and `gIdx` saying each column's group, as GPTQ's act-order stores weights it
 * quantized in `order` (W'[:, order[j]] = W[:, j], so W'·x = W·x[order]). `order` is a permutation of
 * the columns.
 */
export function actOrderInt(t: PackedIntTensor, order: Int32Array): PackedIntTensor {
  validatePacked('actOrderInt', t);
  const [rows, cols] = t.shape;
  if (t.gIdx || t.granularity !== 'group-cols') throw new LowbitError('E_ARG', 'actOrderInt: expected a group-cols tensor without gIdx');
  if (!(order instanceof Int32Array) || order.length !== cols) throw new LowbitError('E_SHAPE', `actOrderInt: order must be an Int32Array of ${cols} columns`);
  const gIdx = new Int32Array(cols).fill(-1);
  for (let j = 0; j < cols; j++) {
    const c = order[j];
    if (!(c >= 0 && c < cols) || gIdx[c] !== -1) throw new LowbitError('E_ARG', `actOrderInt: order is not a permutation of 0..${cols - 1} (order[${j}] = ${c})`);
    gIdx[c] = Math.floor(j / t.group);
  }
  const rb = rowBytes(cols, t.bits);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) writeBits(codes, r * rb * 8 + order[j] * t.bits, t.bits, readBits(t.codes, r * rb * 8 + j * t.bits, t.bits));
  }
  return { ...t, codes, gIdx };
}

/** Codes for given scales/zeros (GPTQ and clipping searches choose their own parameters). */
export function encodeIntWith(
  data: Float32Array, shape: [number, number],
  p: { bits: number; symmetric: boolean; granularity: Granularity; group: number; scales: Float32Array; zeros: Float32Array | null; layout?: ScaleLayout; gIdx?: Int32Array | null },
): PackedIntTensor {
  checkMatrix('encodeIntWith', data, shape);
  const layout = p.layout ?? tensorLayout({ shape, granularity: p.granularity, group: p.group, gIdx: p.gIdx });
  if (p.scales.length !== layout.count) throw new LowbitError('E_SHAPE', `scales has ${p.scales.length} entries, ${p.granularity} needs ${layout.count}`);
  if (p.zeros && p.zeros.length !== layout.count) throw new LowbitError('E_SHAPE', `zeros has ${p.zeros.length} entries, ${p.granularity} needs ${layout.count}`);
  checkIntParams('encodeIntWith', p.bits, p.scales, p.zeros);
  const [rows, cols] = shape;
  const qmax = 2 ** p.bits - 1;
  const zs = 2 ** (p.bits - 1);
  const rb = rowBytes(cols, p.bits);
  const codes = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = layout.index(r, c);
      const z = p.zeros ? p.zeros[i] : zs;
      const u = Math.min(qmax, Math.max(0, roundEven(data[r * cols + c] / p.scales[i]) + z));
      writeBits(codes, r * rb * 8 + c * p.bits, p.bits, u);
    }
  }
  const t: PackedIntTensor = { kind: 'int', bits: p.bits, symmetric: p.symmetric, shape: [rows, cols], granularity: p.granularity, group: p.group, scales: p.scales, zeros: p.zeros, codes };
  if (p.gIdx) {
    t.gIdx = p.gIdx;
    validatePacked('encodeIntWith', t);
  }
  return t;
}

export function dequantizeInt(t: PackedIntTensor): Float32Array {
  validatePacked('dequantizeInt', t);
  const [rows, cols] = t.shape;
  const layout = tensorLayout(t);
  const rb = rowBytes(cols, t.bits);
  if (t.codes.length < rows * rb) throw new LowbitError('E_SHAPE', `codes hold ${t.codes.length} bytes, [${rows}, ${cols}] at ${t.bits} bits needs ${rows * rb}`);
  const zs = 2 ** (t.bits - 1);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const i = layout.index(r, c);
      const u = readBits(t.codes, r * rb * 8 + c * t.bits, t.bits);
      out[r * cols + c] = t.scales[i] * (u - (t.zeros ? t.zeros[i] : zs));
    }
  }
  return out;
}


/**
 * Per-group clipping search (as RTN recipes do): for every group, try each ratio in `ratios`
 * (shrinking its min-max range) and keep the one with the smallest squared reconstruction error.
 */
export function quantizeIntClipSearch(
  data: Float32Array, shape: [number, number], o: IntQuantOptions, ratios: number[] = [1, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.6, 0.5],
): PackedIntTensor & { clips: Float32Array } {
  checkMatrix('quantizeIntClipSearch', data, shape);
  if (!ratios.length || ratios.some((r) => !(r > 0 && r <= 1))) throw new LowbitError('E_ARG', `clip ratios must lie in (0, 1], got [${ratios}]`);
  const opt = options(o, shape);
  const [rows, cols] = shape;
  const layout = scaleLayout(shape, opt.granularity, opt.group);
  const best = new Float64Array(layout.count).fill(Number.POSITIVE_INFINITY);
  const scales = new Float32Array(layout.count);
  const zeros = opt.symmetric ? null : new Float32Array(layout.count);
  const clips = new Float32Array(layout.count);
  const qmax = 2 ** opt.bits - 1;
  const zs = 2 ** (opt.bits - 1);
  for (const clip of ratios) {
    const p = findIntParams(data, shape, { ...opt, clip });
    const err = new Float64Array(layout.count);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const i = layout.index(r, c);
        const z = p.zeros ? p.zeros[i] : zs;
        const v = data[r * cols + c];
        const u = Math.min(qmax, Math.max(0, roundEven(v / p.scales[i]) + z));
        err[i] += (p.scales[i] * (u - z) - v) ** 2;
      }
    }
    for (let i = 0; i < layout.count; i++) {
      if (err[i] < best[i]) {
        best[i] = err[i];
        scales[i] = p.scales[i];
        if (zeros) zeros[i] = p.zeros![i];
        clips[i] = clip;
      }
    }
  }
  return { ...encodeIntWith(data, shape, { ...opt, scales, zeros, layout }), clips };
}
