import { checkPlanes, type GemvBitplanesArgs, gemvBitplanesReference } from './formats-gemv.js';
import { type Kernels, scoped, WasmTensor } from './kernels.js';

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
