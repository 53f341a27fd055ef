// QDEC, decode-time error compensation (DecDEC, Park et al. 2024, arXiv 2412.20185): the quantized
// model stays resident; the residuals R = W − Ŵ of a layer's most salient input channels live in a
// second store (here the JS heap, off the WebAssembly memory the kernels stream, or a file), and at
// every token each layer picks the k stored channels with the largest |x[c]| and adds
// Σ_j R[:, c_j]·x[c_j] to its output. Only those k residual columns are fetched per token, so the
// cost is k·rows residual values per layer instead of a wider base model.
//
// Which channels are stored is chosen offline from calibration activation magnitudes (mean |x| per
// input channel, the paper's salient channels); which of them are applied is chosen per token, since
// activation outliers move from token to token (the paper's motivation for dynamic selection).
// Residual columns are stored per channel (a column of R is contiguous, as a fetch wants it), as f32
// or symmetric int8 / int4 codes with one f32 scale per column (the paper keeps 4-bit residuals).
import {
  type AnyPrecisionTensor, type GemvTensor, type PackedTensor, crc32, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, readAnyPrecision,
} from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import type { ByteSource } from './byte-source.js';
import { dequantize } from './ggml-quants.js';
import { dequantizeK } from './ggml-kquants.js';
import type { LinearWeight } from './linear.js';
import { type MxRowsTensor, dequantizeMxRows } from './lowbit-tensors.js';
import type { DecoderModel } from './model.js';
import { perplexity } from './perplexity.js';
import { type SafetensorsTensorToWrite, readSafetensors, readSafetensorsBytes, writeSafetensors } from './safetensors.js';
import { dequantizeLut4, dequantizeNf4Tiles } from './lut-fast.js';

/** Widths a residual column can be stored at: int4 / int8 codes with an f32 scale, or f32 values. */
export const QDEC_RESIDUAL_BITS = [4, 8, 32] as const;
export type QdecResidualBits = (typeof QDEC_RESIDUAL_BITS)[number];

/** One layer's stored residual columns. */
export interface QdecLayer {
  name: string;
  rows: number;
  cols: number;
  /** Stored input channels, ascending. */
  channels: Int32Array;
  bits: QdecResidualBits;
  /** Per stored channel: value = scale·code (bits 4/8); empty for bits 32. */
  scales: Float32Array;
  /**
   * [channels, rows] row-major: column c_j of R is row j here. bits 32: Float32Array; 8: Int8Array;
   * 4: Uint8Array of ⌈rows/2⌉ bytes per channel, code u ∈ [0, 15] with value scale·(u − 8), element 2i
   * in the low nibble of byte i (the int-k convention of CONTRIBUTING.md).
   */
  residuals: Float32Array | Int8Array | Uint8Array;
  /** CRC-32 of the base layer's dequantized weights (f32 bytes): the store belongs to this base only. */
  baseHash: number;
}

export interface QdecStore {
  layers: Map<string, QdecLayer>;
}

/** Bytes one residual column of `rows` values costs to fetch (codes and its scale). */
export function qdecColumnBytes(rows: number, bits: QdecResidualBits): number {
  return bits === 32 ? 4 * rows : bits === 8 ? rows + 4 : Math.ceil(rows / 2) + 4;
}

/** Residual bytes a token fetches with k channels per layer (fewer where a layer stores fewer). */
export function qdecBytesPerToken(store: QdecStore, k: number): number {
  let s = 0;
  for (const l of store.layers.values()) s += Math.min(k, l.channels.length) * (qdecColumnBytes(l.rows, l.bits) + 4); // + the channel index
  return s;
}

/** Bytes the store holds (codes, scales, indices). */
export function qdecStoreBytes(store: QdecStore): number {
  let s = 0;
  for (const l of store.layers.values()) s += l.residuals.byteLength + l.scales.byteLength + l.channels.byteLength;
  return s;
}

