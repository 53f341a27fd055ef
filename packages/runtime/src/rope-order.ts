// The one RoPE row permutation of lowbit, and the row permuters that apply it to every weight layout.
//
// forward.ts rotates adjacent pairs (x[2i], x[2i+1]) of each head: llama.cpp's "normal" RoPE, which
// llama GGUFs are written for (convert_hf_to_gguf.py permutes Wq/Wk rows for it). Hugging Face
// checkpoints (rotate_half) and NEOX-RoPE GGUFs (qwen2) rotate the two halves (x[i], x[i + d/2])
// instead, on rows in their original order. In memory every model holds the pairs order; a file in
// the halves order is permuted when loaded and permuted back when saved, so one forward serves all.
// Biases of Wq/Wk follow their rows. The same row movers pick rows, to cut GPT-2's fused Q, K, V apart.
import { type GemvTensor, type MxTensor, type Nf4Tensor, rowBytes } from '@lowbit/formats';
import { GGML_BLOCK_BYTES, GGML_BLOCK_SIZE, GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, GGML_MXFP4_BLOCK_BYTES, LowbitError, NF4_STAGING_BLOCK_BYTES } from '@lowbit/kernels';
import { type Q5TensorType, TENSOR_TYPES } from './ggml-types.js';
import { permuteAnyPrecisionRows } from './any-precision-linear.js';
import type { InputGather, IntForm, LinearWeight } from './linear.js';
import type { StoredLayer } from './lowbit-tensors.js';
import { permuteLut4Rows } from './lut-fast.js';

/** Row layouts of Wq/Wk: `pairs` = lowbit's memory and llama GGUFs, `halves` = HF and NEOX GGUFs. */
export type RopeLayout = 'pairs' | 'halves';

/** GGUF architectures llama.cpp runs with NEOX RoPE (half-split pairs) on unpermuted Wq/Wk. */
const NEOX_ARCHITECTURES = new Set(['qwen2']);

/** The Wq/Wk row layout of a GGUF of `architecture` (null: no RoPE, e.g. gpt2's learned positions). */
export function ggufRopeLayout(architecture: string): RopeLayout | null {
  if (architecture === 'gpt2') return null;
  return NEOX_ARCHITECTURES.has(architecture) ? 'halves' : 'pairs';
}

/**
 * Source rows that put `heads` heads of `headDim` rows into layout `to` from the other one: row r of
 * the result = row src[r] of the input. Pairs row (h, 2i + t) is halves row (h, t·headDim/2 + i).
 */
export function ropeRowOrder(heads: number, headDim: number, to: RopeLayout): Int32Array {
  if (!Number.isInteger(heads) || heads <= 0 || !Number.isInteger(headDim) || headDim <= 0 || headDim % 2) {
    throw new LowbitError('E_SHAPE', `RoPE row order: ${heads} heads of ${headDim} rows (needs whole heads of an even width)`);
  }
  const half = headDim / 2;
  const src = new Int32Array(heads * headDim);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      for (let t = 0; t < 2; t++) {
        const pairs = h * headDim + 2 * i + t;
        const halves = h * headDim + t * half + i;
        if (to === 'pairs') src[pairs] = halves;
        else src[halves] = pairs;
      }
    }
  }
  return src;
}

/** Heads whose rows a linear layer's RoPE layout concerns: Wq and Wk (by GGUF name), else 0. */
export function ropeHeads(ggufName: string, c: { nHeads: number; nKvHeads: number }): number {
  if (/(^|\.)attn_q\.(weight|bias)$/.test(ggufName)) return c.nHeads;
  if (/(^|\.)attn_k\.(weight|bias)$/.test(ggufName)) return c.nKvHeads;
  return 0;
}

/**
 * Row r of the result = row src[r] of `data`, rows of `rowLength` elements (f32 values or bytes).
 * `src` reorders (a permutation) or picks (a slice: GPT-2's fused Q, K, V) rows.
 */
export function permuteRows<T extends Float32Array | Uint8Array | Uint16Array | Int32Array>(data: T, rowLength: number, src: Int32Array): T {
  const n = data.length / rowLength;
  if (!Number.isInteger(n)) throw new LowbitError('E_SHAPE', `rows of ${rowLength}: got ${data.length} elements`);
  for (const s of src) if (!(s >= 0 && s < n)) throw new LowbitError('E_SHAPE', `row ${s} picked from ${n} rows`);
  const out = new (data.constructor as new (n: number) => T)(src.length * rowLength);
  src.forEach((s, r) => out.set(data.subarray(s * rowLength, (s + 1) * rowLength), r * rowLength));
  return out;
}

