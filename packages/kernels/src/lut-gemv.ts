import { LowbitError } from './errors.js';
import { type Kernels, type RowKernel, scoped, WasmTensor } from './kernels.js';
import { f32Bits } from './half.js';

interface Lut4Exports {
  lut4_quantize(x: number, batch: number, cols: number, bs: number, ab: number, scratch: number): void;
  lut4_scratch_bytes(cols: number): number;
  lut4_simd(): number;
}

// runRows is protected so that only this package's front ends split work over a pool (as grad.ts)
type RunRows = { runRows(fn: RowKernel, args: number[], rows: number): void };

/**
 * Weights for `lut4Gemv`: 4-bit indices into 16-entry tables of 7-bit levels u (0..127), value =
 * lo + step·u with (step, lo) per (row, block of `block` columns).
 * - `codes`: rows × cols/2 bytes; per 32 columns 16 bytes, byte i = element i (low nibble), i + 16 (high).
 * - `tables`: 16 bytes each; the table of (row r, block b) starts at byte r·tableRowStride + b·tableBlockStride.
 * - `params`: f32 (step, lo) per (row, block), row-major; with `loRatio` (≠ 0), f32 steps alone and
 *   lo = loRatio·step (tables symmetric about their middle, as NF4's: 4 bytes less per block).
 * - `codeBits` 2 (default 4): 2-bit indices, rows × cols/4 bytes; per 32 columns 8 bytes, byte i =
 *   elements i, i + 8, i + 16, i + 24 in its bit pairs 0-1, 2-3, 4-5, 6-7; each table holds level m
 *   at index m and again at 4m (m = 1..3), which lets one swizzle map both bit pairs of a byte.
 */
export interface Lut4Weights {
  rows: number;
  cols: number;
  block: number;
  codes: Uint8Array | WasmTensor;
  tables: Uint8Array | WasmTensor;
  tableRowStride: number;
  tableBlockStride: number;
  params: Float32Array | WasmTensor;
  loRatio?: number;
  codeBits?: 2 | 4;
}

/**
 * Columns per activation scale: the largest of 256, 128, 64, 32 dividing the weights' block, so one
 * integer chain runs per activation block (ggml quantizes activations per 256 for its K-quants).
 */
export function lut4ActBlock(block: number): number {
  for (const ab of [128, 64]) if (block % ab === 0) return ab;
  return 32;
}

function bytesOf(v: Uint8Array | Float32Array | WasmTensor): number {
  return v instanceof WasmTensor ? v.byteLength : v.byteLength;
}

/** Checks a Lut4Weights' sizes (the kernel reads exactly these ranges). */
export function checkLut4(fn: string, w: Lut4Weights): void {
  const { rows, cols, block } = w;
  if (![rows, cols, block].every((v) => Number.isInteger(v) && v > 0)) throw new LowbitError('E_ARG', `${fn}: rows, cols and block must be positive integers, got ${rows}, ${cols}, ${block}`);
  if (cols % 32 !== 0 || block % 32 !== 0 || cols % block !== 0) throw new LowbitError('E_SHAPE', `${fn}: cols (${cols}) and block (${block}) must be multiples of 32 with block dividing cols`);
  const nb = cols / block;
  const { tableRowStride: tr, tableBlockStride: tb } = w;
  if (![tr, tb].every((v) => Number.isInteger(v) && v >= 0 && v % 16 === 0)) throw new LowbitError('E_ARG', `${fn}: table strides must be non-negative multiples of 16, got ${tr}, ${tb}`);
  for (const [name, v] of [['codes', w.codes], ['tables', w.tables], ['params', w.params]] as const) {
    if (v instanceof WasmTensor && v.freed) throw new LowbitError('E_ARG', `${fn}: ${name} is a freed WasmTensor`);
  }
  const cb = w.codeBits ?? 4;
  if (cb !== 2 && cb !== 4) throw new LowbitError('E_ARG', `${fn}: codeBits must be 2 or 4, got ${cb}`);
  if (bytesOf(w.codes) !== (rows * cols * cb) / 8) throw new LowbitError('E_SHAPE', `${fn}: codes hold ${bytesOf(w.codes)} bytes, [${rows}, ${cols}] at ${cb} bits needs ${(rows * cols * cb) / 8}`);
  const tabEnd = (rows - 1) * tr + (nb - 1) * tb + 16;
  if (bytesOf(w.tables) < tabEnd) throw new LowbitError('E_SHAPE', `${fn}: tables hold ${bytesOf(w.tables)} bytes, the strides read up to ${tabEnd}`);
  const lr = w.loRatio ?? 0;
  if (!Number.isFinite(lr)) throw new LowbitError('E_ARG', `${fn}: loRatio must be finite, got ${lr}`);
  const per = lr ? 4 : 8;
  if (bytesOf(w.params) !== rows * nb * per) throw new LowbitError('E_SHAPE', `${fn}: params hold ${bytesOf(w.params)} bytes, ${rows}×${nb} ${lr ? 'steps' : '(step, lo) pairs'} need ${rows * nb * per}`);
}

