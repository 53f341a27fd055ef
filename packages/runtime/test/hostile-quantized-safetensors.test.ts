import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLowbitError } from '@lowbit/kernels';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { loadModel } from '../src/model.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { readSafetensors, readSafetensorsBytes, writeSafetensors, type SafetensorsDtype } from '../src/safetensors.js';
import { modelFile } from './helpers.js';

// A model file lowbit wrote (the embedded model as a quantized-safetensors file, and as an HF
// directory), with one piece of its metadata or config changed (issue #13): each is a LowbitError
// naming the file and field, found before any loop the bad value would size.
const dir = mkdtempSync(join(tmpdir(), 'lowbit-hostile-st-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const good = join(dir, 'good.safetensors');
const hfDir = join(dir, 'hf');
{
  const m = await loadModel(modelFile);
  await saveModelSafetensors(m, good);
  m.free();
  await exportHfModel(modelFile, hfDir);
}

/** `good` with its __metadata__ (and optionally one tensor's bytes) rewritten. */
async function variant(name: string, editMeta: (m: Record<string, string>) => void, editTensor?: (name: string, bytes: Uint8Array) => void): Promise<string> {
  const st = await readSafetensors(good);
  const tensors = [];
  for (const t of st.tensors.values()) {
    const bytes = await readSafetensorsBytes(st, t.name);
    editTensor?.(t.name, bytes);
    tensors.push({ name: t.name, dtype: t.dtype as SafetensorsDtype, shape: t.shape, data: bytes });
  }
  const meta = { ...st.metadata };
  await st.source.close();
  editMeta(meta);
  const path = join(dir, `${name}.safetensors`);
  await writeSafetensors(path, tensors, meta);
  return path;
}

async function failure(load: () => Promise<{ free(): void }>): Promise<{ code: string; message: string }> {
  const t0 = performance.now();
  try {
    (await load()).free();
  } catch (e) {
    expect(isLowbitError(e), String(e)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(3000); // ms, generous: the checks come before the loops
    return e as { code: string; message: string };
  }
  throw new Error('accepted');
}

/** The stored metadata entries with one key's value replaced (or the whole list replaced). */
function withEntry(key: string, value: unknown) {
  return (m: Record<string, string>) => {
    const entries = JSON.parse(m['lowbit.gguf_metadata']) as [string, unknown][];
    m['lowbit.gguf_metadata'] = JSON.stringify(entries.map(([k, v]) => [k, k === key ? value : v]));
  };
}

describe('loadQuantizedSafetensors: lowbit.gguf_metadata and the other __metadata__ JSON', () => {
  it('the file as written loads', async () => {
    (await loadQuantizedSafetensors(good)).free();
  });

  it.each([
    ['not an array', '{}'],
    ['null', 'null'],
    ['non-array entries', '[1, "x", null]'],
    ['an entry with a null value', '[["general.architecture", null]]'],
    ['an entry with a non-string key', '[[1, {"type": 8, "value": "llama"}]]'],
  ])('gguf_metadata %s → E_BAD_FILE', async (_n, text) => {
    const p = await variant(`meta-${_n.replace(/\W/g, '')}`, (m) => { m['lowbit.gguf_metadata'] = text; });
    const e = await failure(() => loadQuantizedSafetensors(p));
    expect(e.code).toBe('E_BAD_FILE');
    expect(e.message).toContain('lowbit.gguf_metadata');
  });

  it('an array value that is not an array, token pieces that are not strings, non-numeric 64-bit text → E_BAD_FILE', async () => {
    const cases: [string, unknown][] = [
      ['tokenizer.ggml.tokens', { type: 9, itemType: 8, value: 'abc' }],
      ['tokenizer.ggml.tokens', { type: 9, itemType: 8, value: Array.from({ length: 512 }, (_, i) => i) }],
      ['tokenizer.ggml.tokens', { type: 9, itemType: 9, value: [] }],
      ['llama.block_count', { type: 10, value: 'abc' }],
      ['llama.block_count', { type: 10, value: '-5' }],
      ['llama.block_count', { type: 4, value: 'five' }],
      ['llama.block_count', { type: 13, value: 5 }],
    ];
    for (const [i, [key, value]] of cases.entries()) {
      const p = await variant(`entry${i}`, withEntry(key, value));
      const e = await failure(() => loadQuantizedSafetensors(p));
      expect(e.code, JSON.stringify(value)).toBe('E_BAD_FILE');
      expect(e.message).toContain(key);
    }
  });

  it('a huge head count in the metadata fails at once, before the RoPE row reorder', async () => {
    const p = await variant('heads', withEntry('llama.attention.head_count', { type: 4, value: 2 ** 22 }));
    expect((await failure(() => loadQuantizedSafetensors(p))).code).toBe('E_BAD_FILE');
    const p2 = await variant('layers', withEntry('llama.block_count', { type: 4, value: 2 ** 31 }));
    expect((await failure(() => loadQuantizedSafetensors(p2))).code).toBe('E_BAD_FILE');
  });

  it('quantize_config / lowbit.tensors that are JSON but not objects → E_BAD_FILE', async () => {
    for (const [k, v] of [['quantize_config', 'null'], ['quantize_config', '5'], ['lowbit.tensors', 'null'], ['lowbit.tensors', '[1]']]) {
      const p = await variant(`q-${k}-${v}`, (m) => { m[k] = v; });
      expect((await failure(() => loadQuantizedSafetensors(p))).code, `${k}=${v}`).toBe('E_BAD_FILE');
    }
  });

  it('an F32 weight holding NaN → E_NAN naming the tensor', async () => {
    const p = await variant('nan', () => {}, (name, b) => {
      if (name === 'model.layers.2.mlp.up_proj.weight') new DataView(b.buffer, b.byteOffset).setFloat32(12, Number.NaN, true);
    });
    const e = await failure(() => loadQuantizedSafetensors(p));
    expect(e.code).toBe('E_NAN');
    expect(e.message).toContain('up_proj');
  });
});

describe('loadHfModel: config.json is validated before any loop it sizes', () => {
  function hfVariant(name: string, edit: (c: Record<string, unknown>) => unknown): string {
    const d = join(dir, `hf-${name}`);
    mkdirSync(d, { recursive: true });
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(hfDir, f), join(d, f));
    const c = JSON.parse(readFileSync(join(hfDir, 'config.json'), 'utf8'));
    const out = edit(c);
    writeFileSync(join(d, 'config.json'), JSON.stringify(out === undefined ? c : out));
    return d;
  }

  it('the exported directory loads', async () => {
    (await loadHfModel(hfDir)).free();
  });

  it.each([
    ['null config', () => null],
    ['an array config', () => []],
    ['num_attention_heads 2^22', (c: Record<string, unknown>) => { c.num_attention_heads = 2 ** 22; }],
    ['num_attention_heads "8"', (c: Record<string, unknown>) => { c.num_attention_heads = '8'; }],
    ['num_hidden_layers 2 (the checkpoint has 5)', (c: Record<string, unknown>) => { c.num_hidden_layers = 2; }],
    ['num_hidden_layers -1', (c: Record<string, unknown>) => { c.num_hidden_layers = -1; }],
    ['num_key_value_heads 3', (c: Record<string, unknown>) => { c.num_key_value_heads = 3; }],
    ['rms_norm_eps null', (c: Record<string, unknown>) => { c.rms_norm_eps = 'x'; }],
  ])('%s → E_BAD_FILE', async (n, edit) => {
    const d = hfVariant(n.replace(/\W/g, ''), edit);
    const e = await failure(() => loadHfModel(d));
    expect(e.code).toBe('E_BAD_FILE');
    expect(e.message).toContain('config.json');
  });

  it('hidden_size 32 with the 64-wide embedding → E_SHAPE naming the embedding', async () => {
    const d = hfVariant('dim32', (c) => { c.hidden_size = 32; c.num_attention_heads = 4; c.num_key_value_heads = 2; });
    const e = await failure(() => loadHfModel(d));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toContain('embed_tokens');
  });
});