/** Per-row sections (codes, scales, zeros) of a packed layer, reordered or picked; scales follow their rows. */
export function permuteStoredRows(name: string, t: StoredLayer, src: Int32Array): StoredLayer {
  const [rows, cols] = t.shape;
  if (t.kind === 'mx-rows') {
    return { ...t, shape: [src.length, cols], codes: permuteRows(t.codes, cols, src), scales: permuteRows(t.scales, t.scales.length / rows, src) };
  }
  const codes = permuteRows(t.codes, rowBytes(cols, t.bits), src);
  return { ...permuteIntScales(name, t, src), codes };
}

/**
 * An INT-k tensor's shape, scales and zeros for rows `src`, codes aside: those of a stored layer
 * (permuteStoredRows), or all there is of an INT4 layer held as Q4_0 blocks (IntForm).
 */
function permuteIntScales<T extends IntForm>(name: string, t: T, src: Int32Array): T {
  const [rows, cols] = t.shape;
  const shape: [number, number] = [src.length, cols];
  // one scale for the tensor, or one per input column: the same for every row
  if (t.granularity === 'tensor' || t.granularity === 'per-ic') return { ...t, shape };
  if (t.granularity !== 'group-cols' && t.granularity !== 'per-oc') {
    throw new LowbitError('E_UNSUPPORTED', `${name}: ${t.granularity} scales are shared by groups of rows, so its rows cannot be reordered or split (save as a llama-architecture .gguf)`);
  }
  const ng = t.scales.length / rows;
  return { ...t, shape, scales: permuteRows(t.scales, ng, src), zeros: t.zeros ? permuteRows(t.zeros, ng, src) : null };
}

/**
 * Rows of a [heads·headDim, cols] f32 projection between HF's halves layout and GGUF's pairs layout
 * (`toGguf`: halves → pairs), as llama.cpp's converter permutes Wq/Wk.
 */
export function permuteRope(w: Float32Array, heads: number, cols: number, toGguf: boolean): Float32Array {
  return permuteRows(w, cols, ropeRowOrder(heads, w.length / cols / heads, toGguf ? 'pairs' : 'halves'));
}

/**
 * A linear layer's weights with rows reordered or picked (src[r]: the source row of row r), in its
 * own format (f32, ggml blocks, int4, K-quants, any-precision, lut4, packed INT-k / MX). Repacked
 * weights (packed-fast.ts) move as they are: rows are independent outputs, so the gather (one per
 * column) stays, the residue keeps its rows' entries and the second plane moves its rows.
 */
