// NF4, codebooks of ≤ 16 entries and BCQ of ≤ 4 bit-planes on the kernels' 16-entry-table GEMV
// (lut4Gemv, issue #20 item 3). Each of these types is, per (row, block of columns), a 4-bit index
// into at most 16 values: NF4's fixed table times the block's absmax, a row's codebook, or the 2^k
// sums Σ ±α_i of a BCQ group (BiQGEMM's table of partial sums, here over the weight side: one
// weight's k sign bits index the group's 2^k possible values, so a weight costs one lookup however
// many planes it has). The values become 7-bit levels u = round((v − lo)/step), step = (max − min)/127,
// which i8x16.swizzle looks up 16 codes at a time and the relaxed i8·i7 dot multiplies by int8
// activations, as Q4_0's tiles do. Rounding: each weight moves by at most step/2 = (max − min)/254 of
// its table's range (NF4: absmax/127); with the activations' int8 rounding (x moves by at most
// amax/254 per 32) that is the whole difference from the formats' f32 table GEMV.
// Codebooks of ≤ 4 entries and BCQ of ≤ 2 planes index with 2-bit codes (lut4Gemv's codeBits 2): half
// the code bytes, and at the same two swizzles per 32 columns, 0–28% less time per weight than the
// same codes in the 4-bit layout (4096×4096, one token, busy machine).
// The f32 table GEMV took the codes through scalar table loads, one token at a time, with the codes
// copied into WebAssembly memory on every call; BCQ had no GEMV and was decoded to f32.
import { type BcqTensor, type CodebookTensor, NF4_TABLE, type Nf4Tensor, readBits } from '@lowbit/formats';
import { type Kernels, type Lut4Weights, LowbitError, NF4_STAGING_BLOCK_BYTES, NF4_TILE_LEVELS, type WasmTensor, checkLut4, lut4Gemv, lut4GemvReference } from '@lowbit/kernels';

/** lut4Gemv weights held in JS until a Linear uploads them. */
export type Lut4Host = Lut4Weights & { codes: Uint8Array; tables: Uint8Array; params: Float32Array };

/** Codes of one row (index of column c: code(c)) in lut4Gemv's 32-column block layout. */
function packRow(out: Uint8Array, at: number, cols: number, code: (c: number) => number): void {
  for (let j = 0; j < cols / 32; j++) {
    for (let i = 0; i < 16; i++) out[at + j * 16 + i] = code(j * 32 + i) | (code(j * 32 + i + 16) << 4);
  }
}

/** Codes of one row in lut4Gemv's 2-bit layout: per 32 columns 8 bytes, byte i = elements i, i + 8, i + 16, i + 24 (bit pairs 0-1 … 6-7). */
function packRow2(out: Uint8Array, at: number, cols: number, code: (c: number) => number): void {
  for (let j = 0; j < cols / 32; j++) {
    for (let i = 0; i < 8; i++) out[at + j * 8 + i] = code(j * 32 + i) | (code(j * 32 + i + 8) << 2) | (code(j * 32 + i + 16) << 4) | (code(j * 32 + i + 24) << 6);
  }
}

/** Each 16-byte table's levels m = 1..3 copied to index 4m, where the 2-bit kernel looks up a byte's second bit pair. */
function spreadTables(tables: Uint8Array): void {
  for (let t = 0; t < tables.length; t += 16) for (let m = 1; m < 4; m++) tables[t + 4 * m] = tables[t + m];
}

/** 7-bit levels of up to 16 values into tables[at..at+16], and their (step, lo) into params[p], params[p + 1]. */
function levels(values: ArrayLike<number>, tables: Uint8Array, at: number, params: Float32Array, p: number): boolean {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let m = 0; m < values.length; m++) {
    lo = Math.min(lo, values[m]);
    hi = Math.max(hi, values[m]);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return false;
  const step = (hi - lo) / 127;
  for (let m = 0; m < values.length; m++) tables[at + m] = step > 0 ? Math.round((values[m] - lo) / step) : 0;
  params[p] = step;
  params[p + 1] = lo;
  return Number.isFinite(params[p]) && Number.isFinite(params[p + 1]);
}

