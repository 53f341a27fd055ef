import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/checksum.js';
import { DPRED_HEADER_BITS, dequantizeDpred, deserializeDpred, dpredStreamBits, quantizeDpred, serializeDpred, twosBits } from '../src/dpred.js';
import { errorCode, rng } from './helpers.js';

describe('DPRed per-group dynamic precision', () => {
  it('twosBits is the narrowest two\'s-complement width (brute force)', () => {
    for (let v = -300; v <= 300; v++) {
      let w = 0;
      while (!(v >= -(2 ** (w - 1)) && v <= 2 ** (w - 1) - 1) && w < 20) w++;
      expect(twosBits(v), `v=${v}`).toBe(v === 0 ? 0 : w);
    }
  });

  it('integer inputs round-trip bit for bit, any group size, lengths not a multiple of the group', () => {
    const r = rng(3);
    for (const [rows, cols, group] of [[5, 37, 16], [3, 300, 256], [1, 1, 16], [0, 4, 16], [4, 0, 16], [2, 17, 1]] as const) {
      const w = Float32Array.from({ length: rows * cols }, () => Math.round((r() - 0.5) * 2 ** Math.floor(r() * 15)) || 0); // -0 is stored as 0 (documented)
      const t = quantizeDpred(w, [rows, cols], { group });
      const bytes = serializeDpred(t);
      const back = deserializeDpred(bytes);
      expect(Array.from(dequantizeDpred(back))).toEqual(Array.from(w));
      expect(bytes.length).toBe(24 + 4 * rows + Math.ceil(dpredStreamBits(t).bits / 8) + 4);
    }
  });

  it('adversarial: all zero costs only headers, all max costs the full width, one outlier widens one group', () => {
    const zero = quantizeDpred(new Float32Array(64), [1, 64], { group: 16 });
    expect(dpredStreamBits(zero).bits).toBe(4 * DPRED_HEADER_BITS);
    const max = quantizeDpred(new Float32Array(64).fill(16383), [1, 64], { group: 16 });
    expect(dpredStreamBits(max).bits).toBe(4 * (DPRED_HEADER_BITS + 15 * 16));
    const one = new Float32Array(64).fill(1);
    one[40] = -1000;
    const t = quantizeDpred(one, [1, 64], { group: 16 });
    expect(dpredStreamBits(t).bits).toBe(4 * DPRED_HEADER_BITS + 3 * 2 * 16 + 11 * 16);
    expect(Array.from(dequantizeDpred(deserializeDpred(serializeDpred(t))))).toEqual(Array.from(one));
  });

  it('float inputs: per-row INT-k codes within half a step, serialized exactly', () => {
    const r = rng(5);
    const w = Float32Array.from({ length: 8 * 50 }, () => (r() - 0.5) * (r() < 0.02 ? 10 : 1));
    const t = quantizeDpred(w, [8, 50], { bits: 8 });
    const d = dequantizeDpred(t);
    for (let i = 0; i < w.length; i++) expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(t.scales[Math.floor(i / 50)] / 2 + 1e-7);
    expect(Array.from(dequantizeDpred(deserializeDpred(serializeDpred(t))))).toEqual(Array.from(d));
    // one scale for the tensor: rows without the outlier get narrower groups, never wider ones
    const u = quantizeDpred(w, [8, 50], { bits: 8, scale: 'tensor' });
    expect(new Set(u.scales).size).toBe(1);
    expect(dpredStreamBits(u).bits).toBeLessThanOrEqual(dpredStreamBits(t).bits);
    const du = dequantizeDpred(u);
    for (let i = 0; i < w.length; i++) expect(Math.abs(du[i] - w[i])).toBeLessThanOrEqual(u.scales[0] / 2 + 1e-7);
  });

  it('the reader rejects truncation, corruption and lying headers', () => {
    const r = rng(9);
    const w = Float32Array.from({ length: 6 * 40 }, () => Math.round((r() - 0.5) * 100));
    const b = serializeDpred(quantizeDpred(w, [6, 40]));
    for (const cut of [0, 12, 27, b.length - 1]) expect(errorCode(() => deserializeDpred(b.subarray(0, cut)))).toBe('E_TRUNCATED');
    const flip = b.slice();
    flip[40] ^= 8;
    expect(errorCode(() => deserializeDpred(flip))).toBe('E_BAD_FILE');
    // a shape too big for the stream, with a valid checksum: refused before allocating
    const huge = b.slice();
    new DataView(huge.buffer).setUint32(12, 1e8, true);
    new DataView(huge.buffer).setUint32(huge.length - 4, crc32(huge.subarray(0, huge.length - 4)), true);
    expect(errorCode(() => deserializeDpred(huge))).toBe('E_FORMAT');
    // wider headers than the stream holds, with a valid checksum
    const wide = b.slice();
    wide.fill(0xff, 48, wide.length - 4);
    new DataView(wide.buffer).setUint32(wide.length - 4, crc32(wide.subarray(0, wide.length - 4)), true);
    expect(errorCode(() => deserializeDpred(wide))).toMatch(/E_TRUNCATED|E_FORMAT/);
  });
});
