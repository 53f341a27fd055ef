// Coarser and finer allocation units than "one linear layer" (the low-bit NMT transformer paper:
// blocks take a precision by their sensitivity, embedding rows by their token's frequency):
// - blocks: every linear of a transformer block shares one configuration. Its quadratic model is
//   the layers' one summed over the block, so the same measured G serves both granularities.
// - embedding-row buckets: token embedding rows split by the tokens' frequency on the calibration
//   text into buckets of equal token mass, each bucket a group of the allocation with its own width.
import { intStorageBytes, type PackedIntTensor } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, perplexity, tokenizeDocuments } from '@lowbit/runtime';
import type { CladoCandidate, CladoMeasurement } from './clado.js';
import { BlockCalibration, calibrationWindows } from './calibrate.js';
import { createQuantizer } from './quantizer.js';
import { f32Weights } from './source-weights.js';

/** The allocation unit of a layer: its transformer block (`blk.3`) or, outside blocks, the layer itself. */
const unitOf = (name: string): string => /^(blk\.\d+)\./.exec(name)?.[1] ?? name;

export interface BlockMeasurement {
  /** The measurement over blocks: `layers` are the block names, G summed per block (see `blockMeasurement`). */
  measurement: CladoMeasurement;
  /** Layer indices (into the layer measurement) of each block. */
  members: number[][];
}

/**
 * The layer measurement seen at block granularity. With every layer l of block b at choice a, the
 * layer model xᵀGx becomes x_Bᵀ G_B x_B with G_B[(b,a),(b',c)] = Σ_{l∈b, m∈b'} G[(l,a),(m,c)] for
 * b ≠ b' and G_B[(b,a),(b,a)] = Σ_{l,m∈b} G[(l,a),(m,a)]: the block's within-block pair terms
 * become its diagonal, so the block program is exact for the same quadratic model. Sizes add up.
 */
export function blockMeasurement(m: CladoMeasurement): BlockMeasurement {
  const K = m.bits.length;
  const units: string[] = [];
  const members: number[][] = [];
  m.layers.forEach((name, l) => {
    const u = unitOf(name);
    let b = units.indexOf(u);
    if (b < 0) {
      b = units.push(u) - 1;
      members.push([]);
    }
    members[b].push(l);
  });
  const n = m.layers.length * K;
  const B = units.length;
  const nb = B * K;
  const G = new Float64Array(nb * nb);
  for (let b = 0; b < B; b++) {
    for (let b2 = 0; b2 < B; b2++) {
      for (let a = 0; a < K; a++) {
        for (let c = 0; c < K; c++) {
          if (b === b2 && a !== c) continue;
          let s = 0;
          for (const l of members[b]) for (const q of members[b2]) s += m.G[(l * K + a) * n + q * K + c];
          G[(b * K + a) * nb + b2 * K + c] = s;
        }
      }
    }
  }
  const candidates: CladoCandidate[][] = members.map((ls) => m.bits.map((bits, c) => ({
    bits, format: m.formats[c], weights: new Float32Array(0), packed: null, sizeBits: ls.reduce((s, l) => s + m.candidates[l][c].sizeBits, 0),
  })));
  const single = Float64Array.from({ length: nb }, (_, i) => G[i * nb + i]);
  return {
    measurement: { ...m, layers: units, counts: members.map((ls) => ls.reduce((s, l) => s + m.counts[l], 0)), candidates, single, G },
    members,
  };
}

/** A choice per block as a choice per layer of the layer measurement. */
export function expandBlockChoice(b: BlockMeasurement, choice: readonly number[]): number[] {
  if (choice.length !== b.members.length) throw new LowbitError('E_SHAPE', `expandBlockChoice: ${choice.length} choices for ${b.members.length} blocks`);
  const out: number[] = [];
  b.members.forEach((ls, k) => {
    for (const l of ls) out[l] = choice[k];
  });
  return out;
}

/**
 * Blocks by measured sensitivity (the NMT paper's way): the loss change of quantizing a whole block
 * at each configuration, and of each pair of blocks, measured by forward passes from the first
 * block concerned (`BlockCalibration`), on the layer measurement's candidates and windows. Costs
 * 1 + B·K + B(B−1)/2·K² passes (181 for stories260K at K = 4) instead of the layer pairs a derived
 * `blockMeasurement` needs, so the layer measurement can be `pairs: 'none'`. Layers outside blocks
 * stay their own unit with their measured single terms and no cross terms.
 */
