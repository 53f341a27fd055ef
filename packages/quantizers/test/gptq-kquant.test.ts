// GPTQ on the K-quant grid (gptqKQuantize): the grid's layout helpers against the runtime's
// golden-checked decoder, the H = I limit (no error crosses a column) against ggml's reference
// quantizer byte for byte, and the Hessian-weighted error against RTN on real calibration inputs.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { loadKernels } from '@lowbit/kernels';
import { type KQuantWritable, dequantizeK, loadModel, quantizeRowK } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectHessians, gptqKQuantize } from '../src/index.js';
import { KQUANT_WRITABLE, kValue, kquantLayout, readCodes, readSubGrid, writeCodes } from '../src/kquant-grid.js';
// the tiny-model writer is runtime source, whose file access is installed by its Node entry
import '../../runtime/src/file-system-node.js';
import { writeTinyGguf } from '../../runtime/test/tiny-models.js';
import { errorText, f64Kernels, rng } from './helpers.js';

const BYTES: Record<KQuantWritable, number> = { Q2_K: 84, Q3_K: 110, Q4_K: 144, Q5_K: 176, Q6_K: 210 };

/** Four super-blocks: Gaussian-ish, all zero, one outlier, all negative (the edge cases of ggml's searches). */
function edgeRow(seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(1024);
  for (let i = 0; i < 256; i++) x[i] = (r() + r() + r()) * 0.05;
  for (let i = 512; i < 768; i++) x[i] = i === 600 ? 40 : r() * 0.01;
  for (let i = 768; i < 1024; i++) x[i] = -0.5 - 0.001 * (i - 768);
  return x;
}

function rtnRows(type: KQuantWritable, w: Float32Array, rows: number, cols: number): Uint8Array {
  const rb = (cols / 256) * BYTES[type];
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) quantizeRowK(type, w.subarray(r * cols, (r + 1) * cols), out, r * rb);
  return out;
}

