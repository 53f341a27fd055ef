// Reading the parts of a Hugging Face tokenizer.json that both tokenizer readers share (model.vocab,
// model.merges, added_tokens), checked before anything is allocated from them. Files come from
// strangers: an id decides an array length, so ids must be integers below a bound that the caller
// knows (config.json's vocab_size) or that the file itself implies (its number of entries: dense ids).
// Pieces are kept in Maps, never as keys of plain objects ("__proto__", "constructor" are pieces too).
import { LowbitError } from '@lowbit/kernels';

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** What the readers take from a tokenizer.json, validated. */
export interface TokenizerJsonParts {
  vocab: Map<string, number>;
  merges: [string, string][];
  added: AddedToken[];
  /** One more than the largest id: the tokenizer's vocabulary size. */
  size: number;
}

function bad(where: string, what: string): LowbitError {
  return new LowbitError('E_BAD_FILE', `${where}: ${what}`);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** The tokenizer.json's `model` object, whatever its type. */
export function jsonModel(json: unknown, where: string): Record<string, unknown> {
  if (!isObject(json)) throw bad(where, 'not a JSON object');
  if (!isObject(json.model)) throw bad(where, 'model must be an object');
  return json.model;
}

/** "a b" → ["a", "b"], split at the first space after the first character (a piece may be " "). */
export function splitMerge(merge: string, rank: number, where: string): [string, string] {
  const i = merge.indexOf(' ', 1);
  if (i < 0) throw bad(where, `model.merges[${rank}] ${JSON.stringify(merge.slice(0, 80))} is not two pieces`);
  return [merge.slice(0, i), merge.slice(i + 1)];
}

/**
 * model.vocab, model.merges and added_tokens, checked: every id an integer in [0, limit), where limit
 * is `vocabSize` (the model's declared vocabulary: config.json's vocab_size) or, without one, the
 * number of entries in the file, so no id can ask for more memory than the file's own size implies.
 */
export function readTokenizerJson(json: unknown, where: string, vocabSize?: number): TokenizerJsonParts {
  const model = jsonModel(json, where);
  const j = json as Record<string, unknown>;
  if (!isObject(model.vocab)) throw bad(where, `model.vocab must be an object of piece: id, got ${model.vocab === null ? 'null' : typeof model.vocab}`);
  if (!Array.isArray(model.merges)) throw bad(where, `model.merges must be an array, got ${model.merges === null ? 'null' : typeof model.merges}`);
  if (j.added_tokens != null && !Array.isArray(j.added_tokens)) throw bad(where, 'added_tokens must be an array');
  const rawAdded = (j.added_tokens ?? []) as unknown[];
  const entries = Object.entries(model.vocab);
  const limit = vocabSize !== undefined && Number.isSafeInteger(vocabSize) && vocabSize > 0 ? vocabSize : entries.length + rawAdded.length;
  const bound = vocabSize !== undefined ? `the model's vocabulary size ${limit}` : `${limit}, the number of entries in the file (ids must be dense)`;
  const checkId = (id: unknown, field: string): number => {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw bad(where, `${field} is ${JSON.stringify(id) ?? String(id)}, not a token id (an integer ≥ 0)`);
    if (id >= limit) throw bad(where, `${field} is ${id}, not below ${bound}`);
    return id;
  };
  let size = 0;
  const vocab = new Map<string, number>();
  for (const [piece, id] of entries) {
    vocab.set(piece, checkId(id, `model.vocab[${JSON.stringify(piece.slice(0, 80))}]`));
    size = Math.max(size, (id as number) + 1);
  }
  const added = rawAdded.map((t, i): AddedToken => {
    if (!isObject(t)) throw bad(where, `added_tokens[${i}] must be an object with id and content`);
    const id = checkId(t.id, `added_tokens[${i}].id`);
    if (typeof t.content !== 'string' || t.content === '') throw bad(where, `added_tokens[${i}].content must be a non-empty string`);
    size = Math.max(size, id + 1);
    return { id, content: t.content, special: t.special === true };
  });
  const merges = model.merges.map((m: unknown, rank): [string, string] => {
    if (typeof m === 'string') return splitMerge(m, rank, where);
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw bad(where, `model.merges[${rank}] must be "a b" or ["a", "b"]`);
  });
  return { vocab, merges, added, size };
}
