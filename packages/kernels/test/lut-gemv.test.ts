import { describe, expect, it } from 'vitest';
import { type Lut4Weights, lut4Gemv, lut4GemvReference, loadKernels } from '../src/index-node.js';

function rng(seed: number) {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function weights(rows: number, cols: number, block: number, tr: number, tb: number, seed: number): Lut4Weights & { codes: Uint8Array; tables: Uint8Array; params: Float32Array } {
  const rnd = rng(seed);
  const nb = cols / block;
  const ntab = (rows - 1) * (tr / 16) + (nb - 1) * (tb / 16) + 1;
  return {
    rows, cols, block, tableRowStride: tr, tableBlockStride: tb,
    codes: Uint8Array.from({ length: (rows * cols) / 2 }, () => Math.floor(rnd() * 256)),
    tables: Uint8Array.from({ length: ntab * 16 }, () => Math.floor(rnd() * 128)),
    params: Float32Array.from({ length: rows * nb * 2 }, (_, i) => (i & 1 ? -rnd() : rnd() / 64)),
  };
}

describe('lut4Gemv', () => {
  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: equals the JS reference (tables per tensor, per row, per block; odd row count; batch 2)`, async (ctx) => {
      const k = await loadKernels({ variant }).catch(() => null);
      if (!k || k.variant !== variant) return ctx.skip(); // the engine lacks relaxed SIMD
      for (const [rows, cols, block, tr, tb] of [[7, 128, 64, 0, 0], [6, 96, 96, 16, 0], [5, 256, 32, 128, 16]] as const) {
        const w = weights(rows, cols, block, tr, tb, rows * 31 + cols);
        const rnd = rng(cols);
        const x = Float32Array.from({ length: 2 * cols }, () => (rnd() - 0.5) * 4);
        const y = lut4Gemv(k, w, x, 2) as Float32Array;
        expect(y).not.toBeNull();
        for (let b = 0; b < 2; b++) {
          const ref = lut4GemvReference(w, x.subarray(b * cols, (b + 1) * cols));
          for (let r = 0; r < rows; r++) {
            // same integer dots and activation codes; only the f32 summation order differs, so the
            // error is a few ulps of the sum of |terms| (bounded here by 1e-5 of its scale)
            const scale = Math.abs(w.params[1]) * 2 * cols + 1;
            expect(Math.abs(y[b * rows + r] - ref[r])).toBeLessThan(1e-5 * scale);
          }
        }
      }
    });
  }

  it('rejects sizes that do not match the shape', async () => {
    const k = await loadKernels();
    const w = weights(4, 64, 32, 16, 0, 1);
    expect(() => lut4Gemv(k, { ...w, codes: w.codes.subarray(1) }, new Float32Array(64), 1)).toThrow(/codes hold 127 bytes/);
    expect(() => lut4Gemv(k, { ...w, block: 48 }, new Float32Array(64), 1)).toThrow(/multiples of 32/);
    expect(() => lut4Gemv(k, { ...w, tableRowStride: 32 }, new Float32Array(64), 1)).toThrow(/tables hold/);
    expect(() => lut4Gemv(k, w, new Float32Array(63), 1)).toThrow(/x must be/);
  });
});
