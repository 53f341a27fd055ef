// K-quant sub-block scale unpacking against ggml's packing (quantize_row_q4_K_ref and
// quantize_row_q3_K_ref in ggml-quants.c, written out here): every packed value reads back.
import { describe, expect, it } from 'vitest';
import { kScaleMinQ4K, kScaleQ3K } from '../src/ggml-blocks.js';
import { rng } from './helpers.js';

/** A random integer in [0, 64). */
const six = (r: () => number) => Math.floor(r() * 64);

describe('K-quant 6-bit sub-block scales', () => {
  it('Q4_K/Q5_K: 8 (scale, min) pairs packed as ggml packs them read back, at an offset', () => {
    const r = rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const ls = Array.from({ length: 8 }, () => six(r));
      const lm = Array.from({ length: 8 }, () => six(r));
      const o = 3;
      const q = new Uint8Array(o + 12);
      for (let j = 0; j < 8; j++) {
        if (j < 4) {
          q[o + j] = ls[j];
          q[o + j + 4] = lm[j];
        } else {
          q[o + j + 4] = (ls[j] & 0xf) | ((lm[j] & 0xf) << 4);
          q[o + j - 4] |= (ls[j] >> 4) << 6;
          q[o + j] |= (lm[j] >> 4) << 6;
        }
      }
      for (let j = 0; j < 8; j++) expect(kScaleMinQ4K(j, q, o)).toEqual([ls[j], lm[j]]);
    }
  });

  it('Q3_K: 16 scales in [−32, 31] packed as ggml packs them (+32, 4 + 2 bits) read back', () => {
    const r = rng(11);
    for (let trial = 0; trial < 200; trial++) {
      const v = Array.from({ length: 16 }, () => six(r) - 32);
      const o = 5;
      const s = new Uint8Array(o + 12);
      for (let j = 0; j < 16; j++) {
        let l = v[j] + 32;
        if (j < 8) s[o + j] = l & 0xf;
        else s[o + j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        s[o + 8 + (j % 4)] |= l << (2 * (j >> 2));
      }
      for (let j = 0; j < 16; j++) expect(kScaleQ3K(j, s, o)).toBe(v[j]);
    }
  });
});
