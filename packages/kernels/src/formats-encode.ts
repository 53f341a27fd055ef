import { LowbitError } from './errors.js';
import { type Kernels, scoped } from './kernels.js';

/**
 * Encoders behind @lowbit/formats' WASM quantizers (INT-k groups, OCP MX, absmax codebooks such as
 * NF4). That package's TypeScript encoders define the codes; these kernels do the same f64
 * operations and agree with them bit for bit (tested there, on every build).
 */

interface EncodeExports {
  int_group_params(data: number, rows: number, cols: number, group: number, bits: number, symmetric: number, clip: number, scales: number, zeros: number): number;
  encode_int_groups(data: number, rows: number, cols: number, group: number, bits: number, scales: number, zeros: number, codes: number): void;
  quantize_mx(values: number, n: number, isInt: number, mbits: number, emaxElem: number, emin: number, bits: number,
    maxNormal: number, scales: number, codes: number): void;
  quantize_absmax_lut(data: number, rows: number, cols: number, group: number, bits: number, table: number, thresholds: number, scales: number, codes: number): number;
}


/** A copy of `n` elements at `ptr` (views are taken after every allocation: memory growth detaches them). */
function takeF32(k: Kernels, ptr: number, n: number): Float32Array {
  return new Float32Array(k.memory.buffer, ptr, n).slice();
}

function takeU8(k: Kernels, ptr: number, n: number): Uint8Array {
  return new Uint8Array(k.memory.buffer, ptr, n).slice();
}

