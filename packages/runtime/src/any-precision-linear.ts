// Any-precision serving (Park et al. 2024): one nested bit-plane model in memory, the bit-width
// chosen per call. A Linear of format 'any-precision' keeps its planes resident in WASM memory once
// and @lowbit/kernels' gemv_anyprec reads only the top `bits` of them, so the bytes a decode step
// streams grow with the width asked for, not the width stored. Storage in a safetensors file:
// `<prefix>.anyprec_planes` (U8 [maxBits·rows·⌈cols/8⌉]) and `<prefix>.anyprec_luts` (F32, the
// tables of seedBits..maxBits concatenated), described by `__metadata__` lowbit.any_precision.
// Widths of ≤ 4 bits run on gemvAnyprecFast where the build has SIMD: the planes re-laid once at
// load (still one plane after another, so a pass at b bits reads b planes) and each width's table
// (2^b ≤ 16 entries per row) as 7-bit levels with (step, lo) per row, lut-fast.ts's quantization:
// a weight moves by at most step/2 = (max − min)/254 of its row's table range, and the activations
// are int8 per 128 columns (x moves by at most amax/254 of its 128-column block). `exact` layers
// (keepExactAnyPrecision) and widths above 4 run gemv_anyprec, bit for bit the formats' GEMV.
import { type AnyPrecisionTensor, validatePacked } from '@lowbit/formats';
import { ANYPREC_FAST_MAX_BITS, type Kernels, LowbitError, WasmTensor, anyprecFastTables, gemvAnyprec, gemvAnyprecFast, prepareAnyprecPlanes } from '@lowbit/kernels';
import { codebookLutWeights } from './lut-fast.js';

/** `bits` checked against what the tensor holds; undefined means its widest. */
export function resolveBits(name: string, t: AnyPrecisionTensor, bits: number | undefined): number {
  if (bits === undefined) return t.maxBits;
  if (!Number.isInteger(bits) || bits < t.seedBits || bits > t.maxBits) {
    throw new LowbitError('E_ARG', `${name}: this any-precision layer holds ${t.seedBits} to ${t.maxBits} bits, asked for ${bits}`);
  }
  return bits;
}

/** Weight bytes a pass reads at `bits`: the top `bits` planes plus that width's table. */
export function anyPrecisionBytes(t: AnyPrecisionTensor, bits: number): number {
  const [rows, cols] = t.shape;
  return bits * rows * Math.ceil(cols / 8) + rows * 2 ** bits * 4;
}

export function checkAnyPrecisionWeight(name: string, shape: [number, number], t: AnyPrecisionTensor): void {
  validatePacked(name, t);
  if (t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) throw new LowbitError('E_SHAPE', `${name}: any-precision tensor has shape [${t.shape}], the layer is [${shape}]`);
  for (const lut of t.luts) {
    for (let i = 0; i < lut.length; i++) if (!Number.isFinite(lut[i])) throw new LowbitError('E_NAN', `${name}: any-precision table value ${i} is ${lut[i]}`);
  }
}

const exactTensors = new WeakSet<AnyPrecisionTensor>();

/**
 * Marks a tensor so that the Linear built on it keeps gemv_anyprec at every width (f32 activations,
 * bit for bit the formats' GEMV) instead of gemvAnyprecFast at ≤ 4 bits. Returns the tensor.
 */
export function keepExactAnyPrecision(t: AnyPrecisionTensor): AnyPrecisionTensor {
  exactTensors.add(t);
  return t;
}

/**
 * gemvAnyprecFast's tables of one width: the width's f32 table as 7-bit levels (lut-fast.ts's
 * codebook quantization: a per-row codebook of 2^bits entries) in the kernel's four step orders,
 * [rows·64] bytes, and (step, lo) per row.
 */
export function anyPrecisionFastTables(t: AnyPrecisionTensor, bits: number): { tables: Uint8Array; params: Float32Array } | null {
  const rows = t.shape[0];
  // the levels and (step, lo) do not depend on the codes: a 32-column stand-in with zero codes
  const w = codebookLutWeights({ kind: 'codebook', bits, shape: [rows, 32], lut: t.luts[bits - t.seedBits], codes: new Uint8Array(rows * 4 * bits) });
  return w ? { tables: anyprecFastTables(w.tables, rows, bits), params: w.params } : null;
}

