import { createKernels, type KernelVariant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/checksum.js';
import { decodeDpredWasm, dequantizeDpred, deserializeDpred, quantizeDpred, serializeDpred } from '../src/dpred.js';
import { decodeSeqencWasm, dequantizeSeqenc, deserializeSeqenc, quantizeSeqenc, serializeSeqenc } from '../src/seqenc.js';
import { errorCode, rng, sameBits } from './helpers.js';

// Property tests (seeded random cases, reproducible from the seed printed on failure) of the WASM
// DPRed and seqenc decoders against the TypeScript reference, on every kernel build.

type Gen = (r: () => number, n: number) => Float32Array;

/** Inputs the encoders branch on: random floats, integers, all zero, all max, one outlier, sparse, -0. */
const GENERATORS: Record<string, Gen> = {
  gaussianish: (r, n) => Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 0.2),
  integers: (r, n) => Float32Array.from({ length: n }, () => Math.round((r() - 0.5) * 2 ** Math.floor(r() * 15))),
  allZero: (_r, n) => new Float32Array(n),
  allMax: (_r, n) => new Float32Array(n).fill(16383),
  allMinusMax: (_r, n) => new Float32Array(n).fill(-16384),
  oneOutlier: (r, n) => {
    const a = Float32Array.from({ length: n }, () => (r() - 0.5) * 0.01);
    if (n > 0) a[Math.floor(r() * n)] = 50;
    return a;
  },
  sparse: (r, n) => Float32Array.from({ length: n }, () => (r() < 0.8 ? 0 : (r() - 0.5) * 3)),
  signedZeros: (r, n) => Float32Array.from({ length: n }, () => (r() < 0.5 ? -0 : r() < 0.5 ? 0 : r() - 0.5)),
};

/** Shapes with lengths that are and are not multiples of the groups, blocks and steps. */
function randomShape(r: () => number): [number, number] {
  const pick = [[1, 1], [1, 17], [3, 16], [5, 33], [7, 64], [2, 255], [16, 16], [4, 100], [0, 5], [3, 0]] as const;
  if (r() < 0.5) return [...pick[Math.floor(r() * pick.length)]] as [number, number];
  return [1 + Math.floor(r() * 12), 1 + Math.floor(r() * 90)];
}

const recrc = (x: Uint8Array) => {
  new DataView(x.buffer, x.byteOffset).setUint32(x.length - 4, crc32(x.subarray(0, x.length - 4)), true);
  return x;
};