/** A layer's weights as f32 values, whatever format it runs in (the values its kernel multiplies by). */
export function dequantizeLinear(name: string, w: LinearWeight): Float32Array {
  const [rows, cols] = w.shape;
  switch (w.format) {
    case 'f32':
      return w.data;
    case 'q8_0':
    case 'q4_0':
    case 'q4_1': {
      const out = new Float32Array(rows * cols);
      dequantize(w.format.toUpperCase() as 'Q8_0', w.data, 0, rows * cols, out);
      // asymmetric INT4 on Q4_0 blocks: each weight's group term (scale·(8 − zero)) on top
      const term = w.groupTerm;
      if (term && !w.gather) {
        const ng = term.values.length / rows;
        for (let i = 0; i < out.length; i++) out[i] += term.values[Math.floor(i / cols) * ng + Math.floor((i % cols) / term.group)];
      }
      return out;
    }
    case 'q5_0':
    case 'q5_1':
    case 'iq4_nl': {
      const out = new Float32Array(rows * cols);
      dequantize(w.format.toUpperCase() as 'Q5_0', w.data, 0, rows * cols, out);
      return out;
    }
    case 'mxfp4': // the same values as its Q8_0 form
      return dequantizeLinear(name, w.fallback);
    case 'nf4': // QLoRA's levels as the tiles' 7-bit integers
      return dequantizeNf4Tiles(w.data, rows, cols);
    case 'int4': {
      const out = new Float32Array(rows * cols);
      const ng = Math.ceil(cols / w.group);
      const rb = Math.ceil(cols / 2);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const byte = w.packed[r * rb + (c >> 1)];
          const u = c & 1 ? byte >> 4 : byte & 15;
          const g = r * ng + Math.floor(c / w.group);
          out[r * cols + c] = w.scales[g] * (u - (w.zeros ? w.zeros[g] : 8));
        }
      }
      return out;
    }
    case 'any-precision':
      return readAnyPrecision(w.tensor, w.tensor.maxBits);
    case 'packed':
      return dequantizePacked(name, w.tensor, w.shape);
    case 'lut4':
      return dequantizeLut4(w.weights);
    case 'kquant': {
      const out = new Float32Array(rows * cols);
      dequantizeK(w.type, w.data, 0, (rows * cols) / 256, out);
      return out;
    }
  }
}

function dequantizePacked(name: string, t: GemvTensor, shape: [number, number]): Float32Array {
  const kind = (t as { kind?: string }).kind ?? 'mx';
  switch (kind) {
    case 'int':
      return dequantizeInt(t as Extract<PackedTensor, { kind: 'int' }>);
    case 'codebook':
      return dequantizeCodebook(t as Parameters<typeof dequantizeCodebook>[0]);
    case 'nf4':
      return dequantizeNf4(t as Parameters<typeof dequantizeNf4>[0]);
    case 'mx-rows':
      return dequantizeMxRows(t as unknown as MxRowsTensor);
    case 'mx':
      return dequantizeMx(t as Parameters<typeof dequantizeMx>[0]);
    case 'any-precision':
      return readAnyPrecision(t as unknown as AnyPrecisionTensor, (t as unknown as AnyPrecisionTensor).maxBits);
    default:
      throw new LowbitError('E_UNSUPPORTED', `${name}: no dequantizer for packed ${kind} weights [${shape}]`);
  }
}

