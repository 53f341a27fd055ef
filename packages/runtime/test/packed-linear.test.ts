import { quantizeInt, quantizeNf4 } from '@lowbit/formats';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

const text = validLines.slice(0, 6).join('\n');

describe('layers quantized by @lowbit/formats', () => {
  it('INT4 group-32 runs packed on the int4 kernel and matches its f32 decode', async () => {
    const packed = await loadModel(modelFile);
    const fake = await loadModel(modelFile);
    const base = perplexity(packed, text, { ctx: 128 }).perplexity;
    for (const l of packed.linears()) {
      if (l.cols % 32 !== 0) continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      const t = quantizeInt(src.data, src.shape, { bits: 4, granularity: 'group-cols', group: 32, symmetric: false });
      const w = linearWeightFromPacked(t);
      expect(w.format).toBe('int4');
      packed.setLinear(l.name, w);
      fake.setLinear(l.name, { format: 'f32', shape: src.shape, data: (await import('@lowbit/formats')).dequantizeInt(t) });
    }
    const p = perplexity(packed, text, { ctx: 128 }).perplexity;
    const f = perplexity(fake, text, { ctx: 128 }).perplexity;
    // same weights; the packed path also quantizes activations to int8 per group: ~0.1–1% apart
    expect(Math.abs(p / f - 1)).toBeLessThan(0.02);
    expect(p).toBeGreaterThan(base); // 4-bit costs something
    expect(p / base).toBeLessThan(1.3);
  });

  it('other formats (NF4, 3-bit INT) evaluate through their f32 decode', async () => {
    const m = await loadModel(modelFile);
    const l = m.linear('blk.0.ffn_up.weight');
    const src = l.source as { data: Float32Array; shape: [number, number] };
    m.setLinear(l.name, linearWeightFromPacked(quantizeNf4(src.data, src.shape, { group: 64 })));
    expect(m.linear(l.name).format).toBe('f32');
    const w3 = linearWeightFromPacked(quantizeInt(src.data, src.shape, { bits: 3, granularity: 'per-oc' }));
    expect(w3.format).toBe('f32');
    m.setLinear(l.name, w3);
    expect(perplexity(m, text, { ctx: 128 }).perplexity).toBeLessThan(10);
  });
});
