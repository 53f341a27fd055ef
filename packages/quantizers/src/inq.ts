// Incremental network quantization (Zhou et al., ICLR 2017): a growing fraction of each layer's
// weights, largest magnitudes first, is rounded to a power of two (or zero) and frozen; the rest
// retrain to make up for it, until every weight is frozen.
//
// Levels (paper §2.1, eq. 2–4): P = {0, ±2^n2, …, ±2^n1} with n1 = ⌊log2(4s/3)⌋, s = max|W| of the
// pretrained group, and n2 = n1 + 1 − 2^(b−2): b bits hold a sign and 2^(b−2) exponents, plus zero.
// Rounding (eq. 3): β for (α + β)/2 ≤ |w| < 3β/2 with α, β adjacent levels, i.e. 2^n on
// [0.75·2^n, 1.5·2^n), 2^n2 down to 2^(n2−1), zero below. Here s (and so n1) is per group of
// `group` columns of a row (0: the whole tensor, the paper's choice), fixed from the weights before
// training so that frozen values never move.
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, type TrainHooks, trainParams } from '@lowbit/runtime';
import { quantizedLinears } from './fake-quant.js';

export interface InqOptions {
  /** 2..8: a sign, 2^(bits−2) exponents and zero. */
  bits: number;
  /** Columns per power-of-two range (n1); 0 = one per tensor. */
  group: number;
  /** Frozen fractions, increasing, ending at 1. Default [0.5, 0.75, 0.875, 1] (the paper's). */
  fractions?: number[];
  /** Training steps the stages share (finetune's `steps`). */
  steps: number;
}

/** Power-of-two rounding of one value with top exponent n1 (eq. 3). */
export function inqRound(w: number, n1: number, bits: number): number {
  const n2 = n1 + 1 - 2 ** (bits - 2);
  const a = Math.abs(w);
  if (a < 2 ** (n2 - 1)) return 0;
  const n = Math.min(n1, Math.max(n2, Math.floor(Math.log2(a / 0.75))));
  return Math.sign(w) * 2 ** n;
}

/** n1 = ⌊log2(4s/3)⌋ for each (row, group) of a [rows, cols] matrix; −126 for an all-zero group (its weights round to 0). */
export function inqExponents(w: Float32Array, rows: number, cols: number, group: number): Int16Array {
  const g = group > 0 ? group : cols;
  const ng = Math.ceil(cols / g);
  const n1 = new Int16Array(rows * ng);
  let tensorMax = 0;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < ng; j++) {
      let s = 0;
      for (let c = j * g; c < Math.min(cols, (j + 1) * g); c++) s = Math.max(s, Math.abs(w[r * cols + c]));
      tensorMax = Math.max(tensorMax, s);
      n1[r * ng + j] = s > 0 ? Math.floor(Math.log2((4 * s) / 3)) : -126;
    }
  }
  if (group === 0) n1.fill(tensorMax > 0 ? Math.floor(Math.log2((4 * tensorMax) / 3)) : -126);
  return n1;
}

interface InqLayer {
  rows: number;
  cols: number;
  n1: Int16Array;
  /** Indices in decreasing |w| of the pretrained weights: the order INQ freezes them in. */
  order: Uint32Array;
  frozen: Uint8Array;
  count: number;
}

export interface Inq {
  hooks: TrainHooks;
  /** Freezes the largest remaining weights of every layer up to `fraction` (0..1) of it. */
  freeze(params: Map<string, Float32Array>, fraction: number): void;
  /** The fraction frozen during step s (0-based): stage i of the fractions' first n − 1 covers steps [i·steps/(n−1), (i+1)·steps/(n−1)). */
  fractionAt(step: number): number;
  /** Bits per weight as stored: `bits` codes plus one 8-bit exponent per group. */
  bitsPerWeight: number;
}

