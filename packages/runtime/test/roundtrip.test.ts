// Every architecture lowbit loads (llama, mistral, qwen2, gpt2) survives load → save → reload: as
// GGUF (saveModel), as a Hugging Face directory (exportHfModel → loadHfModel) and, for the Llama
// family, as safetensors (saveModelSafetensors), with logits equal bit for bit where nothing is
// quantized; llama.cpp runs each saved GGUF with the log-probs lowbit gives. Models: tiny random
// ones written by lowbit's writer (tiny-models.ts), stories260K (SentencePiece), and a Mistral
// directory (the llama one exported, config.json saying mistral).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { quantizeInt } from '@lowbit/formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { saveModel } from '../src/gguf-convert.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import type { StoredLayer } from '../src/lowbit-tensors.js';
import { modelFile, mxRows } from './helpers.js';
import { type LlamaCpp, logProbDiffs, openLlamaCpp } from './llama-cpp-lib.js';
import { TINY, writeTinyGguf } from './tiny-models.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-roundtrip-'));
let llamaLib: LlamaCpp | undefined;
let skipReason = '';

interface Case {
  name: string;
  /** The file's general.architecture after saving as GGUF, and config.json's model_type after export. */
  arch: string;
  load: () => Promise<DecoderModel>;
  /** The GGUF the model was loaded from: saving it again must give its tensors byte for byte. */
  source?: string;
  /** llama.cpp's log-prob tolerance on f32 weights: 1e-3 (f32 throughout); GPT-2's GELU goes through an f16 table in llama.cpp (gpt2.test.ts). */
  tol: number;
}

const cases: Case[] = [
  { name: 'llama (byte-level BPE)', arch: 'llama', source: join(dir, 'llama.gguf'), load: () => loadModel(join(dir, 'llama.gguf')), tol: 1e-3 },
  { name: 'llama (stories260K, SentencePiece)', arch: 'llama', source: modelFile, load: () => loadModel(modelFile), tol: 1e-3 },
  { name: 'qwen2 (NEOX RoPE, q/k/v biases)', arch: 'qwen2', source: join(dir, 'qwen2.gguf'), load: () => loadModel(join(dir, 'qwen2.gguf')), tol: 1e-3 },
  { name: 'gpt2 (fused attn_qkv, learned positions)', arch: 'gpt2', source: join(dir, 'gpt2.gguf'), load: () => loadModel(join(dir, 'gpt2.gguf')), tol: 1e-2 },
  { name: 'mistral (Hugging Face directory)', arch: 'llama', load: () => loadHfModel(join(dir, 'mistral-hf')), tol: 1e-3 },
];

const text = 'the 12345 cats sat in the sun,\nthen ran. The END!';

