import { LowbitError } from '@lowbit/kernels';
import { MINIFLOATS, type MxFormatName, type MxTensor, decodeInt, decodeMinifloat, encodeMinifloat, minifloatLimits, roundEven } from '@lowbit/formats';
import type { Grid, GridParams } from './grid.js';

interface Element {
  bits: number;
  emax: number;
  encode(v: number): number;
  decode(c: number): number;
}

const MINIFLOAT_OF: Partial<Record<MxFormatName, keyof typeof MINIFLOATS>> = {
  mxfp8_e4m3: 'fp8_e4m3', mxfp8_e5m2: 'fp8_e5m2', mxfp6_e3m2: 'fp6_e3m2', mxfp6_e2m3: 'fp6_e2m3', mxfp4: 'fp4_e2m1',
};

/**
 * OCP MX as a GPTQ grid: each group of 32 along a row shares an E8M0 scale 2^(⌊log2 amax⌋ − emax_elem)
 * (spec §6.3, the rule of `@lowbit/formats` `quantizeMx`), elements round to nearest even in the
 * element format and saturate. Used with `group: 32`; codes are the element codes.
 */
export class MxGrid implements Grid {
  readonly format: MxFormatName;
  readonly bits: number;
  readonly symmetric = true;
  private readonly el: Element;
  private readonly table: Float64Array;

  constructor(format: MxFormatName) {
    this.format = format;
    const mf = MINIFLOAT_OF[format];
    if (mf) {
      const s = MINIFLOATS[mf];
      const lim = minifloatLimits(s);
      this.el = { bits: lim.bits, emax: lim.emax, encode: (v) => encodeMinifloat(s, v, true), decode: (c) => decodeMinifloat(s, c) };
    } else if (format === 'mxint8') {
      // MXINT8: two's complement with an implicit scale of 2^−6 (values in [−2, 2))
      this.el = { bits: 8, emax: 0, encode: (v) => Math.min(127, Math.max(-127, roundEven(v * 64))) & 0xff, decode: (c) => decodeInt(8, c) / 64 };
    } else throw new LowbitError('E_FORMAT', `MX grid: unknown format "${format as string}"`);
    this.bits = this.el.bits;
    this.table = Float64Array.from({ length: 2 ** this.bits }, (_, c) => this.el.decode(c));
  }

  findParams(w: Float64Array, rows: number, stride: number, c0: number, c1: number): GridParams {
    const scale = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(Math.fround(w[r * stride + c])));
      let e = amax === 0 ? -127 : Math.floor(Math.log2(amax)) - this.el.emax;
      if (amax !== 0 && 2 ** (e + this.el.emax) > amax) e--;
      scale[r] = 2 ** Math.min(127, Math.max(-127, e));
    }
    return { scale, zero: new Float64Array(rows) };
  }

  code(x: number, r: number, p: GridParams): number {
    return this.el.encode(Math.fround(x) / p.scale[r]);
  }

  value(u: number, r: number, p: GridParams): number {
    return Math.fround(this.table[u] * p.scale[r]);
  }
}

/** The GPTQ result as a formats MxTensor (rows must be whole blocks, so blocks do not cross rows). */
export function mxTensor(format: MxFormatName, codes: Uint8Array, rows: number, cols: number, scales: Float32Array): MxTensor {
  if (cols % 32 !== 0) throw new LowbitError('E_SHAPE', `${format}: rows of ${cols} values are not whole 32-blocks`);
  const e8m0 = Uint8Array.from(scales, (s) => Math.log2(s) + 127);
  return { format, length: rows * cols, scales: e8m0, codes: Uint8Array.from(codes) };
}
