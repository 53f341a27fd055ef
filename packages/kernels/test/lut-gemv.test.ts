import { describe, expect, it } from 'vitest';
import * as dist from '../dist/index-node.js';
import { type Lut4Weights, gemvBcqBiq, lut4Gemv, lut4GemvReference, loadKernels } from '../src/index-node.js';

function rng(seed: number) {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function weights(rows: number, cols: number, block: number, tr: number, tb: number, seed: number, loRatio = 0): Lut4Weights & { codes: Uint8Array; tables: Uint8Array; params: Float32Array } {
  const rnd = rng(seed);
  const nb = cols / block;
  const ntab = (rows - 1) * (tr / 16) + (nb - 1) * (tb / 16) + 1;
  return {
    rows, cols, block, tableRowStride: tr, tableBlockStride: tb, loRatio,
    codes: Uint8Array.from({ length: (rows * cols) / 2 }, () => Math.floor(rnd() * 256)),
    tables: Uint8Array.from({ length: ntab * 16 }, () => Math.floor(rnd() * 128)),
    params: loRatio ? Float32Array.from({ length: rows * nb }, () => rnd() / 64) : Float32Array.from({ length: rows * nb * 2 }, (_, i) => (i & 1 ? -rnd() : rnd() / 64)),
  };
}

describe('lut4Gemv', () => {
  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: equals the JS reference (tables per tensor, per row, per block; odd row count; batch 2)`, async (ctx) => {
      const k = await loadKernels({ variant }).catch(() => null);
      if (!k || k.variant !== variant) return ctx.skip(); // the engine lacks relaxed SIMD
      // 4-row tiles and their tail; steps alone (loRatio, NF4's form) and (step, lo) pairs
      for (const [rows, cols, block, tr, tb, lr] of [[7, 128, 64, 0, 0, -63.5], [6, 96, 96, 16, 0, 0], [9, 256, 32, 128, 16, 0], [4, 512, 512, 16, 0, 0]] as const) {
        const w = weights(rows, cols, block, tr, tb, rows * 31 + cols, lr);
        const rnd = rng(cols);
        const x = Float32Array.from({ length: 2 * cols }, () => (rnd() - 0.5) * 4);
        const y = lut4Gemv(k, w, x, 2) as Float32Array;
        expect(y).not.toBeNull();
        for (let b = 0; b < 2; b++) {
          const ref = lut4GemvReference(w, x.subarray(b * cols, (b + 1) * cols));
          for (let r = 0; r < rows; r++) {
            // same integer dots and activation codes; only the f32 summation order differs, so the
            // error is a few ulps of the sum of |terms| (bounded here by 1e-5 of its scale)
            const scale = 2 * cols * (lr ? 64 * w.params[0] : Math.abs(w.params[1])) + 1;
            expect(Math.abs(y[b * rows + r] - ref[r])).toBeLessThan(1e-5 * scale);
          }
        }
      }
    });
  }

  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: 2-bit codes give the 4-bit layout's results bit for bit and match the JS reference`, async (ctx) => {
      const k = await loadKernels({ variant }).catch(() => null);
      if (!k || k.variant !== variant) return ctx.skip(); // the engine lacks relaxed SIMD
      for (const [rows, cols, block, tr, tb, lr] of [[7, 128, 64, 0, 0, -2], [9, 256, 32, 128, 16, 0], [5, 96, 96, 16, 0, 0]] as const) {
        const w4 = weights(rows, cols, block, tr, tb, rows * 7 + cols, lr);
        // every table's levels m = 0..3 also at 4m (the 2-bit layout's second bit pair), codes < 4
        for (let t = 0; t < w4.tables.length; t += 16) for (let m = 1; m < 4; m++) w4.tables[t + 4 * m] = w4.tables[t + m];
        const rnd = rng(cols + 1);
        const codes = Array.from({ length: rows * cols }, () => Math.floor(rnd() * 4));
        const c4 = new Uint8Array((rows * cols) / 2);
        const c2 = new Uint8Array((rows * cols) / 4);
        for (let r = 0; r < rows; r++) {
          for (let c = 0; c < cols; c++) {
            const m = codes[r * cols + c];
            const i = c & 31;
            c4[r * (cols / 2) + (c >> 5) * 16 + (i & 15)] |= m << (i < 16 ? 0 : 4);
            c2[r * (cols / 4) + (c >> 5) * 8 + (i & 7)] |= m << (2 * (i >> 3));
          }
        }
        const x = Float32Array.from({ length: 2 * cols }, () => (rnd() - 0.5) * 4);
        const w2 = { ...w4, codes: c2, codeBits: 2 as const };
        const y4 = lut4Gemv(k, { ...w4, codes: c4 }, x, 2) as Float32Array;
        const y2 = lut4Gemv(k, w2, x, 2) as Float32Array;
        // the same levels, activation codes and summation order: identical floats
        expect(Array.from(y2)).toEqual(Array.from(y4));
        for (let b = 0; b < 2; b++) {
          const ref = lut4GemvReference(w2, x.subarray(b * cols, (b + 1) * cols));
          const scale = 2 * cols * (lr ? 64 * w4.params[0] : Math.abs(w4.params[1])) + 1;
          // f32 summation order only (as above)
          for (let r = 0; r < rows; r++) expect(Math.abs(y2[b * rows + r] - ref[r])).toBeLessThan(1e-5 * scale);
        }
      }
      const w = weights(4, 64, 32, 16, 0, 1);
      expect(() => lut4Gemv(k, { ...w, codeBits: 2 }, new Float32Array(64), 1)).toThrow(/at 2 bits needs 64/);
    });
  }

  it('on a 2-thread KernelPool equals one thread bit for bit (rows split in 4-row tiles)', async () => {
    // the pool's workers load the built module (as test/pool.test.ts), so this case uses dist/ throughout
    const k = await dist.loadKernels();
    const pool = await dist.createKernelPool({ threads: 2 });
    try {
      const w = weights(70, 256, 128, 256, 16, 3);
      const rnd = rng(9);
      const x = Float32Array.from({ length: 3 * 256 }, () => rnd() - 0.5);
      const one = dist.lut4Gemv(k, w, x, 3) as Float32Array;
      expect(Array.from(dist.lut4Gemv(pool, w, x, 3) as Float32Array)).toEqual(Array.from(one));
    } finally {
      await pool.close();
    }
  });

  it('rejects sizes that do not match the shape', async () => {
    const k = await loadKernels();
    const w = weights(4, 64, 32, 16, 0, 1);
    expect(() => lut4Gemv(k, { ...w, codes: w.codes.subarray(1) }, new Float32Array(64), 1)).toThrow(/codes hold 127 bytes/);
    expect(() => lut4Gemv(k, { ...w, block: 48 }, new Float32Array(64), 1)).toThrow(/multiples of 32/);
    expect(() => lut4Gemv(k, { ...w, tableRowStride: 32 }, new Float32Array(64), 1)).toThrow(/tables hold/);
    expect(() => lut4Gemv(k, w, new Float32Array(63), 1)).toThrow(/x must be/);
    expect(() => lut4Gemv(k, { ...w, loRatio: -63.5 }, new Float32Array(64), 1)).toThrow(/4×2 steps need 32/);
  });
});

