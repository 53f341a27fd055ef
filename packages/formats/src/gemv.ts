import { gemvBitplanes, gemvBitplanesReference, type GemvLutGroupsArgs, gemvLutGroups, gemvLutGroupsReference, gemvMxFp8, type Kernels, LowbitError } from '@lowbit/kernels';
import { writeBits } from './bits.js';
import { contiguousInt } from './int-quant.js';
import { decodeInt } from './integer.js';
import { MINIFLOATS, decodeMinifloat } from './minifloat.js';
import { MX_BLOCK } from './mx-spec.js';
import { NF4_TABLE } from './nf4.js';
import type { AnyPrecisionTensor, CodebookTensor, MxFormatName, MxTensor, Nf4Tensor, PackedIntTensor } from './tensor-types.js';
import { validatePacked } from './validate.js';

/**
 * Decode-into-GEMV (y = W·x with W kept packed) for INT-k, NF4, per-channel codebooks and MX
 * matrices. Every format becomes one call of @lowbit/kernels' table-driven kernel: a table of code
 * values, per-group scales (f32 or E8M0) and optional zero points (MXFP8 in WASM: gemvMxFp8, the
 * same arithmetic with the codes decoded by bit moves instead of the table). `gemvPacked` is the TypeScript
 * definition and `gemvPackedWasm` the WASM path; they agree bit for bit (test/gemv.test.ts). Both
 * compute Σ_g s_g·Σ_c (table[u] − z_g)·x_c in f32, which is the dequantized matrix times x up to
 * f32 rounding order.
 */
export type GemvTensor = PackedIntTensor | Nf4Tensor | CodebookTensor | (MxTensor & { shape: [number, number] }) | MxRowsGemv;

/**
 * MX with blocks of 32 along each row (a row's last block may be partial, where the flat MxTensor's
 * blocks would cross rows): one element code per byte [rows·cols], E8M0 scales [rows·⌈cols/32⌉].
 * What GPTQ onto MX grids produces for rows that are not whole blocks (@lowbit/runtime MxRowsTensor).
 */
export interface MxRowsGemv {
  kind: 'mx-rows';
  format: MxFormatName;
  shape: [number, number];
  scales: Uint8Array;
  codes: Uint8Array;
}

const intTables = new Map<string, Float32Array>();

// Symmetric INT-k: table[u] = u − 2^(k−1) (the zero is in the table); asymmetric: table[u] = u, zeros per group.
function intTable(bits: number, symmetric: boolean): Float32Array {
  const key = `${bits}${symmetric}`;
  let t = intTables.get(key);
  if (!t) {
    const off = symmetric ? 2 ** (bits - 1) : 0;
    t = Float32Array.from({ length: 2 ** bits }, (_, u) => u - off);
    intTables.set(key, t);
  }
  return t;
}

const MX_VALUE: Record<MxFormatName, { bits: number; value: (c: number) => number }> = {
  mxfp8_e4m3: { bits: 8, value: (c) => decodeMinifloat(MINIFLOATS.fp8_e4m3, c) },
  mxfp8_e5m2: { bits: 8, value: (c) => decodeMinifloat(MINIFLOATS.fp8_e5m2, c) },
  mxfp6_e3m2: { bits: 6, value: (c) => decodeMinifloat(MINIFLOATS.fp6_e3m2, c) },
  mxfp6_e2m3: { bits: 6, value: (c) => decodeMinifloat(MINIFLOATS.fp6_e2m3, c) },
  mxfp4: { bits: 4, value: (c) => decodeMinifloat(MINIFLOATS.fp4_e2m1, c) },
  mxint8: { bits: 8, value: (c) => decodeInt(8, c) / 64 },
};
const mxTables = new Map<MxFormatName, Float32Array>();
const mxPacked = new WeakMap<object, Uint8Array>();

function mxLut(format: MxFormatName): { bits: number; lut: Float32Array } {
  const e = MX_VALUE[format];
  if (!e) throw new LowbitError('E_FORMAT', `gemvPacked: unknown MX format "${format}"`);
  let lut = mxTables.get(format);
  if (!lut) {
    lut = Float32Array.from({ length: 2 ** e.bits }, (_, c) => e.value(c));
    mxTables.set(format, lut);
  }
  return { bits: e.bits, lut };
}

