// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, Llama-3, Qwen2): text is split by the
// pre-tokenizer regex, each piece's UTF-8 bytes are mapped to printable characters (GPT-2's
// bytes_to_unicode), then merged pairwise by merge rank (lowest first) and looked up in the vocab.
import { LowbitError } from '@lowbit/kernels';
import type { Tokenizer } from './tokenizer-spm.js';
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

interface TokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; byte_fallback?: boolean };
  pre_tokenizer?: { type: string; use_regex?: boolean; pattern?: { Regex?: string; String?: string }; pretokenizers?: TokenizerJson['pre_tokenizer'][] } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
}

function findPattern(pt: TokenizerJson['pre_tokenizer']): string | undefined {
  if (!pt) return undefined;
  if (pt.type === 'Split' && pt.pattern?.Regex) return pt.pattern.Regex;
  if (pt.type === 'ByteLevel' && pt.use_regex !== false) return GPT2_PATTERN;
  for (const p of pt.pretokenizers ?? []) {
    const r = findPattern(p);
    if (r) return r;
  }
  return undefined;
}

export class ByteLevelBpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  private readonly ranks = new Map<string, number>();
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
  ) {
    merges.forEach(([a, b], i) => this.ranks.set(`${a} ${b}`, i));
    for (const [piece, id] of vocab) this.pieces[id] = piece;
    this.vocabSize = this.pieces.length;
    for (const s of specials) this.special.add(s);
    this.split = toJsRegex(pattern);
  }

  static fromJson(json: TokenizerJson | string, options: { bos?: number; eos?: number } = {}, where = 'tokenizer.json'): ByteLevelBpeTokenizer {
    const j: TokenizerJson = typeof json === 'string' ? JSON.parse(json) : json;
    if (j.model?.type !== 'BPE') throw new LowbitError('E_UNSUPPORTED', `${where}: model type ${j.model?.type} is not supported (byte-level BPE only)`);
    const pattern = findPattern(j.pre_tokenizer);
    if (!pattern) throw new LowbitError('E_UNSUPPORTED', `${where}: no ByteLevel/Split pre-tokenizer (a SentencePiece-style tokenizer.json is read by spmTokenizerFromJson)`);
    const vocab = new Map(Object.entries(j.model.vocab));
    for (const t of j.added_tokens ?? []) vocab.set(t.content, t.id);
    const merges = j.model.merges.map((m) => (typeof m === 'string' ? (m.split(' ') as [string, string]) : m));
    const specials = (j.added_tokens ?? []).filter((t) => t.special).map((t) => t.id);
    return new ByteLevelBpeTokenizer(vocab, merges, pattern, options.bos ?? -1, options.eos ?? -1, specials);
  }

  /** Piece of each id in byte-level form (GPT-2's printable characters); '' where the file has no id. */
  pieceStrings(): string[] {
    return Array.from({ length: this.vocabSize }, (_, i) => this.pieces[i] ?? '');
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  private bpe(word: string[]): string[] {
    let parts = word;
    while (parts.length > 1) {
      let best = -1;
      let bestRank = Number.POSITIVE_INFINITY;
      for (let i = 0; i + 1 < parts.length; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const a = parts[best];
      const b = parts[best + 1];
      // merge every occurrence of this pair, left to right (as HF tokenizers does)
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

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const out: number[] = options.bos && this.bos >= 0 ? [this.bos] : [];
    const enc = new TextEncoder();
    for (const m of text.matchAll(this.split)) {
      const mapped = Array.from(enc.encode(m[0]), (b) => this.byteMap[b]);
      for (const piece of this.bpe(mapped)) {
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
  const vocab: Record<string, number> = {};
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
