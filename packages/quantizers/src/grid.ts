import { LowbitError } from '@lowbit/kernels';
import { f16Scale, roundEven } from '@lowbit/formats';

/**
 * The numeric grid a quantizer rounds onto, separate from the algorithm (as gptq.py's `Quantizer`
 * is separate from `GPTQ`): `findParams` fits one scale (and zero) per row to a block of the
 * current weights, `quantize` rounds one value of a row onto that row's grid.
 */
export interface GridParams {
  /** Per-row scale [rows] (exactly the stored value: fp16 for INT-k, f16 for ggml, a power of two for MX). */
  scale: Float64Array;
  /** Per-row zero point [rows] in code units. */
  zero: Float64Array;
}

export interface Grid {
  readonly bits: number;
  readonly symmetric: boolean;
  /** Fit per-row params to columns [c0, c1) of a row-major [rows, stride] matrix. */
  findParams(w: Float64Array, rows: number, stride: number, c0: number, c1: number): GridParams;
  /** The code u ∈ [0, 2^bits − 1] of value x in row r. */
  code(x: number, r: number, p: GridParams): number;
  /** The value of code u in row r: scale·(u − zero). */
  value(u: number, r: number, p: GridParams): number;
}

export interface IntGridOptions {
  bits: number;
  /** Symmetric (zero = 2^(bits−1)) or asymmetric with an integer zero point. Default true. */
  symmetric?: boolean;
  /** Range shrink factor in (0, 1]: the grid covers clip·[min, max] (Q-Rater's clipping ratio). */
  clip?: number;
}

/**
 * INT-k on the CONTRIBUTING.md convention, with the exact scale rules of `@lowbit/formats`
 * `findIntParams` (fp16 scales; symmetric: f16(amax/((2^k − 1)/2)); asymmetric: f16((max − min)/(2^k − 1)) with the range
 * widened to contain 0 and zero = round(−min/scale)), so a tensor built from these codes decodes
 * with `dequantizeInt` to exactly the values the algorithm saw.
 */
export class IntGrid implements Grid {
  readonly bits: number;
  readonly symmetric: boolean;
  readonly clip: number;
  private readonly qmax: number;

  constructor(o: IntGridOptions) {
    if (!Number.isInteger(o.bits) || o.bits < 2 || o.bits > 8) throw new LowbitError('E_ARG', `int grid: bits must be 2..8, got ${o.bits}`);
    const clip = o.clip ?? 1;
    if (!(clip > 0 && clip <= 1)) throw new LowbitError('E_ARG', `int grid: clip must be in (0, 1], got ${clip}`);
    this.bits = o.bits;
    this.symmetric = o.symmetric ?? true;
    this.clip = clip;
    this.qmax = 2 ** o.bits - 1;
  }

  findParams(w: Float64Array, rows: number, stride: number, c0: number, c1: number): GridParams {
    const scale = new Float64Array(rows);
    const zero = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let lo = 0;
      let hi = 0;
      for (let c = c0; c < c1; c++) {
        const v = Math.fround(w[r * stride + c]);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (this.symmetric) {
        const amax = Math.max(-lo, hi) * this.clip;
        // rounded to fp16 (the stored type) before any code is chosen, so GPTQ's error feedback
        // compensates the scale's rounding as well
        scale[r] = amax > 0 ? f16Scale(amax / (this.qmax / 2)) : 1;
        zero[r] = 2 ** (this.bits - 1);
      } else {
        const mn = lo * this.clip;
        const mx = hi * this.clip;
        scale[r] = mx > mn ? f16Scale((mx - mn) / this.qmax) : 1;
        zero[r] = Math.min(this.qmax, Math.max(0, roundEven(-mn / scale[r])));
      }
    }
    return { scale, zero };
  }

  code(x: number, r: number, p: GridParams): number {
    return Math.min(this.qmax, Math.max(0, roundEven(Math.fround(x) / p.scale[r]) + p.zero[r]));
  }

  value(u: number, r: number, p: GridParams): number {
    return Math.fround(p.scale[r] * (u - p.zero[r]));
  }
}
