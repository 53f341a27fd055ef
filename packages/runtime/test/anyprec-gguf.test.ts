// LB_ANYPREC: a nested any-precision model as one GGUF file (lowbit's own tensor type, parameters in
// lowbit.tensor.<name>), every width servable from it, checked against the model it was saved from.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeAnyPrecision } from '@lowbit/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { saveModel } from '../src/gguf-convert.js';
import { anyPrecisionFromBytes } from '../src/any-precision-linear.js';
import { readGguf } from '../src/gguf-reader.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-anyprec-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('LB_ANYPREC in GGUF', () => {
  it('saves a nested model as one GGUF whose every width gives the same logits as the model in memory', async () => {
    const model = await loadModel(modelFile);
    for (const l of model.linears()) {
      if (!l.name.startsWith('blk.0.')) continue; // one block nested keeps the k-means fits quick; the rest stays f32
      const src = l.source as { data: Float32Array; shape: [number, number] };
      model.setLinear(l.name, linearWeightFromPacked(quantizeAnyPrecision(src.data, src.shape, { seedBits: 2, maxBits: 4 })));
    }
    const path = join(dir, 'ap.gguf');
    await saveModel(model, path, { target: 'F32' });
    const file = await readGguf(path);
    const q = file.tensors.get('blk.0.attn_q.weight');
    expect(q?.type).toBe('LB_ANYPREC');
    expect(q?.params).toEqual({ seedBits: 2, maxBits: 4 });
    // planes 4 × 64 rows × 8 bytes, tables (4 + 8 + 16 levels) × 64 rows × 4 bytes
    expect(q?.byteLength).toBe(4 * 64 * 8 + (4 + 8 + 16) * 64 * 4);
    expect(file.metadata.get('lowbit.tensor_types')?.value).toEqual(['LB_ANYPREC']);
    await file.source.close();
    const back = await loadModel(path);
    expect(back.linear('blk.0.attn_q.weight').bitRange).toEqual([2, 4]);
    expect(back.linear('blk.1.attn_q.weight').bitRange).toBeNull();
    const ids = model.tokenizer.encode(validLines[0], { bos: true }).slice(0, 32);
    for (const bits of [2, 3, 4]) {
      const want = new Session(model, { ctx: 32, bits }).forward(ids, { logits: 'all' });
      const got = new Session(back, { ctx: 32, bits }).forward(ids, { logits: 'all' });
      // same planes, tables and kernel: equal bit for bit
      expect(Array.from(got)).toEqual(Array.from(want));
    }
    model.free();
    back.free();
  });

  it('parameters out of range or bytes of another size are E_BAD_FILE / E_SHAPE, before any table is read', async () => {
    const good = readFileSync(join(dir, 'ap.gguf'));
    const key = Buffer.from('{"seedBits":2,"maxBits":4}');
    expect(good.indexOf(key)).toBeGreaterThan(0);
    // same-length edits of the first tensor's parameters in the header
    for (const bad of ['{"seedBits":0,"maxBits":4}', '{"seedBits":2,"maxBits":9}', '{"seedBits":3,"maxBits":2}', '{"seedBits":2,"maxBits":"}']) {
      const b = Buffer.from(good);
      Buffer.from(bad).copy(b, good.indexOf(key));
      const p = join(dir, 'bad.gguf');
      writeFileSync(p, b);
      await expect(readGguf(p)).rejects.toMatchObject({ code: 'E_BAD_FILE', message: expect.stringMatching(/blk\.0\.attn_q\.weight/) });
    }
    // a size check of its own where bytes come from elsewhere (the loader's decode)
    expect(() => anyPrecisionFromBytes('t', { seedBits: 2, maxBits: 4 }, [64, 64], new Uint8Array(100))).toThrow(expect.objectContaining({ code: 'E_SHAPE' }));
  });
});
