import { LowbitError } from './errors.js';
import { type Kernels, type RowKernel, scoped } from './kernels.js';
import { f32Bits } from './half.js';

/** WASM halves of the training attention (@lowbit/runtime's train-forward.ts and backward.ts). */

// Both kernels are row kernels over heads (ROW_KERNELS): on a KernelPool the heads split over its
// threads. runRows is protected so that only this package's front ends split work; these are some.
type RunRows = { runRows(fn: RowKernel, args: number[], rows: number): void };
const runRows = (k: Kernels, fn: RowKernel, args: number[], rows: number) => (k as unknown as RunRows).runRows(fn, args, rows);

/** Shape of a training attention call: n tokens, heads, kv heads, head width. */
export interface TrainAttentionShape {
  n: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

function checkShape(fn: string, s: TrainAttentionShape, arrays: [string, Float32Array, number][]): void {
  for (const [name, v] of [['n', s.n], ['nHeads', s.nHeads], ['nKvHeads', s.nKvHeads], ['headDim', s.headDim]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new LowbitError('E_ARG', `${fn}: ${name} must be a positive integer, got ${v}`);
  }
  if (s.nHeads % s.nKvHeads !== 0) throw new LowbitError('E_ARG', `${fn}: nHeads ${s.nHeads} is not a multiple of nKvHeads ${s.nKvHeads}`);
  // probs is the largest buffer (nHeads·n² f32); past 2^29 values it cannot sit in one 4 GiB memory with the rest
  if (s.nHeads * s.n * s.n > 2 ** 29) throw new LowbitError('E_ARG', `${fn}: ${s.nHeads} heads × ${s.n}² softmax weights is more than one WASM call holds`);
  for (const [name, a, want] of arrays) {
    if (!(a instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: ${name} must be a Float32Array`);
    if (a.length !== want) throw new LowbitError('E_SHAPE', `${fn}: ${name} has ${a.length} values, the shape needs ${want}`);
  }
}


/**
 * Causal grouped-query attention over n tokens at positions 0..n−1: writes out (n, nHeads·headDim)
 * and the softmax weights probs (nHeads, n, n; zero above the diagonal). q (n, nHeads·headDim) after
 * RoPE, k and v (n, nKvHeads·headDim); head h reads kv head h / (nHeads/nKvHeads).
 */
export function trainAttentionForward(kernels: Kernels, s: TrainAttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, probs: Float32Array): void {
  const { n, nHeads, nKvHeads, headDim } = s;
  const fn = 'trainAttentionForward';
  const dim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  checkShape(fn, s, [['q', q, n * dim], ['k', k, n * kvDim], ['v', v, n * kvDim], ['out', out, n * dim], ['probs', probs, nHeads * n * n]]);
  scoped(kernels, (put, alloc) => {
    const po = alloc(out.byteLength);
    const pp = alloc(probs.byteLength);
    runRows(kernels, 'attn_train_fwd_f32', [put(q), put(k), put(v), po, pp, n, nHeads, nKvHeads, headDim, f32Bits(1 / Math.sqrt(headDim))], nHeads);
    out.set(new Float32Array(kernels.memory.buffer, po, out.length));
    probs.set(new Float32Array(kernels.memory.buffer, pp, probs.length));
  });
}

/**
 * Backward of trainAttentionForward given its inputs, its probs and dOut: writes dq (n, nHeads·headDim),
 * dk and dv (n, nKvHeads·headDim; overwritten, summed over the heads of each group).
 */
export function trainAttentionBackward(kernels: Kernels, s: TrainAttentionShape, q: Float32Array, k: Float32Array, v: Float32Array, probs: Float32Array, dOut: Float32Array, dq: Float32Array, dk: Float32Array, dv: Float32Array): void {
  const { n, nHeads, nKvHeads, headDim } = s;
  const fn = 'trainAttentionBackward';
  const dim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  checkShape(fn, s, [['q', q, n * dim], ['k', k, n * kvDim], ['v', v, n * kvDim], ['probs', probs, nHeads * n * n], ['dOut', dOut, n * dim], ['dq', dq, n * dim], ['dk', dk, n * kvDim], ['dv', dv, n * kvDim]]);
  scoped(kernels, (put, alloc) => {
    const pdq = alloc(dq.byteLength);
    const heads = n * nHeads * headDim * 4; // every head's own dk (dv) rows
    const pdk = alloc(heads);
    const pdv = alloc(heads);
    const ds = alloc(nHeads * (3 * n * n + headDim) * 4);
    runRows(kernels, 'attn_train_bwd_f32', [put(q), put(k), put(v), put(probs), put(dOut), pdq, pdk, pdv, ds, n, nHeads, nKvHeads, headDim, f32Bits(1 / Math.sqrt(headDim))], nHeads);
    const m = kernels.memory.buffer;
    dq.set(new Float32Array(m, pdq, dq.length));
    // the heads of a group, in head order, into their kv head's columns
    const hk = new Float32Array(m, pdk, heads / 4);
    const hv = new Float32Array(m, pdv, heads / 4);
    const group = nHeads / nKvHeads;
    dk.fill(0);
    dv.fill(0);
    for (let h = 0; h < nHeads; h++) {
      const g = ((h / group) | 0) * headDim;
      for (let t = 0; t < n; t++) {
        const src = (h * n + t) * headDim;
        const dst = t * kvDim + g;
        for (let d = 0; d < headDim; d++) {
          dk[dst + d] += hk[src + d];
          dv[dst + d] += hv[src + d];
        }
      }
    }
  });
}

interface ElementwiseExports {
  swiglu_fwd_f32(g: number, u: number, out: number, n: number): void;
  swiglu_bwd_f32(g: number, u: number, dh: number, dg: number, du: number, n: number): void;
  xent_fwd_f32(logits: number, targets: number, probs: number, rows: number, vocab: number): number;
}

function sameLength(fn: string, arrays: [string, Float32Array][]): number {
  const n = arrays[0][1].length;
  for (const [name, a] of arrays) {
    if (!(a instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: ${name} must be a Float32Array`);
    if (a.length !== n) throw new LowbitError('E_SHAPE', `${fn}: ${name} has ${a.length} values, ${arrays[0][0]} has ${n}`);
  }
  return n;
}

/** out = silu(g)·u elementwise (the SwiGLU of the training forward). */
export function trainSwigluForward(kernels: Kernels, g: Float32Array, u: Float32Array, out: Float32Array): void {
  const n = sameLength('trainSwigluForward', [['g', g], ['u', u], ['out', out]]);
  const ex = kernels.exports as unknown as ElementwiseExports;
  scoped(kernels, (put, alloc) => {
    const po = alloc(out.byteLength);
    ex.swiglu_fwd_f32(put(g), put(u), po, n);
    out.set(new Float32Array(kernels.memory.buffer, po, n));
  });
}

/** Backward of out = silu(g)·u given dOut = dh: writes dg = dh·u·σ(g)·(1 + g·(1 − σ(g))) and du = dh·silu(g). */
export function trainSwigluBackward(kernels: Kernels, g: Float32Array, u: Float32Array, dh: Float32Array, dg: Float32Array, du: Float32Array): void {
  const n = sameLength('trainSwigluBackward', [['g', g], ['u', u], ['dh', dh], ['dg', dg], ['du', du]]);
  const ex = kernels.exports as unknown as ElementwiseExports;
  scoped(kernels, (put, alloc) => {
    const pg = alloc(dg.byteLength);
    const pu = alloc(du.byteLength);
    ex.swiglu_bwd_f32(put(g), put(u), put(dh), pg, pu, n);
    const m = kernels.memory.buffer;
    dg.set(new Float32Array(m, pg, n));
    du.set(new Float32Array(m, pu, n));
  });
}

/**
 * Mean over rows of −log softmax(logits[t])[targets[t]] (logits: targets.length rows of `vocab`);
 * writes each row's softmax into probs.
 */
export function trainCrossEntropy(kernels: Kernels, logits: Float32Array, targets: readonly number[], vocab: number, probs: Float32Array): number {
  const fn = 'trainCrossEntropy';
  const rows = targets.length;
  if (!Number.isInteger(vocab) || vocab < 1) throw new LowbitError('E_ARG', `${fn}: vocab must be a positive integer, got ${vocab}`);
  if (rows < 1) throw new LowbitError('E_ARG', `${fn}: no targets`);
  sameLength(fn, [['logits', logits], ['probs', probs]]);
  if (logits.length !== rows * vocab) throw new LowbitError('E_SHAPE', `${fn}: logits has ${logits.length} values, ${rows} targets × vocab ${vocab} need ${rows * vocab}`);
  const t = Int32Array.from(targets);
  for (let i = 0; i < rows; i++) if (!(t[i] === targets[i] && t[i] >= 0 && t[i] < vocab)) throw new LowbitError('E_RANGE', `${fn}: target ${i} is ${targets[i]}, outside 0..${vocab - 1}`);
  const ex = kernels.exports as unknown as ElementwiseExports;
  return scoped(kernels, (put, alloc) => {
    const pp = alloc(probs.byteLength);
    const sum = ex.xent_fwd_f32(put(logits), put(t), pp, rows, vocab);
    probs.set(new Float32Array(kernels.memory.buffer, pp, probs.length));
    return sum / rows;
  });
}
