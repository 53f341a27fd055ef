// Layer descriptions the cycle models read, their validation, and the geometry every model shares
// (output size, DNNsim's first-layer space-to-depth). Shapes are NCHW as in Caffe, which is where the
// shipped CNN shapes come from.
import { LowbitError } from '@lowbit/core';

/** A 2-D convolution. inC counts all input channels; each of `groups` filter groups sees inC/groups of them. */
export interface ConvLayer {
  type: 'conv';
  name: string;
  inC: number;
  inH: number;
  inW: number;
  outC: number;
  kH: number;
  kW: number;
  stride: number;
  pad: number;
  groups: number;
}

/** A fully-connected layer on one input vector (a CNN classifier layer). */
export interface FcLayer {
  type: 'fc';
  name: string;
  inC: number;
  outC: number;
}

/**
 * A linear layer applied to `rows` input vectors at once (a transformer projection over a prompt of
 * `rows` tokens). The rows play the part of a convolution's windows: it runs as a 1×1 convolution.
 */
export interface GemmLayer {
  type: 'gemm';
  name: string;
  inC: number;
  outC: number;
  rows: number;
}

export type Layer = ConvLayer | FcLayer | GemmLayer;

/** Per-layer operand precisions in bits (1..16). */
export interface LayerPrecision {
  act: number;
  wgt: number;
}

const isPosInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0;

function need(layer: Layer, where: string, field: string, ok: boolean, what: string): void {
  if (!ok) throw new LowbitError('E_SHAPE', `${where}: layer "${layer.name}" field ${field} ${what}`);
}

/** Checks one layer's fields and that its shape is consistent; returns it typed. */
export function validateLayer(layer: unknown, where = 'layer'): Layer {
  if (typeof layer !== 'object' || layer === null) throw new LowbitError('E_ARG', `${where}: a layer must be an object`);
  const l = layer as Layer;
  if (typeof l.name !== 'string' || l.name === '') throw new LowbitError('E_ARG', `${where}: layer has no name`);
  if (l.type !== 'conv' && l.type !== 'fc' && l.type !== 'gemm') {
    throw new LowbitError('E_UNSUPPORTED', `${where}: layer "${(l as { name: string }).name}" has unknown type "${String((l as { type?: unknown }).type)}" (conv, fc or gemm)`);
  }
  const ints: string[] = l.type === 'conv' ? ['inC', 'inH', 'inW', 'outC', 'kH', 'kW', 'stride', 'groups'] : l.type === 'fc' ? ['inC', 'outC'] : ['inC', 'outC', 'rows'];
  for (const f of ints) need(l, where, f, isPosInt((l as unknown as Record<string, unknown>)[f]), `must be a positive integer, got ${String((l as unknown as Record<string, unknown>)[f])}`);
  if (l.type === 'conv') {
    need(l, where, 'pad', Number.isInteger(l.pad) && l.pad >= 0, `must be an integer >= 0, got ${String(l.pad)}`);
    need(l, where, 'groups', l.inC % l.groups === 0 && l.outC % l.groups === 0, `(${l.groups}) must divide inC ${l.inC} and outC ${l.outC}`);
    need(l, where, 'kH/kW', l.kH <= l.inH + 2 * l.pad && l.kW <= l.inW + 2 * l.pad, `kernel ${l.kH}x${l.kW} is larger than the padded input ${l.inH + 2 * l.pad}x${l.inW + 2 * l.pad}`);
  }
  return l;
}

/** Checks that each layer's input matches what the previous layer produced where that is knowable (fc after fc). */
export function validateNetwork(name: string, layers: readonly unknown[]): Layer[] {
  if (!Array.isArray(layers) || layers.length === 0) throw new LowbitError('E_ARG', `network ${name}: no layers`);
  const out = layers.map((l, i) => validateLayer(l, `network ${name} layer ${i}`));
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1];
    const b = out[i];
    if (a.type === 'fc' && b.type === 'fc' && a.outC !== b.inC) {
      throw new LowbitError('E_SHAPE', `network ${name}: layer "${b.name}" takes ${b.inC} inputs but "${a.name}" produces ${a.outC}`);
    }
  }
  return out;
}

export function checkPrecision(p: number, what: string): void {
  if (!Number.isInteger(p) || p < 1 || p > 16) throw new LowbitError('E_ARG', `${what}: precision must be an integer in 1..16, got ${p}`);
}

/** The convolution a cycle model walks: padding applied, stride and channels possibly rewritten. */
export interface ConvGeometry {
  /** Input channels (all groups). */
  C: number;
  K: number;
  Kx: number;
  Ky: number;
  OX: number;
  OY: number;
  groups: number;
  /** True when DNNsim's first-layer space-to-depth rewrote this layer. */
  spaceToDepth: boolean;
}

export function outputSize(l: ConvLayer): { OX: number; OY: number } {
  return { OX: Math.floor((l.inH + 2 * l.pad - l.kH) / l.stride) + 1, OY: Math.floor((l.inW + 2 * l.pad - l.kW) / l.stride) + 1 };
}

/**
 * A 3-channel strided first layer would use 3 of the 16 lanes; DNNsim (Stripes.cpp `reshape_first_layer_act/wgt`,
 * applied to baseline and bit-serial designs alike) folds each s×s input patch into channels: C' = 3·s²,
 * spatial ceil(N_padded/s), kernel ceil(K/s), stride 1. The rewritten layer does the same MACs plus zero taps.
 */
export function convGeometry(l: ConvLayer | GemmLayer): ConvGeometry {
  if (l.type === 'gemm') return { C: l.inC, K: l.outC, Kx: 1, Ky: 1, OX: l.rows, OY: 1, groups: 1, spaceToDepth: false };
  if (l.inC === 3 && l.stride > 1 && l.groups === 1) {
    const s = l.stride;
    const nx = Math.ceil((l.inH + 2 * l.pad) / s);
    const ny = Math.ceil((l.inW + 2 * l.pad) / s);
    const Kx = Math.ceil(l.kH / s);
    const Ky = Math.ceil(l.kW / s);
    return { C: 3 * s * s, K: l.outC, Kx, Ky, OX: nx - Kx + 1, OY: ny - Ky + 1, groups: 1, spaceToDepth: true };
  }
  const { OX, OY } = outputSize(l);
  return { C: l.inC, K: l.outC, Kx: l.kH, Ky: l.kW, OX, OY, groups: l.groups, spaceToDepth: false };
}

/** Multiply-accumulates the layer really needs (no rounding, no space-to-depth zeros). */
export function layerMacs(l: Layer): number {
  if (l.type === 'fc') return l.inC * l.outC;
  if (l.type === 'gemm') return l.inC * l.outC * l.rows;
  const { OX, OY } = outputSize(l);
  return OX * OY * l.outC * (l.inC / l.groups) * l.kH * l.kW;
}

/** Weight count, input activation count and output activation count (for off-chip traffic). */
export function layerSizes(l: Layer): { weights: number; inputs: number; outputs: number } {
  if (l.type === 'fc') return { weights: l.inC * l.outC, inputs: l.inC, outputs: l.outC };
  if (l.type === 'gemm') return { weights: l.inC * l.outC, inputs: l.inC * l.rows, outputs: l.outC * l.rows };
  const { OX, OY } = outputSize(l);
  return { weights: l.outC * (l.inC / l.groups) * l.kH * l.kW, inputs: l.inC * l.inH * l.inW, outputs: l.outC * OX * OY };
}
