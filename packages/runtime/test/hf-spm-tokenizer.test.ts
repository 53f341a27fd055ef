// SentencePiece-BPE as a Hugging Face tokenizer.json (Llama 2, Mistral, TinyLlama checkpoints):
// lowbit writes it from the GGUF vocabulary (exportHfModel) and reads it back (loadHfModel), and
// Hugging Face's own tokenizers.js, an independent implementation, must give on that file the ids
// llama.cpp gives on the GGUF (lowbit's GGUF tokenizer equals llama.cpp: test/llama-cpp.test.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveModel } from '../src/gguf-convert.js';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { ByteLevelBpeTokenizer } from '../src/tokenizer-bpe.js';
import { spmTokenizerFromJson, type SpmTokenizerJson } from '../src/tokenizer-spm-json.js';
import { modelFile, validLines } from './helpers.js';
import { type LlamaCpp, logProbDiffs, openLlamaCpp } from './llama-cpp-lib.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-hf-spm-'));
let llamaLib: LlamaCpp | undefined;
let llamaSkip = '';
afterAll(async () => {
  await llamaLib?.dispose();
  rmSync(dir, { recursive: true, force: true });
});
// Plain text, no special-token strings: Hugging Face splits "<s>" out of text by default, llama.cpp
// (parse_special off, as lowbit) reads it as characters; that difference is by design on both sides.
const stress = 'Hello  world!\n\tTabs, ünïcödé 日本語 🙂 12345  trailing ';
let gguf: DecoderModel;
let json: SpmTokenizerJson;
let config: Record<string, unknown>;
beforeAll(async () => {
  gguf = await loadModel(modelFile);
  await exportHfModel(modelFile, join(dir, 'hf'));
  json = JSON.parse(readFileSync(join(dir, 'hf', 'tokenizer.json'), 'utf8'));
  config = JSON.parse(readFileSync(join(dir, 'hf', 'tokenizer_config.json'), 'utf8'));
});