/**
 * y = W·x for `batch` tokens (x [batch, cols], y [batch, rows]) on 16-entry-table weights: codes
 * mapped to levels by i8x16.swizzle and multiplied by the activations quantized to int8 per
 * lut4ActBlock(block) columns (the relaxed i8·i7 dot where the build has it); on a KernelPool the
 * rows split over its threads. Returns null in a build without SIMD.
 */
export function lut4Gemv(k: Kernels, w: Lut4Weights, x: Float32Array, batch: number, out?: Float32Array): Float32Array | null {
  const fn = 'lut4Gemv';
  checkLut4(fn, w);
  const { rows, cols } = w;
  if (!Number.isInteger(batch) || batch <= 0) throw new LowbitError('E_ARG', `${fn}: batch must be a positive integer, got ${batch}`);
  if (!(x instanceof Float32Array) || x.length !== batch * cols) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${batch}×${cols} values`);
  if (out !== undefined && (!(out instanceof Float32Array) || out.length !== batch * rows)) throw new LowbitError('E_SHAPE', `${fn}: out must be a Float32Array of ${batch * rows} values`);
  const ex = k.exports as unknown as Lut4Exports;
  if (!ex.lut4_simd()) return null;
  const res = out ?? new Float32Array(batch * rows);
  return scoped(k, (put, alloc) => {
    const at = (v: Uint8Array | Float32Array | WasmTensor) => (v instanceof WasmTensor ? v.ptr : put(v));
    const po = alloc(batch * rows * 4);
    const ab = lut4ActBlock(w.block);
    const scratch = alloc(batch * (ex.lut4_scratch_bytes(cols) >>> 0));
    ex.lut4_quantize(put(x), batch, cols, w.block, ab, scratch);
    // rows split over a KernelPool's threads (tiles of four rows); one call on plain kernels
    // an odd ab tells the row kernel the codes are 2-bit (the activations are quantized per ab all the same)
    const abFlag = w.codeBits === 2 ? ab | 1 : ab;
    (k as unknown as RunRows).runRows('lut4_rows', [at(w.codes), at(w.tables), w.tableRowStride, w.tableBlockStride, at(w.params), f32Bits(w.loRatio ?? 0), rows, cols, w.block, abFlag, batch, scratch, po], rows);
    res.set(new Float32Array(k.memory.buffer, po, batch * rows));
    return res;
  });
}

/** The table index of weight (r, c) in a Lut4Weights' code layout (4-bit or 2-bit). */
export function lut4Code(w: Lut4Weights & { codes: Uint8Array }, r: number, c: number): number {
  const i = c & 31;
  if (w.codeBits === 2) return (w.codes[r * (w.cols / 4) + (c >> 5) * 8 + (i & 7)] >> (2 * (i >> 3))) & 3;
  const byte = w.codes[r * (w.cols / 2) + (c >> 5) * 16 + (i & 15)];
  return i < 16 ? byte & 15 : byte >> 4;
}

/**
 * lut4Gemv in plain JS with the same activation rounding (int8 per lut4ActBlock(block), amax/127;
 * Math.round differs from WASM's nearest only on exact halves): the tests' independent reference.
 */
export function lut4GemvReference(w: Lut4Weights & { codes: Uint8Array; tables: Uint8Array; params: Float32Array }, x: Float32Array): Float32Array {
  checkLut4('lut4GemvReference', w);
  const { rows, cols, block } = w;
  const nb = cols / block;
  const ab = lut4ActBlock(block);
  const q = new Int8Array(cols);
  const xs = new Float32Array(cols / ab);
  for (let j = 0; j < cols / ab; j++) {
    let amax = 0;
    for (let i = 0; i < ab; i++) amax = Math.max(amax, Math.abs(x[j * ab + i]));
    const d = Math.fround(amax / 127);
    xs[j] = d;
    const inv = d > 0 ? Math.fround(1 / d) : 0;
    for (let i = 0; i < ab; i++) q[j * ab + i] = Math.round(Math.fround(x[j * ab + i] * inv));
  }
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) {
      const b = Math.floor(c / block);
      const code = lut4Code(w, r, c);
      const u = w.tables[r * w.tableRowStride + b * w.tableBlockStride + code];
      const lr = w.loRatio ?? 0;
      const step = lr ? w.params[r * nb + b] : w.params[(r * nb + b) * 2];
      const lo = lr ? Math.fround(step * lr) : w.params[(r * nb + b) * 2 + 1];
      s += (lo + step * u) * xs[Math.floor(c / ab)] * q[c];
    }
    y[r] = s;
  }
  return y;
}

/** BCQ weights as @lowbit/formats stores them: planes [bits][rows, cols/8] (bit 1 = +α), alphas [rows, cols/group, bits]. */
export interface BcqPlanes {
  bits: number;
  rows: number;
  cols: number;
  group: number;
  planes: Uint8Array | WasmTensor;
  alphas: Float32Array | WasmTensor;
}

/**
 * BiQGEMM's GEMV (Jeon et al. 2020) on BCQ bit-planes as stored: per token the 256 sums ±x of every
 * 8 activations are tabulated, then each code byte of each plane is one table load (f32 throughout).
 * For the benchmark's comparison: the runtime runs BCQ on lut4Gemv, which is faster per token.
 * cols and group must be multiples of 8.
 */
export function gemvBcqBiq(k: Kernels, w: BcqPlanes, x: Float32Array): Float32Array {
  const fn = 'gemvBcqBiq';
  const { bits, rows, cols, group } = w;
  if (![bits, rows, cols, group].every((v) => Number.isInteger(v) && v > 0) || bits > 8) throw new LowbitError('E_ARG', `${fn}: bits (1..8), rows, cols and group must be positive integers`);
  if (cols % 8 !== 0 || group % 8 !== 0 || cols % group !== 0) throw new LowbitError('E_SHAPE', `${fn}: cols (${cols}) and group (${group}) must be multiples of 8 with group dividing cols`);
  if (bytesOf(w.planes) !== (bits * rows * cols) / 8) throw new LowbitError('E_SHAPE', `${fn}: planes hold ${bytesOf(w.planes)} bytes, ${bits} planes of [${rows}, ${cols}] need ${(bits * rows * cols) / 8}`);
  if (bytesOf(w.alphas) !== rows * (cols / group) * bits * 4) throw new LowbitError('E_SHAPE', `${fn}: alphas hold ${bytesOf(w.alphas)} bytes, need ${rows * (cols / group) * bits * 4}`);
  if (!(x instanceof Float32Array) || x.length !== cols) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${cols} values`);
  const ex = k.exports as unknown as { bcq_biq_gemv(planes: number, alphas: number, bits: number, rows: number, cols: number, group: number, x: number, table: number, out: number): void };
  return scoped(k, (put, alloc) => {
    const at = (v: Uint8Array | Float32Array | WasmTensor) => (v instanceof WasmTensor ? v.ptr : put(v));
    const po = alloc(rows * 4);
    ex.bcq_biq_gemv(at(w.planes), at(w.alphas), bits, rows, cols, group, put(x), alloc((cols / 8) * 1024), po);
    return new Float32Array(k.memory.buffer, po, rows).slice();
  });
}
