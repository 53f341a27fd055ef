// A token embedding at per-row precision: the vocabulary split into buckets (the low-bit NMT paper's
// frequency buckets, `lowbit allocate --embed-buckets`), each bucket one INT-k tensor of its tokens'
// rows, plus a map token → (bucket, row). Lookup dequantizes one row, so the table is never expanded.
// In GGUF: tensors `token_embd.bucket<b>.weight` (LB_INT<k>, shape [dim, rows]) and metadata
// `lowbit.token_embd.bucket_map` (i32 array, 2 per token: bucket, row); no `token_embd.weight`, so
// llama.cpp refuses the file (it refuses LB_* types anyway). In safetensors: `model.embed_tokens.bucket<b>.lowbit_packed`
// (U8 blob, the same layout), `model.embed_tokens.bucket_map` (I32 [vocab, 2]) and `__metadata__`
// `lowbit.embedding_buckets` (per bucket: type, shape, params). Bucket blobs: lowbit-tensors.ts layout.
import { LowbitError } from '@lowbit/kernels';
import { type PackedIntTensor, intStorageBytes, readBits, rowBytes } from '@lowbit/formats';
import { type GgufFile, readTensorBytes } from './gguf-reader.js';
import { type GgufTensorToWrite, gguf } from './gguf-writer.js';
import type { GgufValue } from './gguf-reader.js';
import { type LowbitIntParams, type LowbitTensorType, LOWBIT_TYPES } from './ggml-types.js';
import { decodeLowbit, encodeLowbit } from './lowbit-tensors.js';

export interface BucketedEmbedding {
  kind: 'buckets';
  dim: number;
  /** Each bucket's rows [rows of the bucket, dim]: INT-k with one scale per group of columns (or per row). */
  buckets: PackedIntTensor[];
  /** Bucket of each token id. */
  bucketOf: Int32Array;
  /** Row of each token id within its bucket. */
  rowOf: Int32Array;
}

export const BUCKET_MAP_KEY = 'lowbit.token_embd.bucket_map';
export const bucketTensorName = (b: number): string => `token_embd.bucket${b}.weight`;

/**
 * Checks and assembles a bucketed embedding: every bucket [rows, dim] with row-wise scales, rows
 * summing to the vocabulary, every token mapped to an existing row and no row mapped twice.
 */
export function bucketedEmbedding(where: string, vocab: number, dim: number, buckets: PackedIntTensor[], bucketOf: Int32Array, rowOf: Int32Array): BucketedEmbedding {
  if (buckets.length < 1) throw new LowbitError('E_BAD_FILE', `${where}: a bucketed token embedding needs at least one bucket`);
  if (bucketOf.length !== vocab || rowOf.length !== vocab) throw new LowbitError('E_SHAPE', `${where}: bucket map has ${bucketOf.length} / ${rowOf.length} entries, the vocabulary ${vocab} tokens`);
  let total = 0;
  buckets.forEach((t, b) => {
    const at = `${where}: bucket ${b}`;
    if (t.kind !== 'int') throw new LowbitError('E_BAD_FILE', `${at} is not an INT-k tensor`);
    if (t.shape[1] !== dim) throw new LowbitError('E_SHAPE', `${at} has rows of ${t.shape[1]} values, the embedding ${dim}`);
    if ((t.granularity !== 'group-cols' && t.granularity !== 'per-oc') || t.gIdx) throw new LowbitError('E_UNSUPPORTED', `${at}: ${t.granularity}${t.gIdx ? ' with g_idx' : ''} scales; embedding rows need one scale per group of columns or per row`);
    for (let i = 0; i < t.scales.length; i++) if (!Number.isFinite(t.scales[i])) throw new LowbitError('E_NAN', `${at}: scale ${i} is ${t.scales[i]}; weights must be finite`);
    total += t.shape[0];
  });
  if (total !== vocab) throw new LowbitError('E_SHAPE', `${where}: buckets hold ${buckets.map((t) => t.shape[0]).join(' + ')} = ${total} rows, the vocabulary ${vocab} tokens`);
  const seen = buckets.map((t) => new Uint8Array(t.shape[0]));
  for (let id = 0; id < vocab; id++) {
    const b = bucketOf[id];
    const r = rowOf[id];
    if (!(Number.isInteger(b) && b >= 0 && b < buckets.length)) throw new LowbitError('E_BAD_FILE', `${where}: bucket map sends token ${id} to bucket ${b}; there are ${buckets.length} buckets`);
    if (!(Number.isInteger(r) && r >= 0 && r < buckets[b].shape[0])) throw new LowbitError('E_BAD_FILE', `${where}: bucket map sends token ${id} to row ${r} of bucket ${b}, which holds ${buckets[b].shape[0]} rows`);
    if (seen[b][r]) throw new LowbitError('E_BAD_FILE', `${where}: bucket map sends token ${id} to row ${r} of bucket ${b}, which an earlier token already has`);
    seen[b][r] = 1;
  }
  return { kind: 'buckets', dim, buckets, bucketOf, rowOf };
}

