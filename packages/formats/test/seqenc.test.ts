import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/checksum.js';
import { decodeSeqencBits, dequantizeSeqenc, deserializeSeqenc, encodeSeqencBits, quantizeSeqenc, seqencNetwork, serializeSeqenc } from '../src/seqenc.js';
import { errorCode, rng, sameBits } from './helpers.js';

/** Independent reference of the decoder: output bit j of step t is the GF(2) sum over the inputs of this and the nS previous steps (zero before the block start). */
function reference(inputs: number[][], cols: Uint32Array, nIn: number, nOut: number, nS: number, block: number, n: number): number[] {
  const out: number[] = [];
  for (let t = 0; t * nOut < n; t++) {
    for (let j = 0; j < nOut && t * nOut + j < n; j++) {
      let bit = 0;
      for (let d = 0; d <= nS; d++) {
        if (t - d < Math.floor(t / block) * block) break;
        for (let i = 0; i < nIn; i++) bit ^= inputs[t - d][i] & (cols[d * nIn + i] >>> j) & 1;
      }
      out.push(bit);
    }
  }
  return out;
}

function randomPlane(seed: number, n: number, density: number) {
  const r = rng(seed);
  const target = Uint8Array.from({ length: n }, () => (r() < 0.5 ? 1 : 0));
  const care = Uint8Array.from({ length: n }, () => (r() < density ? 1 : 0));
  return { target, care };
}