export function permuteLinearRows(name: string, w: LinearWeight, src: Int32Array): LinearWeight {
  // weights repacked for a faster kernel (packed-fast.ts) keep what they came from for `source`:
  // both move, or a re-saved model would write the rows in the old order
  const origin = (w as { origin?: LinearWeight }).origin;
  if (origin) return Object.assign(permuteLinearRows(name, { ...w, origin: undefined } as unknown as LinearWeight, src), { origin: permuteLinearRows(name, origin, src) });
  const [rows, cols] = w.shape;
  const shape: [number, number] = [src.length, cols];
  switch (w.format) {
    case 'f32':
      return { ...w, shape, data: permuteRows(w.data, cols, src) };
    case 'q8_0':
    case 'q4_0':
    case 'q4_1': {
      // rows of the kernel's columns: the gathered inputs' where there is a gather
      const kc = w.gather?.length ?? cols;
      const data = permuteRows(w.data, (kc / GGML_BLOCK_SIZE) * GGML_BLOCK_BYTES[w.format], src);
      // an INT4 layer held as Q4_0 blocks (int4Q4Weight): its scales (and zeros) move with the rows
      const int = w.format === 'q4_0' && w.int ? { int: permuteIntScales(name, w.int, src) } : {};
      return { format: w.format, shape, data, ...int, ...permuteGathered(name, w, rows, cols, src) };
    }
    case 'int4': {
      const ng = w.scales.length / rows;
      const kc = w.gather?.length ?? cols;
      const { packed, scales, zeros, group } = w;
      return {
        format: 'int4', shape, group, packed: permuteRows(packed, Math.ceil(kc / 2), src), scales: permuteRows(scales, ng, src), zeros: zeros ? permuteRows(zeros, ng, src) : null,
        ...permuteGathered(name, w, rows, cols, src),
      };
    }
    case 'mxfp4': {
      const fallback = permuteLinearRows(name, w.fallback, src);
      // the tiles hold rows in fours: a pick of other counts (GPT-2's Q, K, V) keeps the other form
      if (src.length % 4 !== 0) return fallback;
      return { format: 'mxfp4', shape, data: permuteRows(w.data, (cols / GGML_BLOCK_SIZE) * GGML_MXFP4_BLOCK_BYTES, src), fallback };
    }
    case 'nf4': {
      const fallback = permuteLinearRows(name, w.fallback, src);
      if (src.length % 4 !== 0) return fallback;
      return { format: 'nf4', shape, data: permuteRows(w.data, (cols / GGML_BLOCK_SIZE) * NF4_STAGING_BLOCK_BYTES, src), fallback };
    }
    case 'any-precision':
      return { ...w, shape, tensor: permuteAnyPrecisionRows(w.tensor, src) };
    case 'kquant':
      return { ...w, shape, data: permuteRows(w.data, (cols / GGML_K_BLOCK_SIZE) * GGML_K_BLOCK_BYTES[w.type], src) };
    case 'lut4':
      return { ...w, shape, weights: permuteLut4Rows(w.weights, src) };
    case 'q5_0':
    case 'q5_1':
    case 'iq4_nl':
      return { ...w, shape, data: permuteRows(w.data, (cols / GGML_BLOCK_SIZE) * TENSOR_TYPES[w.format.toUpperCase() as Q5TensorType].blockBytes, src) };
    case 'packed': {
      const t = w.tensor as { kind?: string };
      if (t.kind === 'int' || t.kind === 'mx-rows') return { ...w, shape, tensor: permuteStoredRows(name, w.tensor as StoredLayer, src) };
      if (t.kind === 'nf4') {
        // two codes per byte, whole rows when cols is even; one absmax per group of each row
        const nf = w.tensor as Nf4Tensor;
        if (cols % 2 === 0) return { ...w, shape, tensor: { ...nf, shape, codes: permuteRows(nf.codes, cols / 2, src), scales: permuteRows(nf.scales, Math.ceil(cols / nf.group), src) } };
      }
      if ((t.kind === undefined || t.kind === 'mx') && cols % 32 === 0) {
        // flat MX of whole-block rows (mxRowsAsFlat): one code per value, one scale per 32
        const m = w.tensor as MxTensor;
        return { ...w, shape, tensor: { ...m, shape, length: src.length * cols, codes: permuteRows(m.codes, cols, src), scales: permuteRows(m.scales, cols / 32, src) } as GemvTensor };
      }
      throw new LowbitError('E_UNSUPPORTED', `${name}: ${t.kind ?? 'flat MX'} weights cannot have their rows reordered or split`);
    }
  }
}

/** A layer's InputGather for rows `src` of its `rows` × `cols` weights (permuteLinearRows). */
function permuteGathered(name: string, w: InputGather, rows: number, cols: number, src: Int32Array): InputGather {
  const out: InputGather = {};
  if (w.gather) out.gather = w.gather;
  if (w.residue) {
    const residue = permuteResidue(w.residue, rows, cols, src);
    if (residue.index.length) out.residue = residue;
  }
  if (w.plus) out.plus = permuteLinearRows(`${name} (second plane)`, w.plus, src);
  if (w.groupTerm) out.groupTerm = { group: w.groupTerm.group, values: permuteRows(w.groupTerm.values, w.groupTerm.values.length / rows, src) };
  return out;
}

/** The residue entries (W[index] = value, index r·cols + c) of rows `src`, renumbered to their new rows. */
function permuteResidue(res: NonNullable<InputGather['residue']>, rows: number, cols: number, src: Int32Array): NonNullable<InputGather['residue']> {
  // entries bucketed by row (counting sort), so each picked row takes its own in one pass
  const start = new Int32Array(rows + 1);
  for (const at of res.index) start[Math.floor(at / cols) + 1]++;
  for (let r = 0; r < rows; r++) start[r + 1] += start[r];
  const next = start.slice(0, rows);
  const byRow = new Int32Array(res.index.length);
  res.index.forEach((at, i) => (byRow[next[Math.floor(at / cols)]++] = i));
  const index: number[] = [];
  const values: number[] = [];
  src.forEach((s, r) => {
    for (let k = start[s]; k < start[s + 1]; k++) {
      const i = byRow[k];
      index.push(res.index[i] + (r - s) * cols);
      values.push(res.values[i]);
    }
  });
  return { index: Int32Array.from(index), values: Float32Array.from(values) };
}

/** Rows [r0, r1) of a linear layer's weights, in its own format (GPT-2's fused Q, K, V cut apart). */
export function sliceLinearRows(name: string, w: LinearWeight, r0: number, r1: number): LinearWeight {
  return permuteLinearRows(name, w, Int32Array.from({ length: r1 - r0 }, (_, i) => r0 + i));
}
