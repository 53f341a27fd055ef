// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, Llama-3, Qwen2): text is split by the
// pre-tokenizer regex, each piece's UTF-8 bytes are mapped to printable characters (GPT-2's
// bytes_to_unicode), then merged pairwise by merge rank (lowest first) and looked up in the vocab.
import { LowbitError } from '@lowbit/kernels';
import type { Tokenizer } from './tokenizer-spm.js';
import { jsonModel, readTokenizerJson } from './tokenizer-json.js';
import { tokenizerJsonHead } from './tokenizer-spm-json.js';

/** GPT-2's split pattern, used when tokenizer.json's ByteLevel pre-tokenizer has use_regex. */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/** GPT-2 bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const map: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + n++);
  return map;
}

/** JS (Node 20) has no inline `(?i:…)` groups: spell their letters as [xX] classes. */
export function toJsRegex(pattern: string): RegExp {
  const p = pattern.replace(/\(\?i:((?:[^()\\]|\\.)*)\)/g, (_, body: string) =>
    `(?:${body.replace(/\\.|[a-zA-Z]/g, (c) => (c.length === 1 ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c))})`,
  );
  return new RegExp(p, 'gu');
}

interface PreTokenizer {
  type?: unknown;
  use_regex?: unknown;
  pattern?: { Regex?: unknown };
  pretokenizers?: unknown;
}

/** The split regex of a ByteLevel or Split pre-tokenizer, searched through Sequences (bounded depth). */
function findPattern(pt: unknown, where: string, depth = 0): string | undefined {
  if (typeof pt !== 'object' || pt === null) return undefined;
  if (depth > 8) throw new LowbitError('E_BAD_FILE', `${where}: pre_tokenizer Sequences nest deeper than 8`);
  const p = pt as PreTokenizer;
  if (p.type === 'Split' && p.pattern?.Regex !== undefined) {
    if (typeof p.pattern.Regex !== 'string') throw new LowbitError('E_BAD_FILE', `${where}: pre_tokenizer Split pattern.Regex must be a string`);
    return p.pattern.Regex;
  }
  if (p.type === 'ByteLevel' && p.use_regex !== false) return GPT2_PATTERN;
  if (p.pretokenizers === undefined) return undefined;
  if (!Array.isArray(p.pretokenizers)) throw new LowbitError('E_BAD_FILE', `${where}: pre_tokenizer.pretokenizers must be an array`);
  for (const q of p.pretokenizers) {
    const r = findPattern(q, where, depth + 1);
    if (r) return r;
  }
  return undefined;
}

/** Where a tokenizer's pieces came from (named in errors) and the bound its ids must stay below. */
export interface TokenizerChecks {
  where?: string;
  /** The model's vocabulary size; without it, ids must be below the number of pieces (dense). */
  vocabSize?: number;
}

/** The merge ranks of adjacent symbols, looked up without building a key string per pair. */
type Ranks = Map<string, Map<string, number>>;

/**
 * Merges `word` (one pre-tokenized chunk, one symbol per byte character) by rank, lowest first and
 * leftmost among equal ranks, as Hugging Face tokenizers (word.rs merge_all) and llama.cpp do: a
 * binary heap of adjacent pairs over a doubly linked list of symbols, O(n log n) in the chunk length.
 * A heap entry is stale when either side has merged since it was queued: its symbols' lengths no
 * longer match (a symbol absorbed by its left neighbour is emptied), or the right side is gone. (Rescanning every pair per merge, the textbook loop, is
 * O(n²): 81 s for a 1 MB run of letters.)
 */
