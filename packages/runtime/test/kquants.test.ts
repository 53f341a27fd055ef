// K-quant (Q2_K … Q6_K) and ggml MXFP4 blocks against llama.cpp's own library: golden bytes of its
// reference quantizers and golden values of its dequantizers (tools/ggml-kquants-golden.py, run on the
// libggml-base.so node-llama-cpp ships), then whole models written by lowbit in each type, run by both.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GGML_K_BLOCK_BYTES } from '@lowbit/kernels';
import { dequantize, fromF32 } from '../src/ggml-quants.js';
import { packMxfp4 } from '../src/ggml-kquants.js';
import { tensorBytes, tensorTypeOf } from '../src/ggml-types.js';

interface Golden {
  x: number[];
  [type: string]: { bytes: string; dequant: number[] } | number[];
}
const golden = JSON.parse(readFileSync(new URL('./fixtures/ggml-kquants-golden.json', import.meta.url), 'utf8')) as Golden;
const x = Float32Array.from(golden.x);
const gold = (t: string) => golden[t === 'MXFP4' ? 'mxfp4' : `q${t.slice(1)}`] as { bytes: string; dequant: number[] };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe("K-quants and MXFP4 equal llama.cpp's reference code", () => {
  // 10 super-blocks: sines at two magnitudes, zeros, all-equal, all-negative, one outlier, values
  // below GROUP_MAX_EPS, exact grid points (ties for nearest_int)
  it.for(['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const)('%s: quantize_row_*_ref bytes are identical, block by block', (type) => {
    const ours = fromF32(type, x, 256);
    const theirs = gold(type).bytes;
    expect(ours.byteLength * 2).toBe(theirs.length);
    const per = type === 'MXFP4' ? 17 : GGML_K_BLOCK_BYTES[type];
    for (let b = 0; b < ours.byteLength / per; b++) expect(hex(ours.subarray(b * per, (b + 1) * per)), `block ${b}`).toBe(theirs.slice(2 * b * per, 2 * (b + 1) * per));
  });

  it.for(['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const)('%s: dequantize_row_* values are bit-identical', (type) => {
    const bytes = Uint8Array.from(Buffer.from(gold(type).bytes, 'hex'));
    const out = new Float32Array(x.length);
    dequantize(type, bytes, 0, x.length, out);
    expect(Array.from(out)).toEqual(gold(type).dequant);
  });

  it('MXFP4: OCP codes and E8M0 scales repack into ggml blocks without rounding (element j low nibble, j+16 high)', () => {
    const codes = Uint8Array.from({ length: 32 }, (_, i) => i % 16);
    const out = new Uint8Array(17);
    packMxfp4(codes, Uint8Array.of(127), out);
    expect(out[0]).toBe(127);
    expect(out[1]).toBe(0 | (0 << 4)); // codes 0 and 16 % 16 = 0
    expect(out[2]).toBe(1 | (1 << 4));
    const y = new Float32Array(32);
    dequantize('MXFP4', out, 0, 32, y);
    // E2M1 codes 0..7 = 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives; scale 2^(127−127) = 1
    expect(Array.from(y.subarray(0, 16))).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]);
  });

  it('sizes and errors: rows that are not whole super-blocks, unknown ids, Q8_K as a weight', () => {
    expect(tensorBytes('Q4_K', [512, 3])).toBe(2 * 3 * 144);
    expect(tensorBytes('MXFP4', [64, 2])).toBe(4 * 17);
    expect(() => tensorBytes('Q4_K', [64, 2], 'blk.0.ffn_up.weight')).toThrow(/blk\.0\.ffn_up\.weight: row length 64 is not a multiple of the Q4_K block size 256/);
    expect(tensorTypeOf(14, 't')).toBe('Q6_K');
    expect(tensorTypeOf(39, 't')).toBe('MXFP4');
    expect(() => tensorTypeOf(16, 'blk.0.attn_q.weight')).toThrow(/blk\.0\.attn_q\.weight: tensor type IQ2_XXS is not supported/);
    expect(() => tensorTypeOf(77, 't')).toThrow(/unknown type id 77/);
    expect(() => dequantize('Q4_K', new Uint8Array(144), 0, 128, new Float32Array(128))).toThrow(/not whole 256-value blocks/);
    expect(() => fromF32('Q8_K', x.subarray(0, 256), 256)).toThrow(/activation type/);
  });
});
