import { createKernels, type KernelVariant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { dequantizeBcq, quantizeBcq } from '../src/bcq.js';
import { crc32 } from '../src/checksum.js';
import { dequantizeFlexor, dequantizeFlexorWasm, deserializeFlexor, flexorNetwork, flexorSearch, quantizeFlexor, serializeFlexor } from '../src/flexor.js';
import { errorCode, rng, sameBits } from './helpers.js';

const xorOut = (cols: Uint32Array, x: number) => cols.reduce((o, c, i) => ((x >>> i) & 1 ? o ^ c : o), 0) >>> 0;
const missCost = (cols: Uint32Array, mag: Float64Array, target: number, x: number) => {
  const miss = xorOut(cols, x) ^ target;
  let c = 0;
  for (let j = 0; j < mag.length; j++) if ((miss >>> j) & 1) c += mag[j];
  return c;
};

/** GF(2) rank of the column masks (independent of the encoder's elimination). */
function rank(cols: Uint32Array): number {
  const v = Array.from(cols);
  let r = 0;
  for (let bit = 31; bit >= 0; bit--) {
    const i = v.findIndex((c, k) => k >= r && (c >>> bit) & 1);
    if (i < 0) continue;
    [v[r], v[i]] = [v[i], v[r]];
    for (let k = 0; k < v.length; k++) if (k !== r && (v[k] >>> bit) & 1) v[k] ^= v[r];
    r++;
  }
  return r;
}

function mse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s / a.length;
}