/** Token `id`'s row, dequantized as formats' dequantizeInt does (same f32 products, bit for bit). */
export function bucketedRow(e: BucketedEmbedding, id: number, out: Float32Array, outOffset = 0): void {
  const t = e.buckets[e.bucketOf[id]];
  const r = e.rowOf[id];
  const cols = e.dim;
  const ng = t.scales.length / t.shape[0];
  const group = t.granularity === 'per-oc' ? cols : t.group;
  const rb = rowBytes(cols, t.bits);
  const zs = 2 ** (t.bits - 1);
  for (let c = 0; c < cols; c++) {
    const i = r * ng + Math.floor(c / group);
    const u = readBits(t.codes, r * rb * 8 + c * t.bits, t.bits);
    out[outOffset + c] = t.scales[i] * (u - (t.zeros ? t.zeros[i] : zs));
  }
}

/** Stored bytes: the buckets' INT-k tensors and the map (two i32 per token). */
export function bucketedBytes(e: BucketedEmbedding): number {
  return e.buckets.reduce((s, t) => s + intStorageBytes(t), 0) + 8 * e.bucketOf.length;
}

/** Bucket tensors sorted out of per-bucket token lists (`rows[b]`: the token of each row of `buckets[b]`). */
export function embeddingFromBuckets(where: string, vocab: number, dim: number, buckets: PackedIntTensor[], rows: readonly Int32Array[]): BucketedEmbedding {
  if (rows.length !== buckets.length) throw new LowbitError('E_SHAPE', `${where}: ${rows.length} token lists for ${buckets.length} buckets`);
  const bucketOf = new Int32Array(vocab).fill(-1);
  const rowOf = new Int32Array(vocab).fill(-1);
  rows.forEach((ids, b) => {
    if (ids.length !== buckets[b].shape[0]) throw new LowbitError('E_SHAPE', `${where}: bucket ${b} lists ${ids.length} tokens for ${buckets[b].shape[0]} rows`);
    ids.forEach((id, r) => {
      if (!(id >= 0 && id < vocab)) throw new LowbitError('E_RANGE', `${where}: bucket ${b} lists token ${id}, outside the vocabulary (0..${vocab - 1})`);
      bucketOf[id] = b;
      rowOf[id] = r;
    });
  });
  return bucketedEmbedding(where, vocab, dim, buckets, bucketOf, rowOf);
}

function interleavedMap(e: BucketedEmbedding): Int32Array {
  const m = new Int32Array(2 * e.bucketOf.length);
  for (let id = 0; id < e.bucketOf.length; id++) {
    m[2 * id] = e.bucketOf[id];
    m[2 * id + 1] = e.rowOf[id];
  }
  return m;
}

