// GEMV on llama.cpp K-quant super-blocks (Q2_K … Q6_K) as GGUF stores them, on assembly/kquants.ts:
// f32 activations, weights never decoded to memory. Rows are cols/256 blocks back to back.
import { GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, type GgmlKBlockType } from './ggml-blocks.js';
import { LowbitError } from './errors.js';
import { type Kernels, type RowKernel, scoped, WasmTensor } from './kernels.js';

// runRows is protected so that only this package's front ends split work (as grad.ts, lut-gemv.ts)
type RunRows = { runRows(fn: RowKernel, args: number[], rows: number): void };

/** The K-quant types gemvKQuant runs (Q8_K is ggml's activation type, not a weight type). */
export type KQuantWeightType = Exclude<GgmlKBlockType, 'Q8_K'>;

/** ggml type ids (ggml.h), as the kernel takes them. */
const TYPE_ID: Readonly<Record<KQuantWeightType, number>> = { Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14 };

interface KQuantExports {
  prepare_kquant(t: number, src: number, rows: number, cols: number, dst: number): number;
  unprepare_kquant(t: number, src: number, rows: number, cols: number, dst: number): void;
  kquant_tiles_bytes(t: number, rows: number, cols: number): number;
  quantize_act_q8k(x: number, cols: number, xq: number, dx: number, bs: number): void;
  gemv_kquant_tiles(t: number, w: number, rows: number, cols: number, xq: number, dx: number, bs: number, out: number, t0: number, t1: number): void;
  gemv_kquant(t: number, w: number, rows: number, cols: number, x: number, xs: number, out: number, r0: number, r1: number): void;
  gemv_kquant_q8(t: number, w: number, rows: number, cols: number, x: number, xq: number, dx: number, bs: number, out: number, r0: number, r1: number): number;
}

/**
 * What the activations are multiplied as: 'int8' rounds x to int8 per 256 values (d = max|x|/127, like
 * ggml's Q8_K) and takes integer dots as ggml's vec_dot does (the scalar build falls back to f32);
 * 'f32' multiplies x as given.
 */
export type KQuantActivations = 'int8' | 'f32';