describe('sequential encryption', () => {
  it('round trips losslessly on random masks: every care bit decodes to its target', () => {
    for (const [density, nIn, nOut, nS] of [[0.5, 4, 8, 1], [0.3, 3, 10, 2], [0.1, 2, 20, 2], [0.5, 8, 16, 1], [0.7, 5, 7, 0]]) {
      const { target, care } = randomPlane(7 + nOut, 3001, density);
      const p = encodeSeqencBits(target, care, { nIn, nOut, nS, seed: 3, block: 50 });
      const d = decodeSeqencBits(p);
      for (let i = 0; i < target.length; i++) if (care[i]) expect(d[i]).toBe(target[i]);
    }
  });

  it('0% density needs no patches; 100% density round trips every bit', () => {
    const { target } = randomPlane(1, 500, 0);
    const none = encodeSeqencBits(target, new Uint8Array(500), { nIn: 2, nOut: 8, nS: 1 });
    expect(none.patches.length).toBe(0);
    const all = encodeSeqencBits(target, new Uint8Array(500).fill(1), { nIn: 2, nOut: 8, nS: 1 });
    expect(Array.from(decodeSeqencBits(all))).toEqual(Array.from(target));
    // 2 inputs for 8 care bits per step: at least 6 bits per step cannot be free, so patches are many
    expect(all.patches.length).toBeGreaterThan(0);
  });

  it('the decoder agrees with an independent reference of the network', () => {
    const r = rng(11);
    const [nIn, nOut, nS, block, n] = [3, 7, 2, 4, 100];
    const steps = Math.ceil(n / nOut);
    const inputs = Array.from({ length: steps }, () => Array.from({ length: nIn }, () => (r() < 0.5 ? 1 : 0)));
    const packed = new Uint8Array(Math.ceil((steps * nIn) / 8));
    inputs.flat().forEach((b, k) => (packed[k >> 3] |= b << (k & 7)));
    const p = { n, nIn, nOut, nS, seed: 9, block, inputs: packed, patches: new Uint32Array(0) };
    expect(Array.from(decodeSeqencBits(p))).toEqual(reference(inputs, seqencNetwork(nIn, nOut, nS, 9), nIn, nOut, nS, block, n));
  });

  it('Viterbi finds the fewest mismatched care bits: brute force over all input sequences (≤ 12 input bits)', () => {
    for (const [nIn, nOut, nS, block, n, seed] of [[2, 5, 1, 99, 30, 1], [2, 4, 2, 99, 24, 2], [3, 6, 1, 2, 24, 3], [1, 3, 2, 99, 36, 4], [4, 9, 1, 99, 27, 5]]) {
      const cols = seqencNetwork(nIn, nOut, nS, seed);
      const steps = Math.ceil(n / nOut);
      const total = steps * nIn;
      expect(total).toBeLessThanOrEqual(12);
      for (let trial = 0; trial < 4; trial++) {
        const { target, care } = randomPlane(100 * seed + trial, n, 0.6);
        let best = Number.POSITIVE_INFINITY;
        for (let x = 0; x < 2 ** total; x++) {
          const inputs = Array.from({ length: steps }, (_, t) => Array.from({ length: nIn }, (_, i) => (x >>> (t * nIn + i)) & 1));
          const out = reference(inputs, cols, nIn, nOut, nS, block, n);
          let miss = 0;
          for (let i = 0; i < n; i++) if (care[i] && out[i] !== target[i]) miss++;
          best = Math.min(best, miss);
        }
        const p = encodeSeqencBits(target, care, { nIn, nOut, nS, seed, block });
        expect(p.patches.length).toBe(best);
      }
    }
  });

  it('a pruned matrix round trips through the serialized form (INT-k codes; exact f32 values)', () => {
    const r = rng(21);
    const w = Float32Array.from({ length: 24 * 40 }, () => r() * 2 - 1);
    const t = quantizeSeqenc(w, [24, 40], { bits: 4, sparsity: 0.7, nIn: 2, nOut: 6, nS: 2 });
    const back = deserializeSeqenc(serializeSeqenc(t));
    sameBits(dequantizeSeqenc(back), dequantizeSeqenc(t));
    const d = dequantizeSeqenc(t);
    let kept = 0;
    const qmax = 7;
    for (let i = 0; i < w.length; i++) {
      if (d[i] === 0) continue;
      kept++;
      // INT4 with one symmetric scale: within half a step of the input
      expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(t.scale / 2 + 1e-7);
      expect(Math.abs(Math.round(d[i] / t.scale))).toBeLessThanOrEqual(qmax);
    }
    expect(kept).toBeLessThanOrEqual(Math.round(0.3 * w.length));
    // already sparse input kept as is: decode gives it back bit for bit, -0 included
    const s = w.map((v, i) => (i % 3 === 0 ? 0 : v));
    s[1] = -0;
    const e = quantizeSeqenc(s, [24, 40], { bits: 32, nIn: 3, nOut: 5, nS: 1 });
    sameBits(dequantizeSeqenc(deserializeSeqenc(serializeSeqenc(e))), s);
  });

  it('hostile serialized input is a LowbitError naming the problem', () => {
    const r = rng(4);
    const w = Float32Array.from({ length: 60 }, () => r() - 0.5);
    const b = serializeSeqenc(quantizeSeqenc(w, [6, 10], { bits: 3, sparsity: 0.5, nIn: 2, nOut: 4, nS: 1 }));
    const recrc = (x: Uint8Array) => {
      new DataView(x.buffer).setUint32(x.length - 4, crc32(x.subarray(0, x.length - 4)), true);
      return x;
    };
    for (const cut of [0, 10, 35]) expect(errorCode(() => deserializeSeqenc(b.subarray(0, cut)))).toBe('E_TRUNCATED');
    for (const cut of [40, b.length - 1]) expect(errorCode(() => deserializeSeqenc(b.slice(0, cut)))).toBe('E_BAD_FILE');
    const flip = b.slice();
    flip[40] ^= 1;
    expect(errorCode(() => deserializeSeqenc(flip))).toBe('E_BAD_FILE');
    const magic = b.slice();
    magic[0] = 0;
    expect(errorCode(() => deserializeSeqenc(magic))).toBe('E_FORMAT');
    for (const [at, v] of [[6, 9], [7, 0], [8, 9], [5, 17]]) {
      const bad = b.slice();
      bad[at] = v;
      expect(errorCode(() => deserializeSeqenc(recrc(bad)))).toBe('E_FORMAT');
    }
    const huge = b.slice();
    new DataView(huge.buffer).setUint32(12, 0xffff, true);
    expect(errorCode(() => deserializeSeqenc(recrc(huge)))).toBe('E_TRUNCATED');
    const huger = b.slice();
    new DataView(huger.buffer).setUint32(12, 0xffffffff, true);
    expect(errorCode(() => deserializeSeqenc(recrc(huger)))).toBe('E_FORMAT');
    // patch count of the first plane beyond the positions
    const count = b.slice();
    new DataView(count.buffer).setUint32(32 + 8, 1e6, true);
    expect(errorCode(() => deserializeSeqenc(recrc(count)))).toBe('E_FORMAT');
    expect(errorCode(() => deserializeSeqenc(b.slice(0, b.length - 4).slice(0, 0)))).toBe('E_TRUNCATED');
    // random corruption with a valid checksum: a LowbitError or a tensor of the stated shape, never anything else
    const f = rng(77);
    for (let k = 0; k < 300; k++) {
      const x = b.slice();
      for (let m = 0; m < 1 + Math.floor(f() * 3); m++) x[Math.floor(f() * (x.length - 4))] = Math.floor(f() * 256);
      const code = errorCode(() => {
        const t = deserializeSeqenc(recrc(x));
        expect(dequantizeSeqenc(t).length).toBe(t.shape[0] * t.shape[1]);
      });
      expect(['none', 'E_FORMAT', 'E_TRUNCATED', 'E_UNSUPPORTED']).toContain(code);
    }
    expect(errorCode(() => decodeSeqencBits({ n: 100, nIn: 2, nOut: 4, nS: 1, seed: 1, block: 8, inputs: new Uint8Array(3), patches: new Uint32Array(0) }))).toBe('E_SHAPE');
    expect(errorCode(() => encodeSeqencBits(new Uint8Array(4), new Uint8Array(4), { nIn: 9, nOut: 8, nS: 1 }))).toBe('E_ARG');
    expect(errorCode(() => encodeSeqencBits(new Uint8Array(4), new Uint8Array(4), { nIn: 8, nOut: 8, nS: 3 }))).toBe('E_ARG');
    expect(errorCode(() => quantizeSeqenc(Float32Array.of(Number.NaN), [1, 1], { bits: 4, nIn: 1, nOut: 2, nS: 1 }))).toBe('E_NAN');
  });
});