export function bpeMerge(word: readonly string[], ranks: Ranks): string[] {
  const n = word.length;
  if (n < 2) return word.slice();
  const sym = word.slice();
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  // heap entries as parallel arrays: rank, left symbol, and both sides' lengths when queued
  const rank: number[] = [];
  const left: number[] = [];
  const lenL: number[] = [];
  const lenR: number[] = [];
  const heap: number[] = [];
  const before = (a: number, b: number) => rank[a] < rank[b] || (rank[a] === rank[b] && left[a] < left[b]);
  const push = (l: number) => {
    const r = next[l];
    if (l < 0 || r < 0) return;
    const k = ranks.get(sym[l])?.get(sym[r]);
    if (k === undefined) return;
    const e = rank.length;
    rank.push(k);
    left.push(l);
    lenL.push(sym[l].length);
    lenR.push(sym[r].length);
    let i = heap.length;
    heap.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, heap[p])) break;
      heap[i] = heap[p];
      i = p;
    }
    heap[i] = e;
  };
  const pop = (): number => {
    const top = heap[0];
    const last = heap.pop() as number;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const a = 2 * i + 1;
        if (a >= heap.length) break;
        const c = a + 1 < heap.length && before(heap[a + 1], heap[a]) ? a + 1 : a;
        if (!before(heap[c], last)) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
    }
    return top;
  };
  for (let i = 0; i + 1 < n; i++) push(i);
  while (heap.length > 0) {
    const e = pop();
    const l = left[e];
    const r = next[l];
    if (r < 0 || sym[l].length !== lenL[e] || sym[r].length !== lenR[e]) continue;
    sym[l] += sym[r];
    // an absorbed symbol is emptied, so entries that still name it (as left or right) are stale
    sym[r] = '';
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    push(prev[l]);
    push(l);
  }
  const out: string[] = [];
  for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
  return out;
}