describe('SentencePiece tokenizer.json', () => {
  it("written by exportHfModel: Hugging Face's tokenizers.js gives llama.cpp's ids on every validation story, and decodes them alike", () => {
    const hf = new HfTokenizer(json as never, config as never);
    let tokens = 0;
    for (const line of [...validLines, stress]) {
      const ids = gguf.tokenizer.encode(line);
      expect(hf.encode(line, { add_special_tokens: false }).ids).toEqual(ids);
      expect(hf.decode(ids, { skip_special_tokens: true })).toBe(gguf.tokenizer.decode(ids));
      tokens += ids.length;
    }
    expect(tokens).toBeGreaterThan(15_000);
    // with special tokens: BOS in front, as llama.cpp adds it
    expect(hf.encode('Once upon a time').ids).toEqual(gguf.tokenizer.encode('Once upon a time', { bos: true }));
  });

  it('read by loadHfModel: the same ids, and the same perplexity as the GGUF', async () => {
    const hf = await loadHfModel(join(dir, 'hf'));
    for (const line of [...validLines, stress]) expect(hf.tokenizer.encode(line, { bos: true })).toEqual(gguf.tokenizer.encode(line, { bos: true }));
    expect(hf.tokenizer.decode(gguf.tokenizer.encode(stress))).toBe(stress);
    const text = validLines.slice(0, 3).join('\n');
    expect(perplexity(hf, text, { ctx: 128 }).perplexity).toBeCloseTo(perplexity(gguf, text, { ctx: 128 }).perplexity, 10);
  });

  it('a model loaded from the HF directory saves as a GGUF llama.cpp runs: its ids, and log-probs within 1e-4', async (c) => {
    ({ llama: llamaLib, skipReason: llamaSkip } = await openLlamaCpp('HF → GGUF llama.cpp cross-check'));
    if (!llamaLib) return c.skip(llamaSkip);
    const hf = await loadHfModel(join(dir, 'hf'));
    const out = join(dir, 'from-hf.gguf');
    await saveModel(hf, out);
    const lm = await llamaLib.loadModel({ modelPath: out });
    for (const line of [validLines[0], stress]) expect(Array.from(lm.tokenize(line)) as number[]).toEqual(hf.tokenizer.encode(line));
    const ids = hf.tokenizer.encode(validLines.slice(0, 2).join(' '), { bos: true }).slice(0, 200);
    const d = await logProbDiffs(lm, hf, ids, 256);
    await lm.dispose();
    // f32 weights both sides, as the GGUF itself gives (1.3e-5 in test/llama-cpp.test.ts)
    expect(Math.max(...d)).toBeLessThan(1e-4);
    // and lowbit reads its own file back with the same metadata
    const back = await loadModel(out);
    expect(back.config).toEqual(gguf.config);
    expect(back.tokenizer.encode(stress)).toEqual(gguf.tokenizer.encode(stress));
  });

  it('saving a model whose byte-level split pattern llama.cpp does not know is a named E_UNSUPPORTED error, and writes nothing', async () => {
    const vocab: Record<string, number> = { a: 0, b: 1, ab: 2 };
    const byteLevel = ByteLevelBpeTokenizer.fromJson({ model: { type: 'BPE', vocab, merges: ['a b'] }, pre_tokenizer: { type: 'Split', pattern: { Regex: '\\w+|\\W' } } } as never);
    const hf = await loadHfModel(join(dir, 'hf'), { tokenizer: byteLevel });
    const out = join(dir, 'byte-level.gguf');
    await expect(saveModel(hf, out)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringContaining('needs a byte-level pre-tokenizer llama.cpp knows') });
    expect(existsSync(out)).toBe(false);
    // a tokenizer with more tokens than the embedding has rows
    const big = ByteLevelBpeTokenizer.fromJson({ model: { type: 'BPE', vocab: Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`t${i}`, i])), merges: [] }, pre_tokenizer: { type: 'ByteLevel', use_regex: true } } as never);
    await expect(loadHfModel(join(dir, 'hf'), { tokenizer: big })).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringContaining("the tokenizer has 600 tokens, config.json's vocab_size is 512") });
  });

  it('Mistral-style files (Metaspace pre-tokenizer instead of the normalizer) read the same', () => {
    const mistral = { ...json, normalizer: null, pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false } };
    const hf = new HfTokenizer(mistral as never, config as never);
    const ours = spmTokenizerFromJson(mistral);
    for (const line of [...validLines.slice(0, 5), stress]) {
      const ids = gguf.tokenizer.encode(line);
      expect(ours.encode(line)).toEqual(ids);
      expect(hf.encode(line, { add_special_tokens: false }).ids).toEqual(ids);
    }
  });

  it('bad files: a merge that makes no vocabulary piece, a byte-level tokenizer.json given as SentencePiece', () => {
    const bad = { ...json, model: { ...json.model, merges: [...json.model.merges, ['zz', 'qq']] } } as SpmTokenizerJson;
    expect(() => spmTokenizerFromJson(bad, {}, 'bad/tokenizer.json')).toThrow(/bad\/tokenizer\.json: merge \d+ \("zz" "qq"\) makes a piece that is not in the vocabulary/);
    const byteLevel = { model: { type: 'BPE', vocab: { a: 0 }, merges: [] }, pre_tokenizer: { type: 'ByteLevel' } } as SpmTokenizerJson;
    expect(() => spmTokenizerFromJson(byteLevel)).toThrow(/not a SentencePiece-style BPE tokenizer/);
    // a directory whose tokenizer.json is broken names the file
    writeFileSync(join(dir, 'hf', 'tokenizer.json'), JSON.stringify(bad));
    return expect(loadHfModel(join(dir, 'hf'))).rejects.toThrow(/tokenizer\.json: merge/);
  });
});