describe('FleXOR', () => {
  it('the network is reproducible from its seed and has no dead stored bit', () => {
    const a = flexorNetwork(10, 14, 99);
    expect(Array.from(flexorNetwork(10, 14, 99))).toEqual(Array.from(a));
    for (const c of a) {
      expect(c).not.toBe(0);
      expect(c >>> 14).toBe(0);
    }
  });

  it('the exact search finds the brute-force optimum; greedy is never better and is a local optimum', () => {
    const r = rng(5);
    const cols = flexorNetwork(6, 9, 3);
    const exact = flexorSearch(cols, 9, 'exact');
    const greedy = flexorSearch(cols, 9, 'greedy');
    for (let t = 0; t < 200; t++) {
      const mag = Float64Array.from({ length: 9 }, () => r());
      const target = Math.floor(r() * 512);
      let best = Number.POSITIVE_INFINITY;
      for (let x = 0; x < 64; x++) best = Math.min(best, missCost(cols, mag, target, x));
      expect(missCost(cols, mag, target, exact(mag, target))).toBeCloseTo(best, 12);
      const g = greedy(mag, target);
      const gc = missCost(cols, mag, target, g);
      expect(gc).toBeGreaterThanOrEqual(best - 1e-12);
      for (let i = 0; i < 6; i++) expect(missCost(cols, mag, target, g ^ (1 << i))).toBeGreaterThanOrEqual(gc - 1e-12);
    }
  });

  it('with nIn = nOut and an invertible network it is plain 1-bit binary coding (BCQ, per row)', () => {
    let seed = 1;
    while (rank(flexorNetwork(8, 8, seed)) < 8) seed++;
    const r = rng(2);
    const w = Float32Array.from({ length: 12 * 40 }, () => r() - 0.5);
    const f = dequantizeFlexor(quantizeFlexor(w, [12, 40], { nIn: 8, nOut: 8, seed }));
    const b = dequantizeBcq(quantizeBcq(w, [12, 40], { bits: 1, iterations: 0 }));
    for (let i = 0; i < w.length; i++) expect(f[i]).toBeCloseTo(b[i], 6); // f32 scale vs f64 mean
  });

  it('fewer stored bits cost more error, the error stays below sign-free (α = 0) coding', () => {
    const r = rng(9);
    const w = Float32Array.from({ length: 16 * 64 }, () => (r() + r() - 1) * (1 + 3 * (r() < 0.05 ? 1 : 0)));
    const zero = mse(w, new Float32Array(w.length));
    let prev = 0;
    for (const nIn of [16, 12, 8, 4]) {
      const t = quantizeFlexor(w, [16, 64], { nIn, nOut: 16, seed: 7 });
      const e = mse(dequantizeFlexor(t), w);
      expect(e).toBeLessThan(zero);
      expect(e).toBeGreaterThanOrEqual(prev - 1e-9);
      prev = e;
      expect(serializeFlexor(t).length * 8).toBeLessThan(w.length * (nIn / 16) + 32 * 16 + 8 * 24 + 8); // payload + alphas + header + padding
    }
  });

  it('greedy search (nIn > 16) works end to end', () => {
    const r = rng(4);
    const w = Float32Array.from({ length: 4 * 50 }, () => r() - 0.5);
    const t = quantizeFlexor(w, [4, 50], { nIn: 20, nOut: 25, seed: 3 });
    expect(mse(dequantizeFlexor(t), w)).toBeLessThan(mse(w, new Float32Array(w.length)));
  });

  it('serialization round-trips; lengths not a multiple of the slice; degenerate inputs', () => {
    const r = rng(8);
    for (const [rows, cols] of [[3, 37], [1, 1], [0, 5], [5, 0], [2, 16]] as [number, number][]) {
      const w = Float32Array.from({ length: rows * cols }, () => r() - 0.5);
      const t = quantizeFlexor(w, [rows, cols], { nIn: 5, nOut: 8, seed: 11 });
      const back = deserializeFlexor(serializeFlexor(t));
      expect(Array.from(dequantizeFlexor(back))).toEqual(Array.from(dequantizeFlexor(t)));
    }
    const zeros = quantizeFlexor(new Float32Array(64), [4, 16], { nIn: 4, nOut: 8 });
    expect(Array.from(dequantizeFlexor(zeros)).every((v) => v === 0)).toBe(true);
    expect(errorCode(() => quantizeFlexor(Float32Array.of(Number.POSITIVE_INFINITY), [1, 1], { nIn: 1, nOut: 2 }))).toBe('E_NAN');
    expect(errorCode(() => quantizeFlexor(new Float32Array(4), [2, 2], { nIn: 9, nOut: 8 }))).toBe('E_ARG');
  });

  it('the reader rejects truncation, corruption and lying headers', () => {
    const r = rng(1);
    const w = Float32Array.from({ length: 6 * 30 }, () => r() - 0.5);
    const b = serializeFlexor(quantizeFlexor(w, [6, 30], { nIn: 6, nOut: 10 }));
    for (const cut of [0, 10, 23, b.length - 1]) expect(errorCode(() => deserializeFlexor(b.subarray(0, cut)))).toBe('E_TRUNCATED');
    const flip = b.slice();
    flip[30] ^= 1;
    expect(errorCode(() => deserializeFlexor(flip))).toBe('E_BAD_FILE');
    const dims = b.slice();
    dims[5] = 11;
    expect(errorCode(() => deserializeFlexor(dims))).toBe('E_FORMAT');
    const huge = b.slice();
    new DataView(huge.buffer).setUint32(8, 1e6, true);
    expect(errorCode(() => deserializeFlexor(huge))).toBe('E_TRUNCATED');
    const magic = b.slice();
    magic[1] = 0;
    expect(errorCode(() => deserializeFlexor(magic))).toBe('E_FORMAT');
    expect(crc32(b.subarray(0, b.length - 4))).toBe(new DataView(b.buffer).getUint32(b.length - 4, true));
  });
});

describe.each(['relaxed', 'simd', 'scalar'] as KernelVariant[])('FleXOR WASM decoder (%s)', async (variant) => {
  const k = await createKernels({ variant });
  it('equals the TypeScript decoder bit for bit on random tensors, odd shapes and signed zeros', () => {
    const r = rng(21);
    for (const [rows, cols, nIn, nOut] of [[7, 45, 5, 9], [1, 1, 1, 1], [3, 64, 24, 32], [5, 33, 16, 32], [0, 4, 2, 3], [2, 100, 12, 16]]) {
      const w = Float32Array.from({ length: rows * cols }, () => r() - 0.5);
      const t = quantizeFlexor(w, [rows, cols], { nIn, nOut, seed: 1 + Math.floor(r() * 1000) });
      if (rows > 1) t.alphas[1] = -0; // -0 must come back as -0 and +0 (its negation)
      sameBits(dequantizeFlexorWasm(k, t), dequantizeFlexor(t));
      // random stored bits, not only encoder output
      const u = { ...t, stored: Uint8Array.from(t.stored, () => Math.floor(r() * 256)) };
      sameBits(dequantizeFlexorWasm(k, u), dequantizeFlexor(u));
    }
  });
});
