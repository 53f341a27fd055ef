import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it, afterAll } from 'vitest';
import { bytesSource } from '../src/byte-source.js';
import { Session } from '../src/forward.js';
import { exportHfModel, loadHfModel, permuteRope } from '../src/hf-model.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { readSafetensors, readSafetensorsF32, writeSafetensors } from '../src/safetensors.js';
import { ByteLevelBpeTokenizer, toJsRegex } from '../src/tokenizer-bpe.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-hf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let gguf: DecoderModel;
beforeAll(async () => {
  gguf = await loadModel(modelFile);
});

describe('safetensors', () => {
  it('round-trips F32/F16/BF16/I8/U8 with metadata; header 8-byte aligned', async () => {
    const x = Float32Array.of(1, -2.5, 0.75, 3);
    const path = join(dir, 't.safetensors');
    await writeSafetensors(path, [
      { name: 'a', dtype: 'F32', shape: [2, 2], data: x },
      { name: 'b', dtype: 'F16', shape: [4], data: x },
      { name: 'c', dtype: 'BF16', shape: [4], data: x },
      { name: 'd', dtype: 'I8', shape: [4], data: Int8Array.of(-128, 0, 5, 127) },
      { name: 'e', dtype: 'U8', shape: [1, 4], data: Float32Array.of(0, 1, 200, 255) },
    ], { format: 'pt' });
    const bytes = readFileSync(path);
    expect((8 + Number(bytes.readBigUInt64LE(0))) % 8).toBe(0);
    const f = await readSafetensors(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    for (const n of ['a', 'b', 'c']) expect([...(await readSafetensorsF32(f, n))]).toEqual([...x]);
    expect([...(await readSafetensorsF32(f, 'd'))]).toEqual([-128, 0, 5, 127]);
    expect(f.tensors.get('e')?.shape).toEqual([1, 4]);
    expect([...(await readSafetensorsF32(f, 'e'))]).toEqual([0, 1, 200, 255]);
    await f.source.close();
  });

  it('bad input: truncated, unsupported dtype, not safetensors', async () => {
    const good = new Uint8Array(readFileSync(join(dir, 't.safetensors')));
    await expect(readSafetensors(bytesSource(good.subarray(0, good.length - 3), 'cut.safetensors'))).rejects.toMatchObject({ code: 'E_TRUNCATED', message: expect.stringMatching(/cut\.safetensors: tensor e ends at byte/) });
    const hdr = new TextEncoder().encode(JSON.stringify({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }));
    const b = new Uint8Array(8 + hdr.length + 8);
    new DataView(b.buffer).setBigUint64(0, BigInt(hdr.length), true);
    b.set(hdr, 8);
    await expect(readSafetensors(bytesSource(b, 'i64.safetensors'))).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/i64\.safetensors: tensor w: dtype I64 is not supported/) });
    await expect(readSafetensors(bytesSource(new TextEncoder().encode('GGUF and more bytes here'), 'x.safetensors'))).rejects.toMatchObject({ code: 'E_TRUNCATED' });
  });
});