/** tr((W − Q)·H·(W − Q)ᵀ): the output error GPTQ minimizes, in the units of H. */
function hessianError(w: Float32Array, q: Float32Array, H: Float64Array, rows: number, cols: number): number {
  let total = 0;
  const d = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) d[c] = w[r * cols + c] - q[r * cols + c];
    for (let i = 0; i < cols; i++) {
      let s = 0;
      for (let j = 0; j < cols; j++) s += H[i * cols + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}

describe('the K grid (kquant-grid.ts)', () => {
  for (const type of KQUANT_WRITABLE) {
    it(`${type}: codes read back and rewrite ggml's bytes; sub-block values equal dequantizeK`, () => {
      const x = edgeRow(7);
      const bytes = new Uint8Array(4 * BYTES[type]);
      quantizeRowK(type, x, bytes);
      const ref = new Float32Array(1024);
      dequantizeK(type, bytes, 0, 4, ref);
      const { subBlocks, nmax } = kquantLayout(type);
      const g = { a: new Float32Array(subBlocks), b: new Float32Array(subBlocks) };
      const L = new Uint8Array(256);
      for (let s = 0; s < 4; s++) {
        const o = s * BYTES[type];
        readCodes(type, bytes, o, L);
        readSubGrid(type, bytes, o, g);
        for (let i = 0; i < 256; i++) {
          expect(L[i]).toBeLessThanOrEqual(nmax);
          const j = Math.floor(i / (256 / subBlocks));
          expect(kValue(type, L[i], g.a[j], g.b[j]), `block ${s} weight ${i}`).toBe(ref[256 * s + i]);
        }
        // rewriting the codes over scrambled code bytes (ggml-common.h's qs / hmask / qh / ql) restores ggml's block
        const copy = bytes.slice(o, o + BYTES[type]);
        const [c0, c1] = { Q2_K: [16, 80], Q3_K: [0, 96], Q4_K: [16, 144], Q5_K: [16, 176], Q6_K: [0, 192] }[type];
        for (let i = c0; i < c1; i++) copy[i] ^= 0x5a;
        writeCodes(type, L, 0, copy, 0);
        expect(copy).toEqual(bytes.subarray(o, o + BYTES[type]));
      }
    });
  }
});

describe('gptqKQuantize', () => {
  it('H = I: no error crosses a column, so every type gives ggml reference-quantizer bytes exactly', () => {
    // rows of two super-blocks: the edge blocks of edgeRow, then scaled copies of other seeds
    const rows = 6;
    const cols = 512;
    const w = new Float32Array(rows * cols);
    const e = edgeRow(3);
    w.set(e.subarray(0, 512), 0);
    w.set(e.subarray(512), 512);
    for (let r = 2; r < rows; r++) w.set(edgeRow(10 + r).subarray(0, 512).map((v, i) => v * (1 + ((i * r) % 5))), r * cols);
    const I = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) I[i * cols + i] = 1;
    for (const type of KQUANT_WRITABLE) {
      const want = rtnRows(type, w, rows, cols);
      const variants = type === 'Q4_K' ? [{}, { actOrder: true }, { staticGroups: true }, { blockSize: 32 }] : [{}];
      for (const o of variants) {
        const g = gptqKQuantize(w, [rows, cols], I, { type, ...o });
        expect(g.data, `${type} ${JSON.stringify(o)}`).toEqual(want);
        const dec = new Float32Array(rows * cols);
        dequantizeK(type, g.data, 0, rows * cols / 256, dec);
        expect(g.weights).toEqual(dec);
      }
    }
  });

  it('rejects rows that are not whole super-blocks, a lazy batch that splits one, and NaN weights', () => {
    const I = (n: number) => Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    expect(errorText(() => gptqKQuantize(new Float32Array(2 * 64), [2, 64], I(64), { type: 'Q4_K' }))).toMatch(/E_SHAPE .*64 weights are not whole 256-weight super-blocks/);
    expect(errorText(() => gptqKQuantize(new Float32Array(256), [1, 256], I(256), { type: 'Q4_K', blockSize: 96 }))).toMatch(/E_ARG .*blockSize 96 does not divide/);
    expect(errorText(() => gptqKQuantize(new Float32Array(256).fill(Number.NaN), [1, 256], I(256), { type: 'Q6_K' }))).toMatch(/E_NAN .*weight \[0, 0\]/);
    expect(errorText(() => gptqKQuantize(new Float32Array(256), [1, 256], I(256), { type: 'Q8_K' as never }))).toMatch(/E_ARG .*Q8_K is not one of/);
  });

  describe('on calibration inputs of a 256-wide random Llama (TinyStories calibration text)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-gptq-k-'));
    const layers = new Map<string, { w: Float32Array; H: Float64Array; rows: number; cols: number }>();
    beforeAll(async () => {
      const path = join(dir, 'tiny.gguf');
      await writeTinyGguf('llama', path, 91, { D: 256, F: 512, L: 1, CTX: 256 });
      const model = await loadModel(path);
      const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
      const names = ['blk.0.attn_q.weight', 'blk.0.ffn_down.weight'];
      // 6 windows of 256 byte-level tokens: 1536 samples, more than the 512 inputs of ffn_down (H full rank)
      const stats = collectHessians(model, text, names, { ctx: 256, maxWindows: 6 });
      for (const name of names) {
        const lin = model.linear(name);
        layers.set(name, { w: Float32Array.from((lin.source as { data: Float32Array }).data), H: (stats.get(name) as { hessian(): Float64Array }).hessian(), rows: lin.rows, cols: lin.cols });
      }
      model.free();
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('the kernel path (LDLQ form, f32 matmuls): the f64 path\'s bytes with static scales and f64 products; within 1% of its Hessian error otherwise', async () => {
      // f64Kernels isolates the LDLQ algebra from f32 products
      const wasm = await loadKernels();
      const { w, H, rows, cols } = layers.get('blk.0.ffn_down.weight') as NonNullable<ReturnType<typeof layers.get>>;
      for (const type of ['Q4_K'] as const) {
        const fixed = gptqKQuantize(w, [rows, cols], H, { type, staticGroups: true });
        const fixedK = gptqKQuantize(w, [rows, cols], H, { type, staticGroups: true, kernels: f64Kernels, kernelMinCols: 0 });
        expect(fixedK.kernelPath).toBe(true);
        expect(fixedK.data, `${type} static scales`).toEqual(fixed.data);
        // Scales fitted on entering a super-block see GPTQ's values recovered from LDLQ's partial sums
        // through M_gg⁻¹, which amplifies the f32 rounding of ldlUpper's panel products on this
        // ill-conditioned H (with M factored in f64 no weight differs; with f32-rounded products ~2% of
        // the second super-block's sub-blocks pick other scales, Hessian error +0.2%). What must hold is
        // the error GPTQ minimizes.
        const ref = gptqKQuantize(w, [rows, cols], H, { type });
        const er = hessianError(w, ref.weights, H, rows, cols);
        for (const [label, kernels] of [['WASM f32', wasm]] as const) {
          const k = gptqKQuantize(w, [rows, cols], H, { type, kernels, kernelMinCols: 0 });
          const ek = hessianError(w, k.weights, H, rows, cols);
          console.log(`${type} kernel path, ${label}: Hessian error ${ek.toExponential(4)}, f64 path ${er.toExponential(4)}`);
          expect(Math.abs(ek / er - 1), `${type} ${label}`).toBeLessThan(0.01);
        }
      }
    });

    for (const type of KQUANT_WRITABLE) {
      it(`${type}: tr((W − Q)H(W − Q)ᵀ) below RTN's on the same grid, the bytes decoding to the weights GPTQ saw`, () => {
        // every type on ffn_down (two super-blocks per row), Q4_K also on attn_q (test time)
        for (const [name, { w, H, rows, cols }] of layers) {
          if (type !== 'Q4_K' && name !== 'blk.0.ffn_down.weight') continue;
          const g = gptqKQuantize(w, [rows, cols], H, { type });
          const dec = new Float32Array(rows * cols);
          dequantizeK(type, g.data, 0, rows * cols / 256, dec);
          expect(g.weights).toEqual(dec);
          const rtn = new Float32Array(rows * cols);
          dequantizeK(type, rtnRows(type, w, rows, cols), 0, rows * cols / 256, rtn);
          const eg = hessianError(w, g.weights, H, rows, cols);
          const er = hessianError(w, rtn, H, rows, cols);
          console.log(`${type} ${name}: Hessian-weighted error GPTQ ${eg.toExponential(3)}, RTN ${er.toExponential(3)} (${(eg / er).toFixed(3)}x)`);
          expect(eg, `${type} ${name}`).toBeLessThan(er);
          if (type !== 'Q4_K') continue;
          const ea = hessianError(w, gptqKQuantize(w, [rows, cols], H, { type, actOrder: true }).weights, H, rows, cols);
          console.log(`${type} ${name} act-order (static super-block scales): ${ea.toExponential(3)} (${(ea / er).toFixed(3)}x RTN)`);
          expect(ea, `${type} ${name} act-order`).toBeLessThan(er);
        }
      });
    }
  });
});