export function measureBlocks(model: DecoderModel, m: CladoMeasurement, o: { calibration: string; pairs?: boolean; onProgress?: (done: number, total: number) => void }): BlockMeasurement {
  const t0 = performance.now();
  const derived = blockMeasurement({ ...m, G: diagonalOnly(m) });
  const units = derived.measurement.layers;
  const members = derived.members;
  const K = m.bits.length;
  const blockIndex = units.map((u) => Number(/^blk\.(\d+)$/.exec(u)?.[1] ?? Number.NaN));
  const inBlocks = units.map((_, b) => b).filter((b) => Number.isFinite(blockIndex[b]));
  const pairs = o.pairs ?? true;
  const total = 1 + inBlocks.length * K + (pairs ? ((inBlocks.length * (inBlocks.length - 1)) / 2) * K * K : 0);
  const cut = calibrationWindows(model, o.calibration, { ctx: m.ctx, maxWindows: m.windows });
  const original = m.layers.map((name) => {
    const lin = model.linear(name);
    return { shape: [lin.rows, lin.cols] as [number, number], data: Float32Array.from(f32Weights(name, lin.source).data) };
  });
  const set = (b: number, c: number | null): void => {
    for (const l of members[b]) model.setLinear(m.layers[l], { format: 'f32', shape: original[l].shape, data: c === null ? original[l].data : m.candidates[l][c].weights });
  };
  const nb = units.length * K;
  const G = Float64Array.from(derived.measurement.G);
  let done = 0;
  const calib = new BlockCalibration(model, cut, { ctx: m.ctx });
  const loss = (): number => {
    const v = calib.loss(cut.windows.length);
    done++;
    o.onProgress?.(done, total);
    return v;
  };
  try {
    const base = loss();
    if (Math.abs(base - m.baseLoss) > 1e-6) throw new LowbitError('E_ARG', `measureBlocks: base loss ${base} differs from the measurement's ${m.baseLoss}: not the same model or windows`);
    const single = new Float64Array(nb);
    const joint: [number, number, number][] = [];
    const sorted = [...inBlocks].sort((a, b) => blockIndex[a] - blockIndex[b]);
    for (const b of sorted) {
      while (calib.block < blockIndex[b]) calib.advance();
      for (let a = 0; a < K; a++) {
        set(b, a);
        single[b * K + a] = loss() - base;
        G[(b * K + a) * nb + b * K + a] = single[b * K + a];
      }
      set(b, null);
      if (!pairs) continue;
      for (const b2 of sorted.filter((x) => blockIndex[x] > blockIndex[b])) {
        for (let a = 0; a < K; a++) {
          set(b, a);
          for (let c = 0; c < K; c++) {
            set(b2, c);
            // the joint ΔL for now: b2's singles are measured only when the loop reaches b2
            joint.push([b * K + a, b2 * K + c, loss() - base]);
          }
          set(b2, null);
        }
        set(b, null);
      }
    }
    for (const [i, j, d] of joint) {
      const g = (d - single[i] - single[j]) / 2;
      G[i * nb + j] = g;
      G[j * nb + i] = g;
    }
  } finally {
    for (let b = 0; b < units.length; b++) set(b, null);
    calib.free();
  }
  const single = Float64Array.from({ length: nb }, (_, i) => G[i * nb + i]);
  return {
    measurement: { ...derived.measurement, G, single, pairs: pairs ? 'all' : 'none', evaluations: m.evaluations + done, seconds: m.seconds + (performance.now() - t0) / 1000 },
    members,
  };
}

function diagonalOnly(m: CladoMeasurement): Float64Array {
  const n = m.layers.length * m.bits.length;
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) D[i * n + i] = m.G[i * n + i];
  return D;
}

