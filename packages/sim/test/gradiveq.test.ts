import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, lossAndGrad } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { compress, decompress, gradiveqStudy, learnBasis, ringAllReduce, ringTime, trainingGradients } from '../src/gradiveq.js';
import { LowbitError, seededRandom } from '../src/index.js';

describe('GradiVeQ', () => {
  it('the ring all-reduce gives every node the plain sum', () => {
    const rand = seededRandom(2);
    for (const N of [1, 2, 3, 5]) {
      const inputs = Array.from({ length: N }, () => Float64Array.from({ length: 17 }, () => rand()));
      const sum = inputs.reduce((a, x) => a.map((v, i) => v + x[i]));
      for (const r of ringAllReduce(inputs)) for (let i = 0; i < 17; i++) expect(r[i]).toBeCloseTo(sum[i], 12);
    }
  });
  it('k = d is lossless; slices in a k-dimensional subspace are lossless at that k', () => {
    const rand = seededRandom(3);
    const d = 8;
    // slices = a*u + b*v: a 2-dimensional subspace
    const u = Array.from({ length: d }, () => rand() - 0.5);
    const v = Array.from({ length: d }, () => rand() - 0.5);
    const mk = () => Float32Array.from({ length: 64 * d }, (_, i) => {
      const s = Math.floor(i / d);
      return Math.sin(s) * u[i % d] + Math.cos(3 * s) * v[i % d];
    });
    const g = mk();
    for (const k of [2, d]) {
      const B = learnBasis(g, d, k);
      const back = decompress(B, k, d, compress(B, k, d, g), g.length);
      for (let i = 0; i < g.length; i++) expect(back[i]).toBeCloseTo(g[i], 4); // f32 inputs, f64 basis
    }
  });
  it('compressed aggregation: ratio d/k, error of the decompressed sum, ring time model', () => {
    const rand = seededRandom(4);
    const grads = Array.from({ length: 4 }, () => Float32Array.from({ length: 32 * 200 }, () => rand() - 0.5));
    const r = gradiveqStudy(grads, { d: 32, k: 8, bandwidthBytesPerS: 1e9, latencyS: 1e-5 });
    expect(r.compressionRatio).toBe(4);
    expect(r.ringMaxDiff).toBeLessThan(1e-9);
    // white noise has no low-dimensional structure: 8 of 32 directions keep about 8/32 of the energy
    expect(r.relError).toBeGreaterThan(0.7);
    expect(r.uncompressedSeconds).toBeCloseTo(2 * 3 * (1e-5 + (4 * 6400) / 4 / 1e9), 15);
  });
  it('real gradients: node i holds d loss / d weights on its own window, tensors in name order', async () => {
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 3000);
    const { grads, names, losses } = trainingGradients(model, text, 3, { ctx: 16, match: 'blk.1.' });
    expect(names.length).toBeGreaterThan(0);
    expect(names.every((n) => n.startsWith('blk.1.'))).toBe(true);
    // independently: lossAndGrad on node 2's window (tokens 32..48) and the same tensors concatenated
    const ids = model.tokenizer.encode(text, { bos: true }).slice(32, 49);
    const ref = lossAndGrad(model, ids);
    const want = Float32Array.from(names.flatMap((n) => [...ref.grads.get(n)!]));
    expect(grads[2]).toEqual(want);
    expect(losses[2]).toBe(ref.loss);
    expect(grads[0]).not.toEqual(grads[1]);
    expect(() => trainingGradients(model, 'Once', 2, { ctx: 16 })).toThrow(/need 33/);
  }, 30_000);
  it('bad input', () => {
    expect(() => ringTime(1, 0, 1, 0)).toThrow(LowbitError);
    expect(() => learnBasis(new Float32Array(10), 8, 2)).toThrow(/PCA needs at least 2/);
  });
});