/** Whether lut4Gemv's shapes fit (cols and blocks whole 32-column blocks). */
function fits(cols: number, block: number): boolean {
  return cols % 32 === 0 && block % 32 === 0 && cols % block === 0;
}

/**
 * NF4 (absmax per group) as lut4Gemv weights, or null where they do not fit (groups not whole
 * 32-column blocks of whole rows, or a non-finite scale: then the caller's path reports it).
 */
export function nf4LutWeights(t: Nf4Tensor): Lut4Host | null {
  const [rows, cols] = t.shape;
  if (!fits(cols, t.group)) return null;
  const nb = cols / t.group;
  if (t.scales.length !== rows * nb || t.codes.length !== (rows * cols) / 2) return null;
  const tables = new Uint8Array(16);
  const unit = new Float32Array(2);
  if (!levels(NF4_TABLE, tables, 0, unit, 0)) return null;
  // NF4 spans [−1, 1]: lo = −63.5·step, so only the steps are stored (the kernel's loRatio)
  const params = new Float32Array(rows * nb);
  for (let i = 0; i < rows * nb; i++) {
    const a = t.scales[i];
    if (!Number.isFinite(a)) return null;
    params[i] = a * unit[0];
  }
  const codes = new Uint8Array((rows * cols) / 2);
  for (let r = 0; r < rows; r++) {
    const row = r * (cols / 2);
    packRow(codes, row, cols, (c) => (t.codes[row + (c >> 1)] >> ((c & 1) * 4)) & 15);
  }
  return { rows, cols, block: t.group, codes, tables, tableRowStride: 0, tableBlockStride: 0, params, loRatio: unit[1] / unit[0] };
}

/**
 * NF4 as the kernels' NF4 tiles take it (Kernels.prepareGgml('nf4')): per row and 32 columns one
 * staging block {f32 absmax; u8 qs[16]}, element j in the low nibble of byte j and j + 16 in the high
 * one, as ggml's 4-bit blocks. Null where the tiles do not fit: rows not in fours, groups not whole
 * 32-column blocks, or a non-finite absmax (the caller's other path reports it). The tiles take QLoRA's
 * levels as 7-bit integers (NF4_TILE_LEVELS): a weight moves by at most absmax/126, where lut4Gemv's
 * levels move it by absmax/127, for Q4_0's work plus a swizzle and a widening per 16 weights
 * (4096×4096, one token, relaxed build: 1.46–1.54× Q4_0's time per weight against lut4Gemv's ~2.3×).
 */
export function nf4TileBlocks(t: Nf4Tensor): Uint8Array | null {
  const [rows, cols] = t.shape;
  if (rows % 4 !== 0 || !fits(cols, t.group)) return null;
  const nb = cols / 32;
  const ng = cols / t.group;
  if (t.scales.length !== rows * ng || t.codes.length !== (rows * cols) / 2) return null;
  const out = new Uint8Array(rows * nb * NF4_STAGING_BLOCK_BYTES);
  const f = new Float32Array(out.buffer);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const a = t.scales[r * ng + Math.floor((b * 32) / t.group)];
      if (!Number.isFinite(a)) return null;
      const o = (r * nb + b) * NF4_STAGING_BLOCK_BYTES;
      f[o >> 2] = a;
      // codes hold two per byte in column order (element c: byte c/2, low nibble for even c)
      const c = (r * cols + b * 32) >> 1;
      for (let j = 0; j < 16; j++) {
        const lo = (t.codes[c + (j >> 1)] >> ((j & 1) * 4)) & 15;
        const hi = (t.codes[c + 8 + (j >> 1)] >> ((j & 1) * 4)) & 15;
        out[o + 4 + j] = lo | (hi << 4);
      }
    }
  }
  return out;
}