/** The hash a store records for a base layer: CRC-32 of its dequantized f32 weights. */
export function baseWeightHash(values: Float32Array): number {
  return crc32(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}

/**
 * Mean |x[c]| per input channel of every named layer, over calibration text (the perplexity
 * protocol's windows): the offline saliency that decides which channels' residuals are stored.
 */
export function channelSaliency(model: DecoderModel, text: string, names: Iterable<string>, options: { ctx?: number; maxWindows?: number } = {}): Map<string, Float32Array> {
  const sums = new Map<string, { s: Float64Array; n: number }>();
  for (const name of names) sums.set(name, { s: new Float64Array(model.linear(name).cols), n: 0 });
  perplexity(model, text, {
    ctx: options.ctx ?? 256, maxWindows: options.maxWindows,
    onLinearInput: (name, x, batch, cols) => {
      const a = sums.get(name);
      if (!a) return;
      for (let b = 0; b < batch; b++) for (let c = 0; c < cols; c++) a.s[c] += Math.abs(x[b * cols + c]);
      a.n += batch;
    },
  });
  const out = new Map<string, Float32Array>();
  for (const [name, a] of sums) out.set(name, Float32Array.from(a.s, (v) => v / Math.max(a.n, 1)));
  return out;
}

export interface QdecBuildOptions {
  /** Input channels stored per layer: a count (≥ 1), or a fraction of the layer's inputs in (0, 1). Default: all. */
  channels?: number;
  /** Residual storage width (default 8). */
  bits?: QdecResidualBits;
}

/**
 * The residual store of a quantized model: for every layer of `base` whose weights differ from
 * `reference` (same names and shapes; the f32 originals), the residual columns of its most salient
 * input channels by `saliency` (mean |x| per channel, channelSaliency; ties to the lower index).
 */
export function buildQdecStore(base: DecoderModel, reference: DecoderModel, saliency: Map<string, Float32Array>, options: QdecBuildOptions = {}): QdecStore {
  const bits = options.bits ?? 8;
  if (!QDEC_RESIDUAL_BITS.includes(bits)) throw new LowbitError('E_ARG', `buildQdecStore: residual bits ${bits} must be one of ${QDEC_RESIDUAL_BITS.join(', ')}`);
  const want = options.channels;
  if (want !== undefined && !(want > 0 && (want < 1 || Number.isInteger(want)))) {
    throw new LowbitError('E_ARG', `buildQdecStore: channels ${want} must be a whole count >= 1 or a fraction in (0, 1)`);
  }
  const layers = new Map<string, QdecLayer>();
  for (const l of base.linears()) {
    const ref = reference.linears().find((r) => r.name === l.name);
    if (!ref) throw new LowbitError('E_MISSING', `buildQdecStore: the reference model has no layer ${l.name}`);
    if (ref.rows !== l.rows || ref.cols !== l.cols) throw new LowbitError('E_SHAPE', `buildQdecStore: ${l.name} is [${l.rows}, ${l.cols}] in the base, [${ref.rows}, ${ref.cols}] in the reference`);
    const q = dequantizeLinear(l.name, l.source);
    const w = dequantizeLinear(ref.name, ref.source);
    const { rows, cols } = l;
    let differs = false;
    for (let i = 0; i < q.length && !differs; i++) differs = q[i] !== w[i];
    if (!differs) continue; // layers kept in full precision (the LM head) have nothing to compensate
    const s = saliency.get(l.name);
    if (!s || s.length !== cols) throw new LowbitError('E_SHAPE', `buildQdecStore: saliency of ${l.name} has ${s?.length ?? 0} values, the layer ${cols} inputs`);
    const n = want === undefined ? cols : want < 1 ? Math.max(1, Math.round(want * cols)) : Math.min(want, cols);
    const order = Int32Array.from({ length: cols }, (_, c) => c).sort((a, b) => s[b] - s[a] || a - b);
    const channels = order.slice(0, n).sort();
    layers.set(l.name, encodeColumns(l.name, rows, cols, channels, bits, (c, r) => w[r * cols + c] - q[r * cols + c], baseWeightHash(q)));
  }
  return { layers };
}

/** Residual columns encoded at `bits`: value(c, r) = R[r, c]. */
export function encodeColumns(name: string, rows: number, cols: number, channels: Int32Array, bits: QdecResidualBits, value: (c: number, r: number) => number, baseHash: number): QdecLayer {
  const n = channels.length;
  const scales = new Float32Array(bits === 32 ? 0 : n);
  const residuals = bits === 32 ? new Float32Array(n * rows) : bits === 8 ? new Int8Array(n * rows) : new Uint8Array(n * Math.ceil(rows / 2));
  const qmax = bits === 8 ? 127 : 7;
  for (let j = 0; j < n; j++) {
    const c = channels[j];
    if (bits === 32) {
      for (let r = 0; r < rows; r++) residuals[j * rows + r] = value(c, r);
      continue;
    }
    let amax = 0;
    for (let r = 0; r < rows; r++) amax = Math.max(amax, Math.abs(value(c, r)));
    const scale = amax / qmax;
    scales[j] = scale;
    const inv = scale > 0 ? 1 / scale : 0;
    if (bits === 8) {
      for (let r = 0; r < rows; r++) residuals[j * rows + r] = Math.max(-127, Math.min(127, Math.round(value(c, r) * inv)));
    } else {
      const rb = Math.ceil(rows / 2);
      for (let r = 0; r < rows; r++) {
        const u = Math.max(0, Math.min(15, Math.round(value(c, r) * inv) + 8));
        residuals[j * rb + (r >> 1)] |= r & 1 ? u << 4 : u;
      }
    }
  }
  return { name, rows, cols, channels, bits, scales, residuals, baseHash };
}

/**
 * The k stored channels with the largest |x[c]| (x read at x[offset + c]; ties to the lower
 * channel), written to `out` in ascending channel order; returns how many (min(k, channels)).
 * `scratch` (at least 2·channels.length long) avoids an allocation per call.
 */
export function selectChannels(x: Float32Array, offset: number, channels: Int32Array, k: number, out: Int32Array, scratch = new Float32Array(2 * channels.length)): number {
  const n = channels.length;
  if (k >= n) {
    out.set(channels);
    return n;
  }
  if (k <= 0) return 0;
  if (k <= 16) return insertionTopK(x, offset, channels, k, out, scratch);
  // larger k: the k-th largest |x| by quickselect on a copy of the magnitudes (O(n); insertion is
  // O(n·k): 2x slower at k = 64 of 172, 2x faster at k = 4), then one pass in channel order: every
  // channel above it, and equal ones while places are left (ties to the lower channel)
  // scratch[0, n): |x| by stored channel; scratch[n, 2n): the copy quickselect reorders
  for (let j = 0; j < n; j++) scratch[n + j] = scratch[j] = Math.abs(x[offset + channels[j]]);
  const kth = kthLargest(scratch, n, 2 * n - 1, k);
  let above = 0;
  for (let j = 0; j < n; j++) if (scratch[j] > kth) above++;
  let ties = k - above;
  let m = 0;
  for (let j = 0; j < n; j++) {
    const a = scratch[j];
    if (a > kth || (a === kth && ties-- > 0)) out[m++] = channels[j];
  }
  return m;
}

/** Small k: a descending top-k list by insertion, then put in channel order. */
function insertionTopK(x: Float32Array, offset: number, channels: Int32Array, k: number, out: Int32Array, mag: Float32Array): number {
  let m = 0;
  for (let j = 0; j < channels.length; j++) {
    const c = channels[j];
    const a = Math.abs(x[offset + c]);
    if (m === k && !(a > mag[k - 1])) continue;
    // channels ascend, so an equal |x| stays behind (ties to the lower channel)
    let i = m < k ? m++ : k - 1;
    while (i > 0 && mag[i - 1] < a) {
      mag[i] = mag[i - 1];
      out[i] = out[i - 1];
      i--;
    }
    mag[i] = a;
    out[i] = c;
  }
  for (let i = 1; i < m; i++) {
    const c = out[i];
    let j = i;
    for (; j > 0 && out[j - 1] > c; j--) out[j] = out[j - 1];
    out[j] = c;
  }
  return m;
}

/** The k-th largest value of v[from..to] (1 ≤ k ≤ its length), reordering it in place (Hoare's quickselect). */
function kthLargest(v: Float32Array, from: number, to: number, k: number): number {
  let lo = from;
  let hi = to;
  const want = from + k - 1; // index in descending order
  while (lo < hi) {
    const pivot = v[(lo + hi) >> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (v[i] > pivot) i++;
      while (v[j] < pivot) j--;
      if (i <= j) {
        const t = v[i];
        v[i] = v[j];
        v[j] = t;
        i++;
        j--;
      }
    }
    if (want <= j) hi = j;
    else if (want >= i) lo = i;
    else return v[want];
  }
  return v[want];
}

/** What an attached store has done: rows of x compensated (tokens × stored layers) and residual bytes fetched for them. */
export interface QdecStats {
  layerRows: number;
  fetchedBytes: number;
}

export interface QdecHandle {
  readonly k: number;
  readonly stats: QdecStats;
  /** Residual bytes fetched per token so far (all stored layers), 0 before any token. */
  bytesPerToken(): number;
  /** Removes the compensation from every layer it was attached to. */
  detach(): void;
}

/**
 * Attaches the store to the model: every stored layer adds its top-k residual columns per token.
 * Every stored layer must exist in the model with its shape and the exact base weights the store was
 * built from (CRC-32 of the dequantized weights), else LowbitError and nothing is attached.
 */
export function attachQdec(model: DecoderModel, store: QdecStore, options: { k: number; where?: string }): QdecHandle {
  const { k } = options;
  const where = options.where ?? 'QDEC store';
  if (!Number.isInteger(k) || k < 0) throw new LowbitError('E_ARG', `${where}: k ${k} must be a whole number of channels >= 0`);
  const names = new Set(model.linears().map((l) => l.name));
  for (const s of store.layers.values()) {
    if (!names.has(s.name)) throw new LowbitError('E_MISSING', `${where}: layer ${s.name} is not in model ${model.name}`);
    const l = model.linear(s.name);
    if (l.rows !== s.rows || l.cols !== s.cols) throw new LowbitError('E_SHAPE', `${where}: layer ${s.name} is [${s.rows}, ${s.cols}] in the store, [${l.rows}, ${l.cols}] in model ${model.name}`);
    const h = baseWeightHash(dequantizeLinear(l.name, l.source));
    if (h !== s.baseHash) {
      throw new LowbitError('E_BAD_FILE', `${where}: layer ${s.name} was built for other base weights (hash ${hex(s.baseHash)}, model ${model.name} has ${hex(h)}): build the store from this quantized model`);
    }
  }
  const stats: QdecStats = { layerRows: 0, fetchedBytes: 0 };
  const attached = [...store.layers.values()].map((s) => {
    const l = model.linear(s.name);
    if (l.compensation) throw new LowbitError('E_ARG', `${where}: layer ${s.name} already has a compensation attached (detach it first)`);
    l.compensation = k === 0 ? null : compensator(s, k, stats);
    return l;
  });
  return {
    k, stats,
    bytesPerToken: () => (stats.layerRows === 0 ? 0 : (stats.fetchedBytes * store.layers.size) / stats.layerRows),
    detach() {
      for (const l of attached) l.compensation = null;
    },
  };
}

function hex(h: number): string {
  return (h >>> 0).toString(16).padStart(8, '0');
}

function compensator(s: QdecLayer, k: number, stats: QdecStats): (x: Float32Array, batch: number, y: Float32Array) => void {
  const { rows, cols, bits, scales, residuals } = s;
  const row = new Int32Array(cols); // channel → its row in the store
  s.channels.forEach((c, j) => {
    row[c] = j;
  });
  const picked = new Int32Array(Math.min(k, s.channels.length));
  const scratch = new Float32Array(2 * s.channels.length);
  const colBytes = qdecColumnBytes(rows, bits) + 4; // + the channel index
  const rb = Math.ceil(rows / 2);
  return (x, batch, y) => {
    for (let b = 0; b < batch; b++) {
      const m = selectChannels(x, b * cols, s.channels, k, picked, scratch);
      const yo = b * rows;
      for (let i = 0; i < m; i++) {
        const c = picked[i];
        const j = row[c];
        const xv = x[b * cols + c];
        if (bits === 32) {
          const o = j * rows;
          for (let r = 0; r < rows; r++) y[yo + r] += residuals[o + r] * xv;
        } else if (bits === 8) {
          const sx = scales[j] * xv;
          const o = j * rows;
          for (let r = 0; r < rows; r++) y[yo + r] += residuals[o + r] * sx;
        } else {
          const sx = scales[j] * xv;
          const o = j * rb;
          for (let r = 0; r < rows; r++) {
            const byte = residuals[o + (r >> 1)];
            y[yo + r] += ((r & 1 ? byte >> 4 : byte & 15) - 8) * sx;
          }
        }
      }
      stats.fetchedBytes += m * colBytes;
    }
    stats.layerRows += batch;
  };
}

// File: safetensors, per layer `<name>.qdec_channels` I32 [n], `<name>.qdec_scales` F32 [n] (codes
// only) and `<name>.qdec_residuals` (F32 [n, rows], I8 [n, rows] or U8 [n, ⌈rows/2⌉]);
// __metadata__ "lowbit.qdec" = JSON { version: 1, bits, layers: { <name>: { rows, cols, channels, baseHash } } }.
const QDEC_VERSION = 1;

/** Writes the store atomically (temp file + rename). */
export async function writeQdecStore(path: string, store: QdecStore, metadata: Record<string, string> = {}): Promise<void> {
  const tensors: SafetensorsTensorToWrite[] = [];
  const layers: Record<string, { rows: number; cols: number; channels: number; bits: number; baseHash: string }> = {};
  for (const l of store.layers.values()) {
    const n = l.channels.length;
    layers[l.name] = { rows: l.rows, cols: l.cols, channels: n, bits: l.bits, baseHash: hex(l.baseHash) };
    tensors.push({ name: `${l.name}.qdec_channels`, dtype: 'I32', shape: [n], data: l.channels });
    if (l.bits !== 32) tensors.push({ name: `${l.name}.qdec_scales`, dtype: 'F32', shape: [n], data: l.scales });
    const r = l.residuals;
    tensors.push(
      l.bits === 32 ? { name: `${l.name}.qdec_residuals`, dtype: 'F32', shape: [n, l.rows], data: r as Float32Array }
        : l.bits === 8 ? { name: `${l.name}.qdec_residuals`, dtype: 'I8', shape: [n, l.rows], data: r as Int8Array }
          : { name: `${l.name}.qdec_residuals`, dtype: 'U8', shape: [n, Math.ceil(l.rows / 2)], data: r as Uint8Array },
    );
  }
  await writeSafetensors(path, tensors, { ...metadata, 'lowbit.qdec': JSON.stringify({ version: QDEC_VERSION, layers }) });
}

const MAX_DIM = 1 << 20;

/** Reads a store written by writeQdecStore; every field is checked before anything is sized from it. */
export async function readQdecStore(input: string | ByteSource): Promise<QdecStore> {
  const st = await readSafetensors(input);
  const file = st.source.name;
  try {
    const raw = st.metadata['lowbit.qdec'];
    if (raw === undefined) throw new LowbitError('E_BAD_FILE', `${file}: no lowbit.qdec in __metadata__ (not a QDEC residual store; lowbit qdec --out writes one)`);
    let meta: unknown;
    try {
      meta = JSON.parse(raw);
    } catch (e) {
      throw new LowbitError('E_BAD_FILE', `${file}: lowbit.qdec is not JSON (${(e as Error).message})`);
    }
    const m = meta as { version?: unknown; layers?: unknown };
    if (typeof meta !== 'object' || meta === null || m.version !== QDEC_VERSION) throw new LowbitError('E_BAD_FILE', `${file}: lowbit.qdec version ${JSON.stringify(m?.version)}, this reader knows ${QDEC_VERSION}`);
    if (typeof m.layers !== 'object' || m.layers === null || Array.isArray(m.layers)) throw new LowbitError('E_BAD_FILE', `${file}: lowbit.qdec layers is not an object`);
    const layers = new Map<string, QdecLayer>();
    for (const [name, e] of Object.entries(m.layers as Record<string, unknown>)) {
      layers.set(name, await readLayer(st, file, name, e));
    }
    return { layers };
  } finally {
    await st.source.close();
  }
}

async function readLayer(st: Awaited<ReturnType<typeof readSafetensors>>, file: string, name: string, e: unknown): Promise<QdecLayer> {
  const where = `${file}: layer ${name}`;
  const { rows, cols, channels: n, bits, baseHash } = (e ?? {}) as Record<string, unknown>;
  const dim = (v: unknown, what: string, lo: number) => {
    if (!Number.isInteger(v) || (v as number) < lo || (v as number) > MAX_DIM) throw new LowbitError('E_BAD_FILE', `${where}: ${what} ${JSON.stringify(v)} is not an integer in ${lo}..${MAX_DIM}`);
    return v as number;
  };
  const R = dim(rows, 'rows', 1);
  const C = dim(cols, 'cols', 1);
  const N = dim(n, 'channels', 1);
  if (N > C) throw new LowbitError('E_BAD_FILE', `${where}: ${N} channels stored, the layer has ${C} inputs`);
  if (!QDEC_RESIDUAL_BITS.includes(bits as QdecResidualBits)) throw new LowbitError('E_BAD_FILE', `${where}: residual bits ${JSON.stringify(bits)} must be one of ${QDEC_RESIDUAL_BITS.join(', ')}`);
  if (typeof baseHash !== 'string' || !/^[0-9a-f]{8}$/.test(baseHash)) throw new LowbitError('E_BAD_FILE', `${where}: baseHash ${JSON.stringify(baseHash)} is not 8 hex digits`);
  const b = bits as QdecResidualBits;
  const tensor = async (suffix: string, dtype: string, shape: number[]) => {
    const t = st.tensors.get(`${name}.${suffix}`);
    if (!t) throw new LowbitError('E_MISSING', `${where}: tensor ${name}.${suffix} is missing`);
    if (t.dtype !== dtype || t.shape.join() !== shape.join()) throw new LowbitError('E_SHAPE', `${where}: tensor ${name}.${suffix} is ${t.dtype} [${t.shape}], the metadata implies ${dtype} [${shape}]`);
    return readSafetensorsBytes(st, `${name}.${suffix}`);
  };
  const cb = await tensor('qdec_channels', 'I32', [N]);
  const channels = new Int32Array(cb.buffer, cb.byteOffset, N).slice();
  for (let j = 0; j < N; j++) {
    if (channels[j] < 0 || channels[j] >= C || (j > 0 && channels[j] <= channels[j - 1])) {
      throw new LowbitError('E_BAD_FILE', `${where}: stored channel ${j} is ${channels[j]}; channels must ascend within 0..${C - 1}`);
    }
  }
  let scales = new Float32Array(0);
  if (b !== 32) {
    const sb = await tensor('qdec_scales', 'F32', [N]);
    scales = new Float32Array(sb.slice().buffer, 0, N);
    for (let j = 0; j < N; j++) if (!Number.isFinite(scales[j]) || scales[j] < 0) throw new LowbitError('E_NAN', `${where}: scale ${j} is ${scales[j]}`);
  }
  const rb = await tensor('qdec_residuals', b === 32 ? 'F32' : b === 8 ? 'I8' : 'U8', b === 4 ? [N, Math.ceil(R / 2)] : [N, R]);
  const copy = rb.slice().buffer;
  const residuals = b === 32 ? new Float32Array(copy) : b === 8 ? new Int8Array(copy) : new Uint8Array(copy);
  if (residuals instanceof Float32Array) for (let i = 0; i < residuals.length; i++) if (!Number.isFinite(residuals[i])) throw new LowbitError('E_NAN', `${where}: residual value ${i} is ${residuals[i]}`);
  return { name, rows: R, cols: C, channels, bits: b, scales, residuals, baseHash: Number.parseInt(baseHash, 16) };
}
