// GEMV on llama.cpp K-quant super-blocks (Q2_K … Q6_K) as GGUF stores them, on assembly/kquants.ts:
// f32 activations, weights never decoded to memory. Rows are cols/256 blocks back to back.
import { GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, type GgmlKBlockType } from './ggml-blocks.js';
import { LowbitError } from './errors.js';
import { type Kernels, scoped, WasmTensor } from './kernels.js';

/** The K-quant types gemvKQuant runs (Q8_K is ggml's activation type, not a weight type). */
export type KQuantWeightType = Exclude<GgmlKBlockType, 'Q8_K'>;

/** ggml type ids (ggml.h), as the kernel takes them. */
const TYPE_ID: Readonly<Record<KQuantWeightType, number>> = { Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14 };

interface KQuantExports {
  gemv_kquant(t: number, w: number, rows: number, cols: number, x: number, xs: number, out: number, r0: number, r1: number): void;
}

/** Bytes of a [rows, cols] matrix of `type` super-blocks, or a LowbitError naming the problem. */
export function kquantMatrixBytes(where: string, type: KQuantWeightType, rows: number, cols: number): number {
  if (!(type in TYPE_ID)) throw new LowbitError('E_ARG', `${where}: ${String(type)} is not a K-quant weight type (${Object.keys(TYPE_ID).join(', ')})`);
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new LowbitError('E_SHAPE', `${where}: shape [${rows}, ${cols}] is not a non-negative [rows, cols]`);
  if (cols % GGML_K_BLOCK_SIZE !== 0) throw new LowbitError('E_SHAPE', `${where}: ${type} rows are whole super-blocks of ${GGML_K_BLOCK_SIZE} weights, the row length ${cols} is not a multiple of ${GGML_K_BLOCK_SIZE}`);
  return rows * (cols / GGML_K_BLOCK_SIZE) * GGML_K_BLOCK_BYTES[type];
}

/**
 * out[b, r] = Σ_c W[r, c]·x[b, c] for W of [rows, cols] in `type` blocks (raw GGUF bytes, or a
 * WasmTensor uploaded from them on this instance), x [batch, cols]. Equal to dequantizing W
 * (ggml's dequantize_row_*) and taking f32 dots, up to the order of the f32 sums.
 */
export function gemvKQuant(k: Kernels, type: KQuantWeightType, w: Uint8Array | WasmTensor, rows: number, cols: number, x: Float32Array, batch = 1, out?: Float32Array): Float32Array {
  const name = 'gemvKQuant';
  const bytes = kquantMatrixBytes(name, type, rows, cols);
  if (w.byteLength !== bytes) throw new LowbitError('E_SHAPE', `${name}: ${type} weights of [${rows}, ${cols}] take ${bytes} bytes, got ${w.byteLength}`);
  if (!Number.isInteger(batch) || batch < 0 || x.length !== batch * cols) throw new LowbitError('E_SHAPE', `${name}: x has ${x.length} values, batch ${batch} × cols ${cols} needs ${batch * cols}`);
  const y = out ?? new Float32Array(batch * rows);
  if (y.length < batch * rows) throw new LowbitError('E_SHAPE', `${name}: out has ${y.length} values, needs ${batch * rows}`);
  if (rows === 0 || batch === 0) return y;
  const ex = k.exports as unknown as KQuantExports;
  return scoped(k, (put, alloc) => {
    let pw: number;
    if (w instanceof WasmTensor) {
      if (!w.ownedBy(k.heap)) throw new LowbitError('E_ARG', `${name}: a WasmTensor was passed to a Kernels instance other than the one that uploaded it`);
      pw = w.ptr;
    } else pw = put(w);
    const px = put(x);
    const pxs = alloc((cols / 16) * 4);
    const po = alloc(batch * rows * 4);
    for (let b = 0; b < batch; b++) ex.gemv_kquant(TYPE_ID[type], pw, rows, cols, px + b * cols * 4, pxs, po + b * rows * 4, 0, rows);
    y.set(new Float32Array(k.memory.buffer, po, batch * rows));
    return y;
  });
}