/** The values NF4 staging blocks stand for on the kernels' NF4 tiles: absmax·(level − 64)/63 per weight, [rows, cols]. */
export function dequantizeNf4Tiles(blocks: Uint8Array, rows: number, cols: number): Float32Array {
  const nb = cols / 32;
  const out = new Float32Array(rows * cols);
  const v = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = (r * nb + b) * NF4_STAGING_BLOCK_BYTES;
      const a = v.getFloat32(o, true);
      for (let j = 0; j < 16; j++) {
        const q = blocks[o + 4 + j];
        out[r * cols + b * 32 + j] = (a * (NF4_TILE_LEVELS[q & 15] - 64)) / 63;
        out[r * cols + b * 32 + 16 + j] = (a * (NF4_TILE_LEVELS[q >> 4] - 64)) / 63;
      }
    }
  }
  return out;
}

/** A per-row codebook of ≤ 4 bits as lut4Gemv weights, or null where they do not fit. */
export function codebookLutWeights(t: CodebookTensor): Lut4Host | null {
  const [rows, cols] = t.shape;
  if (t.bits < 1 || t.bits > 4 || !fits(cols, cols)) return null;
  const size = 2 ** t.bits;
  const rb = Math.ceil((cols * t.bits) / 8);
  if (t.lut.length !== rows * size || t.codes.length !== rows * rb) return null;
  const tables = new Uint8Array(rows * 16);
  const params = new Float32Array(rows * 2);
  // ≤ 4 entries: 2-bit codes, half the bytes a pass streams
  const two = t.bits <= 2;
  const codes = new Uint8Array((rows * cols) / (two ? 4 : 2));
  for (let r = 0; r < rows; r++) {
    if (!levels(t.lut.subarray(r * size, (r + 1) * size), tables, r * 16, params, 2 * r)) return null;
    (two ? packRow2 : packRow)(codes, (r * cols) / (two ? 4 : 2), cols, (c) => readBits(t.codes, r * rb * 8 + c * t.bits, t.bits));
  }
  if (two) spreadTables(tables);
  return { rows, cols, block: cols, codes, tables, tableRowStride: 16, tableBlockStride: 0, params, ...(two ? { codeBits: 2 as const } : {}) };
}

