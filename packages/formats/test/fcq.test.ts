import { createKernels, type KernelVariant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../src/checksum.js';
import { entropyBits, normalizeFrequencies, ransDecode, ransEncode } from '../src/entropy-coder.js';
import { decodeFcqWasm, dequantizeFcq, deserializeFcq, fcqStats, fibbinaryCodes, packFcqCodes, quantizeFcq, serializeFcq } from '../src/fcq.js';
import { errorCode, rng, sameBits } from './helpers.js';

function roundTrip(symbols: Uint8Array, alphabet: number): Uint8Array {
  const counts = new Uint32Array(alphabet);
  for (const s of symbols) counts[s]++;
  const f = normalizeFrequencies(counts);
  if (symbols.length === 0) f[0] = 4096;
  const enc = ransEncode(symbols, f);
  expect(Array.from(ransDecode(enc, f, symbols.length))).toEqual(Array.from(symbols));
  return enc;
}

describe('static rANS coder', () => {
  it('crc32 matches the zlib check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('round-trips random streams of skewed and flat distributions, within 1% + 8 bytes of the entropy', () => {
    const r = rng(7);
    for (const [alphabet, skew] of [[2, 1], [5, 3], [55, 2], [256, 1], [13, 6]]) {
      const n = 5000;
      const s = Uint8Array.from({ length: n }, () => Math.min(alphabet - 1, Math.floor(alphabet * r() ** skew)));
      const enc = roundTrip(s, alphabet);
      const counts = new Uint32Array(alphabet);
      for (const v of s) counts[v]++;
      const h = entropyBits(counts) * n;
      expect(enc.length * 8).toBeGreaterThanOrEqual(h); // never below the order-0 bound
      expect(enc.length * 8).toBeLessThanOrEqual(h * 1.01 + 64);
    }
  });

  it('round-trips degenerate streams: empty, one symbol, constant, one outlier, alternating', () => {
    roundTrip(new Uint8Array(0), 3);
    expect(errorCode(() => normalizeFrequencies([7]))).toBe('E_ARG');
    roundTrip(Uint8Array.of(2), 3);
    const constant = new Uint8Array(100000).fill(4);
    // never probability 1 (1 - 1/4096): 100000 · log2(4096/4095) = 35 bits on top of the 4-byte state
    expect(roundTrip(constant, 8).length).toBeLessThanOrEqual(4 + 6);
    const certain = new Uint16Array(8);
    certain[4] = 4096;
    expect(errorCode(() => ransDecode(Uint8Array.of(0, 0x80, 0, 0), certain, 5))).toBe('E_FORMAT');
    const outlier = new Uint8Array(10000);
    outlier[1234] = 254;
    roundTrip(outlier, 256);
    roundTrip(Uint8Array.from({ length: 999 }, (_, i) => i & 1), 2);
    // symbols at the minimum frequency 1/4096 (the 2-byte-per-symbol worst case)
    roundTrip(Uint8Array.from({ length: 300 }, (_, i) => i % 255), 256);
  });

  it('rejects truncated, extended and corrupted streams and wrong counts', () => {
    const r = rng(3);
    const s = Uint8Array.from({ length: 2000 }, () => Math.floor(8 * r() * r()));
    const counts = new Uint32Array(8);
    for (const v of s) counts[v]++;
    const f = normalizeFrequencies(counts);
    const enc = ransEncode(s, f);
    expect(errorCode(() => ransDecode(enc.subarray(0, enc.length - 1), f, s.length))).toMatch(/E_TRUNCATED|E_BAD_FILE/);
    expect(errorCode(() => ransDecode(enc.subarray(0, 3), f, s.length))).toBe('E_TRUNCATED');
    expect(errorCode(() => ransDecode(Uint8Array.of(...enc, 0), f, s.length))).toBe('E_BAD_FILE');
    expect(errorCode(() => ransDecode(enc, f, s.length - 1))).toBe('E_BAD_FILE');
    expect(errorCode(() => ransDecode(enc, f, s.length + 1))).toMatch(/E_TRUNCATED|E_BAD_FILE/);
    expect(errorCode(() => ransDecode(enc, f, 1e9))).toBe('E_BAD_FILE'); // refused before allocating 1 GB
    const bad = Uint16Array.from(f);
    bad[0]++;
    expect(errorCode(() => ransDecode(enc, bad, s.length))).toBe('E_FORMAT');
    // the final-state check catches most single-byte corruptions (the rest decode to other symbols,
    // which the container's CRC catches)
    let caught = 0;
    for (let i = 0; i < 50; i++) {
      const c = enc.slice();
      c[Math.floor(r() * c.length)] ^= 1 << Math.floor(r() * 8);
      try {
        ransDecode(c, f, s.length);
      } catch {
        caught++;
      }
    }
    expect(caught).toBeGreaterThan(25);
  });
});

