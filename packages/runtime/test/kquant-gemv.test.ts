// The K-quant GEMV (kernels' gemvKQuant on GGUF super-blocks) against its definition: ggml's
// dequantization (dequantizeK, checked bit for bit against libggml in kquants.test.ts) followed by
// f64 dot products, in the SIMD and the scalar builds.
import { describe, expect, it } from 'vitest';
import { GGML_K_BLOCK_BYTES, type KQuantActivations, type KQuantWeightType, createKernels, gemvKQuant, isLowbitError, kquantActivationsQ8 } from '@lowbit/kernels';
import { dequantizeK, quantizeRowK } from '../src/ggml-kquants.js';
import { Linear, type LinearWeight } from '../src/linear.js';
import { assertFiniteWeight } from '../src/model.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TYPES: KQuantWeightType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

describe('gemvKQuant', () => {
  const cases = [['relaxed', 'int8'], ['simd', 'int8'], ['simd', 'f32'], ['scalar', 'int8']] as const;
  for (const [variant, act] of cases) {
    it(`equals dequantize-then-dot for Q2_K..Q6_K (${variant} build, ${act} activations)`, async () => {
      const k = await createKernels({ variant });
      const rows = 7;
      const cols = 512;
      const batch = 2;
      const r = rng(7);
      const w = new Float32Array(rows * cols).map(() => (r() - 0.5) * (r() < 0.05 ? 8 : 1));
      const x = new Float32Array(batch * cols).map(() => r() * 2 - 0.7);
      for (const type of TYPES) {
        const rowBytes = (cols / 256) * GGML_K_BLOCK_BYTES[type];
        const blocks = new Uint8Array(rows * rowBytes);
        for (let i = 0; i < rows; i++) quantizeRowK(type, w.subarray(i * cols, (i + 1) * cols), blocks, i * rowBytes);
        const deq = new Float32Array(rows * cols);
        dequantizeK(type, blocks, 0, (rows * cols) / 256, deq);
        const y = gemvKQuant(k, type, blocks, rows, cols, x, batch, undefined, act as KQuantActivations);
        // int8 activations (the SIMD build): the reference multiplies by the rounded x
        const q8 = act === 'int8' && variant !== 'scalar';
        const xr = q8 ? Float32Array.from({ length: batch * cols }, (_, i) => kquantActivationsQ8(x.subarray(Math.floor(i / cols) * cols, Math.floor(i / cols) * cols + cols))[i % cols]) : x;
        for (let b = 0; b < batch; b++) {
          for (let i = 0; i < rows; i++) {
            let ref = 0;
            let mag = 0;
            for (let c = 0; c < cols; c++) {
              ref += deq[i * cols + c] * xr[b * cols + c];
              mag += Math.abs(deq[i * cols + c] * xr[b * cols + c]);
            }
            // f32 sums in another order than the f64 reference: within 1e-5 of Σ|w·x| (512 terms)
            expect(Math.abs(y[b * rows + i] - ref), `${type} row ${i} batch ${b}`).toBeLessThanOrEqual(1e-5 * mag);
          }
        }
        // resident weights give the same result
        const t = k.upload(blocks);
        expect(gemvKQuant(k, type, t, rows, cols, x, batch, undefined, act as KQuantActivations)).toEqual(y);
        t.free();
      }
    });
  }

  it('refuses rows that are not whole super-blocks and byte counts that do not match', async () => {
    const k = await createKernels();
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (isLowbitError(e)) return `${e.code} ${e.message}`;
        throw e;
      }
      return 'no error';
    };
    expect(err(() => gemvKQuant(k, 'Q4_K', new Uint8Array(144), 1, 128, new Float32Array(128)))).toMatch(/E_SHAPE .*row length 128 is not a multiple of 256/);
    expect(err(() => gemvKQuant(k, 'Q6_K', new Uint8Array(209), 1, 256, new Float32Array(256)))).toMatch(/E_SHAPE .*take 210 bytes, got 209/);
    expect(err(() => gemvKQuant(k, 'Q4_K', new Uint8Array(144), 1, 256, new Float32Array(255)))).toMatch(/E_SHAPE .*x has 255 values/);
  });
});

describe('kquant Linear weights', () => {
  it('are refused when rows are not whole super-blocks, bytes do not match, or a super-scale is not finite', async () => {
    const k = await createKernels();
    const lin = (w: LinearWeight) => {
      try {
        new Linear(k, 'blk.0.ffn_up.weight', w).free();
      } catch (e) {
        if (isLowbitError(e)) return `${e.code} ${e.message}`;
        throw e;
      }
      return 'no error';
    };
    expect(lin({ format: 'kquant', type: 'Q4_K', shape: [2, 64], data: new Uint8Array(144) })).toMatch(/E_SHAPE blk\.0\.ffn_up\.weight: Q4_K rows are whole super-blocks of 256 weights, the row length 64/);
    expect(lin({ format: 'kquant', type: 'Q6_K', shape: [2, 256], data: new Uint8Array(419) })).toMatch(/E_SHAPE blk\.0\.ffn_up\.weight: data \(bytes\) has 419 elements, .*needs 420/);
    const nan = new Uint8Array(2 * 144);
    new DataView(nan.buffer).setUint16(144 + 2, 0x7e00, true); // block 1's dmin: f16 NaN
    expect(() => assertFiniteWeight('blk.0.ffn_up.weight', { format: 'kquant', type: 'Q4_K', shape: [2, 256], data: nan })).toThrow(/blk\.0\.ffn_up\.weight: Q4_K super-block 1 has a NaN or infinite scale/);
  });
});
