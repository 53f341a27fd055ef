// Tokenizer area: byte-level BPE encode speed (MB/s of UTF-8 input) of the runtime's merge loop
// (BpeMerges: a heap of pair ranks over a linked list, O(n log n) per pre-tokenized chunk, and a
// cache of short chunks) against the
// textbook loop it replaced (rescan every pair per merge, O(n²)), which is the baseline row of each
// group, run on a 10 KB input because it needs 81 s for 1 MB without spaces. The vocabulary is
// trained here (BPE on the TinyStories training excerpt, plus merges for runs of "a"): no real
// byte-level tokenizer.json ships with lowbit.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { ByteLevelBpeTokenizer, GPT2_PATTERN, toJsRegex } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const MERGES = 600;

function byteChars(): string[] {
  const keep = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(keep(b) ? b : 256 + n++));
  return out;
}

/** Textbook BPE training on word counts: the most frequent adjacent pair becomes the next merge. */
function train(text: string, count: number): [string, string][] {
  const map = byteChars();
  const enc = new TextEncoder();
  const words = new Map<string, number>();
  for (const m of text.matchAll(toJsRegex(GPT2_PATTERN))) words.set(m[0], (words.get(m[0]) ?? 0) + 1);
  const split = [...words].map(([w, c]) => ({ parts: Array.from(enc.encode(w), (b) => map[b]), c }));
  const merges: [string, string][] = [];
  while (merges.length < count) {
    const pairs = new Map<string, number>();
    for (const { parts, c } of split) for (let i = 0; i + 1 < parts.length; i++) pairs.set(`${parts[i]}\u0000${parts[i + 1]}`, (pairs.get(`${parts[i]}\u0000${parts[i + 1]}`) ?? 0) + c);
    let best = '';
    let bestCount = 0;
    for (const [p, c] of pairs) if (c > bestCount) [best, bestCount] = [p, c];
    if (!best) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const w of split) {
      const next: string[] = [];
      for (let i = 0; i < w.parts.length; i++) {
        if (i + 1 < w.parts.length && w.parts[i] === a && w.parts[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(w.parts[i]);
      }
      w.parts = next;
    }
  }
  return merges;
}

/** The loop ByteLevelBpeTokenizer used before BpeMerges (the tests keep it as their reference too). */
function quadraticMerge(word: string[], ranks: Map<string, number>): string[] {
  let parts = word;
  while (parts.length > 1) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) [bestRank, best] = [r, i];
    }
    if (best < 0) break;
    const [a, b] = [parts[best], parts[best + 1]];
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

export const tokenizerArea: Area = {
  name: 'tokenizer',
  async run(ctx: Context): Promise<Row[]> {
    const train_ = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8');
    const merges = train(train_, MERGES);
    // runs of "a": the one-letter worst case needs merges that keep applying
    for (const p of ['a', 'aa', 'aaaa', 'aaaaaaaa']) merges.push([p, p]);
    const chars = byteChars();
    const vocab = new Map<string, number>(chars.map((c, i) => [c, i]));
    for (const [a, b] of merges) if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    const tok = new ByteLevelBpeTokenizer(vocab, merges, GPT2_PATTERN, -1, -1);
    const ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]));
    const split = toJsRegex(GPT2_PATTERN);
    const enc = new TextEncoder();
    const quadratic = (text: string) => {
      const out: number[] = [];
      for (const m of text.matchAll(split)) for (const p of quadraticMerge(Array.from(enc.encode(m[0]), (b) => chars[b]), ranks)) out.push(vocab.get(p) as number);
      return out;
    };
    const MB = 1 << 20;
    const KB10 = 10 * 1024;
    let s = 5;
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    const inputs = {
      'validation text': (n: number) => valid.repeat(Math.ceil(n / valid.length)).slice(0, n),
      'one-letter run': (n: number) => 'a'.repeat(n),
      'random letters, no spaces': (n: number) => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''),
      // random bytes read as Latin-1: every code point 0..255, so 2 UTF-8 bytes for half of them
      'random bytes': (n: number) => Array.from({ length: n }, () => String.fromCharCode(Math.floor(rand() * 256))).join(''),
    };
    const rows: Row[] = [];
    for (const [name, make] of Object.entries(inputs)) {
      ctx.log(`  tokenizer: ${name}`);
      const small = make(KB10);
      const big = make(MB);
      // a benchmark of a wrong encoder means nothing: the heap loop gives the textbook loop's ids
      if (tok.encode(small).join() !== quadratic(small).join()) throw new Error(`tokenizer bench: ${name}: BpeMerges and the textbook loop disagree`);
      const bytes = (t: string) => enc.encode(t).length;
      const measured = [
        { variant: 'textbook loop, 10 KB', ms: await ctx.timeRuns(() => quadratic(small), 3), n: bytes(small) },
        { variant: 'heap, 10 KB', ms: await ctx.timeRuns(() => tok.encode(small), 3), n: bytes(small) },
        { variant: 'heap, 1 MB', ms: await ctx.timeRuns(() => tok.encode(big), 3), n: bytes(big) },
      ];
      // ratio on throughput (MB/s), the inputs' sizes differ
      const base = measured[0].n / measured[0].ms;
      for (const m of measured) {
        rows.push({ area: 'tokenizer', name: `BPE encode, ${name}`, variant: m.variant, ms: m.ms, rate: { value: m.n / m.ms / 1e3, unit: 'MB/s' }, ratio: m.n / m.ms / base, baseline: measured[0].variant });
      }
    }
    return rows;
  },
};
