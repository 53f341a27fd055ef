import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, perplexity } from '@lowbit/runtime';
import { rtnQuantize } from './rtn.js';

export interface SelectiveRtnOptions {
  /** Bits of most layers (e.g. 3). */
  lowBits: number;
  /** Bits of the layers kept at higher precision (e.g. 8). */
  highBits: number;
  /** Columns per group (0 = per output channel), symmetric INT-k. */
  group?: number;
  /** Average code bits per weight allowed over the quantized layers (scales excluded: they are the same for both choices). */
  budget: number;
  calibration: string;
  ctx?: number;
  /** Calibration windows for the sensitivity measurement (default 4). */
  maxWindows?: number;
  includeOutput?: boolean;
}

export interface SelectiveRtnLayer {
  name: string;
  weights: number;
  /** Increase of the mean calibration NLL (nats/token) when only this layer is quantized at lowBits. */
  sensitivity: number;
  bits: number;
}

export interface SelectiveRtnResult {
  layers: SelectiveRtnLayer[];
  /** Average code bits per weight of the result. */
  codeBits: number;
  /** Bits per weight as stored: codes plus one f32 scale per row and group. */
  bitsPerWeight: number;
  baseNll: number;
}

/**
 * Selective RTN: measure each layer's sensitivity as the calibration loss increase when it alone is
 * rounded to `lowBits`; then, in order of sensitivity per weight (loss saved per extra bit spent),
 * keep layers at `highBits` while the average stays within `budget`; round everything else to
 * `lowBits`. The rule is greedy knapsack by density, which is optimal when layers' effects add up.
 */
export function selectiveRtn(model: DecoderModel, o: SelectiveRtnOptions): SelectiveRtnResult {
  if (!(o.highBits > o.lowBits)) throw new LowbitError('E_ARG', `selectiveRtn: highBits (${o.highBits}) must exceed lowBits (${o.lowBits})`);
  if (!(o.budget >= o.lowBits && o.budget <= o.highBits)) throw new LowbitError('E_ARG', `selectiveRtn: budget ${o.budget} must lie in [${o.lowBits}, ${o.highBits}] bits/weight`);
  const opts = { ctx: o.ctx ?? 256, maxWindows: o.maxWindows ?? 4 };
  const group = o.group ?? 0;
  const nll = () => perplexity(model, o.calibration, opts).nll;
  const baseNll = nll();
  const linears = model.linears().filter((l) => o.includeOutput || l.name !== 'output.weight');
  const layers: SelectiveRtnLayer[] = [];
  const original = new Map<string, Float32Array>();
  for (const lin of linears) {
    const src = lin.source;
    if (src.format !== 'f32') throw new LowbitError('E_UNSUPPORTED', `${lin.name}: selectiveRtn needs f32 weights, the layer is ${src.format}`);
    const w = Float32Array.from(src.data);
    original.set(lin.name, w);
    const shape: [number, number] = [lin.rows, lin.cols];
    model.setLinear(lin.name, { format: 'f32', shape, data: rtnQuantize(w, shape, { bits: o.lowBits, group: group || undefined }).weights });
    layers.push({ name: lin.name, weights: lin.rows * lin.cols, sensitivity: nll() - baseNll, bits: o.lowBits });
    model.setLinear(lin.name, { format: 'f32', shape, data: w });
  }
  const total = layers.reduce((s, l) => s + l.weights, 0);
  let spent = total * o.lowBits;
  for (const l of [...layers].sort((a, b) => b.sensitivity / b.weights - a.sensitivity / a.weights)) {
    const extra = l.weights * (o.highBits - o.lowBits);
    if (l.sensitivity > 0 && spent + extra <= o.budget * total) {
      l.bits = o.highBits;
      spent += extra;
    }
  }
  let scaleBits = 0;
  for (const l of layers) {
    const lin = model.linear(l.name);
    scaleBits += 16 * lin.rows * (group > 0 ? Math.ceil(lin.cols / group) : 1); // one fp16 scale per group (symmetric)
    const shape: [number, number] = [lin.rows, lin.cols];
    model.setLinear(l.name, { format: 'f32', shape, data: rtnQuantize(original.get(l.name) as Float32Array, shape, { bits: l.bits, group: group || undefined }).weights });
  }
  return { layers, codeBits: spent / total, bitsPerWeight: (spent + scaleBits) / total, baseNll };
}