/** BCQ of ≤ 4 planes (groups of whole 32-column blocks) as lut4Gemv weights, or null where they do not fit. */
export function bcqLutWeights(t: BcqTensor): Lut4Host | null {
  const [rows, cols] = t.shape;
  const k = t.bits;
  if (k < 1 || k > 4 || !fits(cols, t.group)) return null;
  const nb = cols / t.group;
  const rpb = Math.ceil(cols / 8);
  if (t.alphas.length !== rows * nb * k || t.planes.length !== k * rows * rpb) return null;
  const tables = new Uint8Array(rows * nb * 16);
  const params = new Float32Array(rows * nb * 2);
  const values = new Float64Array(1 << k);
  for (let g = 0; g < rows * nb; g++) {
    // value of code m (bit i = plane i's sign bit, 1 = +α_i): Σ_i ±α_i
    for (let m = 0; m < 1 << k; m++) {
      let s = 0;
      for (let i = 0; i < k; i++) s += (m >> i) & 1 ? t.alphas[g * k + i] : -t.alphas[g * k + i];
      values[m] = s;
    }
    if (!levels(values, tables, g * 16, params, 2 * g)) return null;
  }
  const two = k <= 2;
  const codes = new Uint8Array((rows * cols) / (two ? 4 : 2));
  for (let r = 0; r < rows; r++) {
    (two ? packRow2 : packRow)(codes, (r * cols) / (two ? 4 : 2), cols, (c) => {
      let m = 0;
      for (let i = 0; i < k; i++) m |= ((t.planes[(i * rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1) << i;
      return m;
    });
  }
  if (two) spreadTables(tables);
  return { rows, cols, block: t.group, codes, tables, tableRowStride: nb * 16, tableBlockStride: 16, params, ...(two ? { codeBits: 2 as const } : {}) };
}

/** The lut4Gemv weights of a layer, uploaded once: [codes, tables, params]. */
export function uploadLut4(k: Kernels, w: Lut4Host): WasmTensor[] {
  checkLut4('uploadLut4', w);
  const out: WasmTensor[] = [];
  try {
    out.push(k.upload(w.codes), k.upload(w.tables), k.upload(w.params));
  } catch (e) {
    for (const t of out) t.free();
    throw e;
  }
  return out;
}

/** y = W·x ([batch, cols] → [batch, rows]) on uploaded lut4Gemv weights; a build without SIMD runs the JS reference on them. */
export function lut4Matmul(k: Kernels, w: Lut4Weights & { codes: WasmTensor; tables: WasmTensor; params: WasmTensor }, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
  const y = lut4Gemv(k, w, x, batch, out);
  if (y) return y;
  const view = (t: WasmTensor) => new Uint8Array(k.memory.buffer, t.ptr, t.byteLength);
  const host = { ...w, codes: view(w.codes), tables: view(w.tables), params: new Float32Array(k.memory.buffer, w.params.ptr, w.params.byteLength / 4) };
  const o = out ?? new Float32Array(batch * w.rows);
  for (let b = 0; b < batch; b++) o.set(lut4GemvReference(host, x.subarray(b * w.cols, (b + 1) * w.cols)), b * w.rows);
  return o;
}

/** Bytes a pass over lut4Gemv weights streams: codes, tables, (step, lo) pairs. */
export function lut4Bytes(w: Lut4Weights): number {
  const n = (v: { byteLength: number }) => v.byteLength;
  return n(w.codes) + n(w.tables) + n(w.params);
}

/** The values lut4Gemv multiplies by (lo + step·u per weight), [rows, cols] f32. */
export function dequantizeLut4(w: Lut4Host): Float32Array {
  checkLut4('dequantizeLut4', w);
  const { rows, cols, block } = w;
  const nb = cols / block;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = Math.floor(c / block);
      const i = c & 31;
      const byte = w.codeBits === 2 ? w.codes[r * (cols / 4) + (c >> 5) * 8 + (i & 7)] : w.codes[r * (cols / 2) + (c >> 5) * 16 + (i & 15)];
      const code = w.codeBits === 2 ? (byte >> (2 * (i >> 3))) & 3 : i < 16 ? byte & 15 : byte >> 4;
      const u = w.tables[r * w.tableRowStride + b * w.tableBlockStride + code];
      const step = w.loRatio ? w.params[r * nb + b] : w.params[(r * nb + b) * 2];
      const lo = w.loRatio ? Math.fround(step * w.loRatio) : w.params[(r * nb + b) * 2 + 1];
      out[r * cols + c] = lo + step * u;
    }
  }
  return out;
}

/** lut4Gemv weights with their rows reordered or picked (row r of the result is row src[r]); tables shared by all rows stay. */
export function permuteLut4Rows(w: Lut4Host, src: Int32Array): Lut4Host {
  for (const s of src) if (!(s >= 0 && s < w.rows)) throw new LowbitError('E_SHAPE', `permuteLut4Rows: row ${s} picked from ${w.rows}`);
  const rows = <T extends Uint8Array | Float32Array>(a: T, len: number): T => {
    const out = new (a.constructor as new (n: number) => T)(src.length * len);
    src.forEach((s, r) => out.set(a.subarray(s * len, (s + 1) * len), r * len));
    return out;
  };
  const tables = w.tableRowStride ? rows(w.tables, w.tableRowStride) : w.tables;
  return { ...w, rows: src.length, codes: rows(w.codes, (w.cols * (w.codeBits ?? 4)) / 8), tables, params: rows(w.params, (w.cols / w.block) * (w.loRatio ? 1 : 2)) };
}
