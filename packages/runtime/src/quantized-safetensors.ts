// A quantized model as one safetensors file, with Hugging Face tensor names. INT-k layers (2, 3, 4 or
// 8 bits, groups along the input or one scale per output channel) use the GPTQ checkpoint layout
// that AutoGPTQ / GPTQModel / transformers' GPTQConfig read; everything else (MX, other widths and
// granularities) is one blob per layer in lowbit's tensor layout. The file carries its own config and
// tokenizer (the GGUF metadata it came from) in `__metadata__`, so `lowbit eval model.safetensors`
// needs nothing else. Layouts: README "Quantized safetensors".
import { type Kernels, LowbitError, loadKernels } from '@lowbit/kernels';
import { type PackedIntTensor, readBits, rowBytes, writeBits } from '@lowbit/formats';
import { type AnyPrecisionEntry, anyPrecisionSizes, decodeAnyPrecision, encodeAnyPrecision, permuteAnyPrecisionRows } from './any-precision-linear.js';
import { type ByteSource, bytesSource } from './byte-source.js';
import { LOWBIT_TYPES, type LowbitIntParams, type LowbitTensorType, checkLowbitIntVersion } from './ggml-types.js';
import { LOWBIT_FORMAT_VERSION, modelMetadata, storedFromSource } from './gguf-convert.js';
import type { GgufFile, GgufScalar, GgufValue } from './gguf-reader.js';
import { f16ToF32, f32ToF16 } from './half.js';
import { ggufToHfName } from './hf-names.js';
import { type RopeLayout, permuteRows, permuteStoredRows, ropeHeads, ropeRowOrder } from './rope-order.js';
import { Linear, type LinearWeight } from './linear.js';
import { type StoredLayer, decodeLowbit, encodeLowbit } from './lowbit-tensors.js';
import { bucketedBytes, bucketedSafetensors, readBucketedSafetensors } from './bucketed-embedding.js';
import { type LayerWeights, type TokenEmbedding, DecoderModel, llamaConfig, tokenizerFromGguf, assertFinite, assertFiniteWeight, ownedInstances } from './model.js';
import { type ShardLayout, closeInstances, planSafetensorsLayout } from './shards.js';
import { linearWeightFromPacked } from './packed-linear.js';
import { type SafetensorsFile, type SafetensorsTensorToWrite, readSafetensors, readSafetensorsBytes, readSafetensorsF32, writeSafetensors } from './safetensors.js';

/** AutoGPTQ's `quantize_config.json` (and transformers' GPTQConfig) fields lowbit writes and reads. */
export interface GptqQuantizeConfig {
  bits: number;
  /** Input columns per group; −1 = one scale per output channel. */
  group_size: number;
  /** act-order ("descending activation"): g_idx is not ⌊c/group⌋. */
  desc_act: boolean;
  sym: boolean;
  static_groups: boolean;
  true_sequential: boolean;
  damp_percent: number;
  quant_method: 'gptq';
  /** 'gptq' stores zero − 1 in qzeros (AutoGPTQ's historic offset), 'gptq_v2' the zero itself. */
  checkpoint_format: 'gptq' | 'gptq_v2';
}

export interface SafetensorsSaveOptions {
  /** Packed layers by GGUF tensor name (`quantizeModel`'s `packed`); other layers are saved from their current weights. */
  packed?: ReadonlyMap<string, StoredLayer | null>;
  /** Recorded in quantize_config (they describe how the model was quantized, not the layout). */
  damp?: number;
  staticGroups?: boolean;
  /**
   * INT-k layers the GPTQ checkpoint layout holds are written in it (default true; one quantize_config
   * for the file). false: every packed layer in lowbit's layout, so layers of different widths (a
   * mixed-precision allocation) share a file.
   */
  gptq?: boolean;
}

const GPTQ_BITS = new Set([2, 3, 4, 8]);

/** The RoPE row order a Wq/Wk layer takes to (`halves`, HF's) or from (`pairs`, memory's) this file. */
function rowsPermutation(name: string, c: { nHeads: number; nKvHeads: number; headDim: number }, to: RopeLayout): Int32Array | null {
  const heads = ropeHeads(name, c);
  return heads ? ropeRowOrder(heads, c.headDim, to) : null;
}

