// A token embedding at per-row precision (buckets of INT-k rows + a token map) lives in GGUF and
// safetensors files, loads back bit for bit, and hostile maps or blobs are refused naming the field.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PackedIntTensor, dequantizeInt, quantizeInt } from '@lowbit/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { type BucketedEmbedding, bucketedEmbedding, embeddingFromBuckets } from '../src/bucketed-embedding.js';
import { saveModel } from '../src/gguf-convert.js';
import { type GgufValue, readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { gguf as G, writeGguf } from '../src/gguf-writer.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { readSafetensors, readSafetensorsBytes, writeSafetensors } from '../src/safetensors.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-buckets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const text = validLines.slice(0, 2).join('\n');

/** Tokens split by id parity into an INT-2 g32 bucket (odd ids, listed high to low) and an INT-8 per-row one (even). */
function buckets(model: DecoderModel): { e: BucketedEmbedding; rows: Int32Array[]; packed: PackedIntTensor[] } {
  const { vocabSize: V, dim } = model.config;
  const rows = [Int32Array.from({ length: V / 2 }, (_, i) => V - 1 - 2 * i), Int32Array.from({ length: V / 2 }, (_, i) => 2 * i)];
  const packed = rows.map((ids, b) => {
    const w = new Float32Array(ids.length * dim);
    ids.forEach((id, r) => model.embed(id, w, r * dim));
    return quantizeInt(w, [ids.length, dim], b === 0 ? { bits: 2, granularity: 'group-cols', group: 32 } : { bits: 8, granularity: 'per-oc', symmetric: false });
  });
  return { e: embeddingFromBuckets('test', V, dim, packed, rows), rows, packed };
}

function table(model: DecoderModel): Float32Array {
  const { vocabSize: V, dim } = model.config;
  const t = new Float32Array(V * dim);
  for (let id = 0; id < V; id++) model.embed(id, t, id * dim);
  return t;
}

describe('bucketed token embedding', () => {
  it('looks rows up as formats dequantizes them, and GGUF and safetensors files load to the same rows and perplexity', async () => {
    const model = await loadModel(modelFile);
    const { e, rows, packed } = buckets(model);
    model.weights.tokenEmbd = { type: 'buckets', buckets: e, rowBytes: 0 };
    const dim = model.config.dim;
    const got = table(model);
    // independent reference: formats' whole-tensor dequantization, row r of bucket b is token rows[b][r]
    packed.forEach((t, b) => {
      const ref = dequantizeInt(t);
      rows[b].forEach((id, r) => expect(got.subarray(id * dim, (id + 1) * dim)).toEqual(ref.subarray(r * dim, (r + 1) * dim)));
    });
    const ppl = perplexity(model, text, { ctx: 64 }).perplexity;
    const gguf = join(dir, 'b.gguf');
    await saveModel(model, gguf);
    const f = await readGguf(gguf);
    expect(f.tensors.has('token_embd.weight')).toBe(false);
    expect([f.tensors.get('token_embd.bucket0.weight')?.type, f.tensors.get('token_embd.bucket1.weight')?.type]).toEqual(['LB_INT2', 'LB_INT8']);
    await f.source.close();
    const st = join(dir, 'b.safetensors');
    await saveModelSafetensors(model, st);
    for (const loaded of [await loadModel(gguf), await loadQuantizedSafetensors(st)]) {
      expect(loaded.weights.tokenEmbd.type).toBe('buckets');
      expect(table(loaded)).toEqual(got);
      // same rows, same f32 layers: the same forward passes, bit for bit
      expect(perplexity(loaded, text, { ctx: 64 }).perplexity).toBe(ppl);
      loaded.free();
    }
    model.free();
  }, 60_000);

  it('refuses maps past a bucket, row counts that miss the vocabulary, rows mapped twice and truncated blobs', async () => {
    const model = await loadModel(modelFile);
    const { e } = buckets(model);
    const { vocabSize: V, dim } = model.config;
    const fails = (f: () => unknown, re: RegExp) => expect(f).toThrow(re);
    const bad = (edit: (b: Int32Array, r: Int32Array) => void) => {
      const b = Int32Array.from(e.bucketOf);
      const r = Int32Array.from(e.rowOf);
      edit(b, r);
      return () => bucketedEmbedding('m.gguf: token embedding', V, dim, e.buckets, b, r);
    };
    fails(bad((b) => { b[7] = 2; }), /m\.gguf: token embedding: bucket map sends token 7 to bucket 2; there are 2 buckets/);
    fails(bad((_, r) => { r[4] = V / 2; }), /sends token 4 to row 256 of bucket 1, which holds 256 rows/);
    fails(bad((_, r) => { r[3] = r[5]; }), /sends token 5 to row \d+ of bucket 0, which an earlier token already has/);
    fails(() => bucketedEmbedding('x', V, dim, [e.buckets[0]], e.bucketOf, e.rowOf), /buckets hold 256 = 256 rows, the vocabulary 512 tokens/);
    fails(() => bucketedEmbedding('x', V + 1, dim, e.buckets, e.bucketOf, e.rowOf), /bucket map has 512 \/ 512 entries, the vocabulary 513 tokens/);

    // a safetensors file whose first bucket blob lost its last byte
    model.weights.tokenEmbd = { type: 'buckets', buckets: e, rowBytes: 0 };
    const good = join(dir, 'good.safetensors');
    await saveModelSafetensors(model, good);
    const st = await readSafetensors(good);
    const tensors = await Promise.all([...st.tensors.values()].map(async (t) => {
      let data = await readSafetensorsBytes(st, t.name);
      if (t.name === 'model.embed_tokens.bucket0.lowbit_packed') data = data.subarray(0, data.length - 1);
      return { name: t.name, dtype: t.dtype, shape: t.name.endsWith('lowbit_packed') ? [data.length] : t.shape, data };
    }));
    const meta = st.metadata;
    await st.source.close();
    const cut = join(dir, 'cut.safetensors');
    await writeSafetensors(cut, tensors, meta);
    await expect(loadQuantizedSafetensors(cut)).rejects.toThrow(/model\.embed_tokens\.bucket0\.lowbit_packed: \d+ bytes, shape \[64,256\] as LB_INT2 needs \d+/);

    // a GGUF whose map lost its last token, and one whose bucket 1 is renamed past a gap
    const gguf = join(dir, 'good.gguf');
    await saveModel(model, gguf);
    const f = await readGguf(gguf);
    const rewrite = async (path: string, meta: (m: Map<string, GgufValue>) => void, rename: (n: string) => string = (n) => n) => {
      const tensors = await Promise.all([...f.tensors.values()].map(async (t) => ({ name: rename(t.name), shape: t.shape, type: t.type, params: t.params, data: await readTensorBytes(f, t.name) })));
      const m = new Map([...f.metadata].filter(([k]) => !k.startsWith('lowbit.tensor.')));
      meta(m);
      await writeGguf(path, m, tensors);
    };
    const short = join(dir, 'short.gguf');
    await rewrite(short, (m) => m.set('lowbit.token_embd.bucket_map', G.i32s((m.get('lowbit.token_embd.bucket_map')?.value as number[] ?? []).slice(0, -2))));
    await expect(loadModel(short)).rejects.toThrow(/short\.gguf: token embedding: metadata lowbit\.token_embd\.bucket_map has 1022 entries, 512 tokens need 1024/);
    const gap = join(dir, 'gap.gguf');
    await rewrite(gap, () => {}, (n) => n.replace('token_embd.bucket1.', 'token_embd.bucket2.'));
    await expect(loadModel(gap)).rejects.toThrow(/tensor token_embd\.bucket2\.weight follows a gap/);
    await f.source.close();
    model.free();
  }, 60_000);
});
