import { f16ToF32, f32ToF16 } from '@lowbit/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LayerCache, Session } from '../src/forward.js';
import { CompressedKvCache, KvRows, checkKvBits } from '../src/kv-cache.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { generate } from '../src/generate.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

let model: DecoderModel;
beforeAll(async () => {
  model = await loadModel(modelFile);
});
afterAll(() => model.free());

describe('KvRows', () => {
  const x = Float32Array.from([1.27, -0.5, 0.25, 0, 0.01, -1.27, 0.6, 0.3]);

  it('int8: scale = absmax/127 in fp16, codes round(x/scale), decoded within half a step', () => {
    const r = new KvRows(8, 2, 8, 8);
    expect(r.rowBytes).toBe(8 + 2);
    r.put(1, x, 0);
    const out = new Float32Array(8);
    r.get(1, out, 0);
    const s = f16ToF32(f32ToF16(1.27 / 127));
    for (let i = 0; i < 8; i++) expect(out[i]).toBe(Math.round(x[i] / s) * s);
    for (let i = 0; i < 8; i++) expect(Math.abs(out[i] - x[i])).toBeLessThanOrEqual(s / 2 + 1e-7);
  });

  it('int4 in two heads of 4: per-head scales absmax/7, codes in [−8, 7], two per byte', () => {
    const r = new KvRows(4, 1, 8, 4);
    expect(r.rowBytes).toBe(2 * (2 + 2));
    r.put(0, x, 0);
    const out = new Float32Array(8);
    r.get(0, out, 0);
    const s0 = f16ToF32(f32ToF16(1.27 / 7));
    const s1 = f16ToF32(f32ToF16(1.27 / 7));
    const want = Array.from(x, (v, i) => Math.max(-8, Math.min(7, Math.round(v / (i < 4 ? s0 : s1)))) * (i < 4 ? s0 : s1));
    expect(Array.from(out)).toEqual(want.map(Math.fround));
  });

  it('16 bits: fp16 values; 32 bits: the f32 values themselves; a zero row stays zero', () => {
    const out = new Float32Array(8);
    const h = new KvRows(16, 1, 8, 8);
    h.put(0, x, 0);
    h.get(0, out, 0);
    expect(Array.from(out)).toEqual(Array.from(x, (v) => f16ToF32(f32ToF16(v))));
    const f = new KvRows(32, 1, 8, 8);
    f.put(0, x, 0);
    f.get(0, out, 0);
    expect(Array.from(out)).toEqual(Array.from(x));
    const z = new KvRows(4, 1, 8, 8);
    z.put(0, new Float32Array(8), 0);
    z.get(0, out, 0);
    expect(Array.from(out)).toEqual(new Array(8).fill(0));
  });

  it('bits outside 4, 8, 16, 32 are E_RANGE', () => {
    for (const b of [0, 2, 3, 6, 12, 64, Number.NaN]) expect(() => checkKvBits(b)).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    expect(() => new CompressedKvCache(model.config, 16, { bits: 5 })).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    expect(() => new CompressedKvCache(model.config, 16, { minicache: { pairs: [[4, 5]] } })).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
    const small = new Session(model, { ctx: 16, kvCache: new CompressedKvCache(model.config, 4, { bits: 8 }) });
    expect(() => small.forward([1, 2, 3, 4, 5])).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
  });
});