/** MX codes (one per byte in MxTensor) packed at the element width, int-k bit order: 4.25 bits/weight for MXFP4. */
export function packMxCodes(t: MxTensor): Uint8Array {
  const e = MX_VALUE[t.format];
  if (!e) throw new LowbitError('E_FORMAT', `packMxCodes: unknown MX format "${t.format}"`);
  const codes = t.codes;
  if (e.bits === 8) return codes.slice();
  const out = new Uint8Array(Math.ceil((codes.length * e.bits) / 8));
  if (e.bits === 4) {
    // Element 2j in the low nibble of byte j, 2j+1 in the high nibble (the int-k convention).
    const n2 = codes.length >> 1;
    for (let j = 0; j < n2; j++) out[j] = (codes[2 * j] & 15) | ((codes[2 * j + 1] & 15) << 4);
    if (codes.length & 1) out[n2] = codes[codes.length - 1] & 15;
    return out;
  }
  for (let i = 0; i < codes.length; i++) writeBits(out, i * e.bits, e.bits, codes[i]);
  return out;
}

/**
 * One kernel call without its input: `xScale` (per-IC scales folded into x) is applied per call,
 * and `xOrder` (act-order groups, `gIdx`) gathers x into the order the codes were re-packed in.
 */
type Plan = Omit<GemvLutGroupsArgs, 'x' | 'out'> & { xScale: Float32Array | null; xOrder?: Int32Array; fp8?: 'e4m3' | 'e5m2' };

const FP8: Partial<Record<MxFormatName, 'e4m3' | 'e5m2'>> = { mxfp8_e4m3: 'e4m3', mxfp8_e5m2: 'e5m2' };

/**
 * The WASM call of a plan: MXFP8 on the kernels' bit-decoding GEMV (gemvMxFp8, equal to the table
 * kernel bit for bit, ~20x faster on 4096×4096), everything else (and MXFP8 where that kernel
 * declines: scalar build, partial blocks) on the table kernel.
 */
function wasmCall(k: Kernels): (a: GemvLutGroupsArgs & { fp8?: 'e4m3' | 'e5m2' }) => Float32Array {
  return (a) => {
    const y = a.fp8 ? gemvMxFp8(k, { codes: a.codes, rows: a.rows, cols: a.cols, e5m2: a.fp8 === 'e5m2', scales: a.scales as Uint8Array, x: a.x, out: a.out }) : null;
    return y ?? gemvLutGroups(k, a);
  };
}