/** Bytes of a [rows, cols] matrix of `type` super-blocks, or a LowbitError naming the problem. */
export function kquantMatrixBytes(where: string, type: KQuantWeightType, rows: number, cols: number): number {
  if (!(type in TYPE_ID)) throw new LowbitError('E_ARG', `${where}: ${String(type)} is not a K-quant weight type (${Object.keys(TYPE_ID).join(', ')})`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new LowbitError('E_SHAPE', `${where}: shape [${rows}, ${cols}] is not a non-negative [rows, cols]`);
  if (cols % GGML_K_BLOCK_SIZE !== 0) throw new LowbitError('E_SHAPE', `${where}: ${type} rows are whole super-blocks of ${GGML_K_BLOCK_SIZE} weights, the row length ${cols} is not a multiple of ${GGML_K_BLOCK_SIZE}`);
  return rows * (cols / GGML_K_BLOCK_SIZE) * GGML_K_BLOCK_BYTES[type];
}

/**
 * out[b, r] = Σ_c W[r, c]·x[b, c] for W of [rows, cols] in `type` blocks (raw GGUF bytes, or a
 * WasmTensor uploaded from them on this instance), x [batch, cols]. With f32 activations: equal to
 * dequantizing W (ggml's dequantize_row_*) and taking f32 dots, up to the order of the f32 sums; with
 * int8 ones, the same with x replaced by its int8 rounding (kquantActivationsQ8).
 */
export function gemvKQuant(k: Kernels, type: KQuantWeightType, w: Uint8Array | WasmTensor, rows: number, cols: number, x: Float32Array, batch = 1, out?: Float32Array, activations: KQuantActivations = 'int8'): Float32Array {
  const name = 'gemvKQuant';
  const bytes = kquantMatrixBytes(name, type, rows, cols);
  const tiled = w instanceof WasmTensor && w.kind.startsWith('kquant-tiles-');
  if (tiled && w.kind !== tilesKind(type)) throw new LowbitError('E_ARG', `${name}: weights prepared as ${w.kind.slice('kquant-tiles-'.length)} were passed as ${type}`);
  if (tiled && w.byteLength !== kquantTilesBytes(type, rows, cols)) throw new LowbitError('E_SHAPE', `${name}: prepared ${type} tiles of [${rows}, ${cols}] take ${kquantTilesBytes(type, rows, cols)} bytes, got ${w.byteLength}`);
  if (!tiled && w.byteLength !== bytes) throw new LowbitError('E_SHAPE', `${name}: ${type} weights of [${rows}, ${cols}] take ${bytes} bytes, got ${w.byteLength}`);
  if (!Number.isInteger(batch) || batch < 0 || x.length !== batch * cols) throw new LowbitError('E_SHAPE', `${name}: x has ${x.length} values, batch ${batch} × cols ${cols} needs ${batch * cols}`);
  const y = out ?? new Float32Array(batch * rows);
  if (y.length < batch * rows) throw new LowbitError('E_SHAPE', `${name}: out has ${y.length} values, needs ${batch * rows}`);
  if (rows === 0 || batch === 0) return y;
  const ex = k.exports as unknown as KQuantExports;
  if (w instanceof WasmTensor && w.kind === tilesKind(type)) return gemvTiles(k, ex, type, w, rows, cols, x, batch, y);
  return scoped(k, (put, alloc) => {
    let pw: number;
    if (w instanceof WasmTensor) {
      if (!w.ownedBy(k.heap)) throw new LowbitError('E_ARG', `${name}: a WasmTensor was passed to a Kernels instance other than the one that uploaded it`);
      pw = w.ptr;
    } else pw = put(w);
    const px = put(x);
    const pxs = alloc((cols / 16) * 4);
    const po = alloc(batch * rows * 4);
    const q8 = activations === 'int8';
    const pq = q8 ? alloc(cols * 2) : 0;
    const pd = q8 ? alloc(cols / 64) : 0;
    for (let b = 0; b < batch; b++) {
      const xb = px + b * cols * 4;
      const ob = po + b * rows * 4;
      if (!q8 || !ex.gemv_kquant_q8(TYPE_ID[type], pw, rows, cols, xb, pq, pd, pxs, ob, 0, rows)) ex.gemv_kquant(TYPE_ID[type], pw, rows, cols, xb, pxs, ob, 0, rows);
    }
    y.set(new Float32Array(k.memory.buffer, po, batch * rows));
    return y;
  });
}

/**
 * The int8 activations gemvKQuant's 'int8' path multiplies by (per 256 values: d = max|x|/127, codes
 * round(x·127/max|x|) half to even), as f32 values d·code: the reference its results are checked against.
 */
export function kquantActivationsQ8(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b + 256 <= x.length; b += 256) {
    let amax = 0;
    for (let i = b; i < b + 256; i++) amax = Math.max(amax, Math.abs(x[i]));
    const d = Math.fround(amax / 127);
    const id = amax > 0 ? Math.fround(127 / amax) : 0;
    for (let i = b; i < b + 256; i++) {
      const v = Math.fround(x[i] * id);
      // round half to even (f32x4.nearest)
      let r = Math.round(v);
      if (Math.abs(v % 1) === 0.5 && r % 2 !== 0) r -= 1;
      out[i] = d * r;
    }
  }
  return out;
}

const tilesKind = (type: KQuantWeightType) => `kquant-tiles-${type}`;

/** Bytes per 256-weight super-block and row of the prepared form (assembly/kquants.ts: prepare_kquant). */
const TILE_ROW_BYTES: Readonly<Record<KQuantWeightType, number>> = { Q2_K: 88, Q3_K: 116, Q4_K: 152, Q5_K: 184, Q6_K: 212 };

/** Bytes of the prepared form of a [rows, cols] matrix (rows padded to a multiple of four). */
export function kquantTilesBytes(type: KQuantWeightType, rows: number, cols: number): number {
  return Math.ceil(rows / 4) * 4 * (cols / GGML_K_BLOCK_SIZE) * TILE_ROW_BYTES[type];
}

/**
 * K-quant super-blocks ([rows, cols] as GGUF stores them) repacked once into the resident form
 * gemvKQuant reads fastest: four rows interleaved per super-block, scales as bytes and f32, codes laid
 * out for the relaxed int8 dot (assembly/kquants.ts). Pass the result to gemvKQuant with the same type;
 * its results equal the int8-activation path's on the blocks up to f32 summation order. Costs
 * 152/144 (Q4_K), 184/176 (Q5_K), 212/210 (Q6_K), 116/110 (Q3_K), 88/84 (Q2_K) of the stored bytes.
 * null on a kernel build without SIMD (keep the blocks there).
 */