describe('Hugging Face Llama directory', () => {
  it('RoPE permutation and its inverse are each other’s inverse', () => {
    const w = Float32Array.from({ length: 4 * 8 * 3 }, (_, i) => i);
    expect(permuteRope(permuteRope(w, 4, 3, true), 4, 3, false)).toEqual(w);
  });

  it('stories260K exported as HF safetensors (HF RoPE layout) runs identically', async () => {
    const out = join(dir, 'stories-hf');
    await exportHfModel(modelFile, out);
    const hf = await loadHfModel(out, { tokenizer: gguf.tokenizer });
    const ids = gguf.tokenizer.encode(validLines[3], { bos: true }).slice(0, 80);
    // same f32 weights, same order of operations: bit-identical logits
    expect(new Session(hf, { ctx: 128 }).forward(ids, { logits: 'all' })).toEqual(new Session(gguf, { ctx: 128 }).forward(ids, { logits: 'all' }));
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ model_type: 'llama', hidden_size: 64, num_key_value_heads: 4, vocab_size: 512 });
    const st = await readSafetensors(join(out, 'model.safetensors'));
    expect(st.tensors.get('model.layers.0.self_attn.k_proj.weight')?.shape).toEqual([32, 64]);
    await st.source.close();
  });

  it('BF16 export loads; perplexity within 1% of F32', async () => {
    const out = join(dir, 'stories-hf-bf16');
    await exportHfModel(modelFile, out, { dtype: 'BF16' });
    const hf = await loadHfModel(out, { tokenizer: gguf.tokenizer });
    const text = validLines.slice(0, 4).join('\n');
    const a = perplexity(gguf, text, { ctx: 128 }).perplexity;
    const b = perplexity(hf, text, { ctx: 128 }).perplexity;
    expect(Math.abs(b / a - 1)).toBeLessThan(0.01); // bf16 keeps 8 mantissa bits: a small, not zero, change
  });

  it('qwen2 q/k/v biases are applied (zero bias: identical; non-zero: different)', async () => {
    const src = join(dir, 'stories-hf');
    const out = join(dir, 'qwen');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    const st = await readSafetensors(join(src, 'model.safetensors'));
    const tensors = [];
    for (const t of st.tensors.values()) tensors.push({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: await readSafetensorsF32(st, t.name) });
    await st.source.close();
    for (let l = 0; l < 5; l++) {
      tensors.push({ name: `model.layers.${l}.self_attn.q_proj.bias`, dtype: 'F32' as const, shape: [64], data: new Float32Array(64) });
      tensors.push({ name: `model.layers.${l}.self_attn.v_proj.bias`, dtype: 'F32' as const, shape: [32], data: new Float32Array(32).fill(l === 0 ? 0.5 : 0) });
    }
    await writeSafetensors(join(out, 'model.safetensors'), tensors);
    const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(join(out, 'config.json'), JSON.stringify({ ...cfg, model_type: 'qwen2' }));
    const q = await loadHfModel(out, { tokenizer: gguf.tokenizer });
    expect(q.linear('blk.0.attn_v.weight').bias?.[0]).toBe(0.5);
    const ids = [1, 300, 301, 302];
    const a = new Session(q, { ctx: 8 }).forward(ids);
    const b = new Session(gguf, { ctx: 8 }).forward(ids);
    expect(a).not.toEqual(b);
  });

  it('unknown model types and missing tensors are named errors', async () => {
    const out = join(dir, 'gpt2');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_embd: 8, n_layer: 1, n_head: 2, n_positions: 8, vocab_size: 4 }));
    await writeSafetensors(join(out, 'model.safetensors'), [{ name: 'wte.weight', dtype: 'F32', shape: [4, 8], data: new Float32Array(32) }]);
    await expect(loadHfModel(out)).rejects.toMatchObject({ code: 'E_MISSING', message: expect.stringMatching(/tensor h\.0\.attn\.c_attn\.weight is missing/) });
    writeFileSync(join(out, 'config.json'), JSON.stringify({ model_type: 'mamba' }));
    await expect(loadHfModel(out)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/model_type "mamba" is not supported/) });
  });
});

describe('byte-level BPE (tokenizer.json)', () => {
  // A small GPT-2-style vocabulary: every byte as its bytes_to_unicode character, plus merges.
  function tiny() {
    const chars: string[] = [];
    const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    let n = 0;
    for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
    const vocab: Record<string, number> = {};
    chars.forEach((c, i) => (vocab[c] = i));
    const merges = ['h e', 'l l', 'he ll', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'Ġwor l', 'Ġworl d'];
    for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
    vocab['<|endoftext|>'] = Object.keys(vocab).length;
    return { model: { type: 'BPE', vocab, merges }, pre_tokenizer: { type: 'ByteLevel', use_regex: true }, added_tokens: [{ id: vocab['<|endoftext|>'], content: '<|endoftext|>', special: true }] };
  }

  it('merges by rank, maps spaces to Ġ, falls back to single bytes, round-trips UTF-8', () => {
    const j = tiny();
    const t = ByteLevelBpeTokenizer.fromJson(j, { eos: j.added_tokens[0].id });
    const ids = t.encode('hello world!');
    expect(ids).toEqual([j.model.vocab.hello, j.model.vocab.Ġworld, 0x21 - 0x21 + j.model.vocab['!']]);
    for (const s of ['hello world!', 'héllo  wörld 🙂\n\tx', "it's 42"]) expect(t.decode(t.encode(s))).toBe(s);
    expect(t.decode([j.added_tokens[0].id])).toBe('');
    expect(() => t.decode([99999])).toThrow(/token id 99999/);
  });

  it('Llama-3 style (?i:…) split patterns become JS regexes', () => {
    const re = toJsRegex("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
    expect("IT'S 12345 ok".match(re)).toEqual(['IT', "'S", ' ', '123', '45', ' ok']);
  });
});
