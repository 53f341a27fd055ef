// The heap-based merge loop (BpeMerges) against two references on random inputs: the textbook loop
// (rescan every adjacent pair, merge every occurrence of the best one left to right), kept here as
// the definition, and Hugging Face's tokenizers.js reading the same vocabulary as a tokenizer.json.
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BpeMerges, ByteLevelBpeTokenizer, GPT2_PATTERN } from '../src/tokenizer-bpe.js';

/** The O(n²) loop the runtime used before BpeMerges: the reference. */
function referenceMerge(word: string[], ranks: Map<string, number>): string[] {
  let parts = word;
  while (parts.length > 1) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    const a = parts[best];
    const b = parts[best + 1];
    const next: string[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i + 1 < parts.length && parts[i] === a && parts[i + 1] === b) {
        next.push(a + b);
        i++;
      } else next.push(parts[i]);
    }
    parts = next;
  }
  return parts;
}

const ALPHABET = ['a', 'b', 'c', 'd'];

/**
 * Merges as BPE training makes them: on a corpus of words, the most frequent adjacent pair becomes
 * the next merge (so each merge ranks after those that made its halves, the property both merge
 * orders rely on), up to `count` merges.
 */
function trainedMerges(corpus: string[][], count: number): [string, string][] {
  let words = corpus.map((w) => w.slice());
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const pairs = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.length; i++) pairs.set(`${w[i]} ${w[i + 1]}`, (pairs.get(`${w[i]} ${w[i + 1]}`) ?? 0) + 1);
    let best = '';
    for (const [p, c] of pairs) if (c > (pairs.get(best) ?? 0)) best = p;
    if (!best) break;
    const [a, b] = best.split(' ');
    merges.push([a, b]);
    words = words.map((w) => referenceMerge(w, new Map([[best, 0]])));
  }
  return merges;
}

const wordArb = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 60 });
const corpusArb = fc.array(fc.array(fc.constantFrom(...ALPHABET), { minLength: 2, maxLength: 12 }), { minLength: 1, maxLength: 40 });
const countArb = fc.integer({ min: 1, max: 80 });

describe('BpeMerges (heap of pair ranks over a linked list)', () => {
  it('equals the textbook loop on vocabularies trained on random corpora, on random words (fast-check, 500 cases, seed fixed)', () => {
    fc.assert(
      fc.property(corpusArb, countArb, wordArb, (corpus, count, word) => {
        const merges = trainedMerges(corpus, count);
        const flat = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
        // random words, and the corpus's own words run together (where the trained merges apply most)
        for (const w of [word, corpus.flat()]) expect(new BpeMerges(merges).merge(w)).toEqual(referenceMerge(w, flat));
      }),
      { numRuns: 500, seed: 13 },
    );
  });

  it('a symbol absorbed by its left neighbour takes no part in later merges (regression: " place" gave "Ġpl" "ace")', () => {
    // x p → xp (rank 0) absorbs p, whose own pair "p l" (rank 3) is still queued; "a ce" then needs
    // the list to point back at "xpl", not at the absorbed "p"
    const merges: [string, string][] = [['x', 'p'], ['c', 'e'], ['xp', 'l'], ['p', 'l'], ['a', 'ce'], ['xpl', 'ace']];
    const flat = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    const word = Array.from('xplace');
    expect(referenceMerge(word, flat)).toEqual(['xplace']);
    expect(new BpeMerges(merges).merge(word)).toEqual(['xplace']);
  });

  it('equals the textbook loop on long runs of one letter (overlapping pairs: leftmost first)', () => {
    const merges: [string, string][] = [['a', 'a'], ['aa', 'a'], ['aa', 'aa'], ['aaaa', 'aaa']];
    const flat = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    for (let n = 0; n < 40; n++) {
      const word = Array(n).fill('a');
      expect(new BpeMerges(merges).merge(word)).toEqual(referenceMerge(word, flat));
    }
  });

  it("ByteLevelBpeTokenizer gives tokenizers.js's ids on random text over a random trained vocabulary (fast-check, 200 cases)", () => {
    // every byte as its GPT-2 character (letters a–d and space map to themselves and 'Ġ')
    const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const bytes: string[] = [];
    let n = 0;
    for (let b = 0; b < 256; b++) bytes.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
    fc.assert(
      fc.property(corpusArb, countArb, fc.array(fc.constantFrom(...ALPHABET, ' ', ' ', 'e'), { maxLength: 120 }), (corpus, count, chars) => {
        const merges = trainedMerges(corpus, count);
        // merges over the letters also apply after 'Ġ' (the byte-level space) as GPT-2's do
        const withSpace: [string, string][] = [['Ġ', 'a'], ...merges];
        const vocab: Record<string, number> = Object.create(null);
        for (const p of [...bytes, ...withSpace.map(([a, b]) => a + b)]) if (!(p in vocab)) vocab[p] = Object.keys(vocab).length;
        const json = { version: '1.0', added_tokens: [], normalizer: null, pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true }, post_processor: null, decoder: { type: 'ByteLevel' }, model: { type: 'BPE', vocab, merges: withSpace.map(([a, b]) => `${a} ${b}`) } };
        const text = chars.join('');
        const ours = ByteLevelBpeTokenizer.fromJson(json).encode(text);
        const hf = new HfTokenizer(json as never, {} as never).encode(text, { add_special_tokens: false }).ids;
        expect(ours).toEqual(hf);
      }),
      { numRuns: 200, seed: 14 },
    );
  });

  it('chunks become the UTF-8 bytes TextEncoder gives, lone surrogates as U+FFFD included (fast-check, 300 cases)', () => {
    // a vocabulary of the 256 byte characters only, no merges: each byte is its own token, id = byte
    const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    let k = 0;
    const vocab = new Map(Array.from({ length: 256 }, (_, b) => [String.fromCodePoint(keep(b) ? b : 256 + k++), b] as [string, number]));
    const tok = new ByteLevelBpeTokenizer(vocab, [], GPT2_PATTERN, -1, -1);
    const enc = new TextEncoder();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)), maxLength: 3 }), (a, surrogates) => {
        const text = a + surrogates + a;
        expect(tok.encode(text)).toEqual(Array.from(enc.encode(text)));
      }),
      { numRuns: 300, seed: 15 },
    );
  });
});
