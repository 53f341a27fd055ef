import { LowbitError } from './errors.js';
import { checkPlanes, type GemvBitplanesArgs, gemvBitplanesReference } from './formats-gemv.js';
import { type Kernels, type RowKernel, scoped, WasmTensor } from './kernels.js';

interface AnyprecExports {
  gemv_anyprec(planes: number, rows: number, cols: number, bits: number, lut: number, x: number, out: number): void;
}

/** Pointers to resident data, for callers that keep planes and tables in WASM memory (@lowbit/runtime's any-precision Linear). */
export interface GemvAnyprecResident {
  planes: WasmTensor;
  lut: WasmTensor;
}

/**
 * y = W_bits·x over any-precision nested planes, eight columns per step (planes loaded once per
 * eight columns, not once per element). Equal bit for bit to gemvBitplanes and gemvBitplanesReference.
 * x may hold several vectors back to back (batch = x.length / cols): out is [batch, rows].
 */
export function gemvAnyprec(k: Kernels, a: GemvBitplanesArgs | (Omit<GemvBitplanesArgs, 'planes' | 'lut'> & GemvAnyprecResident)): Float32Array {
  checkPlanes('gemvAnyprec', a, true);
  const batch = a.cols === 0 ? 1 : a.x.length / a.cols;
  const out = new Float32Array(batch * a.rows);
  if (a.rows === 0) return out;
  const ex = k.exports as unknown as AnyprecExports;
  return scoped(k, (put, alloc) => {
    const pp = a.planes instanceof WasmTensor ? a.planes.ptr : put(a.planes);
    const pl = a.lut instanceof WasmTensor ? a.lut.ptr : put(a.lut);
    const px = put(a.x);
    const po = alloc(out.byteLength);
    for (let i = 0; i < batch; i++) ex.gemv_anyprec(pp, a.rows, a.cols, a.bits, pl, px + i * a.cols * 4, po + i * a.rows * 4);
    out.set(new Float32Array(k.memory.buffer, po, out.length));
    return out;
  });
}

/** The definition gemvAnyprec is tested against: gemvBitplanesReference per vector. */
export function gemvAnyprecReference(a: GemvBitplanesArgs): Float32Array {
  checkPlanes('gemvAnyprecReference', a, true);
  const batch = a.cols === 0 ? 1 : a.x.length / a.cols;
  const out = new Float32Array(batch * a.rows);
  for (let i = 0; i < batch; i++) out.set(gemvBitplanesReference({ ...a, x: a.x.subarray(i * a.cols, (i + 1) * a.cols) }), i * a.rows);
  return out;
}

/** One vector (x of exactly `cols` values) through gemvAnyprec: W_bits·x reading only planes 0..bits−1. */
export function gemvBitplanes(k: Kernels, a: GemvBitplanesArgs): Float32Array {
  checkPlanes('gemvBitplanes', a);
  return gemvAnyprec(k, a);
}

// runRows is protected so that only this package's front ends split work over a pool (as lut-gemv.ts)
type RunRows = { runRows(fn: RowKernel, args: number[], rows: number): void };

interface AnyprecFastExports {
  anyprec_fast_simd(): number;
  lut4_quantize(x: number, batch: number, cols: number, bs: number, ab: number, scratch: number): void;
  lut4_scratch_bytes(cols: number): number;
}

/** Widest width gemvAnyprecFast runs: 2^bits table entries must fit one 16-byte swizzle. */
export const ANYPREC_FAST_MAX_BITS = 4;

/** Columns rounded up to whole 128-column chunks (prepared planes and activations are padded with zeros). */
export function anyprecFastCols(cols: number): number {
  return Math.ceil(cols / 128) * 128;
}

/**
 * Planes 0..count−1 (count ≤ 4) of [maxBits][rows, ⌈cols/8⌉] in gemvAnyprecFast's layout, made once
 * at load: every plane kept separately ([count][rows, anyprecFastCols(cols)/8]); per row and 128
 * columns 16 bytes per plane, column 32s + 16h + i of the chunk at bit (p + s) mod 4 + 4h of byte i
 * of plane p (padding columns 0).
 */
