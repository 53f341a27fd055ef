import { describe, expect, it } from 'vitest';
import * as dist from '../dist/index-node.js';
import { anyprecFastTables, gemvAnyprecFast, gemvAnyprecFastReference, loadKernels, prepareAnyprecPlanes } from '../src/index-node.js';

function rng(seed: number) {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Σ_c value(code(c))·xs·q[c] straight from the stored planes (code MSB first from plane 0), with the kernel's int8 activations. */
function fromStored(planes: Uint8Array, rows: number, cols: number, bits: number, tables: Uint8Array, params: Float32Array, x: Float32Array): Float32Array {
  const rb = Math.ceil(cols / 8);
  const y = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j * 128 < cols; j++) {
      const end = Math.min(cols, j * 128 + 128);
      let amax = 0;
      for (let c = j * 128; c < end; c++) amax = Math.max(amax, Math.abs(x[c]));
      const d = Math.fround(amax / 127);
      const inv = d > 0 ? Math.fround(1 / d) : 0;
      for (let c = j * 128; c < end; c++) {
        let code = 0;
        for (let p = 0; p < bits; p++) code = (code << 1) | ((planes[(p * rows + r) * rb + (c >> 3)] >> (c & 7)) & 1);
        s += (params[2 * r + 1] + params[2 * r] * tables[16 * r + code]) * d * Math.round(Math.fround(x[c] * inv));
      }
    }
    y[r] = s;
  }
  return y;
}

describe('gemvAnyprecFast', () => {
  for (const variant of ['relaxed', 'simd'] as const) {
    it(`${variant}: equals the codes read from the stored planes at 1..4 bits (padded columns, 4-row tiles and tail, batch 2)`, async (ctx) => {
      const k = await loadKernels({ variant }).catch(() => null);
      if (!k || k.variant !== variant) return ctx.skip(); // the engine lacks relaxed SIMD
      for (const [rows, cols, maxBits] of [[7, 200, 4], [8, 256, 5], [5, 64, 3], [12, 384, 2]] as const) {
        const rnd = rng(rows * 131 + cols);
        const planes = Uint8Array.from({ length: maxBits * rows * Math.ceil(cols / 8) }, () => Math.floor(rnd() * 256));
        const count = Math.min(maxBits, 4);
        const prepared = prepareAnyprecPlanes(planes, rows, cols, maxBits, count);
        const levels = Uint8Array.from({ length: rows * 16 }, () => Math.floor(rnd() * 128));
        const params = Float32Array.from({ length: rows * 2 }, (_, i) => (i & 1 ? -rnd() : rnd() / 64));
        const x = Float32Array.from({ length: 2 * cols }, () => (rnd() - 0.5) * 4);
        for (let bits = 1; bits <= count; bits++) {
          const w = { rows, cols, bits, planeCount: count, planes: prepared, tables: anyprecFastTables(levels, rows, bits), params };
          const y = gemvAnyprecFast(k, w, x, 2) as Float32Array;
          expect(y).not.toBeNull();
          for (let b = 0; b < 2; b++) {
            const xb = x.subarray(b * cols, (b + 1) * cols);
            const ref = fromStored(planes, rows, cols, bits, levels, params, xb);
            const js = gemvAnyprecFastReference(w, xb);
            for (let r = 0; r < rows; r++) {
              // same integer codes and dots; only the f32 summation order differs: a few ulps of
              // Σ|terms| ≤ cols·(|lo| + 127·step)·amax, bounded here by 1e-5 of it
              const scale = cols * (Math.abs(params[2 * r + 1]) + 127 * params[2 * r]) * 2 + 1;
              expect(Math.abs(y[b * rows + r] - ref[r])).toBeLessThan(1e-5 * scale);
              expect(Math.abs(js[r] - ref[r])).toBeLessThan(1e-5 * scale);
            }
          }
        }
      }
    });
  }

  it('on a 2-thread KernelPool equals one thread bit for bit (rows split in 4-row tiles)', async () => {
    // the pool's workers load the built module (as test/pool.test.ts), so this case uses dist/ throughout
    const k = await dist.loadKernels();
    const pool = await dist.createKernelPool({ threads: 2 });
    try {
      const rnd = rng(3);
      const [rows, cols] = [70, 256];
      const planes = dist.prepareAnyprecPlanes(Uint8Array.from({ length: (4 * rows * cols) / 8 }, () => Math.floor(rnd() * 256)), rows, cols, 4, 4);
      const w = { rows, cols, bits: 3, planeCount: 4, planes, tables: dist.anyprecFastTables(Uint8Array.from({ length: rows * 16 }, () => Math.floor(rnd() * 128)), rows, 3), params: Float32Array.from({ length: rows * 2 }, () => rnd()) };
      const x = Float32Array.from({ length: 3 * cols }, () => rnd() - 0.5);
      const one = dist.gemvAnyprecFast(k, w, x, 3) as Float32Array;
      expect(Array.from(dist.gemvAnyprecFast(pool, w, x, 3) as Float32Array)).toEqual(Array.from(one));
    } finally {
      await pool.close();
    }
  });

  it('rejects sizes that do not match the shape', async () => {
    const k = await loadKernels();
    const planes = prepareAnyprecPlanes(new Uint8Array(4 * 4 * 8), 4, 64, 4, 4);
    const w = { rows: 4, cols: 64, bits: 3, planeCount: 4, planes, tables: new Uint8Array(256), params: new Float32Array(8) };
    expect(() => gemvAnyprecFast(k, { ...w, planes: planes.subarray(1) }, new Float32Array(64), 1)).toThrow(/planes hold 255 bytes/);
    expect(() => gemvAnyprecFast(k, { ...w, bits: 5 }, new Float32Array(64), 1)).toThrow(/at most 4/);
    expect(() => gemvAnyprecFast(k, { ...w, tables: new Uint8Array(64) }, new Float32Array(64), 1)).toThrow(/tables hold 64/);
    expect(() => gemvAnyprecFast(k, w, new Float32Array(63), 1)).toThrow(/64 values/);
    expect(() => prepareAnyprecPlanes(new Uint8Array(10), 4, 64, 4, 4)).toThrow(/need 128/);
  });
});