export function inq(model: DecoderModel, o: InqOptions): Inq {
  if (!Number.isInteger(o.bits) || o.bits < 2 || o.bits > 8) throw new LowbitError('E_ARG', `INQ: bits must be 2..8, got ${o.bits}`);
  if (!Number.isInteger(o.group) || o.group < 0) throw new LowbitError('E_ARG', `INQ: group must be a non-negative integer, got ${o.group}`);
  const fr = o.fractions ?? [0.5, 0.75, 0.875, 1];
  if (!Number.isSafeInteger(o.steps) || o.steps < 1) throw new LowbitError('E_RANGE', `INQ: steps is ${o.steps}, not a positive integer`);
  if (!fr.length || fr.some((f, i) => !(f > 0 && f <= 1) || (i > 0 && f <= fr[i - 1])) || fr[fr.length - 1] !== 1) {
    throw new LowbitError('E_ARG', `INQ: fractions must increase within (0, 1] and end at 1, got ${fr.join(', ')}`);
  }
  const params = trainParams(model);
  const layers = new Map<string, InqLayer>();
  // the pretrained weights fix the partition and the exponents: kept for a checkpoint to resume from
  const pretrained = new Map<string, Float32Array>();
  let bits = 0;
  let weights = 0;
  const setUp = (name: string, rows: number, cols: number, w: Float32Array) => {
    const order = Uint32Array.from(w.keys()).sort((a, b) => Math.abs(w[b]) - Math.abs(w[a]) || a - b);
    const n1 = inqExponents(w, rows, cols, o.group);
    layers.set(name, { rows, cols, n1, order, frozen: new Uint8Array(w.length), count: 0 });
    pretrained.set(name, Float32Array.from(w));
    return n1;
  };
  for (const [name, [rows, cols]] of quantizedLinears(model, false)) {
    const n1 = setUp(name, rows, cols, params.get(name) as Float32Array);
    bits += rows * cols * o.bits + (o.group > 0 ? n1.length * 8 : 8);
    weights += rows * cols;
  }
  const g = (l: InqLayer) => (o.group > 0 ? o.group : l.cols);
  const levelOf = (l: InqLayer, w: Float32Array, i: number) => {
    const r = Math.floor(i / l.cols);
    const c = i % l.cols;
    return inqRound(w[i], l.n1[r * Math.ceil(l.cols / g(l)) + Math.floor(c / g(l))], o.bits);
  };
  // frozen values, by layer: written back after each update (AdamW's momentum and decay would move them)
  const held = new Map<string, Float32Array>();
  const freeze = (p: Map<string, Float32Array>, fraction: number) => {
    for (const [name, l] of layers) {
      const w = p.get(name) as Float32Array;
      const h = held.get(name) ?? new Float32Array(w.length);
      held.set(name, h);
      const want = Math.round(fraction * w.length);
      // the partition is by the pretrained magnitudes (the paper's): larger weights first
      for (; l.count < want; l.count++) {
        const i = l.order[l.count];
        l.frozen[i] = 1;
        w[i] = levelOf(l, w, i);
        h[i] = w[i];
      }
    }
  };
  const stages = fr.length - 1;
  const fractionAt = (s: number) => (stages === 0 ? 1 : fr[Math.min(stages - 1, Math.floor((s * stages) / o.steps))]);
  const hooks: TrainHooks = {
    params,
    forward(p, s) {
      freeze(p, fractionAt(s));
      return p;
    },
    backward(grads) {
      for (const [name, l] of layers) {
        const gr = grads.get(name) as Float32Array;
        for (let i = 0; i < gr.length; i++) if (l.frozen[i]) gr[i] = 0;
      }
      return grads;
    },
    afterStep(p) {
      for (const [name, l] of layers) {
        const w = p.get(name) as Float32Array;
        const h = held.get(name) as Float32Array;
        for (let i = 0; i < w.length; i++) if (l.frozen[i]) w[i] = h[i];
      }
    },
    state: () => new Map([...pretrained].map(([name, w]) => [`inq.pretrained.${name}`, w])),
    // A resumed run (from a checkpoint, whose model holds the trained weights) takes the partition
    // and exponents of the pretrained ones again; the next forward re-freezes up to its stage's
    // fraction, and already frozen weights sit on their levels, which inqRound leaves as they are.
    loadState(st) {
      for (const [name, l] of layers) setUp(name, l.rows, l.cols, st.get(`inq.pretrained.${name}`) as Float32Array);
      held.clear();
    },
  };
  return { hooks, freeze, fractionAt, bitsPerWeight: weights ? bits / weights : 0 };
}