beforeAll(async () => {
  for (const arch of ['llama', 'qwen2', 'gpt2'] as const) await writeTinyGguf(arch, join(dir, `${arch}.gguf`));
  // Mistral checkpoints are Llama's tensors under model_type "mistral"
  const m = join(dir, 'mistral-hf');
  await exportHfModel(join(dir, 'llama.gguf'), m);
  const cfg = JSON.parse(readFileSync(join(m, 'config.json'), 'utf8'));
  writeFileSync(join(m, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: null }));
  const r = await openLlamaCpp('round-trip llama.cpp checks');
  llamaLib = r.llama;
  skipReason = r.skipReason;
});
afterAll(async () => {
  await llamaLib?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function logits(model: DecoderModel, ids: number[]): Uint32Array {
  const s = new Session(model, { ctx: TINY.CTX });
  const l = s.forward(ids, { logits: 'all' });
  s.free();
  // the bits, so -0 vs +0 or two NaNs would count as different
  return new Uint32Array(l.buffer, l.byteOffset, l.length);
}

/** Loads `path`, checks tokens and logits against the original, frees it. */
async function same(what: string, load: () => Promise<DecoderModel>, ids: number[], want: Uint32Array): Promise<void> {
  const m = await load();
  try {
    expect(m.tokenizer.encode(text), `${what}: tokens`).toEqual(ids);
    expect(logits(m, ids), `${what}: logits`).toEqual(want);
  } finally {
    m.free();
  }
}

describe.each(cases)('$name', (c) => {
  const p = (f: string) => join(dir, `${c.name.split(' ')[0]}-${f}`);

  it('saves as GGUF, as a Hugging Face directory and (Llama family) as safetensors; every reload gives the same logits bit for bit', async () => {
    const m0 = await c.load();
    const ids = m0.tokenizer.encode(text);
    const want = logits(m0, ids);
    const gguf = p('saved.gguf');
    await saveModel(m0, gguf);
    const g = await readGguf(gguf);
    expect(g.metadata.get('general.architecture')?.value).toBe(c.arch);
    if (c.source) {
      // save(load(x)) holds x's tensors byte for byte: names, RoPE row order, biases, fused Q/K/V
      const src = await readGguf(c.source);
      for (const [name, t] of src.tensors) {
        expect(g.tensors.get(name)?.type, name).toBe(t.type);
        expect(Buffer.compare(await readTensorBytes(g, name), await readTensorBytes(src, name)), name).toBe(0);
      }
      await src.source.close();
    }
    await g.source.close();
    await same('GGUF', () => loadModel(gguf), ids, want);

    const hf = p('hf');
    await exportHfModel(gguf, hf);
    expect(JSON.parse(readFileSync(join(hf, 'config.json'), 'utf8')).model_type).toBe(c.arch);
    await same('HF directory', () => loadHfModel(hf), ids, want);
    // and back: the HF-loaded model saves as GGUF (metadata built from its config) that reloads alike
    const fromHf = await loadHfModel(hf);
    await saveModel(fromHf, p('from-hf.gguf'));
    fromHf.free();
    await same('GGUF from the HF directory', () => loadModel(p('from-hf.gguf')), ids, want);

    if (c.arch !== 'gpt2') {
      await saveModelSafetensors(m0, p('saved.safetensors'));
      await same('safetensors', () => loadQuantizedSafetensors(p('saved.safetensors')), ids, want);
    } else {
      await expect(saveModelSafetensors(m0, p('saved.safetensors'))).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    }
    m0.free();
  });

  it('Q8_0: quantized once, saved again without change: the same bytes and logits', async () => {
    const m0 = await c.load();
    const ids = m0.tokenizer.encode(text);
    await saveModel(m0, p('q8.gguf'), { target: 'Q8_0' });
    m0.free();
    const q = await loadModel(p('q8.gguf'));
    const want = logits(q, ids);
    // the same target: layers that fell back to F16 (stories260K's 172-wide ffn_down) load as f32 and go back to F16 exactly
    await saveModel(q, p('q8-again.gguf'), { target: 'Q8_0' });
    q.free();
    const [a, b] = [await readGguf(p('q8.gguf')), await readGguf(p('q8-again.gguf'))];
    for (const [name, t] of a.tensors) {
      expect(b.tensors.get(name)?.type, name).toBe(t.type);
      expect(Buffer.compare(await readTensorBytes(b, name), await readTensorBytes(a, name)), name).toBe(0);
    }
    await a.source.close();
    await b.source.close();
    await same('Q8_0 saved again', () => loadModel(p('q8-again.gguf')), ids, want);
  });

  it('packed lowbit layers (INT3 g32 everywhere, MXFP4 rows on Wk) save and reload with the same logits bit for bit', async () => {
    const m0 = await c.load();
    const ids = m0.tokenizer.encode(text);
    const packed = new Map<string, StoredLayer>();
    for (const l of m0.linears()) {
      const w = l.source as { data: Float32Array };
      const t: StoredLayer = /attn_k\.weight$/.test(l.name) && l.cols % 32 === 0
        ? mxRows('mxfp4', w.data, l.rows, l.cols)
        : quantizeInt(w.data, [l.rows, l.cols], { bits: 3, granularity: 'group-cols', group: 32 });
      m0.setLinear(l.name, linearWeightFromPacked(t));
      packed.set(l.name, t);
    }
    const want = logits(m0, ids);
    await saveModel(m0, p('packed.gguf'), { packed });
    m0.free();
    await same('packed GGUF', () => loadModel(p('packed.gguf')), ids, want);
    if (c.arch !== 'gpt2') {
      const m1 = await loadModel(p('packed.gguf'));
      await saveModelSafetensors(m1, p('packed.safetensors'));
      m1.free();
      await same('packed safetensors', () => loadQuantizedSafetensors(p('packed.safetensors')), ids, want);
    }
  });

  it('llama.cpp runs each saved GGUF with lowbit\'s log-probs', async (ctx) => {
    if (!llamaLib) return ctx.skip(skipReason);
    const m0 = await c.load();
    const ids = m0.tokenizer.encode(text);
    for (const f of ['saved.gguf', 'from-hf.gguf']) {
      const lm = await llamaLib.loadModel({ modelPath: p(f) });
      expect(Array.from(lm.tokenize(text)) as number[], `${f}: llama.cpp tokens`).toEqual(ids);
      const max = Math.max(...(await logProbDiffs(lm, m0, ids, TINY.CTX)));
      await lm.dispose();
      console.log(`${c.name}, ${f}: max |Δ log p| vs llama.cpp over ${ids.length - 1} positions ${max.toExponential(2)}`);
      expect(max, f).toBeLessThan(c.tol);
    }
    m0.free();
    // packed Q8_0 on both sides: int8 activations per 32 make 1-ulp differences flip roundings
    // (llama-cpp.test.ts: mean < 0.05, max < 0.5); a wrong row order or missing bias gives several nats
    const q = await loadModel(p('q8.gguf'));
    const lm = await llamaLib.loadModel({ modelPath: p('q8.gguf') });
    const d = await logProbDiffs(lm, q, ids, TINY.CTX);
    await lm.dispose();
    q.free();
    console.log(`${c.name}, q8.gguf: |Δ log p| vs llama.cpp mean ${(d.reduce((a, b) => a + b, 0) / d.length).toExponential(2)}, max ${Math.max(...d).toExponential(2)}`);
    expect(d.reduce((a, b) => a + b, 0) / d.length).toBeLessThan(0.05);
    expect(Math.max(...d)).toBeLessThan(0.5);
  });
});