function gptqEligible(t: StoredLayer | null): t is PackedIntTensor {
  return t !== null && t.kind === 'int' && GPTQ_BITS.has(t.bits) && (t.granularity === 'group-cols' || t.granularity === 'per-oc');
}

/** The GPTQ tensors of one layer [rows = out, cols = in]: qweight / qzeros packed into int32 along in / out. */
export function gptqTensors(prefix: string, t: PackedIntTensor, v2: boolean): SafetensorsTensorToWrite[] {
  const [out, inF] = t.shape;
  const b = t.bits;
  // 32 values fill exactly b int32 words; a dimension that is not a multiple of 32 is padded with zero codes
  const words = (Math.ceil(inF / 32) * b * 32) / 32;
  const rb = rowBytes(inF, b);
  const qweight = new Int32Array(words * out);
  const row = new Uint8Array(words * 4);
  const rowView = new DataView(row.buffer);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    row.set(t.codes.subarray(o * rb, (o + 1) * rb));
    for (let w = 0; w < words; w++) qweight[w * out + o] = rowView.getInt32(4 * w, true);
  }
  const ng = t.scales.length / out;
  const scales = new Uint16Array(ng * out);
  const zWords = (Math.ceil(out / 32) * b * 32) / 32;
  const qzeros = new Int32Array(ng * zWords);
  const zRow = new Uint8Array(zWords * 4);
  const zView = new DataView(zRow.buffer);
  const mask = 2 ** b - 1;
  for (let g = 0; g < ng; g++) {
    zRow.fill(0);
    for (let o = 0; o < out; o++) {
      scales[g * out + o] = f32ToF16(t.scales[o * ng + g]);
      const z = t.zeros ? t.zeros[o * ng + g] : 2 ** (b - 1);
      writeBits(zRow, o * b, b, (v2 ? z : z - 1) & mask);
    }
    for (let w = 0; w < zWords; w++) qzeros[g * zWords + w] = zView.getInt32(4 * w, true);
  }
  const group = t.granularity === 'group-cols' ? t.group : inF;
  const gIdx = t.gIdx ?? Int32Array.from({ length: inF }, (_, c) => Math.floor(c / group));
  return [
    { name: `${prefix}.qweight`, dtype: 'I32', shape: [words, out], data: qweight },
    { name: `${prefix}.qzeros`, dtype: 'I32', shape: [ng, zWords], data: qzeros },
    { name: `${prefix}.scales`, dtype: 'F16', shape: [ng, out], data: scales },
    { name: `${prefix}.g_idx`, dtype: 'I32', shape: [inF], data: gIdx },
  ];
}

function gptqConfigOf(_name: string, t: PackedIntTensor): Pick<GptqQuantizeConfig, 'bits' | 'group_size' | 'sym'> {
  return { bits: t.bits, group_size: t.granularity === 'per-oc' ? -1 : t.group, sym: t.zeros === null };
}

