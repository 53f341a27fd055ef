import { quantizeInt, quantizeNf4 } from '@lowbit/formats';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

const text = validLines.slice(0, 6).join('\n');

describe('layers quantized by @lowbit/formats', () => {
  it('INT4 group-32 (asymmetric) runs packed on Q4_0 tiles with a group term and matches its f32 decode', async () => {
    const packed = await loadModel(modelFile);
    const fake = await loadModel(modelFile);
    const base = perplexity(packed, text, { ctx: 128 }).perplexity;
    for (const l of packed.linears()) {
      if (l.cols % 32 !== 0) continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      const t = quantizeInt(src.data, src.shape, { bits: 4, granularity: 'group-cols', group: 32, symmetric: false });
      const w = linearWeightFromPacked(t);
      expect(w.format).toBe('q4_0');
      packed.setLinear(l.name, w);
      fake.setLinear(l.name, { format: 'f32', shape: src.shape, data: (await import('@lowbit/formats')).dequantizeInt(t) });
    }
    const p = perplexity(packed, text, { ctx: 128 }).perplexity;
    const f = perplexity(fake, text, { ctx: 128 }).perplexity;
    // same weights; the packed path also quantizes activations to int8 per 32 columns: ~0.1–1% apart
    expect(Math.abs(p / f - 1)).toBeLessThan(0.02);
    expect(p).toBeGreaterThan(base); // 4-bit costs something
    expect(p / base).toBeLessThan(1.3);
  });

  it('NF4, 3-bit INT, codebooks and MXFP4 run packed on the formats GEMV, equal to their f32 decode', async () => {
    const { quantizeCodebook, quantizeMx } = await import('@lowbit/formats');
    const packed = await loadModel(modelFile);
    const decoded = await loadModel(modelFile);
    const kinds: string[] = [];
    for (const [i, name] of ['blk.0.ffn_up.weight', 'blk.1.attn_q.weight', 'blk.2.ffn_gate.weight', 'blk.3.attn_output.weight'].entries()) {
      const src = packed.linear(name).source as { data: Float32Array; shape: [number, number] };
      const t = [
        () => quantizeNf4(src.data, src.shape, { group: 64 }),
        () => quantizeInt(src.data, src.shape, { bits: 3, granularity: 'per-oc' }),
        () => quantizeCodebook(src.data, src.shape, { bits: 3 }),
        () => quantizeMx(src.data, { format: 'mxfp4' }),
      ][i]();
      // tableGemv: 3-bit INT and MXFP4 would otherwise run on Q4_0 / Q8_0 tiles (packed-fast.test.ts)
      const w = linearWeightFromPacked(t as never, { shape: src.shape, tableGemv: true });
      kinds.push(w.format);
      packed.setLinear(name, w);
      decoded.setLinear(name, linearWeightFromPacked(t as never, { shape: src.shape, decode: true }));
    }
    expect(kinds).toEqual(['packed', 'packed', 'packed', 'packed']);
    const ids = packed.tokenizer.encode(validLines[0], { bos: true }).slice(0, 64);
    const { Session } = await import('../src/forward.js');
    const a = new Session(packed, { ctx: 64 }).forward(ids, { logits: 'all' });
    const b = new Session(decoded, { ctx: 64 }).forward(ids, { logits: 'all' });
    // f32 activations on both paths; only the summation order differs
    let md = 0;
    for (let i = 0; i < a.length; i++) md = Math.max(md, Math.abs(a[i] - b[i]));
    expect(md).toBeLessThan(1e-3);
  });
});
