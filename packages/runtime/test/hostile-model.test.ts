import { describe, expect, it } from 'vitest';
import { isLowbitError } from '@lowbit/kernels';
import { bytesSource } from '../src/byte-source.js';
import { fromF32 } from '../src/ggml-quants.js';
import { type GgufValue, readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { encodeGgufHeader } from '../src/gguf-writer.js';
import type { TensorType } from '../src/ggml-types.js';
import { loadModel } from '../src/model.js';
import { modelFile } from './helpers.js';

// The embedded model (stories260K: dim 64, 8 heads, 4 KV heads, 5 blocks, vocab 512, all F32) with
// one metadata value or one tensor changed: the config must be checked as a whole, against the
// tensors, before any loop it sizes, and non-finite weights are refused whatever their type.
interface T { name: string; shape: number[]; type: TensorType; data: Uint8Array }
const base = await (async () => {
  const g = await readGguf(modelFile);
  const tensors: T[] = [];
  for (const t of g.tensors.values()) tensors.push({ name: t.name, shape: t.shape, type: t.type, data: (await readTensorBytes(g, t.name)).slice() });
  await g.source.close();
  return { metadata: g.metadata, tensors };
})();

function build(edit: (m: Map<string, GgufValue>, t: T[]) => void): Uint8Array {
  const metadata = new Map(base.metadata);
  const tensors = base.tensors.map((t) => ({ ...t, data: t.data.slice() }));
  edit(metadata, tensors);
  const { header, alignment } = encodeGgufHeader(metadata, tensors);
  const pad = (n: number) => Math.ceil(n / alignment) * alignment;
  const out = new Uint8Array(header.byteLength + tensors.reduce((s, t) => s + pad(t.data.byteLength), 0));
  out.set(header);
  let o = header.byteLength;
  for (const t of tensors) {
    out.set(t.data, o);
    o += pad(t.data.byteLength);
  }
  return out;
}

async function failure(bytes: Uint8Array): Promise<{ code: string; message: string }> {
  const t0 = performance.now();
  try {
    (await loadModel(bytesSource(bytes, 'evil.gguf'))).free();
  } catch (e) {
    expect(isLowbitError(e), String(e)).toBe(true);
    // every refusal comes from a check before the loops, not from running them (generous bound, ms)
    expect(performance.now() - t0).toBeLessThan(2000);
    return e as { code: string; message: string };
  }
  throw new Error('accepted');
}

const set = (key: string, v: GgufValue) => (m: Map<string, GgufValue>) => m.set(key, v);
const u32 = (value: number): GgufValue => ({ type: 4, value });
const i32 = (value: number): GgufValue => ({ type: 5, value });
const f32 = (value: number): GgufValue => ({ type: 6, value });

describe('loadModel: the GGUF config is validated as a whole, against the tensors', () => {
  it('the unmodified model still loads', async () => {
    const m = await loadModel(bytesSource(build(() => {}), 'good.gguf'));
    expect(m.config.nLayers).toBe(5);
    m.free();
  });

  it.each([
    ['block_count -1', 'llama.block_count', i32(-1)],
    ['block_count 0', 'llama.block_count', u32(0)],
    ['block_count NaN', 'llama.block_count', f32(Number.NaN)],
    ['block_count 2 (the file has 5 blocks)', 'llama.block_count', u32(2)],
    ['block_count 2^31', 'llama.block_count', u32(2 ** 31)],
    ['rope.dimension_count -1', 'llama.rope.dimension_count', i32(-1)],
    ['rope.dimension_count 2^32-1', 'llama.rope.dimension_count', u32(2 ** 32 - 1)],
    ['rope.dimension_count Infinity', 'llama.rope.dimension_count', f32(Number.POSITIVE_INFINITY)],
    ['rope.dimension_count 7 (odd)', 'llama.rope.dimension_count', u32(7)],
    ['head_count 2^22', 'llama.attention.head_count', u32(2 ** 22)],
    ['head_count 3 (does not divide 64)', 'llama.attention.head_count', u32(3)],
    ['head_count_kv 3 (does not divide 8 heads)', 'llama.attention.head_count_kv', u32(3)],
    ['embedding_length 2^31', 'llama.embedding_length', u32(2 ** 31)],
    ['feed_forward_length 0', 'llama.feed_forward_length', u32(0)],
    ['context_length 0', 'llama.context_length', u32(0)],
    ['rms epsilon NaN', 'llama.attention.layer_norm_rms_epsilon', f32(Number.NaN)],
    ['rope.freq_base -1', 'llama.rope.freq_base', f32(-1)],
  ])('%s → E_BAD_FILE', async (_n, key, v) => {
    const e = await failure(build(set(key, v)));
    expect(e.code).toBe('E_BAD_FILE');
    expect(e.message).toContain('evil.gguf');
  });

  it('embedding_length 32 with the 64-wide embedding → E_SHAPE naming token_embd', async () => {
    const e = await failure(build((m) => m.set('llama.embedding_length', u32(32)).set('llama.rope.dimension_count', u32(4))));
    expect(e.code).toBe('E_SHAPE');
    expect(e.message).toContain('token_embd.weight');
  });
});

describe('loadModel: tokenizer metadata of the wrong type', () => {
  it('tokenizer.ggml.tokens typed as u32 → E_BAD_FILE', async () => {
    const e = await failure(build(set('tokenizer.ggml.tokens', { type: 9, itemType: 4, value: Array.from({ length: 512 }, (_, i) => i) })));
    expect(e.code).toBe('E_BAD_FILE');
    expect(e.message).toContain('tokenizer.ggml.tokens');
  });
  it('scores of the wrong length or type, a special id out of range → E_BAD_FILE', async () => {
    expect((await failure(build(set('tokenizer.ggml.scores', { type: 9, itemType: 6, value: [0, 1] })))).code).toBe('E_BAD_FILE');
    expect((await failure(build(set('tokenizer.ggml.token_type', { type: 9, itemType: 8, value: Array(512).fill('x') })))).code).toBe('E_BAD_FILE');
    expect((await failure(build(set('tokenizer.ggml.bos_token_id', u32(1e6))))).code).toBe('E_BAD_FILE');
    // SentencePiece emits bos and unk as ids: -1 there came out of encode as a token (found by the fuzz harness)
    expect((await failure(build(set('tokenizer.ggml.unknown_token_id', i32(-1))))).code).toBe('E_BAD_FILE');
    expect((await failure(build(set('tokenizer.ggml.bos_token_id', i32(-1))))).code).toBe('E_BAD_FILE');
  });
});

describe('loadModel: one rule for NaN/Inf weights, whatever the type', () => {
  const poison = (name: string, value: number) => (_m: Map<string, GgufValue>, ts: T[]) => {
    const t = ts.find((x) => x.name === name) as T;
    new DataView(t.data.buffer).setFloat32(4 * 7, value, true);
  };
  it.each([
    ['blk.0.attn_q.weight', Number.NaN],
    ['blk.3.ffn_down.weight', Number.POSITIVE_INFINITY],
    ['token_embd.weight', Number.NEGATIVE_INFINITY],
    ['output_norm.weight', Number.NaN],
  ])('F32 %s holding %s → E_NAN naming the tensor', async (name, v) => {
    const e = await failure(build(poison(name, v)));
    expect(e.code).toBe('E_NAN');
    expect(e.message).toContain(name);
  });

  it('a Q4_0 / Q8_0 weight with a NaN or Inf block scale → E_NAN at load, as F32', async () => {
    for (const [type, scaleBits] of [['Q4_0', 0x7e00], ['Q8_0', 0x7c00]] as const) {
      const e = await failure(build((_m, ts) => {
        const t = ts.find((x) => x.name === 'blk.1.attn_output.weight') as T;
        const q = fromF32(type, new Float32Array(t.data.buffer, 0, t.data.byteLength / 4), t.shape[0]);
        new DataView(q.buffer, q.byteOffset).setUint16(0, scaleBits, true);
        t.type = type;
        t.data = q;
      }));
      expect(e.code).toBe('E_NAN');
      expect(e.message).toContain('blk.1.attn_output.weight');
    }
  });
});

describe('readGguf: array counts are checked against the bytes left', () => {
  it('a string array claiming more items than the file can hold → E_TRUNCATED, before any loop or allocation', async () => {
    const bytes = new Uint8Array(1 << 20); // a 1 MiB file of zeros after the header: strings of length 0
    const v = new DataView(bytes.buffer);
    let o = 0;
    v.setUint32(o, 0x46554747, true); o += 4;
    v.setUint32(o, 3, true); o += 4;
    v.setBigUint64(o, 0n, true); o += 8; // tensors
    v.setBigUint64(o, 1n, true); o += 8; // kv
    v.setBigUint64(o, 1n, true); o += 8; bytes[o++] = 0x61; // key "a"
    v.setUint32(o, 9, true); o += 4; // array
    v.setUint32(o, 8, true); o += 4; // of strings
    v.setBigUint64(o, BigInt(bytes.length - 100), true); // each string needs 8 bytes: cannot fit
    const t0 = performance.now();
    let code = 'none';
    try {
      await readGguf(bytesSource(bytes, 'count.gguf'));
    } catch (e) {
      expect(isLowbitError(e), String(e)).toBe(true);
      code = (e as { code: string }).code;
    }
    expect(code).toBe('E_TRUNCATED');
    expect(performance.now() - t0).toBeLessThan(1000); // ms; generous, the check is O(1)
  });
});