describe.each(['relaxed', 'simd', 'scalar'] as KernelVariant[])('WASM decoders (%s) equal the TypeScript reference bit for bit', async (variant) => {
  const k = await createKernels({ variant });

  it('DPRed: 200 random cases over every generator, group 1..300, INT2..15, per row and per tensor scales', () => {
    const r = rng(variant.length * 101);
    const names = Object.keys(GENERATORS);
    for (let c = 0; c < 200; c++) {
      const gen = names[c % names.length];
      const shape = randomShape(r);
      const data = GENERATORS[gen](r, shape[0] * shape[1]);
      const o = { group: [1, 3, 16, 17, 64, 256, 300][Math.floor(r() * 7)], bits: 2 + Math.floor(r() * 14), scale: r() < 0.5 ? ('row' as const) : ('tensor' as const) };
      const bytes = serializeDpred(quantizeDpred(data, shape, o));
      const want = dequantizeDpred(deserializeDpred(bytes));
      const got = decodeDpredWasm(k, bytes);
      expect(got.shape, `case ${c} ${gen}`).toEqual(shape);
      sameBits(got.values, want);
    }
  });

  it('DPRed: truncated streams and left-over bits fail alike in both decoders', () => {
    const r = rng(5);
    const data = GENERATORS.integers(r, 6 * 37);
    const b = serializeDpred(quantizeDpred(data, [6, 37], { group: 16 }));
    const sb = new DataView(b.buffer).getUint32(16, true);
    // shrink or grow the declared stream (dropping or adding bytes before the CRC), checksum redone
    for (const delta of [-1, -3, 1, 2]) {
      const body = b.subarray(0, b.length - 4);
      const x = new Uint8Array(b.length + delta);
      x.set(delta < 0 ? body.subarray(0, body.length + delta) : body);
      new DataView(x.buffer).setUint32(16, sb + delta, true);
      recrc(x);
      const ts = errorCode(() => deserializeDpred(x));
      expect(ts).not.toBe('none');
      expect(errorCode(() => decodeDpredWasm(k, x))).toBe(ts);
    }
    // random width headers with a valid checksum: the same outcome, and equal values when both decode
    for (let t = 0; t < 100; t++) {
      const x = b.slice();
      const at = 24 + 4 * 6 + Math.floor(r() * sb);
      x[at] = Math.floor(r() * 256);
      recrc(x);
      const ts = errorCode(() => deserializeDpred(x));
      expect(errorCode(() => decodeDpredWasm(k, x)), `byte ${at}`).toBe(ts);
      if (ts === 'none') sameBits(decodeDpredWasm(k, x).values, dequantizeDpred(deserializeDpred(x)));
    }
    expect(errorCode(() => decodeDpredWasm(k, b.subarray(0, 10)))).toBe('E_TRUNCATED');
  });

  it('seqenc: 60 random cases, 0% to 100% density, INT-k and exact f32, network shapes, block lengths not dividing the steps', () => {
    const r = rng(variant.length * 7 + 1);
    const names = Object.keys(GENERATORS);
    for (let c = 0; c < 60; c++) {
      const gen = names[c % names.length];
      const shape = randomShape(r);
      const data = GENERATORS[gen](r, shape[0] * shape[1]);
      const nIn = 1 + Math.floor(r() * 4);
      const nS = Math.floor(r() * (8 / nIn + 1));
      const o = {
        bits: r() < 0.25 ? 32 : 2 + Math.floor(r() * 7), sparsity: [0, 0.5, 0.9, 1, r()][Math.floor(r() * 5)], nIn, nOut: nIn + Math.floor(r() * 12), nS: Math.min(nS, Math.floor(16 / nIn)),
        block: 1 + Math.floor(r() * 20), seed: Math.floor(r() * 1000),
      };
      const bytes = serializeSeqenc(quantizeSeqenc(data, shape, o));
      const want = dequantizeSeqenc(deserializeSeqenc(bytes));
      const got = decodeSeqencWasm(k, bytes);
      expect(got.shape, `case ${c} ${gen} ${JSON.stringify(o)}`).toEqual(shape);
      sameBits(got.values, want);
    }
  });

  it('seqenc: both mask codings (bitmap near 50% density, rANS far from it) and hostile mask streams', () => {
    const r = rng(99);
    const w = GENERATORS.gaussianish(r, 40 * 50);
    for (const sparsity of [0, 0.5, 0.95, 1]) {
      const bytes = serializeSeqenc(quantizeSeqenc(w, [40, 50], { bits: 4, sparsity, nIn: 2, nOut: 6, nS: 1 }));
      // mask coding byte: rANS only where it is smaller than the 250-byte bitmap
      expect(bytes[9], `sparsity ${sparsity}`).toBe(sparsity === 0.5 ? 0 : 1);
      sameBits(decodeSeqencWasm(k, bytes).values, dequantizeSeqenc(deserializeSeqenc(bytes)));
    }
    // version 1 (bitmap only) still reads; a version-1 header claiming an rANS mask is refused
    const v2 = serializeSeqenc(quantizeSeqenc(w, [40, 50], { bits: 3, sparsity: 0.5, nIn: 2, nOut: 4, nS: 1 }));
    const v1 = v2.slice();
    v1[4] = 1;
    recrc(v1);
    sameBits(decodeSeqencWasm(k, v1).values, dequantizeSeqenc(deserializeSeqenc(v2)));
    sameBits(dequantizeSeqenc(deserializeSeqenc(v1)), dequantizeSeqenc(deserializeSeqenc(v2)));
    v1[9] = 1;
    expect(errorCode(() => deserializeSeqenc(recrc(v1)))).toBe('E_FORMAT');
    const b = serializeSeqenc(quantizeSeqenc(w, [40, 50], { bits: 3, sparsity: 0.9, nIn: 2, nOut: 8, nS: 1 }));
    expect(b[9]).toBe(1);
    const sl = new DataView(b.buffer).getUint32(32 + 4, true);
    for (let t = 0; t < 100; t++) {
      const x = b.slice();
      x[32 + Math.floor(r() * (8 + sl))] = Math.floor(r() * 256);
      recrc(x);
      const ts = errorCode(() => dequantizeSeqenc(deserializeSeqenc(x)));
      expect(errorCode(() => decodeSeqencWasm(k, x))).toBe(ts);
      if (ts === 'none') sameBits(decodeSeqencWasm(k, x).values, dequantizeSeqenc(deserializeSeqenc(x)));
    }
  });
});