export interface EmbeddingBucketOptions {
  /** Candidate INT-k widths. Default [2, 3, 4, 8]. */
  bits?: number[];
  /** Columns per scale group along each row. Default 32. */
  group?: number;
  symmetric?: boolean;
  /** Buckets of equal calibration-token mass, most frequent tokens first. Default 4. */
  buckets?: number;
  /** Text the frequencies are counted on and the loss changes measured on (never the validation text). */
  calibration: string;
  /** Window length in tokens. Default 128. */
  ctx?: number;
  /** Windows of the calibration text. Default 8. */
  maxWindows?: number;
  /** Measure the cross terms between buckets (K² per pair of buckets). Default true. */
  pairs?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface EmbeddingMeasurement extends CladoMeasurement {
  /** Token ids of each bucket (`layers[i]` names it). */
  rows: Int32Array[];
  /** Share of the calibration tokens each bucket's tokens make up. */
  share: number[];
}

/** Token ids sorted by calibration frequency (ties by id), cut into buckets of about equal token mass; unseen tokens go last. */
export function frequencyBuckets(model: DecoderModel, text: string, buckets: number): { rows: Int32Array[]; share: number[] } {
  const V = model.config.vocabSize;
  if (!(Number.isInteger(buckets) && buckets >= 1 && buckets <= V)) throw new LowbitError('E_ARG', `embedding buckets: ${buckets} buckets for ${V} tokens (1..${V})`);
  const count = new Float64Array(V);
  const ids = tokenizeDocuments(model, text);
  for (const id of ids) count[id]++;
  const total = ids.length;
  if (total === 0) throw new LowbitError('E_ARG', 'embedding buckets: the calibration text has no tokens');
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => count[b] - count[a] || a - b);
  const of = new Int32Array(V);
  let cum = 0;
  let prev = 0;
  order.forEach((id, r) => {
    // never skip a bucket (a token holding more than 1/B of the mass would), and leave one token for each later bucket
    let b = Math.min(buckets - 1, Math.floor((buckets * cum) / total), prev + 1);
    b = Math.max(b, prev, buckets - (V - r));
    of[id] = b;
    prev = b;
    cum += count[id];
  });
  const rows = Array.from({ length: buckets }, (_, b) => Int32Array.from(order.filter((id) => of[id] === b)));
  return { rows, share: rows.map((r) => r.reduce((s, id) => s + count[id], 0) / total) };
}

/** The token embedding table as f32 [vocab, dim]. */
function embeddingTable(model: DecoderModel): Float32Array {
  const { vocabSize, dim } = model.config;
  const t = new Float32Array(vocabSize * dim);
  for (let id = 0; id < vocabSize; id++) model.embed(id, t, id * dim);
  return t;
}

function setEmbedding(model: DecoderModel, table: Float32Array): void {
  const { dim } = model.config;
  model.weights.tokenEmbd = { type: 'F32', data: new Uint8Array(table.buffer, table.byteOffset, table.byteLength), rowBytes: dim * 4 };
}

/**
 * Loss changes of quantizing each frequency bucket of the token embedding at each width (rows in
 * groups of `group` along the embedding, the same INT-k RTN as the linears), and of pairs of buckets,
 * on the windows `measureClado` uses for the same ctx/maxWindows (so the base loss is the same and
 * the two measurements merge). Each evaluation is a whole forward pass (the embedding feeds every
 * block). The model is left as it was.
 */
export function measureEmbeddingBuckets(model: DecoderModel, o: EmbeddingBucketOptions): EmbeddingMeasurement {
  const t0 = performance.now();
  const bits = o.bits ?? [2, 3, 4, 8];
  if (bits.length === 0 || !bits.every((b) => Number.isInteger(b) && b >= 2 && b <= 8)) throw new LowbitError('E_ARG', `embedding buckets: bits must be integers in 2..8, got ${bits.join(',')}`);
  const group = o.group ?? 32;
  const ctx = o.ctx ?? 128;
  const maxWindows = o.maxWindows ?? 8;
  const { dim } = model.config;
  const { rows, share } = frequencyBuckets(model, o.calibration, o.buckets ?? 4);
  const original = embeddingTable(model);
  const saved = model.weights.tokenEmbd;
  const K = bits.length;
  const B = rows.length;
  const quantizers = bits.map((b) => createQuantizer({ method: 'rtn', format: 'int', bits: b, group, symmetric: o.symmetric ?? true, kernels: model.kernels }));
  const candidates: CladoCandidate[][] = rows.map((ids) => {
    const w = new Float32Array(ids.length * dim);
    ids.forEach((id, r) => w.set(original.subarray(id * dim, (id + 1) * dim), r * dim));
    return quantizers.map((q, c) => {
      const r = q.quantize({ weights: w, shape: [ids.length, dim] });
      const packed = r.packed as PackedIntTensor;
      return { bits: bits[c], format: `int${bits[c]}`, weights: r.weights, packed, sizeBits: 8 * intStorageBytes(packed) };
    });
  });
  const pairs = o.pairs ?? true;
  const total = 1 + B * K + (pairs ? ((B * (B - 1)) / 2) * K * K : 0);
  let done = 0;
  const table = Float32Array.from(original);
  const put = (b: number, c: number | null): void => {
    const src = c === null ? null : candidates[b][c].weights;
    rows[b].forEach((id, r) => table.set(src ? src.subarray(r * dim, (r + 1) * dim) : original.subarray(id * dim, (id + 1) * dim), id * dim));
  };
  const loss = (): number => {
    setEmbedding(model, table);
    const nll = perplexity(model, o.calibration, { ctx, maxWindows }).nll;
    done++;
    o.onProgress?.(done, total);
    return nll;
  };
  const n = B * K;
  const single = new Float64Array(n);
  const G = new Float64Array(n * n);
  let baseLoss = Number.NaN;
  let pairEvaluations = 0;
  try {
    baseLoss = loss();
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < K; c++) {
        put(b, c);
        single[b * K + c] = loss() - baseLoss;
      }
      put(b, null);
    }
    if (pairs) {
      for (let b = 0; b < B; b++) {
        for (let b2 = b + 1; b2 < B; b2++) {
          for (let a = 0; a < K; a++) {
            put(b, a);
            for (let c = 0; c < K; c++) {
              put(b2, c);
              const g = (loss() - baseLoss - single[b * K + a] - single[b2 * K + c]) / 2;
              G[(b * K + a) * n + b2 * K + c] = g;
              G[(b2 * K + c) * n + b * K + a] = g;
              pairEvaluations++;
            }
            put(b2, null);
          }
          put(b, null);
        }
      }
    }
  } finally {
    model.weights.tokenEmbd = saved;
  }
  for (let i = 0; i < n; i++) G[i * n + i] = single[i];
  const windows = calibrationWindows(model, o.calibration, { ctx, maxWindows }).windows.length;
  return {
    layers: rows.map((ids, b) => `token_embd.weight[bucket ${b}: ${ids.length} tokens, ${(100 * share[b]).toFixed(1)}% of calibration tokens]`),
    counts: rows.map((ids) => ids.length * dim), bits, formats: bits.map((b) => `int${b}`), group, method: 'rtn', candidates, baseLoss, single, G,
    pairs: pairs ? 'all' : 'none', pairEvaluations, evaluations: done, windows, ctx, seconds: (performance.now() - t0) / 1000, rows, share,
  };
}

