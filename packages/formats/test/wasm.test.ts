import { createKernels, type KernelVariant } from '@lowbit/kernels';
import { describe, it } from 'vitest';
import {
  decodePackedWasm, dequantizeBcq, dequantizeBcqWasm, dequantizeCodebook, dequantizeCodebookWasm, dequantizeInt, dequantizeIntWasm, dequantizeMx, dequantizeMxWasm,
  dequantizeNf4, dequantizeNf4Wasm, ELEMENT_FORMATS, getFormat, MX_FORMATS, quantizeBcq, quantizeCodebook, quantizeInt, quantizeMx, quantizeNf4, writeBits,
} from '../src/index.js';
import { rng, sameBits } from './helpers.js';

describe.each(['simd', 'scalar', 'relaxed'] as KernelVariant[])('WASM decoders (%s) equal the TypeScript reference bit for bit', async (variant) => {
  const k = await createKernels({ variant });

  it.each(ELEMENT_FORMATS.filter((n) => getFormat(n).bits <= 8))('%s: every code, bit-packed, odd row lengths', (name) => {
    const f = getFormat(name);
    const r = rng(f.bits);
    for (const [rows, cols] of [[1, 2 ** f.bits], [3, 33], [2, 7], [0, 5], [4, 64]]) {
      const codes = Uint8Array.from({ length: rows * cols }, (_, i) => (i < 2 ** f.bits ? i : Math.floor(r() * 2 ** f.bits)));
      const rb = Math.ceil((cols * f.bits) / 8);
      const packed = new Uint8Array(rows * rb);
      for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) writeBits(packed, i * rb * 8 + c * f.bits, f.bits, codes[i * cols + c]);
      sameBits(decodePackedWasm(k, f, packed, rows, cols), f.decode(codes));
    }
  });

  it.each([2, 3, 4, 5, 8])('INT%i groups along cols (sym and asym, partial groups)', (bits) => {
    const r = rng(bits + 100);
    const rows = 7;
    const cols = 75;
    const w = Float32Array.from({ length: rows * cols }, () => r() * 2 - 1);
    for (const symmetric of [true, false]) {
      for (const [granularity, group] of [['group-cols', 32], ['group-cols', 20], ['per-oc', undefined]] as const) {
        const t = quantizeInt(w, [rows, cols], { bits, symmetric, granularity, group });
        sameBits(dequantizeIntWasm(k, t), dequantizeInt(t));
      }
    }
  });

  it.each(MX_FORMATS)('%s blocks (zeros, NaN block, tiny values, partial last block)', (format) => {
    const r = rng(7);
    const v = Float32Array.from({ length: 130 }, () => (r() * 2 - 1) * 10 ** (r() * 8 - 4));
    v.fill(0, 32, 64);
    v[70] = Number.NaN;
    v[100] = 1e-39;
    const t = quantizeMx(v, { format });
    sameBits(dequantizeMxWasm(k, t), dequantizeMx(t));
  });

  it('NF4 with group absmax scales, per-channel codebooks and BCQ planes (partial groups, zero rows, tiny values)', () => {
    const r = rng(11);
    for (const [rows, cols] of [[7, 75], [1, 3], [0, 8], [4, 64]] as [number, number][]) {
      const w = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 10 ** (r() * 6 - 5));
      if (w.length > 10) w.fill(0, 0, 10); // an all-zero group
      for (const group of [64, 5]) {
        const n = quantizeNf4(w, [rows, cols], { group });
        sameBits(dequantizeNf4Wasm(k, n), dequantizeNf4(n));
        for (const bits of [1, 2, 3]) {
          const b = quantizeBcq(w, [rows, cols], { bits, group, iterations: 2 });
          sameBits(dequantizeBcqWasm(k, b), dequantizeBcq(b));
        }
      }
      if (rows > 0) {
        const c = quantizeCodebook(w, [rows, cols], { bits: 3 });
        sameBits(dequantizeCodebookWasm(k, c), dequantizeCodebook(c));
      }
    }
  });
});