describe('gemvBcqBiq', () => {
  it('equals Σ_i α_i·(±1)·x over the planes as stored (f64 reference)', async () => {
    const k = await loadKernels();
    const [bits, rows, cols, group] = [3, 5, 96, 32];
    const rnd = rng(17);
    const planes = Uint8Array.from({ length: (bits * rows * cols) / 8 }, () => Math.floor(rnd() * 256));
    const alphas = Float32Array.from({ length: rows * (cols / group) * bits }, () => rnd());
    const x = Float32Array.from({ length: cols }, () => rnd() - 0.5);
    const y = gemvBcqBiq(k, { bits, rows, cols, group, planes, alphas }, x);
    for (let r = 0; r < rows; r++) {
      let ref = 0;
      let mag = 0;
      for (let c = 0; c < cols; c++) {
        for (let i = 0; i < bits; i++) {
          const bit = (planes[(i * rows + r) * (cols / 8) + (c >> 3)] >> (c & 7)) & 1;
          const v = (bit ? 1 : -1) * alphas[(r * (cols / group) + Math.floor(c / group)) * bits + i] * x[c];
          ref += v;
          mag += Math.abs(v);
        }
      }
      // f32 table sums and accumulations against f64: a few ulps of the sum of |terms| (tables add ±x 8 at a time)
      expect(Math.abs(y[r] - ref)).toBeLessThan(1e-5 * mag);
    }
    expect(() => gemvBcqBiq(k, { bits, rows, cols: 100, group: 20, planes, alphas }, x)).toThrow(/multiples of 8/);
  });
});