/** The kernel calls of a packed matrix (one, or one per block of rows when scales vary along cols). */
function plans(t: GemvTensor): Plan[] {
  const shape = t.shape;
  if (!Array.isArray(shape) || shape.length !== 2) throw new LowbitError('E_SHAPE', 'gemvPacked: the tensor needs a [rows, cols] shape');
  const [rows, cols] = shape;
  const kind = 'kind' in t && t.kind !== undefined ? t.kind : 'mx';
  switch (kind) {
    case 'nf4': {
      const n = t as Nf4Tensor;
      return [{ codes: n.codes, rows, cols, bits: 4, lut: NF4_TABLE, scales: n.scales, zeros: null, group: n.group, xScale: null }];
    }
    case 'codebook': {
      const b = t as CodebookTensor;
      return [{ codes: b.codes, rows, cols, bits: b.bits, lut: b.lut, lutPerRow: true, scales: null, zeros: null, group: Math.max(1, cols), xScale: null }];
    }
    case 'mx': {
      const m = t as MxTensor & { shape: [number, number] };
      const e = MX_VALUE[m.format];
      if (!e) throw new LowbitError('E_FORMAT', `gemvPacked: unknown MX format "${m.format}"`);
      // MX blocks run over the flat tensor; they line up with rows only when cols is a multiple of 32.
      if (cols % MX_BLOCK !== 0 || m.length !== rows * cols) throw new LowbitError('E_SHAPE', `gemvPacked: an MX matrix needs ${rows}·${cols} values and cols a multiple of ${MX_BLOCK}`);
      let lut = mxTables.get(m.format);
      if (!lut) {
        lut = Float32Array.from({ length: 2 ** e.bits }, (_, c) => e.value(c));
        mxTables.set(m.format, lut);
      }
      // packed once per tensor: a model's layer is multiplied once per token
      let codes = mxPacked.get(m);
      if (!codes) {
        codes = packMxCodes(m);
        mxPacked.set(m, codes);
      }
      return [{ codes, rows, cols, bits: e.bits, lut, scales: m.scales, zeros: null, group: MX_BLOCK, xScale: null, fp8: FP8[m.format] }];
    }
    case 'int':
      return intPlans(t as PackedIntTensor);
    case 'mx-rows': {
      const m = t as MxRowsGemv;
      const { bits, lut } = mxLut(m.format);
      const nb = Math.ceil(cols / MX_BLOCK);
      if (!(m.codes instanceof Uint8Array) || m.codes.length !== rows * cols) throw new LowbitError('E_SHAPE', `gemvPacked: MX rows [${rows}, ${cols}] need ${rows * cols} codes`);
      if (!(m.scales instanceof Uint8Array) || m.scales.length !== rows * nb) throw new LowbitError('E_SHAPE', `gemvPacked: MX rows [${rows}, ${cols}] need ${rows * nb} E8M0 scales`);
      // each row's codes at the element width, rows byte-aligned: the layout of INT-k groups along cols,
      // so a partial last block is the kernel's partial last group
      let codes = mxPacked.get(m);
      if (!codes) {
        const rb = Math.ceil((cols * bits) / 8);
        codes = new Uint8Array(rows * rb);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const u = m.codes[r * cols + c];
            if (u >> bits) throw new LowbitError('E_ARG', `gemvPacked: MX code ${u} at [${r}, ${c}] does not fit ${bits} bits`);
            writeBits(codes, r * rb * 8 + c * bits, bits, u);
          }
        }
        mxPacked.set(m, codes);
      }
      return [{ codes, rows, cols, bits, lut, scales: m.scales, zeros: null, group: MX_BLOCK, xScale: null, fp8: FP8[m.format] }];
    }
    default:
      throw new LowbitError('E_UNSUPPORTED', `gemvPacked: no GEMV for packed tensors of kind "${kind}"`);
  }
}

function intPlans(t: PackedIntTensor): Plan[] {
  if (t.gIdx) {
    const c = contiguousInt(t);
    return intPlans(c.tensor).map((p) => ({ ...p, xOrder: c.order }));
  }
  const [rows, cols] = t.shape;
  const lut = intTable(t.bits, t.zeros === null);
  const base = { codes: t.codes, rows, cols, bits: t.bits, lut, xScale: null };
  switch (t.granularity) {
    case 'group-cols':
      return [{ ...base, scales: t.scales, zeros: t.zeros, group: t.group }];
    case 'per-oc':
      return [{ ...base, scales: t.scales, zeros: t.zeros, group: Math.max(1, cols) }];
    case 'tensor':
      return [{ ...base, scales: new Float32Array(rows).fill(t.scales[0]), zeros: t.zeros && new Float32Array(rows).fill(t.zeros[0]), group: Math.max(1, cols) }];
    case 'per-ic':
    case 'group-rows': {
      // Scales that vary along the input dimension fold into x: Σ_c s_c·(u − zs)·x_c = Σ_c (u − zs)·(s_c·x_c),
      // one call per block of rows sharing a scale vector (AdaDim's per-IC groups). Asymmetric zero
      // points vary along c too and do not fold; decode those with dequantizeInt.
      if (t.zeros) throw new LowbitError('E_UNSUPPORTED', `gemvPacked: asymmetric ${t.granularity} INT-k has no GEMV path; use dequantizeInt`);
      const block = t.granularity === 'per-ic' ? Math.max(1, rows) : t.group;
      const rb = Math.ceil((cols * t.bits) / 8);
      const out: Plan[] = [];
      for (let r0 = 0, b = 0; r0 < rows; r0 += block, b++) {
        const n = Math.min(block, rows - r0);
        const xScale = t.scales.subarray(b * cols, (b + 1) * cols);
        out.push({ ...base, codes: t.codes.subarray(r0 * rb, (r0 + n) * rb), rows: n, scales: null, zeros: null, group: Math.max(1, cols), xScale });
      }
      return out;
    }
    default:
      throw new LowbitError('E_ARG', `gemvPacked: unknown granularity "${t.granularity as string}"`);
  }
}