/** The GGUF tensors and the metadata entry of a bucketed embedding. */
export function bucketedGgufTensors(e: BucketedEmbedding): { tensors: GgufTensorToWrite[]; map: [string, GgufValue] } {
  const tensors = e.buckets.map((t, b): GgufTensorToWrite => {
    const name = bucketTensorName(b);
    const enc = encodeLowbit(t, `tensor ${name}`);
    return { name, shape: [t.shape[1], t.shape[0]], type: enc.type, params: enc.params, data: enc.bytes };
  });
  return { tensors, map: [BUCKET_MAP_KEY, gguf.i32s([...interleavedMap(e)])] };
}

/** Whether a GGUF holds a bucketed token embedding (and no plain one). */
export function hasBucketedEmbedding(file: GgufFile): boolean {
  return !file.tensors.has('token_embd.weight') && file.metadata.has(BUCKET_MAP_KEY);
}

/** A bucketed embedding from a GGUF: map length, bucket types, shapes and byte counts are checked first. */
export async function readBucketedGguf(file: GgufFile, vocab: number, dim: number): Promise<BucketedEmbedding> {
  const where = `${file.source.name}: token embedding`;
  if (!file.tensors.has('output.weight')) throw new LowbitError('E_BAD_FILE', `${where}: bucketed rows cannot be tied to the output layer; output.weight is missing`);
  const v = file.metadata.get(BUCKET_MAP_KEY);
  if (v?.type !== 9 || v.itemType !== 5) throw new LowbitError('E_BAD_FILE', `${where}: metadata ${BUCKET_MAP_KEY} is not an i32 array`);
  const map = v.value as number[];
  if (map.length !== 2 * vocab) throw new LowbitError('E_SHAPE', `${where}: metadata ${BUCKET_MAP_KEY} has ${map.length} entries, ${vocab} tokens need ${2 * vocab} (bucket, row per token)`);
  const buckets: PackedIntTensor[] = [];
  for (let b = 0; file.tensors.has(bucketTensorName(b)); b++) {
    const name = bucketTensorName(b);
    const t = file.tensors.get(name) as NonNullable<ReturnType<typeof file.tensors.get>>;
    const at = `${file.source.name}: tensor ${name}`;
    if (!(t.type in LOWBIT_TYPES) || LOWBIT_TYPES[t.type as LowbitTensorType].kind !== 'int') throw new LowbitError('E_BAD_FILE', `${at}: type ${t.type}, a bucket must be LB_INT<k>`);
    if (t.shape.length !== 2 || t.shape[0] !== dim) throw new LowbitError('E_SHAPE', `${at}: shape [${t.shape}], a bucket is [${dim}, rows]`);
    buckets.push(decodeLowbit(t.type as LowbitTensorType, t.shape, t.params as LowbitIntParams, await readTensorBytes(file, name), at) as PackedIntTensor);
  }
  for (const n of file.tensors.keys()) {
    const m = /^token_embd\.bucket(\d+)\.weight$/.exec(n);
    if (m && Number(m[1]) >= buckets.length) throw new LowbitError('E_BAD_FILE', `${where}: tensor ${n} follows a gap (buckets 0..${buckets.length - 1} are contiguous)`);
  }
  const bucketOf = new Int32Array(vocab);
  const rowOf = new Int32Array(vocab);
  for (let id = 0; id < vocab; id++) {
    bucketOf[id] = map[2 * id];
    rowOf[id] = map[2 * id + 1];
  }
  return bucketedEmbedding(where, vocab, dim, buckets, bucketOf, rowOf);
}

/** The safetensors entries (HF name prefix `model.embed_tokens`) and the `__metadata__` value. */
export function bucketedSafetensors(e: BucketedEmbedding): { tensors: { name: string; dtype: 'U8' | 'I32'; shape: number[]; data: Uint8Array | Int32Array }[]; meta: string } {
  const entries: { type: LowbitTensorType; shape: [number, number]; params?: LowbitIntParams }[] = [];
  const tensors: { name: string; dtype: 'U8' | 'I32'; shape: number[]; data: Uint8Array | Int32Array }[] = e.buckets.map((t, b) => {
    const enc = encodeLowbit(t, `token embedding bucket ${b}`);
    entries.push({ type: enc.type, shape: [t.shape[0], t.shape[1]], ...(enc.params ? { params: enc.params } : {}) });
    return { name: `model.embed_tokens.bucket${b}.lowbit_packed`, dtype: 'U8', shape: [enc.bytes.byteLength], data: enc.bytes };
  });
  tensors.push({ name: 'model.embed_tokens.bucket_map', dtype: 'I32', shape: [e.bucketOf.length, 2], data: interleavedMap(e) });
  return { tensors, meta: JSON.stringify(entries) };
}