/** Number of stored widths (tables) of a tensor. */
function widths(t: AnyPrecisionTensor): number {
  return t.maxBits - t.seedBits + 1;
}

/** Widths gemvAnyprecFast serves: seedBits..min(maxBits, 4). */
function fastWidths(t: AnyPrecisionTensor): number {
  return Math.max(0, Math.min(t.maxBits, ANYPREC_FAST_MAX_BITS) - t.seedBits + 1);
}

/**
 * Resident data of a layer, copied into WASM memory once (the tables would otherwise be copied per
 * token). Exact: [planes, table per width]. With gemvAnyprecFast (SIMD build, not `exact`, a width
 * ≤ 4 stored): [prepared planes 0..min(maxBits, 4)−1, (levels, params) per width ≤ 4], preceded by
 * the exact layout only when wider widths need it (maxBits > 4), so a ≤ 4-bit model is held once.
 */
export function uploadAnyPrecision(k: Kernels, t: AnyPrecisionTensor, options: { exact?: boolean } = {}): WasmTensor[] {
  const out: WasmTensor[] = [];
  try {
    const nf = fastWidths(t);
    const simd = (k.exports as unknown as { anyprec_fast_simd?: () => number }).anyprec_fast_simd?.() === 1;
    const fast = !options.exact && !exactTensors.has(t) && simd && nf > 0 ? Array.from({ length: nf }, (_, i) => anyPrecisionFastTables(t, t.seedBits + i)) : null;
    const useFast = fast?.every((f) => f !== null) === true;
    if (!useFast || t.maxBits > ANYPREC_FAST_MAX_BITS) {
      out.push(k.upload(t.planes));
      for (const l of t.luts) out.push(k.upload(l));
    }
    if (useFast && fast) {
      const [rows, cols] = t.shape;
      out.push(k.upload(prepareAnyprecPlanes(t.planes, rows, cols, t.maxBits, Math.min(t.maxBits, ANYPREC_FAST_MAX_BITS))));
      for (const f of fast) out.push(k.upload((f as NonNullable<typeof f>).tables), k.upload((f as NonNullable<typeof f>).params));
    }
  } catch (e) {
    for (const r of out) r.free();
    throw e;
  }
  return out;
}

/** Where the fast data starts in a layer's resident list, or −1 where it runs exact only. */
function fastAt(t: AnyPrecisionTensor, resident: readonly WasmTensor[]): number {
  if (resident.length === 1 + 2 * fastWidths(t) && t.maxBits <= ANYPREC_FAST_MAX_BITS) return 0;
  if (resident.length === 1 + widths(t) + 1 + 2 * fastWidths(t) && t.maxBits > ANYPREC_FAST_MAX_BITS) return 1 + widths(t);
  return -1;
}

/** Whether a layer's resident data (from uploadAnyPrecision) runs `bits` on gemvAnyprecFast. */
export function anyPrecisionRunsFast(t: AnyPrecisionTensor, resident: readonly WasmTensor[], bits: number): boolean {
  return bits <= ANYPREC_FAST_MAX_BITS && fastAt(t, resident) >= 0;
}

/**
 * out[i] = W_bits·x[i] for each of `batch` rows of x, on resident planes and tables (from
 * uploadAnyPrecision), reading planes 0..bits−1 only: gemvAnyprecFast at ≤ 4 bits where the layer
 * holds its data (int8 activations; the rounding bound in this file's header), else @lowbit/kernels'
 * gemvAnyprec, equal bit for bit to the formats' gemvAnyPrecision (test/any-precision-linear.test.ts).
 */