export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  private readonly ranks: Ranks = new Map();
  private readonly byteMap = byteToUnicode();
  private readonly unicodeToByte = new Map(this.byteMap.map((c, b) => [c, b]));
  private readonly pieces: string[] = [];
  private readonly special = new Set<number>();
  private readonly split: RegExp;

  constructor(
    private readonly vocab: Map<string, number>,
    readonly merges: readonly [string, string][],
    /** The pre-tokenizer's split pattern, as the file wrote it. */
    readonly pattern: string,
    readonly bos: number,
    readonly eos: number,
    specials: number[] = [],
    checks: TokenizerChecks = {},
  ) {
    const where = checks.where ?? 'tokenizer';
    const limit = checks.vocabSize ?? vocab.size;
    const isId = (id: unknown): id is number => typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 && id < limit;
    for (const [piece, id] of vocab) {
      if (typeof piece !== 'string' || !isId(id)) {
        throw new LowbitError('E_BAD_FILE', `${where}: piece ${JSON.stringify(piece)} has id ${JSON.stringify(id) ?? String(id)}, not an integer in [0, ${limit})`);
      }
    }
    for (const [piece, id] of vocab) this.pieces[id] = piece;
    this.vocabSize = this.pieces.length;
    merges.forEach(([a, b], i) => {
      if (typeof a !== 'string' || typeof b !== 'string') throw new LowbitError('E_BAD_FILE', `${where}: merge ${i} is not two pieces`);
      let m = this.ranks.get(a);
      if (!m) this.ranks.set(a, (m = new Map()));
      // a repeated pair takes its last rank, as tokenizers.js and HF tokenizers build their rank maps
      m.set(b, i);
    });
    for (const [what, id] of [['bos', bos], ['eos', eos]] as const) {
      if (id !== -1 && !isId(id)) throw new LowbitError('E_BAD_FILE', `${where}: ${what} token id ${JSON.stringify(id) ?? String(id)} is not a vocabulary id`);
    }
    for (const s of specials) {
      if (!isId(s)) throw new LowbitError('E_BAD_FILE', `${where}: special token id ${JSON.stringify(s) ?? String(s)} is not a vocabulary id`);
      this.special.add(s);
    }
    try {
      this.split = toJsRegex(pattern);
    } catch (e) {
      throw new LowbitError('E_BAD_FILE', `${where}: pre-tokenizer pattern ${JSON.stringify(String(pattern).slice(0, 80))} is not a valid regular expression (${(e as Error).message})`, { cause: e });
    }
  }

  /**
   * Reads a byte-level BPE tokenizer.json. `vocabSize` (the model's, config.json's vocab_size) bounds
   * every id; without it ids must be dense (below the number of entries).
   */
  static fromJson(json: unknown, options: { bos?: number; eos?: number; vocabSize?: number } = {}, where = 'tokenizer.json'): ByteLevelBpeTokenizer {
    let j = json;
    if (typeof json === 'string') {
      try {
        j = JSON.parse(json);
      } catch (e) {
        throw new LowbitError('E_BAD_FILE', `${where}: not JSON (${(e as Error).message})`, { cause: e });
      }
    }
    const type = jsonModel(j, where).type;
    if (type !== 'BPE') throw new LowbitError('E_UNSUPPORTED', `${where}: model type ${JSON.stringify(type)} is not supported (byte-level BPE only)`);
    const pattern = findPattern((j as { pre_tokenizer?: unknown }).pre_tokenizer, where);
    if (!pattern) throw new LowbitError('E_UNSUPPORTED', `${where}: no ByteLevel/Split pre-tokenizer (a SentencePiece-style tokenizer.json is read by spmTokenizerFromJson)`);
    const { vocab, merges, added, size } = readTokenizerJson(j, where, options.vocabSize);
    for (const t of added) vocab.set(t.content, t.id);
    const specials = added.filter((t) => t.special).map((t) => t.id);
    return new ByteLevelBpeTokenizer(vocab, merges, pattern, options.bos ?? -1, options.eos ?? -1, specials, { where, vocabSize: options.vocabSize ?? size });
  }

  /** Piece of each id in byte-level form (GPT-2's printable characters); '' where the file has no id. */
  pieceStrings(): string[] {
    return Array.from({ length: this.vocabSize }, (_, i) => this.pieces[i] ?? '');
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const out: number[] = options.bos && this.bos >= 0 ? [this.bos] : [];
    const enc = new TextEncoder();
    for (const m of text.matchAll(this.split)) {
      const mapped = Array.from(enc.encode(m[0]), (b) => this.byteMap[b]);
      for (const piece of bpeMerge(mapped, this.ranks)) {
        const id = this.vocab.get(piece);
        if (id === undefined) throw new LowbitError('E_MISSING', `tokenizer: piece ${JSON.stringify(piece)} has no vocabulary entry (incomplete merges?)`);
        out.push(id);
      }
    }
    return out;
  }

  pieceBytes(id: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.pieces[id] === undefined) {
      throw new LowbitError('E_RANGE', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    if (this.special.has(id)) return new Uint8Array(0);
    return Uint8Array.from(Array.from(this.pieces[id], (c) => this.unicodeToByte.get(c) ?? 0x3f));
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) bytes.push(...this.pieceBytes(id));
    return new TextDecoder().decode(Uint8Array.from(bytes));
  }
}

/**
 * A tokenizer.json for a byte-level BPE vocabulary: the split pattern then GPT-2's byte mapping as
 * pre-tokenizers, merges by rank, special tokens as added tokens (the layout of Llama 3's and Qwen2's
 * files, without their ignore_merges shortcut, which changes nothing where every piece is a merge result).
 */
export function byteLevelTokenizerJson(tok: ByteLevelBpeTokenizer): object {
  const pieces = tok.pieceStrings();
  // null prototype: a piece named "__proto__" or "constructor" is an ordinary key here
  const vocab: Record<string, number> = Object.create(null);
  pieces.forEach((p, i) => {
    if (p !== '' && !tok.isSpecial(i) && !(p in vocab)) vocab[p] = i;
  });
  return {
    ...tokenizerJsonHead(pieces, (id) => tok.isSpecial(id)),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: tok.pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: tok.merges.map(([a, b]) => [a, b]),
    },
  };
}