describe('Fibonacci codeword quantization', () => {
  it('fibbinary codes: F(k+2) words, none with adjacent ones', () => {
    const fib = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55];
    for (let k = 1; k <= 8; k++) {
      const c = fibbinaryCodes(k);
      expect(c.length).toBe(fib[k + 2]);
      for (const w of c) expect(w & (w >> 1)).toBe(0);
    }
  });

  const r = rng(11);
  const w = Float32Array.from({ length: 64 * 48 }, () => (r() + r() + r() - 1.5) * 0.1);

  it('uniform levels: every weight goes to its nearest level; error bounded by half a step', () => {
    for (const bits of [2, 3, 4, 6]) {
      const t = quantizeFcq(w, [64, 48], { bits });
      const d = dequantizeFcq(t);
      const step = (t.levels[t.levels.length - 1] - t.levels[0]) / (t.levels.length - 1);
      for (let i = 0; i < w.length; i++) {
        expect(Math.abs(d[i] - w[i])).toBeLessThanOrEqual(step / 2 + 1e-7); // f32 rounding of levels
        let best = Number.POSITIVE_INFINITY;
        for (const l of t.levels) best = Math.min(best, Math.abs(l - w[i]));
        expect(Math.abs(d[i] - w[i])).toBe(best);
      }
    }
  });

  it('k-means levels do not have higher MSE than the uniform grid', () => {
    const mse = (t: ReturnType<typeof quantizeFcq>) => {
      const d = dequantizeFcq(t);
      let s = 0;
      for (let i = 0; i < w.length; i++) s += (d[i] - w[i]) ** 2;
      return s / w.length;
    };
    for (const bits of [3, 4]) expect(mse(quantizeFcq(w, [64, 48], { bits, levels: 'kmeans' }))).toBeLessThanOrEqual(mse(quantizeFcq(w, [64, 48], { bits })));
  });

  it('serialization round-trips exactly; coded size never below the entropy bound; fewer transitions than binary', () => {
    for (const bits of [2, 4, 8]) {
      const t = quantizeFcq(w, [64, 48], { bits, levels: bits === 8 ? 'uniform' : 'kmeans' });
      const bytes = serializeFcq(t);
      const back = deserializeFcq(bytes);
      expect(back.shape).toEqual([64, 48]);
      expect(Array.from(back.indices)).toEqual(Array.from(t.indices));
      expect(Array.from(back.levels)).toEqual(Array.from(t.levels));
      const s = fcqStats(t, bytes);
      expect(s.bitsPerWeightCoded).toBeGreaterThanOrEqual(s.entropyBitsPerWeight);
      expect(s.modelBitsPerWeight).toBeGreaterThanOrEqual(s.entropyBitsPerWeight - 1e-12);
      expect(s.onesPerWeight).toBeLessThanOrEqual(s.onesPerWeightBinary);
      expect(packFcqCodes(t).length).toBe(Math.ceil((w.length * bits) / 8));
    }
  });

  it('degenerate tensors: empty, constant, one outlier', () => {
    for (const [data, shape] of [
      [new Float32Array(0), [0, 5]],
      [new Float32Array(100).fill(0.25), [10, 10]],
      [Float32Array.from({ length: 100 }, (_, i) => (i === 37 ? 100 : 0.01 * (i % 3))), [4, 25]],
    ] as [Float32Array, [number, number]][]) {
      const t = quantizeFcq(data, shape, { bits: 4 });
      const back = deserializeFcq(serializeFcq(t));
      expect(Array.from(dequantizeFcq(back))).toEqual(Array.from(dequantizeFcq(t)));
      if (data.length === 100 && data[0] === 0.25) expect(Array.from(dequantizeFcq(t))).toEqual(Array.from(data));
    }
    expect(errorCode(() => quantizeFcq(Float32Array.of(1, Number.NaN), [1, 2], { bits: 3 }))).toBe('E_NAN');
    expect(errorCode(() => quantizeFcq(Float32Array.of(1, 2), [1, 2], { bits: 9 }))).toBe('E_ARG');
  });

  it('the reader rejects truncation, corruption and lying headers before allocating', () => {
    const t = quantizeFcq(w, [64, 48], { bits: 4 });
    const b = serializeFcq(t);
    for (const cut of [0, 10, 19, 60, b.length - 1]) expect(errorCode(() => deserializeFcq(b.subarray(0, cut)))).toBe('E_TRUNCATED');
    const flip = b.slice();
    flip[b.length - 20] ^= 4;
    expect(errorCode(() => deserializeFcq(flip))).toBe('E_BAD_FILE');
    const magic = b.slice();
    magic[0] = 0;
    expect(errorCode(() => deserializeFcq(magic))).toBe('E_FORMAT');
    const levels = b.slice();
    levels[6] = 9;
    expect(errorCode(() => deserializeFcq(levels))).toBe('E_FORMAT');
    // a huge shape with a matching checksum: refused from the stream length, not by allocating
    const huge = b.slice();
    const dv = new DataView(huge.buffer);
    dv.setUint32(8, 40000, true);
    dv.setUint32(12, 40000, true);
    dv.setUint32(huge.length - 4, crc32(huge.subarray(0, huge.length - 4)), true);
    expect(errorCode(() => deserializeFcq(huge))).toBe('E_BAD_FILE');
  });
});