export function prepareAnyprecPlanes(planes: Uint8Array, rows: number, cols: number, maxBits: number, count: number): Uint8Array {
  const fn = 'prepareAnyprecPlanes';
  if (![rows, cols, maxBits, count].every((v) => Number.isInteger(v) && v > 0) || count > maxBits || count > ANYPREC_FAST_MAX_BITS) {
    throw new LowbitError('E_ARG', `${fn}: rows, cols, maxBits and count (≤ maxBits, ≤ ${ANYPREC_FAST_MAX_BITS}) must be positive integers, got ${rows}, ${cols}, ${maxBits}, ${count}`);
  }
  const rbIn = Math.ceil(cols / 8);
  if (planes.length !== maxBits * rows * rbIn) throw new LowbitError('E_SHAPE', `${fn}: planes hold ${planes.length} bytes, ${maxBits} planes of [${rows}, ${cols}] need ${maxBits * rows * rbIn}`);
  const rb = anyprecFastCols(cols) / 8;
  const out = new Uint8Array(count * rows * rb);
  for (let p = 0; p < count; p++) {
    for (let r = 0; r < rows; r++) {
      const src = (p * rows + r) * rbIn;
      const dst = (p * rows + r) * rb;
      for (let j = 0; j < rb / 16; j++) {
        for (let i = 0; i < 16; i++) {
          let v = 0;
          for (let s = 0; s < 4; s++) {
            for (let h = 0; h < 2; h++) {
              const c = 128 * j + 32 * s + 16 * h + i;
              if (c < cols) v |= ((planes[src + (c >> 3)] >> (c & 7)) & 1) << (((p + s) & 3) + 4 * h);
            }
          }
          out[dst + 16 * j + i] = v;
        }
      }
    }
  }
  return out;
}

/**
 * gemvAnyprecFast's tables of one width from each row's 16 levels by code (rows × 16 bytes, level of
 * code m at 16r + m): per row four 16-byte tables, table s at index Σ_p bit_p·2^((p + s) mod 4)
 * holding the level of code Σ_p bit_p·2^(bits − 1 − p), p < bits (the order the prepared planes
 * put the code bits in at step s).
 */
export function anyprecFastTables(levels: Uint8Array, rows: number, bits: number): Uint8Array {
  if (!Number.isInteger(bits) || bits < 1 || bits > ANYPREC_FAST_MAX_BITS) throw new LowbitError('E_ARG', `anyprecFastTables: bits must be 1..${ANYPREC_FAST_MAX_BITS}, got ${bits}`);
  if (levels.length !== rows * 16) throw new LowbitError('E_SHAPE', `anyprecFastTables: levels hold ${levels.length} bytes, ${rows} rows need ${rows * 16}`);
  const out = new Uint8Array(rows * 64);
  for (let s = 0; s < 4; s++) {
    for (let idx = 0; idx < 16; idx++) {
      let code = 0;
      for (let p = 0; p < bits; p++) code |= ((idx >> ((p + s) & 3)) & 1) << (bits - 1 - p);
      for (let r = 0; r < rows; r++) out[r * 64 + 16 * s + idx] = levels[r * 16 + code];
    }
  }
  return out;
}

/**
 * Weights for gemvAnyprecFast at one width `bits` (1..4): `planes` from prepareAnyprecPlanes
 * (`planeCount` ≥ bits of them; a pass reads planes 0..bits−1 only), `tables` 64 bytes per row
 * (anyprecFastTables: 7-bit levels u), `params` f32 (step, lo) per row: value = lo + step·u.
 */
export interface AnyprecFastWeights {
  rows: number;
  cols: number;
  bits: number;
  planeCount: number;
  planes: Uint8Array | WasmTensor;
  tables: Uint8Array | WasmTensor;
  params: Float32Array | WasmTensor;
}

function byteLen(v: Uint8Array | Float32Array | WasmTensor): number {
  return v.byteLength;
}

/** Checks an AnyprecFastWeights' sizes (the kernel reads exactly these ranges). */
export function checkAnyprecFast(fn: string, w: AnyprecFastWeights): void {
  const { rows, cols, bits, planeCount } = w;
  if (![rows, cols, bits, planeCount].every((v) => Number.isInteger(v) && v > 0)) throw new LowbitError('E_ARG', `${fn}: rows, cols, bits and planeCount must be positive integers, got ${rows}, ${cols}, ${bits}, ${planeCount}`);
  if (bits > ANYPREC_FAST_MAX_BITS || bits > planeCount || planeCount > ANYPREC_FAST_MAX_BITS) throw new LowbitError('E_ARG', `${fn}: bits ${bits} must be at most ${ANYPREC_FAST_MAX_BITS} and at most planeCount ${planeCount}`);
  for (const [name, v] of [['planes', w.planes], ['tables', w.tables], ['params', w.params]] as const) {
    if (v instanceof WasmTensor && v.freed) throw new LowbitError('E_ARG', `${fn}: ${name} is a freed WasmTensor`);
  }
  const need = (planeCount * rows * anyprecFastCols(cols)) / 8;
  if (byteLen(w.planes) !== need) throw new LowbitError('E_SHAPE', `${fn}: planes hold ${byteLen(w.planes)} bytes, ${planeCount} prepared planes of [${rows}, ${cols}] need ${need}`);
  if (byteLen(w.tables) !== rows * 64) throw new LowbitError('E_SHAPE', `${fn}: tables hold ${byteLen(w.tables)} bytes, ${rows} rows need ${rows * 64}`);
  if (byteLen(w.params) !== rows * 8) throw new LowbitError('E_SHAPE', `${fn}: params hold ${byteLen(w.params)} bytes, ${rows} (step, lo) pairs need ${rows * 8}`);
}