/** Reads back `bucketedSafetensors`: `bytes(name)` gives a tensor's bytes once its header has been checked here. */
export async function readBucketedSafetensors(
  where: string, meta: string | undefined, info: (name: string) => { dtype: string; shape: number[] } | undefined, bytes: (name: string) => Promise<Uint8Array>, vocab: number, dim: number,
): Promise<BucketedEmbedding> {
  let entries: unknown;
  try {
    entries = JSON.parse(meta ?? '');
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `${where}: __metadata__ lowbit.embedding_buckets is missing or not JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(entries) || entries.length < 1) throw new LowbitError('E_BAD_FILE', `${where}: __metadata__ lowbit.embedding_buckets is not a non-empty array`);
  const mapInfo = info('model.embed_tokens.bucket_map');
  if (!mapInfo) throw new LowbitError('E_MISSING', `${where}: tensor model.embed_tokens.bucket_map is missing`);
  if (mapInfo.dtype !== 'I32' || mapInfo.shape.join() !== [vocab, 2].join()) throw new LowbitError('E_SHAPE', `${where}: tensor model.embed_tokens.bucket_map is ${mapInfo.dtype} [${mapInfo.shape}], ${vocab} tokens need I32 [${vocab}, 2]`);
  const buckets: PackedIntTensor[] = [];
  for (let b = 0; b < entries.length; b++) {
    const d = entries[b] as { type?: unknown; shape?: unknown; params?: LowbitIntParams };
    const name = `model.embed_tokens.bucket${b}.lowbit_packed`;
    const at = `${where}: ${name}`;
    if (typeof d !== 'object' || d === null || typeof d.type !== 'string' || !Object.hasOwn(LOWBIT_TYPES, d.type) || LOWBIT_TYPES[d.type as LowbitTensorType].kind !== 'int') throw new LowbitError('E_BAD_FILE', `${at}: lowbit.embedding_buckets[${b}] names no LB_INT<k> type`);
    const shape = d.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || !Number.isSafeInteger(shape[0]) || shape[0] < 1 || shape[1] !== dim) throw new LowbitError('E_SHAPE', `${at}: lowbit.embedding_buckets[${b}] shape ${JSON.stringify(shape)}, a bucket is [rows >= 1, ${dim}]`);
    const ti = info(name);
    if (!ti) throw new LowbitError('E_MISSING', `${at} is missing`);
    if (ti.dtype !== 'U8' || ti.shape.length !== 1) throw new LowbitError('E_SHAPE', `${at} is ${ti.dtype} [${ti.shape}], a bucket blob is U8 [bytes]`);
    // decodeLowbit checks the blob's length against the type, shape and params before reading it
    buckets.push(decodeLowbit(d.type as LowbitTensorType, [shape[1], shape[0]], d.params, await bytes(name), at) as PackedIntTensor);
  }
  if (info(`model.embed_tokens.bucket${entries.length}.lowbit_packed`)) throw new LowbitError('E_BAD_FILE', `${where}: bucket ${entries.length} has a tensor but no lowbit.embedding_buckets entry`);
  const raw = await bytes('model.embed_tokens.bucket_map');
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const bucketOf = new Int32Array(vocab);
  const rowOf = new Int32Array(vocab);
  for (let id = 0; id < vocab; id++) {
    bucketOf[id] = view.getInt32(8 * id, true);
    rowOf[id] = view.getInt32(8 * id + 4, true);
  }
  return bucketedEmbedding(where, vocab, dim, buckets, bucketOf, rowOf);
}
