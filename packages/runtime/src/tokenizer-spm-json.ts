// SentencePiece-BPE in Hugging Face's tokenizer.json form (Llama 1/2, TinyLlama, Mistral, Vicuna…):
// a BPE model with byte_fallback over text normalized to "▁"-for-space (plus a leading "▁"), no
// byte-level pre-tokenizer. It is the same algorithm as the GGUF `llama` tokenizer, with merge ranks
// instead of piece scores. HF's converters derive the merges from the pieces sorted by score (every
// split of a piece into two pieces is a merge), so a piece's first merge rank orders it as its score
// does: score(piece) = −(rank of its first merge), and pieces no merge produces never merge.
import { LowbitError } from '@lowbit/kernels';
import { jsonModel, readTokenizerJson } from './tokenizer-json.js';
import { SpmTokenizer, TokenType } from './tokenizer-spm.js';

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

/** The parts of a tokenizer.json this reader looks at. */
export interface SpmTokenizerJson {
  added_tokens?: AddedToken[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  decoder?: unknown;
  model: { type: string; vocab: Record<string, number>; merges: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
}

/**
 * The head every tokenizer.json lowbit writes starts with: format version, no truncation or padding,
 * and the special pieces as added tokens (matched whole, never normalized).
 */
export function tokenizerJsonHead(pieces: readonly string[], special: (id: number) => boolean): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: pieces.flatMap((content, id) => (special(id) ? [{ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }] : [])),
  };
}

/** True for a SentencePiece-style tokenizer.json (BPE with byte fallback, "▁" for spaces). */
export function isSpmTokenizerJson(json: unknown): json is SpmTokenizerJson {
  const j = json as SpmTokenizerJson;
  return j?.model?.type === 'BPE' && j.model.byte_fallback === true && JSON.stringify([j.normalizer, j.pre_tokenizer]).includes('\u2581');
}

/** Whether the normalizer or Metaspace pre-tokenizer puts a "▁" before the text. */
function prependsSpace(j: SpmTokenizerJson): boolean {
  const parts = JSON.stringify([j.normalizer, j.pre_tokenizer]);
  if (/"type":"Prepend"/.test(parts)) return true;
  const meta = /"type":"Metaspace"[^}]*/.exec(parts)?.[0] ?? '';
  if (!meta) return false;
  // tokenizers ≥ 0.14: prepend_scheme "always" | "first" | "never"; older: add_prefix_space
  if (/"prepend_scheme":"never"/.test(meta) || /"add_prefix_space":false/.test(meta)) return false;
  return true;
}

export function spmTokenizerFromJson(json: SpmTokenizerJson, options: { bos?: number; eos?: number; vocabSize?: number } = {}, where = 'tokenizer.json'): SpmTokenizer {
  jsonModel(json, where);
  if (!isSpmTokenizerJson(json)) throw new LowbitError('E_UNSUPPORTED', `${where}: not a SentencePiece-style BPE tokenizer (BPE, byte_fallback, "▁" for spaces)`);
  const { vocab, merges, added, size } = readTokenizerJson(json, where, options.vocabSize);
  const tokens: string[] = new Array(size).fill('');
  const types: number[] = new Array(size).fill(TokenType.UNUSED);
  for (const [piece, id] of vocab) {
    tokens[id] = piece;
    types[id] = /^<0x[0-9A-Fa-f]{2}>$/.test(piece) ? TokenType.BYTE : TokenType.NORMAL;
  }
  for (const t of added) {
    tokens[t.id] = t.content;
    if (t.special) types[t.id] = TokenType.CONTROL;
    else if (types[t.id] === TokenType.UNUSED) types[t.id] = TokenType.USER_DEFINED;
  }
  const unkToken: unknown = json.model.unk_token;
  if (unkToken != null && typeof unkToken !== 'string') throw new LowbitError('E_BAD_FILE', `${where}: model.unk_token must be a string or null`);
  const unk = unkToken != null ? (vocab.get(unkToken) ?? 0) : 0;
  if (unkToken != null && unk < size) types[unk] = TokenType.UNKNOWN;
  const scores = tokens.map((t) => (Array.from(t).length > 1 ? Number.NEGATIVE_INFINITY : 0));
  merges.forEach(([l, r], rank) => {
    const id = vocab.get(l + r);
    if (id === undefined) throw new LowbitError('E_BAD_FILE', `${where}: merge ${rank} (${JSON.stringify(l)} ${JSON.stringify(r)}) makes a piece that is not in the vocabulary`);
    if (scores[id] === Number.NEGATIVE_INFINITY) scores[id] = -rank;
  });
  const named = (name: string) => vocab.get(name) ?? added.find((t) => t.content === name)?.id;
  const bos = options.bos ?? named('<s>') ?? 1;
  const eos = options.eos ?? named('</s>') ?? 2;
  for (const [what, id] of [['bos', bos], ['eos', eos]] as const) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= size) throw new LowbitError('E_BAD_FILE', `${where}: ${what} token id ${JSON.stringify(id) ?? String(id)} is not a vocabulary id (0..${size - 1})`);
  }
  return new SpmTokenizer(tokens, scores, types, bos, eos, unk, prependsSpace(json));
}

/**
 * The tokenizer.json Hugging Face's converters write for a SentencePiece-BPE vocabulary: merges from
 * every split of each normal piece into two pieces, ordered by the piece's score (then by the ids of
 * the two halves); control and unknown pieces as special added tokens.
 */
export function spmTokenizerJson(tok: SpmTokenizer): object {
  // null prototype: a piece named "__proto__" or "constructor" is an ordinary key here
  const vocab: Record<string, number> = Object.create(null);
  tok.tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const mergeable = (i: number) => tok.types[i] === TokenType.NORMAL || tok.types[i] === TokenType.USER_DEFINED;
  const merges: { l: string; r: string; score: number; li: number; ri: number; id: number }[] = [];
  tok.tokens.forEach((piece, id) => {
    if (!mergeable(id)) return;
    const cps = Array.from(piece);
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join('');
      const r = cps.slice(k).join('');
      const li = vocab[l];
      const ri = vocab[r];
      if (li !== undefined && ri !== undefined && mergeable(li) && mergeable(ri)) merges.push({ l, r, score: tok.scores[id] ?? 0, li, ri, id });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.li - b.li || a.ri - b.ri);
  const special = (i: number) => tok.types[i] === TokenType.CONTROL || tok.types[i] === TokenType.UNKNOWN;
  const unk = tok.tokens[tok.unk];
  return {
    ...tokenizerJsonHead(tok.tokens, special),
    normalizer: {
      type: 'Sequence',
      normalizers: [...(tok.addSpacePrefix ? [{ type: 'Prepend', prepend: '\u2581' }] : []), { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: tok.tokens[tok.bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: tok.tokens[tok.bos], type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: tok.tokens[tok.bos], type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [tok.tokens[tok.bos]]: { id: tok.tokens[tok.bos], ids: [tok.bos], tokens: [tok.tokens[tok.bos]] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(tok.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: unk ?? null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map((x) => [x.l, x.r]),
    },
  };
}