/**
 * y = W_bits·x for `batch` tokens (x [batch, cols], y [batch, rows]) at ≤ 4 bits on prepared planes:
 * per 32 columns, one and and one or per plane gather the codes as two nibbles, a swizzle maps them
 * to the row's 7-bit levels and the relaxed i8·i7 dot (where the build has it) multiplies them by the
 * activations quantized to int8 per 128 columns, as lut4Gemv does. Returns null in a build without SIMD.
 */
export function gemvAnyprecFast(k: Kernels, w: AnyprecFastWeights, x: Float32Array, batch: number, out?: Float32Array): Float32Array | null {
  const fn = 'gemvAnyprecFast';
  checkAnyprecFast(fn, w);
  const { rows, cols } = w;
  if (!Number.isInteger(batch) || batch <= 0) throw new LowbitError('E_ARG', `${fn}: batch must be a positive integer, got ${batch}`);
  if (!(x instanceof Float32Array) || x.length !== batch * cols) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${batch}×${cols} values`);
  if (out !== undefined && (!(out instanceof Float32Array) || out.length !== batch * rows)) throw new LowbitError('E_SHAPE', `${fn}: out must be a Float32Array of ${batch * rows} values`);
  const ex = k.exports as unknown as AnyprecFastExports;
  if (!ex.anyprec_fast_simd()) return null;
  const cp = anyprecFastCols(cols);
  let xp = x;
  if (cp !== cols) {
    // padding columns: code 0 times activation 0
    xp = new Float32Array(batch * cp);
    for (let b = 0; b < batch; b++) xp.set(x.subarray(b * cols, (b + 1) * cols), b * cp);
  }
  const res = out ?? new Float32Array(batch * rows);
  return scoped(k, (put, alloc) => {
    const at = (v: Uint8Array | Float32Array | WasmTensor) => (v instanceof WasmTensor ? v.ptr : put(v));
    const po = alloc(batch * rows * 4);
    const scratch = alloc(batch * (ex.lut4_scratch_bytes(cp) >>> 0));
    ex.lut4_quantize(put(xp), batch, cp, cp, 128, scratch);
    // rows split over a KernelPool's threads (tiles of four rows); one call on plain kernels
    (k as unknown as RunRows).runRows('anyprec_fast_rows', [at(w.planes), (rows * cp) / 8, w.bits, at(w.tables), at(w.params), rows, cp, batch, scratch, po], rows);
    res.set(new Float32Array(k.memory.buffer, po, batch * rows));
    return res;
  });
}

/**
 * gemvAnyprecFast in plain JS with the same activation rounding (int8 per 128 columns, amax/127;
 * Math.round differs from WASM's nearest only on exact halves): the tests' independent reference.
 */
export function gemvAnyprecFastReference(w: AnyprecFastWeights & { planes: Uint8Array; tables: Uint8Array; params: Float32Array }, x: Float32Array): Float32Array {
  checkAnyprecFast('gemvAnyprecFastReference', w);
  const { rows, cols, bits } = w;
  const cp = anyprecFastCols(cols);
  const rb = cp / 8;
  const q = new Int8Array(cp);
  const xs = new Float32Array(cp / 128);
  for (let j = 0; j < cp / 128; j++) {
    let amax = 0;
    for (let i = 0; i < 128; i++) amax = Math.max(amax, Math.abs(x[j * 128 + i] ?? 0));
    const d = Math.fround(amax / 127);
    xs[j] = d;
    const inv = d > 0 ? Math.fround(1 / d) : 0;
    for (let i = 0; i < 128; i++) q[j * 128 + i] = j * 128 + i < cols ? Math.round(Math.fround(x[j * 128 + i] * inv)) : 0;
  }
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cp; c++) {
      const j = c >> 7;
      const byte = 16 * j + (c & 15);
      const st = (c >> 5) & 3;
      const h = (c >> 4) & 1;
      let idx = 0;
      for (let p = 0; p < bits; p++) idx |= ((w.planes[(p * rows + r) * rb + byte] >> (((p + st) & 3) + 4 * h)) & 1) << ((p + st) & 3);
      const u = w.tables[r * 64 + 16 * st + idx];
      s += (w.params[2 * r + 1] + w.params[2 * r] * u) * xs[j] * q[c];
    }
    y[r] = s;
  }
  return y;
}