function run(ps: Plan[], [rows, cols]: [number, number], x: Float32Array, call: (a: GemvLutGroupsArgs) => Float32Array): Float32Array {
  if (!(x instanceof Float32Array)) throw new LowbitError('E_DTYPE', 'gemvPacked: x must be a Float32Array');
  if (x.length !== cols) throw new LowbitError('E_SHAPE', `gemvPacked: x has ${x.length} values, the matrix has ${cols} columns`);
  const out = new Float32Array(rows);
  let r0 = 0;
  for (const p of ps) {
    const xs = p.xScale;
    const xo = p.xOrder;
    const xin = xo ? Float32Array.from(xo, (c) => x[c]) : x;
    out.set(call({ ...p, x: xs ? Float32Array.from(xin, (v, c) => xs[c] * v) : xin }), r0);
    r0 += p.rows;
  }
  return out;
}

/** y = W·x for a packed matrix, in TypeScript (the definition the WASM path is tested against). */
export function gemvPacked(t: GemvTensor, x: Float32Array): Float32Array {
  return run(plans(t), t.shape, x, gemvLutGroupsReference);
}

/** y = W·x for a packed matrix, in WASM (@lowbit/kernels), equal to gemvPacked bit for bit. One-shot: copies the codes in. */
export function gemvPackedWasm(k: Kernels, t: GemvTensor, x: Float32Array): Float32Array {
  return run(plans(t), t.shape, x, wasmCall(k));
}

/** A packed matrix whose codes live in WASM memory (packed and copied once, as model weights are). */
export interface ResidentGemv {
  readonly rows: number;
  readonly cols: number;
  /** y = W·x, equal to gemvPacked(t, x) bit for bit. */
  gemv(x: Float32Array): Float32Array;
  free(): void;
}

export function uploadGemv(k: Kernels, t: GemvTensor): ResidentGemv {
  const ps = plans(t).map((p) => ({ ...p, codes: k.upload(p.codes as Uint8Array) }));
  let freed = false;
  return {
    rows: t.shape[0],
    cols: t.shape[1],
    gemv(x) {
      if (freed) throw new LowbitError('E_ARG', 'ResidentGemv.gemv: this matrix was freed');
      return run(ps, t.shape, x, wasmCall(k));
    },
    free() {
      if (!freed) for (const p of ps) p.codes.free();
      freed = true;
    },
  };
}

function bitplaneArgs(fn: string, t: AnyPrecisionTensor, bits: number, x: Float32Array) {
  validatePacked(fn, t);
  if (!Number.isInteger(bits) || bits < t.seedBits || bits > t.maxBits) {
    throw new LowbitError('E_ARG', `${fn}: this tensor holds ${t.seedBits} to ${t.maxBits} bits, asked for ${bits}`);
  }
  const [rows, cols] = t.shape;
  return { planes: t.planes, rows, cols, maxBits: t.maxBits, bits, lut: t.luts[bits - t.seedBits], x };
}

/**
 * y = W·x for the `bits`-bit model of an any-precision tensor, reading only its top `bits` planes
 * (any-precision serving: one stored model, the width chosen per call). TypeScript definition.
 */
export function gemvAnyPrecision(t: AnyPrecisionTensor, bits: number, x: Float32Array): Float32Array {
  return gemvBitplanesReference(bitplaneArgs('gemvAnyPrecision', t, bits, x));
}

/** gemvAnyPrecision in WASM, equal to it bit for bit. */
export function gemvAnyPrecisionWasm(k: Kernels, t: AnyPrecisionTensor, bits: number, x: Float32Array): Float32Array {
  return gemvBitplanes(k, bitplaneArgs('gemvAnyPrecisionWasm', t, bits, x));
}