function checkGroups(fn: string, data: Float32Array, rows: number, cols: number, group: number): number {
  if (!(data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: data must be a Float32Array`);
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (data.length !== rows * cols) throw new LowbitError('E_SHAPE', `${fn}: [${rows}, ${cols}] needs ${rows * cols} values, got ${data.length}`);
  if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `${fn}: group size must be a positive integer, got ${group}`);
  return Math.ceil(cols / group);
}

function checkIntBits(fn: string, bits: number): void {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new LowbitError('E_ARG', `${fn}: integer codes have 2 to 8 bits, got ${bits}`);
}

function nonFinite(fn: string, data: Float32Array, cols: number, at: number): LowbitError {
  return new LowbitError('E_NAN', `${fn}: value at [${Math.floor(at / cols)}, ${at % cols}] is ${data[at]}; quantization needs finite weights`);
}

/**
 * Min-max scales (and integer zero points when asymmetric) of INT-k groups of `group` along cols,
 * shrunk by `clip` ∈ (0, 1]: one per (row, group), row-major. Scales are binary16 values (rounded to
 * nearest even, kept in [2^-24, 65504]) held in f32, the zero points chosen against them. Non-finite
 * data throws E_NAN.
 */
export function intGroupParams(k: Kernels, data: Float32Array, rows: number, cols: number, bits: number, group: number,
  symmetric: boolean, clip = 1): { scales: Float32Array; zeros: Float32Array | null } {
  const fn = 'intGroupParams';
  const ng = checkGroups(fn, data, rows, cols, group);
  checkIntBits(fn, bits);
  if (!(clip > 0 && clip <= 1)) throw new LowbitError('E_ARG', `${fn}: clip must be in (0, 1], got ${clip}`);
  const count = rows * ng;
  if (count === 0) return { scales: new Float32Array(0), zeros: symmetric ? null : new Float32Array(0) };
  const ex = k.exports as unknown as EncodeExports;
  return scoped(k, (put, alloc) => {
    const pd = put(data);
    const ps = alloc(count * 4);
    const pz = symmetric ? 0 : alloc(count * 4);
    const bad = ex.int_group_params(pd, rows, cols, group, bits, symmetric ? 1 : 0, clip, ps, pz);
    if (bad >= 0) throw nonFinite(fn, data, cols, bad);
    return { scales: takeF32(k, ps, count), zeros: symmetric ? null : takeF32(k, pz, count) };
  });
}

/**
 * intGroupParams then encodeIntGroups with the matrix copied into WASM memory once: min-max scales
 * (zeros when asymmetric) and the packed codes.
 */
export function quantizeIntGroups(k: Kernels, data: Float32Array, rows: number, cols: number, bits: number, group: number,
  symmetric: boolean, clip = 1): { scales: Float32Array; zeros: Float32Array | null; codes: Uint8Array } {
  const fn = 'quantizeIntGroups';
  const ng = checkGroups(fn, data, rows, cols, group);
  checkIntBits(fn, bits);
  if (!(clip > 0 && clip <= 1)) throw new LowbitError('E_ARG', `${fn}: clip must be in (0, 1], got ${clip}`);
  const count = rows * ng;
  const bytes = rows * Math.ceil((cols * bits) / 8);
  if (count === 0) return { scales: new Float32Array(0), zeros: symmetric ? null : new Float32Array(0), codes: new Uint8Array(bytes) };
  const ex = k.exports as unknown as EncodeExports;
  return scoped(k, (put, alloc) => {
    const pd = put(data);
    const ps = alloc(count * 4);
    const pz = symmetric ? 0 : alloc(count * 4);
    const pc = alloc(bytes);
    const bad = ex.int_group_params(pd, rows, cols, group, bits, symmetric ? 1 : 0, clip, ps, pz);
    if (bad >= 0) throw nonFinite(fn, data, cols, bad);
    ex.encode_int_groups(pd, rows, cols, group, bits, ps, pz, pc);
    return { scales: takeF32(k, ps, count), zeros: symmetric ? null : takeF32(k, pz, count), codes: takeU8(k, pc, bytes) };
  });
}

/**
 * INT-k codes for given scales (and zeros; null = symmetric 2^(bits−1)) per (row, group along cols):
 * u = clamp(roundEven(v / scale) + zero, 0, 2^bits − 1), packed per row in the int-k convention.
 */
export function encodeIntGroups(k: Kernels, data: Float32Array, rows: number, cols: number, bits: number, group: number,
  scales: Float32Array, zeros: Float32Array | null): Uint8Array {
  const fn = 'encodeIntGroups';
  const ng = checkGroups(fn, data, rows, cols, group);
  checkIntBits(fn, bits);
  if (!(scales instanceof Float32Array) || scales.length !== rows * ng) throw new LowbitError('E_SHAPE', `${fn}: scales must be a Float32Array of ${rows * ng} entries, got ${scales?.length}`);
  if (zeros !== null && (!(zeros instanceof Float32Array) || zeros.length !== rows * ng)) throw new LowbitError('E_SHAPE', `${fn}: zeros must be a Float32Array of ${rows * ng} entries or null`);
  const bytes = rows * Math.ceil((cols * bits) / 8);
  if (bytes === 0) return new Uint8Array(0);
  const ex = k.exports as unknown as EncodeExports;
  return scoped(k, (put, alloc) => {
    const pd = put(data);
    const ps = put(scales);
    const pz = zeros === null ? 0 : put(zeros);
    const pc = alloc(bytes);
    ex.encode_int_groups(pd, rows, cols, group, bits, ps, pz, pc);
    return takeU8(k, pc, bytes);
  });
}

export type MxEncodeFormat = 'mxfp8_e4m3' | 'mxfp8_e5m2' | 'mxfp6_e3m2' | 'mxfp6_e2m3' | 'mxfp4' | 'mxint8';

// Element constants (OCP OFP8 rev 1.0; OCP MX v1.0 sections 5.3 and 6.3): code bits, mantissa bits,
// emax_elem, emin (exponent of the smallest normal, 1 − bias), largest finite value.
const MX_ELEMENTS: Record<MxEncodeFormat, { isInt: number; bits: number; mbits: number; emax: number; emin: number; maxNormal: number }> = {
  mxfp8_e4m3: { isInt: 0, bits: 8, mbits: 3, emax: 8, emin: -6, maxNormal: 448 },
  mxfp8_e5m2: { isInt: 0, bits: 8, mbits: 2, emax: 15, emin: -14, maxNormal: 57344 },
  mxfp6_e3m2: { isInt: 0, bits: 6, mbits: 2, emax: 4, emin: -2, maxNormal: 28 },
  mxfp6_e2m3: { isInt: 0, bits: 6, mbits: 3, emax: 2, emin: 0, maxNormal: 7.5 },
  mxfp4: { isInt: 0, bits: 4, mbits: 1, emax: 2, emin: 0, maxNormal: 6 },
  // MXINT8: two's complement with an implicit 2^-6, kept symmetric at ±127.
  mxint8: { isInt: 1, bits: 8, mbits: 6, emax: 0, emin: 0, maxNormal: 127 / 64 },
};

/**
 * OCP MX quantization in blocks of 32 (the last may be partial): one E8M0 scale per block (0xFF for a
 * block holding NaN/±Inf, whose codes are 0) and one element code per value, saturating.
 */
export function quantizeMxBlocks(k: Kernels, values: Float32Array, format: MxEncodeFormat): { scales: Uint8Array; codes: Uint8Array } {
  const fn = 'quantizeMxBlocks';
  if (!(values instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${fn}: values must be a Float32Array`);
  const el = Object.hasOwn(MX_ELEMENTS, format) ? MX_ELEMENTS[format] : undefined;
  if (!el) throw new LowbitError('E_FORMAT', `${fn}: unknown MX format "${format}"; known: ${Object.keys(MX_ELEMENTS).join(', ')}`);
  const n = values.length;
  const nb = Math.ceil(n / 32);
  if (n === 0) return { scales: new Uint8Array(0), codes: new Uint8Array(0) };
  const ex = k.exports as unknown as EncodeExports;
  return scoped(k, (put, alloc) => {
    const pv = put(values);
    const ps = alloc(nb);
    const pc = alloc(n);
    ex.quantize_mx(pv, n, el.isInt, el.mbits, el.emax, el.emin, el.bits, el.maxNormal, ps, pc);
    return { scales: takeU8(k, ps, nb), codes: takeU8(k, pc, n) };
  });
}

/**
 * Absmax groups of `group` along cols with an ascending table of 2^bits values (NF4: bits 4): scale =
 * max |v| (1 for an all-zero group), code = index of the nearest table value to v / scale (ties to
 * the lower index), packed per row in the int-k convention. Non-finite data throws E_NAN.
 */
export function quantizeAbsmaxLut(k: Kernels, data: Float32Array, rows: number, cols: number, group: number, table: Float32Array):
  { scales: Float32Array; codes: Uint8Array } {
  const fn = 'quantizeAbsmaxLut';
  const ng = checkGroups(fn, data, rows, cols, group);
  const bits = Math.log2(table?.length ?? 0);
  if (!(table instanceof Float32Array) || !Number.isInteger(bits) || bits < 1 || bits > 8) {
    throw new LowbitError('E_SHAPE', `${fn}: table must be a Float32Array of 2^bits values (bits 1..8), got ${table?.length}`);
  }
  for (let i = 1; i < table.length; i++) {
    if (!(table[i - 1] <= table[i])) throw new LowbitError('E_ARG', `${fn}: table must be ascending (entry ${i}: ${table[i]} after ${table[i - 1]})`);
  }
  const count = rows * ng;
  const bytes = rows * Math.ceil((cols * bits) / 8);
  if (count === 0) return { scales: new Float32Array(0), codes: new Uint8Array(bytes) };
  const ex = k.exports as unknown as EncodeExports;
  return scoped(k, (put, alloc) => {
    const pd = put(data);
    const pt = put(table);
    const th = bits <= 4 ? tieThresholds(table) : null;
    const pth = th === null ? 0 : put(th);
    const ps = alloc(count * 4);
    const pc = alloc(bytes);
    const bad = ex.quantize_absmax_lut(pd, rows, cols, group, bits, pt, pth, ps, pc);
    if (bad >= 0) throw nonFinite(fn, data, cols, bad);
    return { scales: takeF32(k, ps, count), codes: takeU8(k, pc, bytes) };
  });
}

const view = new DataView(new ArrayBuffer(8));
const SIGN = 1n << 63n;

/** f64 → integer in the order of the values (−0 and +0 both 0). */
function orderKey(x: number): bigint {
  view.setFloat64(0, x);
  const u = view.getBigUint64(0);
  return u & SIGN ? -(u & (SIGN - 1n)) : u;
}

function fromKey(k: bigint): number {
  view.setBigUint64(0, k < 0n ? -k | SIGN : k);
  return view.getFloat64(0);
}

/**
 * For a strictly ascending table: T_i = the largest f64 v in [t_i, t_i+1] with v − t_i <= t_i+1 − v
 * (f64 arithmetic, the tie test of nearestIndex). The test is true at t_i, false at t_i+1 and monotone
 * in between, so bisection over the f64 values finds T_i exactly. null if the table is not strictly ascending.
 */
function tieThresholds(table: Float32Array): Float64Array | null {
  const out = new Float64Array(table.length - 1);
  for (let i = 0; i + 1 < table.length; i++) {
    const a = table[i];
    const b = table[i + 1];
    if (!(a < b)) return null;
    let lo = orderKey(a);
    let hi = orderKey(b);
    while (hi - lo > 1n) {
      const mid = (lo + hi) >> 1n;
      const v = fromKey(mid);
      if (v - a <= b - v) lo = mid;
      else hi = mid;
    }
    out[i] = fromKey(lo);
  }
  return out;
}