describe.each(['relaxed', 'simd', 'scalar'] as KernelVariant[])('FCQ WASM decoder (%s)', async (variant) => {
  const k = await createKernels({ variant });
  it('equals the TypeScript decoder bit for bit: random, skewed, constant, empty, all 8-bit levels, -0 and NaN levels', () => {
    const r = rng(31);
    const cases: [Float32Array, [number, number], number][] = [
      [Float32Array.from({ length: 33 * 17 }, () => r() - 0.5), [33, 17], 4],
      [Float32Array.from({ length: 500 }, () => (r() - 0.5) ** 5), [1, 500], 8],
      [new Float32Array(77).fill(-2), [7, 11], 3],
      [new Float32Array(0), [0, 3], 2],
      [Float32Array.from({ length: 4000 }, (_, i) => i), [40, 100], 8],
    ];
    for (const [w, shape, bits] of cases) {
      const t = quantizeFcq(w, shape, { bits, levels: bits === 4 ? 'kmeans' : 'uniform' });
      t.levels[0] = -0;
      if (t.levels.length > 2) t.levels[1] = Number.NaN;
      const bytes = serializeFcq(t);
      const d = decodeFcqWasm(k, bytes);
      expect(d.shape).toEqual(shape);
      sameBits(d.values, dequantizeFcq(deserializeFcq(bytes)));
    }
  });

  it('rejects what the TypeScript decoder rejects, with the same codes', () => {
    const r = rng(2);
    const t = quantizeFcq(Float32Array.from({ length: 900 }, () => r() * r()), [30, 30], { bits: 4 });
    const b = serializeFcq(t);
    const dv = new DataView(b.buffer);
    for (let trial = 0; trial < 30; trial++) {
      // corrupt the stream, then re-seal the checksum so the rANS checks are what is tested
      const c = b.slice();
      const at = b.length - 5 - Math.floor(r() * 50);
      c[at] ^= 1 << Math.floor(r() * 8);
      new DataView(c.buffer).setUint32(c.length - 4, crc32(c.subarray(0, c.length - 4)), true);
      expect(errorCode(() => decodeFcqWasm(k, c))).toBe(errorCode(() => deserializeFcq(c)));
    }
    expect(dv.getUint32(b.length - 4, true)).toBe(crc32(b.subarray(0, b.length - 4)));
  });
});