export function anyPrecisionMatmul(
  k: Kernels, name: string, t: AnyPrecisionTensor, resident: readonly WasmTensor[], x: Float32Array, batch: number, bits: number | undefined, out?: Float32Array,
): Float32Array {
  const b = resolveBits(name, t, bits);
  const [rows, cols] = t.shape;
  if (x.length !== batch * cols) throw new LowbitError('E_SHAPE', `${name}: input has ${x.length} values, batch ${batch} × ${cols} needed`);
  const gone = (v: WasmTensor | undefined) => !(v instanceof WasmTensor) || v.freed;
  const f = b <= ANYPREC_FAST_MAX_BITS ? fastAt(t, resident) : -1;
  if (f >= 0) {
    const i = b - t.seedBits;
    const [planes, tables, params] = [resident[f], resident[f + 1 + 2 * i], resident[f + 2 + 2 * i]];
    if ([planes, tables, params].some(gone)) throw new LowbitError('E_ARG', `${name}: the layer's resident planes are gone (freed)`);
    const y = gemvAnyprecFast(k, { rows, cols, bits: b, planeCount: Math.min(t.maxBits, ANYPREC_FAST_MAX_BITS), planes, tables, params }, x, batch, out);
    if (y) return y;
    // uploadAnyPrecision prepares fast data only in a SIMD build, which gemvAnyprecFast runs
    throw new LowbitError('E_UNSUPPORTED', `${name}: gemvAnyprecFast needs a SIMD build of the kernels`);
  }
  const [planes, lut] = [resident[0], resident[1 + b - t.seedBits]];
  if (gone(planes) || gone(lut)) throw new LowbitError('E_ARG', `${name}: the layer's resident planes are gone (freed)`);
  const y = gemvAnyprec(k, { planes, lut, rows, cols, maxBits: t.maxBits, bits: b, x });
  if (!out) return y;
  out.set(y);
  return out;
}

/** The tensor with its output rows reordered or picked (row r of the result is row src[r]); planes and tables follow. */
export function permuteAnyPrecisionRows(t: AnyPrecisionTensor, src: Int32Array): AnyPrecisionTensor {
  const [rows, cols] = t.shape;
  const rpb = Math.ceil(cols / 8);
  const n = src.length;
  for (const s of src) if (!(s >= 0 && s < rows)) throw new LowbitError('E_SHAPE', `permuteAnyPrecisionRows: row ${s} picked from ${rows}`);
  const planes = new Uint8Array(t.maxBits * n * rpb);
  for (let b = 0; b < t.maxBits; b++) {
    src.forEach((s, r) => planes.set(t.planes.subarray((b * rows + s) * rpb, (b * rows + s + 1) * rpb), (b * n + r) * rpb));
  }
  const luts = t.luts.map((l, i) => {
    const m = 2 ** (t.seedBits + i);
    const out = new Float32Array(n * m);
    src.forEach((s, r) => out.set(l.subarray(s * m, (s + 1) * m), r * m));
    return out;
  });
  return { ...t, shape: [n, cols], planes, luts };
}

/** What `__metadata__` lowbit.any_precision says of one layer. */
export interface AnyPrecisionEntry {
  seedBits: number;
  maxBits: number;
  shape: [number, number];
}

/** The planes and the concatenated tables of a tensor, as a file stores them. */
export function encodeAnyPrecision(t: AnyPrecisionTensor): { entry: AnyPrecisionEntry; planes: Uint8Array; luts: Float32Array } {
  validatePacked('encodeAnyPrecision', t);
  const luts = new Float32Array(t.luts.reduce((s, l) => s + l.length, 0));
  let at = 0;
  for (const l of t.luts) {
    luts.set(l, at);
    at += l.length;
  }
  return { entry: { seedBits: t.seedBits, maxBits: t.maxBits, shape: [t.shape[0], t.shape[1]] }, planes: t.planes, luts };
}

/**
 * Sizes a layer's stored sections from its metadata entry, every field checked, before anything is
 * read: the caller compares them with the file's tensor headers and then reads.
 */
