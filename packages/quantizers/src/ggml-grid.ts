import { GGML_BLOCK_BYTES, LowbitError, f16ToF32, f32ToF16 } from '@lowbit/kernels';
import { roundEven } from '@lowbit/formats';
import type { Grid, GridParams } from './grid.js';

export type GgmlType = 'q4_0' | 'q4_1' | 'q8_0';

const f16 = (v: number) => f16ToF32(f32ToF16(v));

/**
 * The grids of llama.cpp's block types (ggml-common.h), so a GPTQ result is stored exactly in a
 * GGUF tensor llama.cpp runs: groups of 32 along a row with an f16 scale.
 *  - q4_0: d = f16(max/−8) where max is the value of largest magnitude (sign kept, as
 *    quantize_row_q4_0_ref does, so the extreme maps to code 0 exactly); value = d·(u − 8).
 *  - q4_1: d = f16((max − min)/15), m = f16(min); value = d·u + m (`zero` holds m here).
 *  - q8_0: d = f16(amax/127); value = d·(u − 128) with u − 128 ∈ [−127, 127].
 * Codes are chosen by round-to-nearest against the stored (f16) d, which can differ from llama.cpp's
 * truncating reference encoder by one code at a tie; any code is a valid block.
 */
export class GgmlGrid implements Grid {
  readonly type: GgmlType;
  readonly bits: number;
  readonly symmetric: boolean;

  constructor(type: GgmlType) {
    if (type !== 'q4_0' && type !== 'q4_1' && type !== 'q8_0') throw new LowbitError('E_FORMAT', `ggml grid: unknown type "${type as string}" (q4_0, q4_1, q8_0)`);
    this.type = type;
    this.bits = type === 'q8_0' ? 8 : 4;
    this.symmetric = type !== 'q4_1';
  }

  findParams(w: Float64Array, rows: number, stride: number, c0: number, c1: number): GridParams {
    const scale = new Float64Array(rows);
    const zero = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let amax = 0;
      let max = 0;
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (let c = c0; c < c1; c++) {
        const v = Math.fround(w[r * stride + c]);
        if (Math.abs(v) > amax) {
          amax = Math.abs(v);
          max = v;
        }
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (this.type === 'q4_0') {
        scale[r] = f16(max / -8);
        zero[r] = 8;
      } else if (this.type === 'q8_0') {
        scale[r] = f16(amax / 127);
        zero[r] = 128;
      } else {
        scale[r] = f16((hi - lo) / 15);
        zero[r] = f16(lo);
      }
    }
    return { scale, zero };
  }

  code(x: number, r: number, p: GridParams): number {
    const d = p.scale[r];
    if (this.type === 'q4_1') return d === 0 ? 0 : Math.min(15, Math.max(0, roundEven((x - p.zero[r]) / d)));
    if (d === 0) return p.zero[r];
    const [lo, hi] = this.type === 'q8_0' ? [-127, 127] : [-8, 7];
    return Math.min(hi, Math.max(lo, roundEven(x / d))) + p.zero[r];
  }

  value(u: number, r: number, p: GridParams): number {
    if (this.type === 'q4_1') return Math.fround(Math.fround(p.scale[r] * u) + p.zero[r]);
    return Math.fround(p.scale[r] * (u - p.zero[r]));
  }
}

/**
 * llama.cpp blocks from codes [rows, cols] and per-(row, group of 32) params: byte j of a 4-bit
 * block holds element j (low nibble) and j + 16 (high nibble), not the int-k order.
 */
export function ggmlBlocks(type: GgmlType, codes: Uint8Array, rows: number, cols: number, scales: Float32Array, zeros: Float32Array | null): Uint8Array {
  if (cols % 32 !== 0) throw new LowbitError('E_SHAPE', `${type}: rows of ${cols} values are not a whole number of 32-blocks; keep this tensor at F16`);
  const nb = cols / 32;
  const bb = GGML_BLOCK_BYTES[type];
  const out = new Uint8Array(rows * nb * bb);
  const view = new DataView(out.buffer);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = (r * nb + b) * bb;
      const s = r * nb + b;
      view.setUint16(o, f32ToF16(scales[s]), true);
      const base = r * cols + b * 32;
      if (type === 'q8_0') {
        for (let j = 0; j < 32; j++) view.setInt8(o + 2 + j, codes[base + j] - 128);
        continue;
      }
      let q = o + 2;
      if (type === 'q4_1') {
        view.setUint16(o + 2, f32ToF16((zeros as Float32Array)[s]), true);
        q = o + 4;
      }
      for (let j = 0; j < 16; j++) out[q + j] = codes[base + j] | (codes[base + 16 + j] << 4);
    }
  }
  return out;
}
