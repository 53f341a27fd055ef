import { LowbitError } from './errors.js';
import { type GemvBitplanesArgs, gemvBitplanesReference } from './formats-gemv.js';
import { type Kernels, scoped, WasmTensor } from './kernels.js';

interface AnyprecExports {
  gemv_anyprec(planes: number, rows: number, cols: number, bits: number, lut: number, x: number, out: number): void;
}

/** Pointers to resident data, for callers that keep planes and tables in WASM memory (@lowbit/runtime's any-precision Linear). */
export interface GemvAnyprecResident {
  planes: WasmTensor;
  lut: WasmTensor;
}

function check(a: GemvBitplanesArgs | (Omit<GemvBitplanesArgs, 'planes' | 'lut'> & GemvAnyprecResident)): void {
  const fn = 'gemvAnyprec';
  if (![a.rows, a.cols].every((v) => Number.isInteger(v) && v >= 0)) throw new LowbitError('E_ARG', `${fn}: rows and cols must be non-negative integers`);
  if (!Number.isInteger(a.maxBits) || a.maxBits < 1 || a.maxBits > 8) throw new LowbitError('E_ARG', `${fn}: maxBits must be 1 to 8, got ${a.maxBits}`);
  if (!Number.isInteger(a.bits) || a.bits < 1 || a.bits > a.maxBits) throw new LowbitError('E_ARG', `${fn}: bits must be 1 to ${a.maxBits}, got ${a.bits}`);
  const need = a.maxBits * a.rows * Math.ceil(a.cols / 8);
  const have = a.planes instanceof WasmTensor ? a.planes.byteLength : a.planes instanceof Uint8Array ? a.planes.length : -1;
  if (have < 0) throw new LowbitError('E_DTYPE', `${fn}: planes must be a Uint8Array or WasmTensor`);
  if (a.planes instanceof WasmTensor ? have < need : have !== need) throw new LowbitError('E_SHAPE', `${fn}: planes hold ${have} bytes, ${a.maxBits} planes of [${a.rows}, ${a.cols}] need ${need}`);
  const lutLen = a.lut instanceof WasmTensor ? a.lut.byteLength / 4 : a.lut instanceof Float32Array ? a.lut.length : -1;
  if (lutLen !== a.rows * 2 ** a.bits) throw new LowbitError('E_SHAPE', `${fn}: lut must hold ${a.rows * 2 ** a.bits} f32 values (rows × 2^bits), got ${lutLen}`);
  if (!(a.x instanceof Float32Array) || a.x.length % Math.max(1, a.cols) !== 0) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of a multiple of ${a.cols} values`);
}

/**
 * y = W_bits·x over any-precision nested planes, eight columns per step (planes loaded once per
 * eight columns, not once per element). Equal bit for bit to gemvBitplanes and gemvBitplanesReference.
 * x may hold several vectors back to back (batch = x.length / cols): out is [batch, rows].
 */
export function gemvAnyprec(k: Kernels, a: GemvBitplanesArgs | (Omit<GemvBitplanesArgs, 'planes' | 'lut'> & GemvAnyprecResident)): Float32Array {
  check(a);
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
  check(a);
  const batch = a.cols === 0 ? 1 : a.x.length / a.cols;
  const out = new Float32Array(batch * a.rows);
  for (let i = 0; i < batch; i++) out.set(gemvBitplanesReference({ ...a, x: a.x.subarray(i * a.cols, (i + 1) * a.cols) }), i * a.rows);
  return out;
}