export function anyPrecisionSizes(where: string, e: unknown, rows: number, cols: number): { seedBits: number; maxBits: number; planeBytes: number; lutValues: number } {
  if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new LowbitError('E_BAD_FILE', `${where}: lowbit.any_precision entry is not an object`);
  const { seedBits, maxBits, shape } = e as Partial<AnyPrecisionEntry>;
  if (!Number.isInteger(seedBits) || !Number.isInteger(maxBits) || (seedBits as number) < 1 || (maxBits as number) < (seedBits as number) || (maxBits as number) > 8) {
    throw new LowbitError('E_BAD_FILE', `${where}: lowbit.any_precision seedBits ${JSON.stringify(seedBits)} / maxBits ${JSON.stringify(maxBits)} must satisfy 1 <= seedBits <= maxBits <= 8`);
  }
  if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== rows || shape[1] !== cols) {
    throw new LowbitError('E_SHAPE', `${where}: lowbit.any_precision shape ${JSON.stringify(shape)}, the config implies [${rows}, ${cols}]`);
  }
  let lutValues = 0;
  for (let b = seedBits as number; b <= (maxBits as number); b++) lutValues += rows * 2 ** b;
  return { seedBits: seedBits as number, maxBits: maxBits as number, planeBytes: (maxBits as number) * rows * Math.ceil(cols / 8), lutValues };
}

/** A tensor from its checked sizes and the bytes read for them. */
export function decodeAnyPrecision(where: string, s: ReturnType<typeof anyPrecisionSizes>, rows: number, cols: number, planes: Uint8Array, luts: Float32Array): AnyPrecisionTensor {
  if (planes.length !== s.planeBytes) throw new LowbitError('E_SHAPE', `${where}: anyprec_planes has ${planes.length} bytes, ${s.maxBits} planes of [${rows}, ${cols}] need ${s.planeBytes}`);
  if (luts.length !== s.lutValues) throw new LowbitError('E_SHAPE', `${where}: anyprec_luts has ${luts.length} values, ${s.seedBits}..${s.maxBits} bits need ${s.lutValues}`);
  const tables: Float32Array[] = [];
  let at = 0;
  for (let b = s.seedBits; b <= s.maxBits; b++) {
    tables.push(luts.slice(at, at + rows * 2 ** b));
    at += rows * 2 ** b;
  }
  const t: AnyPrecisionTensor = { kind: 'any-precision', seedBits: s.seedBits, maxBits: s.maxBits, shape: [rows, cols], luts: tables, planes };
  checkAnyPrecisionWeight(where, [rows, cols], t);
  return t;
}

/**
 * A tensor as GGUF's LB_ANYPREC stores it: the planes, then every width's table as little-endian f32
 * (the safetensors sections back to back); the widths travel in `lowbit.tensor.<name>`.
 */
export function anyPrecisionTensorBytes(t: AnyPrecisionTensor): Uint8Array {
  const { planes, luts } = encodeAnyPrecision(t);
  const out = new Uint8Array(planes.length + luts.length * 4);
  out.set(planes);
  const v = new DataView(out.buffer, planes.length);
  for (let i = 0; i < luts.length; i++) v.setFloat32(4 * i, luts[i], true);
  return out;
}

/** An LB_ANYPREC tensor from its bytes and parameters (ggml shape [cols, rows]); every size checked first. */
export function anyPrecisionFromBytes(where: string, params: unknown, shape: readonly number[], bytes: Uint8Array): AnyPrecisionTensor {
  const [cols, rows] = shape;
  const s = anyPrecisionSizes(where, { ...(params as object), shape: [rows, cols] }, rows, cols);
  if (bytes.length !== s.planeBytes + 4 * s.lutValues) throw new LowbitError('E_SHAPE', `${where}: ${bytes.length} bytes, LB_ANYPREC ${s.seedBits}..${s.maxBits} bits of [${rows}, ${cols}] needs ${s.planeBytes + 4 * s.lutValues}`);
  const v = new DataView(bytes.buffer, bytes.byteOffset + s.planeBytes, 4 * s.lutValues);
  const luts = Float32Array.from({ length: s.lutValues }, (_, i) => v.getFloat32(4 * i, true));
  return decodeAnyPrecision(where, s, rows, cols, bytes.slice(0, s.planeBytes), luts);
}