export function prepareKQuant(k: Kernels, type: KQuantWeightType, blocks: Uint8Array, rows: number, cols: number): WasmTensor | null {
  const name = 'prepareKQuant';
  const bytes = kquantMatrixBytes(name, type, rows, cols);
  if (!(blocks instanceof Uint8Array) || blocks.byteLength !== bytes) throw new LowbitError('E_SHAPE', `${name}: ${type} weights of [${rows}, ${cols}] take ${bytes} bytes, got ${blocks?.byteLength}`);
  if (!k.variant.startsWith('simd') && !k.variant.startsWith('relaxed')) return null;
  const ex = k.exports as unknown as KQuantExports;
  const size = ex.kquant_tiles_bytes(TYPE_ID[type], rows, cols) >>> 0;
  if (size !== kquantTilesBytes(type, rows, cols)) throw new LowbitError('E_ARG', `${name}: the kernel build's tile size ${size} disagrees with ${kquantTilesBytes(type, rows, cols)} (stale build)`);
  const ptr = k.heap.alloc(Math.max(size, 16));
  try {
    const ok = scoped(k, (put) => ex.prepare_kquant(TYPE_ID[type], put(blocks), rows, cols, ptr));
    if (!ok) {
      k.heap.free(ptr);
      return null;
    }
  } catch (e) {
    k.heap.free(ptr);
    throw e;
  }
  return new WasmTensor(k.heap, ptr, size, tilesKind(type));
}

/** The super-blocks of a tensor made by prepareKQuant, byte for byte (a model keeps only the prepared copy). */
export function unprepareKQuant(k: Kernels, type: KQuantWeightType, tiles: WasmTensor, rows: number, cols: number): Uint8Array {
  const name = 'unprepareKQuant';
  const bytes = kquantMatrixBytes(name, type, rows, cols);
  if (!(tiles instanceof WasmTensor) || tiles.kind !== tilesKind(type)) throw new LowbitError('E_ARG', `${name}: expected a tensor prepared by prepareKQuant as ${type}, got ${tiles instanceof WasmTensor ? tiles.kind : typeof tiles}`);
  if (!tiles.ownedBy(k.heap)) throw new LowbitError('E_ARG', `${name}: the tensor belongs to another Kernels instance`);
  if (tiles.byteLength !== kquantTilesBytes(type, rows, cols)) throw new LowbitError('E_SHAPE', `${name}: prepared ${type} tiles of [${rows}, ${cols}] take ${kquantTilesBytes(type, rows, cols)} bytes, got ${tiles.byteLength}`);
  const ex = k.exports as unknown as KQuantExports;
  return scoped(k, (_put, alloc) => {
    const p = alloc(Math.max(bytes, 16));
    ex.unprepare_kquant(TYPE_ID[type], tiles.ptr, rows, cols, p);
    return new Uint8Array(k.memory.buffer, p, bytes).slice();
  });
}

function gemvTiles(k: Kernels, ex: KQuantExports, type: KQuantWeightType, w: WasmTensor, rows: number, cols: number, x: Float32Array, batch: number, y: Float32Array): Float32Array {
  if (!w.ownedBy(k.heap)) throw new LowbitError('E_ARG', 'gemvKQuant: a WasmTensor was passed to a Kernels instance other than the one that uploaded it');
  return scoped(k, (put, alloc) => {
    const px = put(x);
    const pq = alloc(batch * cols);
    const pd = alloc(batch * (cols / 64));
    const pb = alloc(batch * (cols / 256) * 48);
    const po = alloc(batch * rows * 4);
    for (let b = 0; b < batch; b++) ex.quantize_act_q8k(px + b * cols * 4, cols, pq + b * cols, pd + b * (cols / 64), pb + b * (cols / 256) * 48);
    // rows split over a KernelPool's threads (in whole tiles), or run here on a plain instance
    (k as unknown as RunRows).runRows('kquant_tiles_rows', [TYPE_ID[type], w.ptr, rows, cols, pq, pd, pb, batch, po], rows);
    y.set(new Float32Array(k.memory.buffer, po, batch * rows));
    return y;
  });
}
