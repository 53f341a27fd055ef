// Hostile tokenizer.json files (issue 13): every one is a LowbitError E_BAD_FILE naming the file and
// the field, found before anything is allocated from it; pieces named like Object.prototype's
// properties are ordinary pieces.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportHfModel, loadHfModel } from '../src/hf-model.js';
import { ByteLevelBpeTokenizer, byteLevelTokenizerJson } from '../src/tokenizer-bpe.js';
import { spmTokenizerFromJson, spmTokenizerJson } from '../src/tokenizer-spm-json.js';
import { modelFile } from './helpers.js';
import { writeTinyGguf } from './tiny-models.js';

const where = 'dir/tokenizer.json';

function byteLevel(model: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return { model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'], ...model }, pre_tokenizer: { type: 'ByteLevel', use_regex: true }, ...rest };
}

/** The SentencePiece form (byte fallback, "▁" for spaces) around the same model fields. */
function spm(model: Record<string, unknown>, rest: Record<string, unknown> = {}) {
  return {
    normalizer: { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
    model: { type: 'BPE', byte_fallback: true, vocab: { '<s>': 0, '</s>': 1, a: 2, b: 3, ab: 4 }, merges: ['a b'], ...model },
    ...rest,
  };
}

const readers = [
  ['byte-level', (j: object, vocabSize?: number) => ByteLevelBpeTokenizer.fromJson(j, { vocabSize }, where), byteLevel],
  ['SentencePiece', (j: object, vocabSize?: number) => spmTokenizerFromJson(j as never, { vocabSize }, where), spm],
] as const;

function badFile(f: () => unknown, field: RegExp) {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toMatchObject({ name: 'LowbitError', code: 'E_BAD_FILE' });
  expect((err as Error).message).toContain(where);
  expect((err as Error).message).toMatch(field);
}

describe.each(readers)('%s tokenizer.json, hostile', (_name, read, make) => {
  it('a vocabulary id of 30,000,000 or 2^32 is refused before any allocation (dense ids, or below the model vocabulary size)', () => {
    const before = process.memoryUsage().heapUsed;
    badFile(() => read(make({ vocab: { ...make({}).model.vocab, zz: 30_000_000 } })), /model\.vocab\["zz"\] is 30000000, not below \d+, the number of entries in the file \(ids must be dense\)/);
    badFile(() => read(make({ vocab: { ...make({}).model.vocab, zz: 2 ** 32 } }), 512), /model\.vocab\["zz"\] is 4294967296, not below the model's vocabulary size 512/);
    badFile(() => read(make({}, { added_tokens: [{ id: 30_000_000, content: '<x>', special: true }] }), 512), /added_tokens\[0\]\.id is 30000000/);
    // 30M slots of an array would be 240 MB; nothing close to that was allocated (50 MB: GC noise)
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(50e6);
    // below the declared size, holes are allowed (embedding rows padded past the tokenizer's ids)
    expect(read(make({ vocab: { ...make({}).model.vocab, zz: 100 } }), 512).vocabSize).toBe(101);
  });

  it('ids 2.5, -1, "x", null are not token ids', () => {
    for (const id of [2.5, -1, 'x', null]) badFile(() => read(make({ vocab: { ...make({}).model.vocab, zz: id } })), /model\.vocab\["zz"\] is .*not a token id/);
  });

  it('merges {} / null / a number inside, vocab null, added_tokens [null]', () => {
    badFile(() => read(make({ merges: {} })), /model\.merges must be an array, got object/);
    badFile(() => read(make({ merges: null })), /model\.merges must be an array, got null/);
    badFile(() => read(make({ merges: ['a b', 7] })), /model\.merges\[1\] must be "a b" or \["a", "b"\]/);
    badFile(() => read(make({ merges: ['ab'] })), /model\.merges\[0\] "ab" is not two pieces/);
    badFile(() => read(make({ vocab: null })), /model\.vocab must be an object of piece: id, got null/);
    badFile(() => read(make({ vocab: [1, 2] })), /model\.vocab must be an object/);
    badFile(() => read(make({}, { added_tokens: [null] })), /added_tokens\[0\] must be an object/);
    badFile(() => read(make({}, { added_tokens: [{ id: 3 }] })), /added_tokens\[0\]\.content must be a non-empty string/);
    badFile(() => read(make({}, { added_tokens: {} })), /added_tokens must be an array/);
    badFile(() => read({ model: null }), /model must be an object/);
  });
});

describe('byte-level tokenizer.json, hostile pre-tokenizer and constructor input', () => {
  it('an invalid split regex, a non-string one, Sequences nested without end', () => {
    const split = (Regex: unknown) => byteLevel({}, { pre_tokenizer: { type: 'Split', pattern: { Regex } } });
    badFile(() => ByteLevelBpeTokenizer.fromJson(split('(unclosed'), {}, where), /pre-tokenizer pattern "\(unclosed" is not a valid regular expression/);
    badFile(() => ByteLevelBpeTokenizer.fromJson(split(42), {}, where), /Split pattern\.Regex must be a string/);
    let deep: object = { type: 'ByteLevel' };
    for (let i = 0; i < 10_000; i++) deep = { type: 'Sequence', pretokenizers: [deep] };
    badFile(() => ByteLevelBpeTokenizer.fromJson(byteLevel({}, { pre_tokenizer: deep }), {}, where), /nest deeper than 8/);
    badFile(() => ByteLevelBpeTokenizer.fromJson('{"model":', {}, where), /not JSON/);
  });

  it('the constructor refuses ids 2.5, -1, "x", null and out-of-range bos/eos/specials (encode can never return them)', () => {
    for (const id of [2.5, -1, 'x', null]) {
      const vocab = new Map<string, number>([['a', 0], ['b', id as number]]);
      expect(() => new ByteLevelBpeTokenizer(vocab, [], '\\w+', -1, -1)).toThrow(expect.objectContaining({ code: 'E_BAD_FILE' }));
    }
    const vocab = new Map([['a', 0], ['b', 1]]);
    expect(() => new ByteLevelBpeTokenizer(vocab, [], '\\w+', 7, -1, [], { where })).toThrow(/dir\/tokenizer\.json: bos token id 7 is not a vocabulary id/);
    expect(() => new ByteLevelBpeTokenizer(vocab, [], '\\w+', -1, 2.5)).toThrow(/eos token id 2\.5/);
    expect(() => new ByteLevelBpeTokenizer(vocab, [], '\\w+', -1, -1, [9])).toThrow(/special token id 9/);
  });

  it('pieces "__proto__", "constructor", "toString" are ordinary pieces: read, encoded, written back, and no prototype changes', () => {
    const chars = ['Ġ', '_', 'p', 'r', 'o', 't', 'c', 'n', 's', 'u', 'S', 'i', 'g'];
    const merges: string[] = [];
    const vocab: Record<string, number> = Object.create(null);
    for (const c of chars) vocab[c] = Object.keys(vocab).length;
    // each word merged left to right: "_ _", "__ p", ...
    for (const w of ['__proto__', 'constructor', 'toString']) {
      for (let k = 2; k <= w.length; k++) {
        const l = w.slice(0, k - 1);
        if (l + w[k - 1] in vocab) continue;
        merges.push(`${l} ${w[k - 1]}`);
        vocab[l + w[k - 1]] = Object.keys(vocab).length;
      }
    }
    const text = JSON.stringify({ model: { type: 'BPE', vocab, merges }, pre_tokenizer: { type: 'Split', pattern: { Regex: '[a-zA-Z_]+|\\s+' } } });
    const tok = ByteLevelBpeTokenizer.fromJson(text, {}, where);
    const ids = tok.encode('__proto__ constructor toString');
    // "__proto__" itself merges as "__proto" "__" (rank 0 "_ _" takes both ends first): real BPE
    const [space, proto] = ['Ġ', '__proto__'];
    expect(ids).toEqual([vocab.__proto, vocab.__, vocab[space], vocab.constructor, vocab[space], vocab.toString]);
    expect(tok.decode(ids)).toBe('__proto__ constructor toString');
    expect(tok.decode([vocab[proto]])).toBe('__proto__');
    const written = byteLevelTokenizerJson(tok) as { model: { vocab: Record<string, number> } };
    expect(Object.hasOwn(written.model.vocab, 'constructor')).toBe(true);
    expect(Object.hasOwn(written.model.vocab, '__proto__')).toBe(true);
    const back = ByteLevelBpeTokenizer.fromJson(JSON.parse(JSON.stringify(written)));
    expect(back.encode('__proto__ constructor toString')).toEqual(ids);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(written.model.vocab)).toBe(null);
  });
});

describe('SentencePiece tokenizer.json, pieces named like Object.prototype properties', () => {
  it('a merge making "constructor" that the vocabulary lacks is an error, not Object', () => {
    const j = spm({ vocab: { '<s>': 0, '</s>': 1, constr: 2, uctor: 3 }, merges: ['constr uctor'] });
    expect(() => spmTokenizerFromJson(j as never, {}, where)).toThrow(/merge 0 \("constr" "uctor"\) makes a piece that is not in the vocabulary/);
    const ok = spm({ vocab: { '<s>': 0, '</s>': 1, constr: 2, uctor: 3, constructor: 4 }, merges: ['constr uctor'] });
    const tok = spmTokenizerFromJson(ok as never, {}, where);
    const written = spmTokenizerJson(tok) as { model: { vocab: Record<string, number> } };
    expect(written.model.vocab.constructor).toBe(4);
  });
});

describe('loadHfModel with a hostile tokenizer.json (the reported `lowbit eval <hf-dir>` out-of-memory)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-hostile-tok-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['byte-level (llama)', 'llama'],
    ['byte-level (gpt2)', 'gpt2'],
    ['SentencePiece (stories260K)', 'stories'],
  ] as const)('%s: an id of 30,000,000 or 2^32 is E_BAD_FILE naming the file, before any allocation', async (_name, arch) => {
    const gguf = join(dir, `${arch}.gguf`);
    if (arch === 'stories') writeFileSync(gguf, readFileSync(modelFile));
    else await writeTinyGguf(arch, gguf);
    const hf = join(dir, arch);
    await exportHfModel(gguf, hf);
    const path = join(hf, 'tokenizer.json');
    const good = JSON.parse(readFileSync(path, 'utf8'));
    await expect(loadHfModel(hf)).resolves.toBeDefined();
    for (const id of [30_000_000, 2 ** 32]) {
      writeFileSync(path, JSON.stringify({ ...good, model: { ...good.model, vocab: { ...good.model.vocab, zz: id } } }));
      const before = process.memoryUsage().heapUsed;
      await expect(loadHfModel(hf)).rejects.toMatchObject({
        code: 'E_BAD_FILE',
        message: expect.stringContaining(`${path}: model.vocab["zz"] is ${id}, not below the model's vocabulary size`),
      });
      expect(process.memoryUsage().heapUsed - before).toBeLessThan(100e6); // 30M array slots would be 240 MB
    }
  });
});