describe('CompressedKvCache on stories260K', () => {
  const ids = [1, 403, 407, 261, 358, 292, 127, 471, 300, 89, 17, 5];

  it('32 bits and nothing merged: the same logits and cache as the plain session, bit for bit', () => {
    const plain = new Session(model, { ctx: 16 });
    const kv = new CompressedKvCache(model.config, 16, { bits: 32 });
    const withKv = new Session(model, { ctx: 16, kvCache: kv });
    for (const id of ids) expect(Array.from(withKv.forward([id]))).toEqual(Array.from(plain.forward([id])));
    const text = validLines.slice(0, 3).join('\n');
    const a = perplexity(model, text, { ctx: 64, decode: true });
    const b = perplexity(model, text, { ctx: 64, decode: true, kvCache: new CompressedKvCache(model.config, 64, { bits: 32 }) });
    expect(b.nll).toBe(a.nll);
    // 5 layers × K and V × 32 values × 4 bytes; the fp16 baseline is half that
    const s = kv.stats();
    expect([s.tokens, s.bytesPerToken, s.fp16BytesPerToken]).toEqual([ids.length, 1280, 640]);
  });

  it('generate through a 32-bit cache (prompt run token by token) gives the plain greedy tokens', () => {
    const plain = generate(model, 'Once upon a time', { steps: 12, temperature: 0 });
    const kv = new CompressedKvCache(model.config, model.config.contextLength, { bits: 32 });
    const viaKv = generate(model, 'Once upon a time', { steps: 12, temperature: 0, kvCache: kv });
    expect(viaKv.tokens).toEqual(plain.tokens);
    expect(kv.stats().tokens).toBe(plain.prompt.length + 11); // the last token is sampled, never run
  });

  it('8 bits: 400 bytes per token (5 layers × 2 × 4 heads × (8 codes + 2 scale bytes)), logits near the plain ones', () => {
    const plain = new Session(model, { ctx: 16 });
    const kv = new CompressedKvCache(model.config, 16, { bits: 8 });
    const q = new Session(model, { ctx: 16, kvCache: kv });
    let worst = 0;
    for (const id of ids) {
      const a = plain.forward([id]);
      const b = q.forward([id]);
      for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]));
    }
    // int8 states (steps of absmax/127 per head of 8) move these 12 tokens' logits (spread ~20) by 0.73 at most
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1);
    expect(kv.stats().bytesPerToken).toBe(400);
    // int8 keys, int4 values: 5 × 4 heads × ((8 + 2) + (4 + 2))
    expect(new CompressedKvCache(model.config, 16, { bits: 8, valueBits: 4 }).valueBits).toBe(4);
    const k8v4 = new CompressedKvCache(model.config, 16, { bits: 8, valueBits: 4 });
    new Session(model, { ctx: 16, kvCache: k8v4 }).forward([1, 403]);
    expect(k8v4.stats().bytesPerToken).toBe(5 * 4 * (10 + 6));
    expect(() => new CompressedKvCache(model.config, 16, { bits: 8, valueBits: 2 })).toThrow(expect.objectContaining({ code: 'E_RANGE' }));
  });

  it('a merged pair, t = 1, nothing retained: the second layer keeps its states, the first its magnitudes along them', () => {
    const c = model.config;
    const d = c.nKvHeads * c.headDim;
    const kv = new CompressedKvCache(c, 2, { bits: 32, minicache: { pairs: [[1, 2]], t: 1, gamma: 1 } });
    const rnd = (seed: number) => Float32Array.from({ length: 2 * d }, (_, i) => Math.sin(seed * 1000 + i * 7.1));
    const layers: LayerCache[] = Array.from({ length: c.nLayers }, (_, l) => ({ keys: rnd(l), values: rnd(l + 10) }));
    const before = layers.map((x) => ({ keys: x.keys.slice(), values: x.values.slice() }));
    const cache = (l: number) => layers[l];
    kv.afterAttention(1, 0, 1, new Float32Array(0), cache); // first of the pair: waits
    expect(layers[1].keys).toEqual(before[1].keys);
    kv.afterAttention(2, 0, 1, new Float32Array(0), cache);
    const norm = (v: Float32Array) => Math.hypot(...v);
    for (const k of ['keys', 'values'] as const) {
      const a = before[1][k].subarray(0, d);
      const b = before[2][k].subarray(0, d);
      // ‖b‖·b/‖b‖ = b up to f32 rounding of the direction and product (~2 ulp)
      for (let i = 0; i < d; i++) expect(Math.abs(layers[2][k][i] - b[i])).toBeLessThan(1e-6 * norm(b));
      for (let i = 0; i < d; i++) expect(Math.abs(layers[1][k][i] - (norm(a) / norm(b)) * b[i])).toBeLessThan(1e-6 * norm(a));
      expect(layers[1][k].subarray(d)).toEqual(before[1][k].subarray(d)); // position 1 not stored yet
    }
    const s = kv.stats();
    expect(s.retained).toEqual({ keys: 0, values: 0 });
    // 3 unmerged layers × 2 × 128 B + the pair: 2 × (one 128 B direction + two 4 B magnitudes)
    expect(s.bytesPerToken).toBe(3 * 2 * 128 + 2 * (128 + 8));
  });

  it('a merged pair, γ = 0 on one token: retained (the first token always is), states exact', () => {
    const c = model.config;
    const d = c.nKvHeads * c.headDim;
    const kv = new CompressedKvCache(c, 1, { bits: 32, minicache: { pairs: [[3, 4]], gamma: 0 } });
    const layers: LayerCache[] = Array.from({ length: c.nLayers }, (_, l) => ({ keys: Float32Array.from({ length: d }, (_, i) => l + i), values: Float32Array.from({ length: d }, (_, i) => l - i) }));
    const before = layers.map((x) => ({ keys: x.keys.slice(), values: x.values.slice() }));
    for (let l = 0; l < c.nLayers; l++) kv.afterAttention(l, 0, 1, new Float32Array(0), (i) => layers[i]);
    expect(layers).toEqual(before);
    expect(kv.stats().retained).toEqual({ keys: 1, values: 1 });
  });
});

describe('Session int8Cache (kernels.attentionQ8)', () => {
  it('a quarter of the cache memory; logits near the f32 cache; prefill equals decode; freed on free()', () => {
    const ids = [1, 403, 407, 261, 358, 292, 127, 471, 300, 89, 17, 5];
    const k = model.kernels;
    const before = k.heap.liveBytes;
    const s = new Session(model, { ctx: 16, int8Cache: true });
    const c = model.config;
    // codes: 5 layers × 16 positions × 32 values, keys and values; scales: 4 f32 per position
    expect(k.heap.liveBytes - before).toBeGreaterThanOrEqual(2 * 5 * 16 * 32 + 2 * 5 * 16 * c.nKvHeads * 4);
    const plain = new Session(model, { ctx: 16 });
    const ps = new Session(model, { ctx: 16, int8Cache: true });
    const prefill = ps.forward(ids, { logits: 'all' });
    ps.free();
    const V = c.vocabSize;
    let worst = 0;
    ids.forEach((id, t) => {
      const a = s.forward([id]);
      const b = plain.forward([id]);
      for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]));
      // quantize-then-attend is the same per token in a batch: equal up to f32 dot order (1e-4)
      for (let j = 0; j < V; j += 7) expect(Math.abs(a[j] - prefill[t * V + j])).toBeLessThan(1e-4);
    });
    // int8 states (absmax/127 steps per head of 8), the token's own key and value quantized too
    // (CompressedKvCache stores them after attention): 1.07 at most here, logits spread ~20
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(1.5);
    s.free();
    plain.free();
    expect(k.heap.liveBytes).toBe(before);
  });

  it('does not combine with kvCache or spans', () => {
    const { nLayers, nHeads } = model.config;
    expect(() => new Session(model, { ctx: 8, int8Cache: true, kvCache: new CompressedKvCache(model.config, 8) })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    expect(() => new Session(model, { ctx: 8, int8Cache: true, spans: new Int32Array(nLayers * nHeads).fill(8) })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
  });
});