function metadataJson(meta: Map<string, GgufValue>): string {
  // bigints (u64/i64 values) as decimal strings; the stored type says to read them back as bigints
  return JSON.stringify([...meta].filter(([k]) => !k.startsWith('lowbit.')).map(([k, v]) => [k, v]), (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
}

function metadataFromJson(text: string, where: string): Map<string, GgufValue> {
  let entries: [string, GgufValue][];
  try {
    entries = JSON.parse(text);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `${where}: __metadata__ lowbit.gguf_metadata is not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(entries)) throw new LowbitError('E_BAD_FILE', `${where}: __metadata__ lowbit.gguf_metadata is not an array of [key, value] entries`);
  const out = new Map<string, GgufValue>();
  entries.forEach((entry: unknown, i) => {
    const at = `${where}: __metadata__ lowbit.gguf_metadata[${i}]`;
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') throw new LowbitError('E_BAD_FILE', `${at} is not a [key, value] pair with a string key`);
    const [key, v] = entry as [string, unknown];
    if (typeof v !== 'object' || v === null) throw new LowbitError('E_BAD_FILE', `${at} (${key}): value is not an object { type, value }`);
    const { type, itemType, value } = v as { type?: unknown; itemType?: unknown; value?: unknown };
    if (type === 9) {
      if (!Array.isArray(value)) throw new LowbitError('E_BAD_FILE', `${at} (${key}): an array value that is not an array`);
      const it = scalarType(itemType, `${at} (${key}) itemType`);
      out.set(key, { type: 9, itemType: it, value: value.map((x, j) => gguScalar(it, x, `${at} (${key})[${j}]`)) });
    } else {
      const t = scalarType(type, `${at} (${key}) type`);
      out.set(key, { type: t, value: gguScalar(t, value, `${at} (${key})`) });
    }
  });
  return out;
}

type ScalarType = Exclude<GgufValue['type'], 9>;

function scalarType(t: unknown, where: string): ScalarType {
  if (!Number.isInteger(t) || (t as number) < 0 || (t as number) > 12 || t === 9) throw new LowbitError('E_BAD_FILE', `${where} ${JSON.stringify(t)} is not a GGUF value type (0..12, arrays not nested)`);
  return t as ScalarType;
}

/** A stored metadata value checked against its GGUF type (u64/i64 as decimal text, read back as bigints). */
function gguScalar(type: ScalarType, x: unknown, where: string): GgufScalar {
  const fail = (what: string): never => {
    throw new LowbitError('E_BAD_FILE', `${where}: ${JSON.stringify(x)} is not ${what}`);
  };
  switch (type) {
    case 7:
      return typeof x === 'boolean' ? x : fail('a boolean');
    case 8:
      return typeof x === 'string' ? x : fail('a string');
    case 10:
    case 11: {
      if (typeof x !== 'string' || !/^-?\d{1,20}$/.test(x)) fail('a decimal integer (64-bit value as text)');
      const b = BigInt(x as string);
      if (type === 10 ? b < 0n || b >= 2n ** 64n : b < -(2n ** 63n) || b >= 2n ** 63n) fail(`in range of ${type === 10 ? 'u64' : 'i64'}`);
      return b;
    }
    case 6:
    case 12:
      return typeof x === 'number' ? x : fail('a number');
    default: {
      const [lo, hi] = ({ 0: [0, 255], 1: [-128, 127], 2: [0, 65535], 3: [-32768, 32767], 4: [0, 2 ** 32 - 1], 5: [-(2 ** 31), 2 ** 31 - 1] } as Record<number, [number, number]>)[type];
      return Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi ? (x as number) : fail(`an integer in [${lo}, ${hi}]`);
    }
  }
}

/**
 * Writes an in-memory Llama-family model (loaded from GGUF, layers quantized) as one safetensors
 * file, atomically. INT-k layers that the GPTQ layout holds must share bits, group size and symmetry
 * (one quantize_config for the file); a mix, or ggml block layers, is an E_UNSUPPORTED error before
 * anything is written.
 */
export async function saveModelSafetensors(model: DecoderModel, output: string, options: SafetensorsSaveOptions = {}): Promise<void> {
  const c = model.config;
  if (c.variant) throw new LowbitError('E_UNSUPPORTED', `${model.name}: quantized safetensors are written for Llama-family models; ${c.architecture} is not one`);
  const ggufMeta = modelMetadata(model); // its metadata and tokenizer go into the file
  const linears = model.linears();
  const names = new Set(linears.map((l) => l.name));
  for (const n of options.packed?.keys() ?? []) if (!names.has(n)) throw new LowbitError('E_MISSING', `${model.name}: packed layer ${n} is not a linear layer of the model`);
  // any-precision layers are saved as they run (nested planes + tables), never as a StoredLayer
  const stored = new Map(linears.map((l) => [l.name, options.packed?.get(l.name) ?? (l.source.format === 'any-precision' ? null : storedFromSource(l.name, l.source))]));
  let cfg: ReturnType<typeof gptqConfigOf> | null = null;
  let anyZeroAtZero = false;
  let descAct = false;
  for (const [name, t] of stored) {
    const l = model.linear(name);
    if (t && (t.shape[0] !== l.rows || t.shape[1] !== l.cols)) throw new LowbitError('E_SHAPE', `${name}: packed tensor has shape [${t.shape}], the layer is [${l.rows}, ${l.cols}]`);
    if (!t && l.source.format !== 'f32' && l.source.format !== 'any-precision') {
      throw new LowbitError('E_UNSUPPORTED', `${name}: ${l.source.format} layers are llama.cpp blocks with no safetensors layout here; write them to a .gguf file`);
    }
    if (options.gptq === false || !gptqEligible(t)) continue;
    const k = gptqConfigOf(name, t);
    if (cfg && (cfg.bits !== k.bits || cfg.group_size !== k.group_size || cfg.sym !== k.sym)) {
      throw new LowbitError('E_UNSUPPORTED', `${name}: int${k.bits} group ${k.group_size} ${k.sym ? 'sym' : 'asym'} differs from the other layers' int${cfg.bits} group ${cfg.group_size} ${cfg.sym ? 'sym' : 'asym'}; one GPTQ quantize_config covers a file (save as .gguf)`);
    }
    cfg = k;
    if (t.zeros?.some((z) => z === 0)) anyZeroAtZero = true;
    if (t.gIdx) descAct = true;
  }
  // v1 stores zero − 1, which cannot hold a zero point of 0: such files use v2 (zero as is)
  const v2 = anyZeroAtZero;
  const tensors: SafetensorsTensorToWrite[] = [];
  const lowbitTensors: Record<string, { type: LowbitTensorType; shape: [number, number]; params?: LowbitIntParams }> = {};
  const anyPrecision: Record<string, AnyPrecisionEntry> = {};
  const e = model.weights.tokenEmbd;
  const bucketed = e.type === 'buckets' ? bucketedSafetensors(e.buckets) : null;
  if (bucketed) tensors.push(...bucketed.tensors);
  else {
    const embd = new Float32Array(c.vocabSize * c.dim);
    for (let i = 0; i < c.vocabSize; i++) model.embed(i, embd, i * c.dim);
    tensors.push({ name: ggufToHfName('token_embd.weight'), dtype: 'F32', shape: [c.vocabSize, c.dim], data: embd });
  }
  tensors.push({ name: ggufToHfName('output_norm.weight'), dtype: 'F32', shape: [c.dim], data: model.weights.outputNorm });
  model.weights.layers.forEach((l, i) => {
    tensors.push({ name: ggufToHfName(`blk.${i}.attn_norm.weight`), dtype: 'F32', shape: [c.dim], data: l.attnNorm });
    tensors.push({ name: ggufToHfName(`blk.${i}.ffn_norm.weight`), dtype: 'F32', shape: [c.dim], data: l.ffnNorm });
  });
  for (const l of linears) {
    const hf = ggufToHfName(l.name);
    const prefix = hf.replace(/\.weight$/, '');
    const perm = rowsPermutation(l.name, c, 'halves');
    if (l.bias) tensors.push({ name: `${prefix}.bias`, dtype: 'F32', shape: [l.rows], data: perm ? permuteRows(l.bias, 1, perm) : l.bias });
    let t = stored.get(l.name) ?? null;
    if (t && perm) t = permuteStoredRows(l.name, t, perm);
    if (options.gptq !== false && gptqEligible(t)) tensors.push(...gptqTensors(prefix, t, v2));
    else if (t) {
      const enc = encodeLowbit(t, `tensor ${l.name}`);
      tensors.push({ name: `${prefix}.lowbit_packed`, dtype: 'U8', shape: [enc.bytes.byteLength], data: enc.bytes });
      lowbitTensors[prefix] = { type: enc.type, shape: t.shape, ...(enc.params ? { params: enc.params } : {}) };
    } else if (l.source.format === 'any-precision') {
      const enc = encodeAnyPrecision(perm ? permuteAnyPrecisionRows(l.source.tensor, perm) : l.source.tensor);
      tensors.push({ name: `${prefix}.anyprec_planes`, dtype: 'U8', shape: [enc.planes.byteLength], data: enc.planes });
      tensors.push({ name: `${prefix}.anyprec_luts`, dtype: 'F32', shape: [enc.luts.length], data: enc.luts });
      anyPrecision[prefix] = enc.entry;
    } else {
      const w = (l.source as { data: Float32Array }).data;
      tensors.push({ name: hf, dtype: 'F32', shape: [l.rows, l.cols], data: perm ? permuteRows(w, l.cols, perm) : w });
    }
  }
  const quantizeConfig: GptqQuantizeConfig | null = cfg && {
    ...cfg, desc_act: descAct, static_groups: options.staticGroups ?? false, true_sequential: true, damp_percent: options.damp ?? 0.01,
    quant_method: 'gptq', checkpoint_format: v2 ? 'gptq_v2' : 'gptq',
  };
  const metadata: Record<string, string> = {
    format: 'pt',
    'lowbit.format_version': String(LOWBIT_FORMAT_VERSION),
    'lowbit.gguf_metadata': metadataJson(ggufMeta),
  };
  if (quantizeConfig) metadata.quantize_config = JSON.stringify(quantizeConfig);
  if (Object.keys(lowbitTensors).length) metadata['lowbit.tensors'] = JSON.stringify(lowbitTensors);
  if (Object.keys(anyPrecision).length) metadata['lowbit.any_precision'] = JSON.stringify(anyPrecision);
  if (bucketed) metadata['lowbit.embedding_buckets'] = bucketed.meta;
  await writeSafetensors(output, tensors, metadata);
}

/** One GPTQ layer back to a formats INT-k tensor [out, in] (GGUF row order restored by the caller). */
export async function gptqLayer(st: SafetensorsFile, prefix: string, q: GptqQuantizeConfig, rows: number, cols: number): Promise<PackedIntTensor> {
  const where = `${st.source.name}: ${prefix}`;
  const info = (n: string) => {
    const t = st.tensors.get(`${prefix}.${n}`);
    if (!t) throw new LowbitError('E_MISSING', `${where}.${n} is missing`);
    return t;
  };
  const b = q.bits;
  const words = (Math.ceil(cols / 32) * b * 32) / 32;
  const ng = q.group_size === -1 ? 1 : Math.ceil(cols / q.group_size);
  const zWords = (Math.ceil(rows / 32) * b * 32) / 32;
  const want: [string, string, number[]][] = [['qweight', 'I32', [words, rows]], ['qzeros', 'I32', [ng, zWords]], ['scales', 'F16', [ng, rows]], ['g_idx', 'I32', [cols]]];
  for (const [n, dtype, shape] of want) {
    const t = info(n);
    if (t.dtype !== dtype || t.shape.join() !== shape.join()) throw new LowbitError('E_SHAPE', `${where}.${n} is ${t.dtype} [${t.shape}], the layer [${rows}, ${cols}] at ${b} bits, group ${q.group_size} needs ${dtype} [${shape}]`);
  }
  const qw = new DataView((await readSafetensorsBytes(st, `${prefix}.qweight`)).buffer);
  const qz = await readSafetensorsBytes(st, `${prefix}.qzeros`);
  const sc = new DataView((await readSafetensorsBytes(st, `${prefix}.scales`)).buffer);
  const gi = new DataView((await readSafetensorsBytes(st, `${prefix}.g_idx`)).buffer);
  const rb = rowBytes(cols, b);
  const codes = new Uint8Array(rows * rb);
  const row = new Uint8Array(words * 4);
  const rowView = new DataView(row.buffer);
  for (let o = 0; o < rows; o++) {
    for (let w = 0; w < words; w++) rowView.setInt32(4 * w, qw.getInt32(4 * (w * rows + o), true), true);
    codes.set(row.subarray(0, rb), o * rb);
    // the last byte may hold padding codes past `cols`: clear them so equal tensors compare equal
    const used = cols * b - (rb - 1) * 8;
    codes[o * rb + rb - 1] &= (1 << used) - 1;
  }
  const scales = new Float32Array(rows * ng);
  const zeros = new Float32Array(rows * ng);
  const v1 = q.checkpoint_format !== 'gptq_v2';
  for (let g = 0; g < ng; g++) {
    const zRow = qz.subarray(g * zWords * 4, (g + 1) * zWords * 4);
    for (let o = 0; o < rows; o++) {
      scales[o * ng + g] = f16ToF32(sc.getUint16(2 * (g * rows + o), true));
      zeros[o * ng + g] = readBits(zRow, o * b, b) + (v1 ? 1 : 0);
    }
  }
  // symmetric: every zero point is 2^(b−1), the implicit zero of formats' symmetric INT-k (a file
  // that says sym but stores other zeros keeps them: the stored values are what the weights are)
  const implicit = q.sym && zeros.every((z) => z === 2 ** (b - 1));
  const group = q.group_size === -1 ? cols : q.group_size;
  const gIdx = Int32Array.from({ length: cols }, (_, c) => gi.getInt32(4 * c, true));
  const contiguous = gIdx.every((g, c) => g === Math.floor(c / group));
  const t: PackedIntTensor = {
    kind: 'int', bits: b, symmetric: implicit, shape: [rows, cols], granularity: q.group_size === -1 ? 'per-oc' : 'group-cols', group, scales, zeros: implicit ? null : zeros, codes,
  };
  if (!contiguous) t.gIdx = gIdx;
  return t;
}

/**
 * Loads a quantized safetensors file written by `saveModelSafetensors` (config and tokenizer from its
 * `__metadata__`); GPTQ and lowbit layers run packed as they do from GGUF.
 */
export async function loadQuantizedSafetensors(input: string | ByteSource, options: { kernels?: Kernels; maxInstanceBytes?: number } = {}): Promise<DecoderModel> {
  const st = await readSafetensors(input);
  const path = st.source.name;
  const made: Linear[] = [];
  let layout: ShardLayout | null = null;
  try {
    const meta = st.metadata;
    if (!meta['lowbit.gguf_metadata']) {
      throw new LowbitError('E_UNSUPPORTED', `${path}: no lowbit.gguf_metadata in __metadata__ (not a model file lowbit wrote); a Hugging Face checkpoint directory loads as a directory`);
    }
    const metadata = metadataFromJson(meta['lowbit.gguf_metadata'], path);
    const fake: GgufFile = { source: bytesSource(new Uint8Array(0), path), version: 3, alignment: 32, metadata, tensors: new Map(), dataOffset: 0 };
    const c = llamaConfig(fake);
    // the config came from metadata only: the embedding pins dim and vocabulary before any loop it sizes
    const embdInfo = st.tensors.get('model.embed_tokens.weight');
    // a bucketed embedding (per-row INT-k) is checked against dim and vocabulary as it is read
    const bucketed = !embdInfo && st.tensors.has('model.embed_tokens.bucket_map');
    if (!embdInfo && !bucketed) throw new LowbitError('E_MISSING', `${path}: tensor model.embed_tokens.weight is missing`);
    if (embdInfo && embdInfo.shape.join() !== [c.vocabSize, c.dim].join()) throw new LowbitError('E_SHAPE', `${path}: tensor model.embed_tokens.weight has shape [${embdInfo.shape}], the metadata implies [${c.vocabSize}, ${c.dim}]`);
    for (const n of st.tensors.keys()) {
      const m = /^model\.layers\.(\d+)\./.exec(n);
      if (m && Number(m[1]) >= c.nLayers) throw new LowbitError('E_BAD_FILE', `${path}: tensor ${n} lies past the block count ${c.nLayers}`);
    }
    const tokenizer = tokenizerFromGguf(fake);
    let q: GptqQuantizeConfig | null = null;
    let lowbit: Record<string, { type: LowbitTensorType; shape: [number, number]; params?: LowbitIntParams }> = {};
    let anyPrec: Record<string, unknown> = {};
    try {
      if (meta.quantize_config) q = JSON.parse(meta.quantize_config);
      if (meta['lowbit.tensors']) lowbit = JSON.parse(meta['lowbit.tensors']);
      if (meta['lowbit.any_precision']) anyPrec = JSON.parse(meta['lowbit.any_precision']);
    } catch (e) {
      throw new LowbitError('E_BAD_FILE', `${path}: __metadata__ quantize_config / lowbit.tensors is not JSON (${(e as Error).message})`);
    }
    const isObject = (x: unknown): x is object => typeof x === 'object' && x !== null && !Array.isArray(x);
    if (!isObject(anyPrec)) throw new LowbitError('E_BAD_FILE', `${path}: __metadata__ lowbit.any_precision is not a JSON object`);
    if (!isObject(lowbit)) throw new LowbitError('E_BAD_FILE', `${path}: __metadata__ lowbit.tensors is not a JSON object`);
    if (meta.quantize_config && !isObject(q)) throw new LowbitError('E_BAD_FILE', `${path}: __metadata__ quantize_config is not a JSON object`);
    if (q && !(q.group_size === -1 || (Number.isSafeInteger(q.group_size) && q.group_size > 0))) throw new LowbitError('E_BAD_FILE', `${path}: quantize_config group_size ${JSON.stringify(q.group_size)} is neither -1 nor a positive integer`);
    if (q && (!GPTQ_BITS.has(q.bits) || q.quant_method !== 'gptq')) throw new LowbitError('E_UNSUPPORTED', `${path}: quantize_config ${JSON.stringify(q)}: lowbit reads GPTQ at 2, 3, 4 or 8 bits`);
    const k = options.kernels ?? (await loadKernels());
    // matrices larger together than one instance holds are spread over several (shards.ts), sized from their stored tensors
    layout = await planSafetensorsLayout(k, c, st.tensors.values(), (gguf) => ggufToHfName(gguf).replace(/\.weight$/, ''), options.maxInstanceBytes, path);
    const f32 = async (name: string, shape: number[]) => {
      const t = st.tensors.get(name);
      if (!t) throw new LowbitError('E_MISSING', `${path}: tensor ${name} is missing`);
      if (t.shape.join() !== shape.join()) throw new LowbitError('E_SHAPE', `${path}: tensor ${name} has shape [${t.shape}], the config implies [${shape}]`);
      const v = await readSafetensorsF32(st, name);
      assertFinite(`${path}: tensor ${name}`, v);
      return v;
    };
    const lin = async (gguf: string, rows: number, cols: number): Promise<Linear> => {
      const hf = ggufToHfName(gguf);
      const prefix = hf.replace(/\.weight$/, '');
      const perm = rowsPermutation(gguf, c, 'pairs');
      let w: LinearWeight;
      if (st.tensors.has(`${prefix}.qweight`)) {
        if (!q) throw new LowbitError('E_BAD_FILE', `${path}: ${prefix}.qweight without a quantize_config in __metadata__`);
        let t: StoredLayer = await gptqLayer(st, prefix, q, rows, cols);
        if (perm) t = permuteStoredRows(gguf, t, perm);
        w = linearWeightFromPacked(t);
      } else if (st.tensors.has(`${prefix}.lowbit_packed`)) {
        const d = Object.hasOwn(lowbit, prefix) ? lowbit[prefix] : undefined;
        if (!isObject(d) || typeof d.type !== 'string' || !Object.hasOwn(LOWBIT_TYPES, d.type) || !Array.isArray(d.shape)) throw new LowbitError('E_BAD_FILE', `${path}: ${prefix}.lowbit_packed has no entry in __metadata__ lowbit.tensors`);
        if (d.shape[0] !== rows || d.shape[1] !== cols) throw new LowbitError('E_SHAPE', `${path}: ${prefix} is [${d.shape}], the config implies [${rows}, ${cols}]`);
        if (LOWBIT_TYPES[d.type].kind === 'int') checkLowbitIntVersion(meta['lowbit.format_version'], `${path}: ${prefix}`);
        let t = decodeLowbit(d.type, [cols, rows], d.params, await readSafetensorsBytes(st, `${prefix}.lowbit_packed`), `${path}: ${prefix}`);
        if (perm) t = permuteStoredRows(gguf, t, perm);
        w = linearWeightFromPacked(t);
      } else if (st.tensors.has(`${prefix}.anyprec_planes`)) {
        const where = `${path}: ${prefix}`;
        // sizes from the metadata entry, checked against both tensor headers before either is read
        const s = anyPrecisionSizes(where, Object.hasOwn(anyPrec, prefix) ? anyPrec[prefix] : undefined, rows, cols);
        const pi = st.tensors.get(`${prefix}.anyprec_planes`);
        const li = st.tensors.get(`${prefix}.anyprec_luts`);
        if (!li) throw new LowbitError('E_MISSING', `${where}.anyprec_luts is missing`);
        if (pi?.dtype !== 'U8' || pi.shape.join() !== String(s.planeBytes)) throw new LowbitError('E_SHAPE', `${where}.anyprec_planes is ${pi?.dtype} [${pi?.shape}], ${s.maxBits} planes of [${rows}, ${cols}] need U8 [${s.planeBytes}]`);
        if (li.dtype !== 'F32' || li.shape.join() !== String(s.lutValues)) throw new LowbitError('E_SHAPE', `${where}.anyprec_luts is ${li.dtype} [${li.shape}], ${s.seedBits}..${s.maxBits} bits need F32 [${s.lutValues}]`);
        let t = decodeAnyPrecision(where, s, rows, cols, await readSafetensorsBytes(st, `${prefix}.anyprec_planes`), await readSafetensorsF32(st, `${prefix}.anyprec_luts`));
        if (perm) t = permuteAnyPrecisionRows(t, perm);
        w = { format: 'any-precision', shape: [rows, cols], tensor: t };
      } else {
        const data = await f32(hf, [rows, cols]);
        w = { format: 'f32', shape: [rows, cols], data: perm ? permuteRows(data, cols, perm) : data };
      }
      assertFiniteWeight(`${path}: ${prefix}`, w);
      // Qwen2's q/k/v biases, in the file's RoPE order like their rows
      const biasName = `${prefix}.bias`;
      const bias = st.tensors.has(biasName) ? await f32(biasName, [rows]) : undefined;
      const l = new Linear(layout ? layout.kOf(gguf) : k, gguf, w, bias && perm ? permuteRows(bias, 1, perm) : bias);
      made.push(l);
      return l;
    };
    const kvDim = c.nKvHeads * c.headDim;
    const layers: LayerWeights[] = [];
    for (let i = 0; i < c.nLayers; i++) {
      const b = `blk.${i}.`;
      layers.push({
        attnNorm: await f32(ggufToHfName(`${b}attn_norm.weight`), [c.dim]),
        wq: await lin(`${b}attn_q.weight`, c.dim, c.dim),
        wk: await lin(`${b}attn_k.weight`, kvDim, c.dim),
        wv: await lin(`${b}attn_v.weight`, kvDim, c.dim),
        wo: await lin(`${b}attn_output.weight`, c.dim, c.dim),
        ffnNorm: await f32(ggufToHfName(`${b}ffn_norm.weight`), [c.dim]),
        w1: await lin(`${b}ffn_gate.weight`, c.hiddenDim, c.dim),
        w2: await lin(`${b}ffn_down.weight`, c.dim, c.hiddenDim),
        w3: await lin(`${b}ffn_up.weight`, c.hiddenDim, c.dim),
      });
    }
    let tokenEmbd: TokenEmbedding;
    if (bucketed) {
      const buckets = await readBucketedSafetensors(`${path}: token embedding`, meta['lowbit.embedding_buckets'], (n) => st.tensors.get(n), (n) => readSafetensorsBytes(st, n), c.vocabSize, c.dim);
      tokenEmbd = { type: 'buckets', buckets, rowBytes: bucketedBytes(buckets) / c.vocabSize };
    } else {
      const embd = await f32(ggufToHfName('token_embd.weight'), [c.vocabSize, c.dim]);
      tokenEmbd = { type: 'F32', data: new Uint8Array(embd.buffer, embd.byteOffset, embd.byteLength), rowBytes: c.dim * 4 };
    }
    const model = new DecoderModel(path, c, {
      tokenEmbd,
      layers,
      outputNorm: await f32(ggufToHfName('output_norm.weight'), [c.dim]),
      output: await lin('output.weight', c.vocabSize, c.dim),
    }, tokenizer, k, undefined, layout?.layerKernels);
    if (layout) ownedInstances.set(model, layout.owned);
    return model;
  } catch (e) {
    for (const l of made) l.free();
    await closeInstances(layout?.owned ?? []);
    throw e;
  } finally {
    await st.source.close();
  }
}
