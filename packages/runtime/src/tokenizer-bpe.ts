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

/** Heap keys are rank · 2^30 + position: exact in a double while rank < 2^23 (chunks stay < 2^30). */
const POS = 2 ** 30;
const MAX_MERGES = 2 ** 23;

/**
 * A BPE merge table over integer symbols: every piece a merge names or makes gets an id (ids 0..k−1
 * are the `initial` pieces, for byte-level BPE the 256 byte characters, so a byte is its own symbol),
 * and a pair's rank and the symbol it makes are table lookups, not string concatenations and hashes.
 */
export class BpeMerges {
  /** The piece of each symbol id. */
  readonly pieces: string[] = [];
  private readonly ids = new Map<string, number>();
  /** left symbol → (right symbol → rank); a pair listed twice keeps its last rank, as tokenizers.js and HF tokenizers do. */
  private readonly pairs: (Map<number, number> | undefined)[] = [];
  /** Per rank: its left and right symbols and the symbol it makes. */
  private readonly mergeL: Int32Array;
  private readonly mergeR: Int32Array;
  private readonly made: Int32Array;
  // scratch reused across calls (merging is synchronous): the linked list and the heap of keys
  private next = new Int32Array(0);
  private prev = new Int32Array(0);
  private heap = new Float64Array(0);

  constructor(merges: readonly (readonly [string, string])[], initial: readonly string[] = []) {
    if (merges.length > MAX_MERGES) throw new LowbitError('E_UNSUPPORTED', `tokenizer: ${merges.length} merges, more than the ${MAX_MERGES} lowbit supports`);
    for (const p of initial) this.symbol(p);
    this.mergeL = new Int32Array(merges.length);
    this.mergeR = new Int32Array(merges.length);
    this.made = new Int32Array(merges.length);
    merges.forEach(([a, b], rank) => {
      const l = this.symbol(a);
      const r = this.symbol(b);
      let m = this.pairs[l];
      if (!m) this.pairs[l] = m = new Map();
      m.set(r, rank);
      this.mergeL[rank] = l;
      this.mergeR[rank] = r;
      this.made[rank] = this.symbol(a + b);
    });
  }

  /** The id of `piece`, added if new. */
  symbol(piece: string): number {
    let id = this.ids.get(piece);
    if (id === undefined) {
      id = this.pieces.length;
      this.pieces.push(piece);
      this.ids.set(piece, id);
    }
    return id;
  }

  /** Pieces in, pieces out: the same merge as mergeSymbols (for callers and tests that hold strings). */
  merge(word: readonly string[]): string[] {
    return this.mergeSymbols(Int32Array.from(word, (p) => this.symbol(p))).map((id) => this.pieces[id]);
  }

  /**
   * Merges one pre-tokenized chunk by rank, lowest first and leftmost among equal ranks, as Hugging
   * Face tokenizers (word.rs merge_all), tokenizers.js and llama.cpp do: a binary heap of adjacent
   * pairs (key rank · 2^30 + left position) over a doubly linked list of symbols, O(n log n) in the
   * chunk length, where rescanning every pair per merge (the textbook loop) is O(n²): 81 s for a 1 MB
   * run of letters. An entry is stale when its pair is no longer there: a rank names one pair of
   * symbols, a symbol only ever grows into another, and one absorbed by its left neighbour becomes −1.
   * Works in place on `sym`.
   */
  mergeSymbols(sym: Int32Array): number[] {
    const n = sym.length;
    if (n < 2) return Array.from(sym);
    if (n >= POS) throw new LowbitError('E_RANGE', `tokenizer: a pre-tokenized chunk of ${n} symbols (at most ${POS - 1})`);
    this.reserve(n);
    const { next, prev, heap, pairs, mergeL, mergeR, made } = this;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    let size = 0;
    const push = (l: number) => {
      if (l < 0 || next[l] < 0) return;
      const k = pairs[sym[l]]?.get(sym[next[l]]);
      if (k === undefined) return;
      const key = k * POS + l;
      let i = size++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= key) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = key;
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (size > 0) {
      const top = heap[0];
      const last = heap[--size];
      let i = 0;
      for (;;) {
        const a = 2 * i + 1;
        if (a >= size) break;
        const c = a + 1 < size && heap[a + 1] < heap[a] ? a + 1 : a;
        if (heap[c] >= last) break;
        heap[i] = heap[c];
        i = c;
      }
      heap[i] = last;
      const k = Math.floor(top / POS);
      const l = top - k * POS;
      const r = next[l];
      if (sym[l] !== mergeL[k] || r < 0 || sym[r] !== mergeR[k]) continue;
      sym[l] = made[k];
      sym[r] = -1;
      next[l] = next[r];
      if (next[r] >= 0) prev[next[r]] = l;
      push(prev[l]);
      push(l);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
    return out;
  }

  /** Room for a chunk of n symbols: n − 1 initial pairs plus at most two per merge (≤ n − 1 merges). */
  private reserve(n: number): void {
    if (this.next.length >= n) return;
    const m = Math.max(n, 2 * this.next.length, 64);
    this.next = new Int32Array(m);
    this.prev = new Int32Array(m);
    this.heap = new Float64Array(3 * m);
  }
}

/**
 * The UTF-8 bytes of `text` into `out` (room for 3 per UTF-16 unit), as TextEncoder writes them (a
 * lone surrogate becomes U+FFFD); returns the count. One reused buffer instead of an array per chunk.
 */
function utf8Into(text: string, out: Int32Array): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
    } else if (c < 0x10000) {
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
    } else {
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
    }
    out[n++] = 0x80 | (c & 0x3f);
  }
  return n;
}

export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  private readonly table: BpeMerges;
  /** Vocabulary id of each symbol of the merge table (−1: a piece the vocabulary lacks). */
  private readonly symbolToken: Int32Array;
  /** Token ids of recent short chunks: text repeats its words, and merging is the costly step. */
  private readonly cache = new Map<string, readonly number[]>();
  /** A chunk's UTF-8 bytes, reused. */
  private bytes = new Int32Array(256);
  private readonly byteMap = byteToUnicode();
  private readonly unicodeToByte = new Map(this.byteMap.map((c, b) => [c, b]));
  private readonly pieces: string[] = [];
  private readonly special = new Set<number>();
  private readonly split: RegExp;

  constructor(
    vocab: Map<string, number>,
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
    });
    this.table = new BpeMerges(merges, this.byteMap);
    this.symbolToken = Int32Array.from(this.table.pieces, (p) => vocab.get(p) ?? -1);
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
    for (const m of text.matchAll(this.split)) {
      const chunk = m[0];
      let ids = chunk.length < 256 ? this.cache.get(chunk) : undefined;
      if (!ids) {
        if (this.bytes.length < 3 * chunk.length) this.bytes = new Int32Array(Math.max(3 * chunk.length, 2 * this.bytes.length));
        // byte b is merge-table symbol b (BpeMerges' initial pieces are the byte characters)
        const sym = this.bytes.subarray(0, utf8Into(chunk, this.bytes));
        ids = this.table.mergeSymbols(sym).map((s) => {
          const id = this.symbolToken[s];
          if (id < 0) throw new LowbitError('E_MISSING', `tokenizer: piece ${JSON.stringify(this.table.pieces[s])} has no vocabulary entry (incomplete merges?)`);
          return id;
        });
        // HF tokenizers and tokenizers.js cache words under 256 characters too; cleared when full
        if (chunk.length < 256) {
          if (this.cache.size >= 10_000) this.cache.clear();
          this.cache.set(chunk, ids);
        }
      }
      for (const id of ids) out.push(id);
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
