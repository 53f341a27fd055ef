import { LowbitError } from '@lowbit/kernels';
import { rowBytes } from './bits.js';
import { scaleLayout } from './int-layout.js';
import { checkIntParams } from './int-storage.js';
import { MX_BLOCK, MX_FORMATS } from './mx-spec.js';
import type { AnyPrecisionTensor, BcqTensor, CodebookTensor, MxTensor, Nf4Tensor, PackedIntTensor, PackedTensor as Any } from './tensor-types.js';

// Every decoder checks its tensor before reading it: a packed tensor may come from bytes on disk,
// and a wrong length must be an error naming the field, not a silent read past the data.

function fail(fn: string, msg: string): never {
  throw new LowbitError('E_SHAPE', `${fn}: ${msg}`);
}

function intIn(fn: string, name: string, v: unknown, lo: number, hi: number): number {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi) throw new LowbitError('E_ARG', `${fn}: ${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v as number;
}

function typed(fn: string, name: string, a: unknown, ctor: typeof Float32Array | typeof Uint8Array, n: number): void {
  if (!(a instanceof ctor)) throw new LowbitError('E_DTYPE', `${fn}: ${name} must be a ${ctor.name}`);
  if (a.length !== n) fail(fn, `${name} has ${a.length} entries, expected ${n}`);
}

function shape2(fn: string, s: unknown): [number, number] {
  if (!Array.isArray(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d >= 0)) fail(fn, `shape must be [rows, cols], got ${JSON.stringify(s)}`);
  return s as [number, number];
}

/** A column → group map must name every column, and group g must hold exactly min(group, cols − g·group) columns. */
function validateGIdx(fn: string, g: unknown, cols: number, p: PackedIntTensor): void {
  if (p.granularity !== 'group-cols') throw new LowbitError('E_ARG', `${fn}: gIdx (column → group map) needs granularity group-cols, got ${p.granularity}`);
  if (!(g instanceof Int32Array)) throw new LowbitError('E_DTYPE', `${fn}: gIdx must be an Int32Array`);
  if (g.length !== cols) fail(fn, `gIdx has ${g.length} entries, expected ${cols} (one per column)`);
  const ng = Math.ceil(cols / p.group);
  const count = new Int32Array(ng);
  for (let c = 0; c < cols; c++) {
    const v = g[c];
    if (!(v >= 0 && v < ng)) throw new LowbitError('E_ARG', `${fn}: gIdx[${c}] = ${v} is not a group in [0, ${ng})`);
    count[v]++;
  }
  for (let i = 0; i < ng; i++) {
    const want = Math.min(p.group, cols - i * p.group);
    if (count[i] !== want) fail(fn, `gIdx puts ${count[i]} columns in group ${i}, expected ${want} (groups of ${p.group})`);
  }
}

/** Throws LowbitError unless every array of `t` has the length its kind, shape and parameters imply. */
export function validatePacked(fn: string, t: Any): void {
  if (t === null || typeof t !== 'object') throw new LowbitError('E_ARG', `${fn}: expected a packed tensor`);
  const kind = 'kind' in t && t.kind !== undefined ? t.kind : 'mx';
  switch (kind) {
    case 'int': {
      const p = t as PackedIntTensor;
      const [rows, cols] = shape2(fn, p.shape);
      const bits = intIn(fn, 'bits', p.bits, 2, 8);
      if (p.granularity === 'group-cols' || p.granularity === 'group-rows') intIn(fn, 'group size', p.group, 1, Number.MAX_SAFE_INTEGER);
      const n = scaleLayout([rows, cols], p.granularity, p.group).count;
      typed(fn, 'scales', p.scales, Float32Array, n);
      if (p.zeros !== null) typed(fn, 'zeros', p.zeros, Float32Array, n);
      typed(fn, 'codes', p.codes, Uint8Array, rows * rowBytes(cols, bits));
      // only what fp16 scales and integer zeros can hold is a packed INT-k tensor: what runs is what is
      // stored (zeros up to 2^bits: GPTQ v1 checkpoints; the k-bit writers refuse those)
      checkIntParams(fn, bits, p.scales, p.zeros, true);
      if (p.gIdx !== undefined && p.gIdx !== null) validateGIdx(fn, p.gIdx, cols, p);
      return;
    }
    case 'mx': {
      const m = t as MxTensor;
      if (!MX_FORMATS.includes(m.format)) throw new LowbitError('E_FORMAT', `${fn}: unknown MX format "${m.format}"; known: ${MX_FORMATS.join(', ')}`);
      const n = intIn(fn, 'length', m.length, 0, Number.MAX_SAFE_INTEGER);
      typed(fn, 'scales', m.scales, Uint8Array, Math.ceil(n / MX_BLOCK));
      typed(fn, 'codes', m.codes, Uint8Array, n);
      return;
    }
    case 'nf4': {
      const q = t as Nf4Tensor;
      const [rows, cols] = shape2(fn, q.shape);
      const g = intIn(fn, 'group size', q.group, 1, Number.MAX_SAFE_INTEGER);
      typed(fn, 'scales', q.scales, Float32Array, rows * Math.ceil(cols / g));
      typed(fn, 'codes', q.codes, Uint8Array, rows * rowBytes(cols, 4));
      return;
    }
    case 'codebook': {
      const b = t as CodebookTensor;
      const [rows, cols] = shape2(fn, b.shape);
      const bits = intIn(fn, 'bits', b.bits, 1, 8);
      typed(fn, 'lut', b.lut, Float32Array, rows * 2 ** bits);
      typed(fn, 'codes', b.codes, Uint8Array, rows * rowBytes(cols, bits));
      return;
    }
    case 'bcq': {
      const b = t as BcqTensor;
      const [rows, cols] = shape2(fn, b.shape);
      const bits = intIn(fn, 'bits', b.bits, 1, 8);
      const g = intIn(fn, 'group size', b.group, 1, Number.MAX_SAFE_INTEGER);
      typed(fn, 'alphas', b.alphas, Float32Array, rows * Math.ceil(cols / g) * bits);
      typed(fn, 'planes', b.planes, Uint8Array, bits * rows * Math.ceil(cols / 8));
      return;
    }
    case 'any-precision': {
      const a = t as AnyPrecisionTensor;
      const [rows, cols] = shape2(fn, a.shape);
      const seed = intIn(fn, 'seedBits', a.seedBits, 1, 8);
      const max = intIn(fn, 'maxBits', a.maxBits, seed, 8);
      if (!Array.isArray(a.luts) || a.luts.length !== max - seed + 1) fail(fn, `luts must hold ${max - seed + 1} tables (${seed}..${max} bits)`);
      a.luts.forEach((l, i) => typed(fn, `luts[${i}]`, l, Float32Array, rows * 2 ** (seed + i)));
      typed(fn, 'planes', a.planes, Uint8Array, max * rows * Math.ceil(cols / 8));
      return;
    }
    default:
      throw new LowbitError('E_FORMAT', `${fn}: unknown packed tensor kind "${String(kind)}"`);
  }
}
