// SentencePiece-BPE as llama.cpp runs it for `tokenizer.ggml.model = llama` (llama-vocab.cpp,
// llm_tokenizer_spm): spaces become U+2581 "▁" and one is prepended; the text starts as one symbol per
// UTF-8 character; the adjacent pair whose concatenation is a vocabulary token with the highest score
// merges first (ties: leftmost); characters that end up outside the vocabulary become <0xNN> byte
// tokens. Token ids equal llama.cpp's (checked against node-llama-cpp in test/llama-cpp.test.ts).
import { LowbitError } from '@lowbit/kernels';

/** llama.cpp token types (llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bos: number;
  readonly eos: number;
  encode(text: string, options?: { bos?: boolean }): number[];
  /** Bytes of one token as it appears in text (control tokens give none). */
  pieceBytes(id: number, previous?: number): Uint8Array;
  decode(ids: readonly number[]): string;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

/** Max-heap on (score, then leftmost). */
class BigramQueue {
  private h: Bigram[] = [];
  get length() { return this.h.length; }
  private before(a: Bigram, b: Bigram) {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(x: Bigram) {
    const h = this.h;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }
  pop(): Bigram {
    const h = this.h;
    const top = h[0];
    const last = h.pop() as Bigram;
    if (h.length) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.before(h[l], h[m])) m = l;
        if (r < h.length && this.before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

export class SpmTokenizer implements Tokenizer {
  readonly vocabSize: number;
  private readonly ids = new Map<string, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly pieces: Uint8Array[];

  constructor(
    readonly tokens: readonly string[],
    readonly scores: readonly number[],
    readonly types: readonly number[],
    readonly bos: number,
    readonly eos: number,
    readonly unk: number,
    readonly addSpacePrefix = true,
  ) {
    this.vocabSize = tokens.length;
    const enc = new TextEncoder();
    this.pieces = tokens.map((t, i) => {
      const type = types[i] ?? TokenType.NORMAL;
      const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(t);
      if (type === TokenType.BYTE && byte) {
        const b = Number.parseInt(byte[1], 16);
        this.byteIds[b] = i;
        return Uint8Array.of(b);
      }
      if (type === TokenType.CONTROL || type === TokenType.UNKNOWN || type === TokenType.UNUSED) return new Uint8Array(0);
      return enc.encode(t.replaceAll('\u2581', ' '));
    });
    tokens.forEach((t, i) => {
      if (!this.ids.has(t)) this.ids.set(t, i);
    });
  }

  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const out: number[] = options.bos ? [this.bos] : [];
    if (text.length === 0) return out;
    const norm = (this.addSpacePrefix ? ' ' : '') + text;
    const syms = Array.from(norm.replaceAll(' ', '\u2581'));
    const n = syms.length;
    const prev = new Int32Array(n).map((_, i) => i - 1);
    const next = new Int32Array(n).map((_, i) => (i + 1 < n ? i + 1 : -1));
    const queue = new BigramQueue();
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const s = syms[l] + syms[r];
      const id = this.ids.get(s);
      if (id === undefined) return;
      const score = this.scores[id] ?? 0;
      if (score === Number.NEGATIVE_INFINITY) return; // a piece no merge produces (tokenizer.json)
      queue.push({ left: l, right: r, score, size: s.length });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    while (queue.length) {
      const b = queue.pop();
      const L = syms[b.left];
      const R = syms[b.right];
      // stale entry: one side was merged away or grew since this pair was queued
      if (L.length === 0 || R.length === 0 || L.length + R.length !== b.size) continue;
      syms[b.left] = L + R;
      syms[b.right] = '';
      next[b.left] = next[b.right];
      if (next[b.right] >= 0) prev[next[b.right]] = b.left;
      tryAdd(prev[b.left], b.left);
      tryAdd(b.left, next[b.left]);
    }
    const enc = new TextEncoder();
    for (let i = 0; i >= 0 && i < n; i = next[i]) {
      const id = this.ids.get(syms[i]);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of enc.encode(syms[i])) {
        const bid = this.byteIds[byte];
        out.push(bid >= 0 ? bid : this.unk);
      }
    }
    return out;
  }

  pieceBytes(id: number, previous?: number): Uint8Array {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new LowbitError('E_RANGE', `token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    const p = this.pieces[id];
    // SentencePiece drops the space it prepended: the first piece after BOS loses its leading space
    if (this.addSpacePrefix && (previous === undefined || previous === this.bos) && p[0] === 0x20) return p.subarray(1);
    return p;
  }

  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let prev: number | undefined;
    for (const id of ids) {
      parts.push(this.pieceBytes(id, prev));
      prev = id;
    }
    const total = parts.reduce((s, p) => s + p.byteLength, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      buf.set(p, o);
      o += p.byteLength;
    }
    return new TextDecoder().decode(buf);
  }
}
