import { describe, expect, it } from 'vitest';
import { dpredEntropyBits, dpredStreamBits, quantizeDpred, serializeDpred } from '../src/dpred.js';
import { entropyBits } from '../src/entropy-coder.js';
import { flexorStoredEntropy, quantizeFlexor, serializeFlexor } from '../src/flexor.js';
import { dequantizeSeqenc, quantizeSeqenc, seqencStats, serializeSeqenc } from '../src/seqenc.js';
import { rng } from './helpers.js';

const gaussianish = (r: () => number, n: number) => Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 0.2);

describe('entropy bounds of the compressed encodings', () => {
  it('seqenc: magnitude pruning drops the round(s·n) smallest |w| (lower index first on ties) and +0, as a sort of indices does', () => {
    const r = rng(3);
    for (const [n, s] of [[1000, 0.7], [999, 0.5], [64, 0.9], [50, 1], [50, 0]] as const) {
      // few distinct magnitudes, so ties straddle the threshold
      const w = Float32Array.from({ length: n }, () => (r() < 0.1 ? 0 : Math.round((r() - 0.5) * 10) / 4));
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => Math.abs(w[a]) - Math.abs(w[b]) || a - b);
      const keep = new Uint8Array(n);
      for (let q = Math.round(s * n); q < n; q++) keep[order[q]] = 1;
      for (let i = 0; i < n; i++) if (w[i] === 0) keep[i] = 0;
      const d = dequantizeSeqenc(quantizeSeqenc(w, [1, n], { bits: 32, sparsity: s, nIn: 2, nOut: 4, nS: 1 }));
      for (let i = 0; i < n; i++) expect(d[i] !== 0 ? 1 : 0, `n ${n} s ${s} [${i}]`).toBe(keep[i]);
    }
  });

  it('seqenc: bits/weight never below the reported bound (random, clustered, adversarial masks); rANS mask within 1% + 12 bytes of H(density)', () => {
    const r = rng(17);
    const cases: { name: string; w: Float32Array; shape: [number, number]; s?: number; bits: number }[] = [];
    for (const s of [0, 0.5, 0.7, 0.9, 0.95, 1]) cases.push({ name: `random s=${s}`, w: gaussianish(r, 64 * 64), shape: [64, 64], s, bits: 4 });
    // kept weights in runs (rows of large and small magnitude): the order-1 bound falls below H(density)
    cases.push({ name: 'clustered', w: Float32Array.from({ length: 64 * 64 }, (_, i) => ((i >> 7) % 3 === 0 ? 1 : 0.01) * (r() + 0.1)), shape: [64, 64], s: 0.7, bits: 4 });
    cases.push({ name: 'all zero', w: new Float32Array(32 * 40), shape: [32, 40], bits: 32 });
    cases.push({ name: 'all max', w: new Float32Array(32 * 40).fill(3.4e38), shape: [32, 40], s: 0, bits: 8 });
    const one = new Float32Array(32 * 40);
    one[77] = 5;
    cases.push({ name: 'one outlier, already sparse', w: one, shape: [32, 40], bits: 32 });
    cases.push({ name: 'length not a multiple of the block', w: gaussianish(r, 7 * 13), shape: [7, 13], s: 0.8, bits: 3 });
    for (const c of cases) {
      const t = quantizeSeqenc(c.w, c.shape, { bits: c.bits, sparsity: c.s ?? 0, nIn: 3, nOut: 9, nS: 1, block: 10 });
      const st = seqencStats(t, serializeSeqenc(t));
      expect(st.bitsPerWeight, c.name).toBeGreaterThanOrEqual(st.entropyBoundBitsPerWeight);
      expect(st.maskBitsPerWeight, c.name).toBeGreaterThanOrEqual(st.maskEntropyOrder1);
      expect(st.maskEntropyOrder1, c.name).toBeLessThanOrEqual(st.maskEntropyIid + 1e-12);
      expect(st.codeEntropy, c.name).toBeLessThanOrEqual(c.bits);
      const n = c.shape[0] * c.shape[1];
      if (st.maskCoding === 'rans') {
        // rANS of a static binary model: its cross-entropy (12-bit frequencies) + the 4-byte state + 8 bytes of table and length
        expect(st.maskBitsPerWeight * n, c.name).toBeLessThanOrEqual(1.01 * st.maskEntropyIid * n + 8 * 12 + 8);
      } else expect(st.maskBitsPerWeight, c.name).toBeCloseTo(Math.ceil(n / 8) * 8 / n, 12);
    }
    const clustered = quantizeSeqenc(cases[6].w, [64, 64], { bits: 4, sparsity: 0.7, nIn: 3, nOut: 9, nS: 1 });
    const st = seqencStats(clustered);
    expect(st.maskEntropyOrder1).toBeLessThan(0.5 * st.maskEntropyIid);
  });

  it('DPRed: the stream is never below the two-part bound (widths per group + codes given the width); equal when nothing is compressible', () => {
    const r = rng(8);
    const shapes: [number, number][] = [[16, 64], [5, 33], [1, 1]];
    for (const shape of shapes) {
      const n = shape[0] * shape[1];
      for (const w of [gaussianish(r, n), new Float32Array(n), Float32Array.from({ length: n }, (_, i) => (i === 3 ? 1000 : (r() - 0.5) * 0.01))]) {
        for (const group of [1, 16, 256]) {
          const t = quantizeDpred(w, shape, { group, bits: 8, scale: 'tensor' });
          const bound = dpredEntropyBits(t);
          expect(dpredStreamBits(t).bits).toBeGreaterThanOrEqual(bound);
          expect(8 * serializeDpred(t).length).toBeGreaterThan(bound);
        }
      }
    }
    // all zero: one width, one code, nothing to code (the stream still holds 4 header bits)
    const t = quantizeDpred(new Float32Array(4).fill(0), [1, 4], { group: 4 });
    expect(dpredEntropyBits(t)).toBe(0);
  });

  it('FleXOR: the stored bits\' order-0 entropy is at most the payload nIn/nOut and, the search leaving them near-uniform, close to it', () => {
    const r = rng(9);
    const w = gaussianish(r, 32 * 64);
    for (const [nIn, nOut] of [[8, 16], [12, 16], [4, 5]]) {
      const t = quantizeFlexor(w, [32, 64], { nIn, nOut });
      const h = flexorStoredEntropy(t);
      expect(h).toBeLessThanOrEqual(nIn / nOut + 1e-12);
      // > 0.9 of the payload: a fraction of 1 bits within 0.5 ± 0.18 (H(0.32) = 0.904)
      expect(h).toBeGreaterThan(0.9 * (nIn / nOut));
      expect(8 * serializeFlexor(t).length / w.length).toBeGreaterThan(h);
    }
    expect(entropyBits([5, 5])).toBe(1);
  });
});