/** Puts each bucket's chosen rows into the model's token embedding (f32 table of the dequantized rows); returns the table. */
export function applyEmbeddingChoice(model: DecoderModel, e: EmbeddingMeasurement, choice: readonly number[]): Float32Array {
  if (choice.length !== e.rows.length) throw new LowbitError('E_SHAPE', `applyEmbeddingChoice: ${choice.length} choices for ${e.rows.length} buckets`);
  const { dim } = model.config;
  const table = embeddingTable(model);
  e.rows.forEach((ids, b) => {
    const c = e.candidates[b][choice[b]];
    if (!c) throw new LowbitError('E_RANGE', `applyEmbeddingChoice: bucket ${b} has no choice ${choice[b]}`);
    ids.forEach((id, r) => table.set(c.weights.subarray(r * dim, (r + 1) * dim), id * dim));
  });
  setEmbedding(model, table);
  return table;
}

/**
 * Two measurements of the same model on the same windows (same base loss) as one: groups of `a`
 * then of `b`, G block-diagonal (no cross terms measured between them: taken as independent, as
 * `pairs: 'block'` takes layers of different blocks).
 */
export function mergeMeasurements(a: CladoMeasurement, b: CladoMeasurement): CladoMeasurement {
  if (a.bits.join() !== b.bits.join() || a.formats.join() !== b.formats.join()) throw new LowbitError('E_ARG', `mergeMeasurements: candidates differ (${a.formats.join(',')} vs ${b.formats.join(',')})`);
  if (a.ctx !== b.ctx || a.windows !== b.windows) throw new LowbitError('E_ARG', `mergeMeasurements: windows differ (${a.windows}×${a.ctx} vs ${b.windows}×${b.ctx})`);
  // the same windows through the same model give the same base loss up to f32 summation order
  if (Math.abs(a.baseLoss - b.baseLoss) > 1e-6) throw new LowbitError('E_ARG', `mergeMeasurements: base losses differ (${a.baseLoss} vs ${b.baseLoss}): not the same windows`);
  const K = a.bits.length;
  const [na, nb] = [a.layers.length * K, b.layers.length * K];
  const n = na + nb;
  const G = new Float64Array(n * n);
  for (let i = 0; i < na; i++) G.set(a.G.subarray(i * na, (i + 1) * na), i * n);
  for (let i = 0; i < nb; i++) G.set(b.G.subarray(i * nb, (i + 1) * nb), (na + i) * n + na);
  const single = new Float64Array(n);
  single.set(a.single);
  single.set(b.single, na);
  return {
    ...a, layers: [...a.layers, ...b.layers], counts: [...a.counts, ...b.counts], candidates: [...a.candidates, ...b.candidates], single, G,
    pairEvaluations: a.pairEvaluations + b.pairEvaluations, evaluations: a.evaluations + b.evaluations, seconds: a.seconds + b.seconds,
  };
}
