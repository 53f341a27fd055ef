// MX matrices with blocks of 32 along each row, a partial last block where cols % 32 ≠ 0 (GPTQ onto
// MX grids on 172-wide rows): the packed GEMV runs them without decoding.
import { createKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { MX_FORMATS, type MxFormatName, type MxRowsGemv, dequantizeMx, gemvPacked, gemvPackedWasm, quantizeMx, uploadGemv } from '../src/index.js';
import { errorCode } from './helpers.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Each row quantized on its own by quantizeMx (its blocks start at the row). */
function mxRows(format: MxFormatName, w: Float32Array, rows: number, cols: number): MxRowsGemv {
  const nb = Math.ceil(cols / 32);
  const t: MxRowsGemv = { kind: 'mx-rows', format, shape: [rows, cols], scales: new Uint8Array(rows * nb), codes: new Uint8Array(rows * cols) };
  for (let r = 0; r < rows; r++) {
    const q = quantizeMx(w.subarray(r * cols, (r + 1) * cols), { format });
    t.scales.set(q.scales, r * nb);
    t.codes.set(q.codes, r * cols);
  }
  return t;
}

describe('MX rows (blocks per row) on the packed GEMV', () => {
  for (const format of MX_FORMATS) {
    it(`${format}: 172-wide rows equal the row-wise decode times x; 64-wide rows equal the flat MX GEMV bit for bit`, async () => {
      const k = await createKernels();
      const r = rng(format.length * 17);
      for (const cols of [172, 64]) {
        const rows = 9;
        const w = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 3);
        const t = mxRows(format, w, rows, cols);
        const x = Float32Array.from({ length: cols }, () => r() * 2 - 1);
        const y = gemvPacked(t, x);
        expect(gemvPackedWasm(k, t, x)).toEqual(y);
        const res = uploadGemv(k, t);
        expect(res.gemv(x)).toEqual(y);
        res.free();
        const nb = Math.ceil(cols / 32);
        for (let row = 0; row < rows; row++) {
          const d = dequantizeMx({ format, length: cols, scales: t.scales.subarray(row * nb, (row + 1) * nb), codes: t.codes.subarray(row * cols, (row + 1) * cols) });
          let ref = 0;
          let mag = 0;
          for (let c = 0; c < cols; c++) {
            ref += d[c] * x[c];
            mag += Math.abs(d[c] * x[c]);
          }
          // f32 accumulation in the kernel's order against this f64 sum: 1e-6 of the row's magnitude
          expect(Math.abs(y[row] - ref)).toBeLessThanOrEqual(1e-6 * mag + 1e-9);
        }
        if (cols === 64) {
          const flat = { format, length: rows * cols, scales: t.scales, codes: t.codes, shape: [rows, cols] as [number, number] };
          expect(gemvPacked(flat, x)).toEqual(y);
        }
      }
    });
  }

  it('wrong lengths and codes wider than the element are errors', () => {
    const t = mxRows('mxfp4', new Float32Array(2 * 40).fill(0.5), 2, 40);
    const x = new Float32Array(40);
    expect(errorCode(() => gemvPacked({ ...t, scales: t.scales.subarray(1) }, x))).toBe('E_SHAPE');
    expect(errorCode(() => gemvPacked({ ...t, codes: t.codes.subarray(1) }, x))).toBe('E_SHAPE');
    const wide = t.codes.slice();
    wide[3] = 16;
    expect(errorCode(() => gemvPacked({ ...t, codes: wide }, x))).toBe('E_ARG');
  });
});
