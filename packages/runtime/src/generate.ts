// Sampling and streamed generation (llama2.c: greedy argmax at temperature 0, else softmax(logits/T)
// with optional top-p, drawn from a seeded xorshift generator so runs repeat).
import { LowbitError } from '@lowbit/kernels';
import { type KvCacheHook, Session } from './forward.js';
import type { DecoderModel } from './model.js';

export interface GenerateOptions {
  /** Tokens to generate (default 64). */
  steps?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Stop at the end-of-sequence token (default true). */
  stopAtEos?: boolean;
  /** Called with each new token and the text it adds (UTF-8 split across tokens is held back). */
  onToken?: (id: number, text: string) => void;
  /** Width of the model's any-precision layers (Session's `bits`). */
  bits?: number;
  /**
   * A compressed KV cache (CompressedKvCache sized for the model's context length). The prompt is
   * then run token by token too, so every state is stored compressed before a later token reads it.
   */
  kvCache?: KvCacheHook;
  /** Attention spans, nLayers × nHeads (Session's `spans`; calibrateSpans). */
  spans?: Int32Array;
}

export interface GenerateResult {
  prompt: number[];
  tokens: number[];
  text: string;
  prefillSeconds: number;
  decodeSeconds: number;
  /** Why generation ended: all `steps` made, the end-of-sequence token, or the model's context full. */
  stopReason: 'steps' | 'eos' | 'context';
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/** xorshift64* (llama2.c random_u32), as a float in [0, 1). */
export function rng(seed: number): () => number {
  let s = BigInt.asUintN(64, BigInt(seed) || 0x2545f4914f6cdd1dn);
  return () => {
    s ^= s >> 12n;
    s = BigInt.asUintN(64, s ^ (s << 25n));
    s ^= s >> 27n;
    const r = Number(BigInt.asUintN(64, s * 0x2545f4914f6cdd1dn) >> 32n);
    return (r >>> 8) / 16777216;
  };
}

export function sample(logits: Float32Array, temperature: number, topP: number, rand: () => number): number {
  if (temperature === 0) return argmax(logits);
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  const p = Array.from(logits, (v, i) => ({ i, p: Math.exp((v - max) / temperature) }));
  let sum = p.reduce((s, x) => s + x.p, 0);
  let pool = p;
  if (topP > 0 && topP < 1) {
    pool = [...p].sort((a, b) => b.p - a.p);
    let acc = 0;
    let cut = pool.length;
    for (let j = 0; j < pool.length; j++) {
      acc += pool[j].p / sum;
      if (acc > topP) {
        cut = j + 1;
        break;
      }
    }
    pool = pool.slice(0, cut);
    sum = pool.reduce((s, x) => s + x.p, 0);
  }
  let r = rand() * sum;
  for (const x of pool) {
    r -= x.p;
    if (r <= 0) return x.i;
  }
  return pool[pool.length - 1].i;
}

export function generate(model: DecoderModel, prompt: string, options: GenerateOptions = {}): GenerateResult {
  const steps = options.steps ?? 64;
  const temperature = options.temperature ?? 0;
  if (!(temperature >= 0)) throw new LowbitError('E_ARG', `generate: temperature ${temperature} must be >= 0`);
  const ids = model.tokenizer.encode(prompt, { bos: true });
  if (ids.length >= model.config.contextLength) {
    throw new LowbitError('E_RANGE', `generate: the prompt is ${ids.length} tokens, the model's context ${model.config.contextLength} leaves no room to generate`);
  }
  const ctx = Math.min(model.config.contextLength, ids.length + steps);
  const session = new Session(model, { ctx, bits: options.bits, kvCache: options.kvCache, spans: options.spans });
  const rand = rng(options.seed ?? Date.now());
  const decoder = new TextDecoder();
  const out: number[] = [];
  let text = '';
  let stopReason: GenerateResult['stopReason'] = 'steps';
  const t0 = performance.now();
  let t1 = t0;
  try {
    let logits = options.kvCache ? session.forward([ids[0]]) : session.forward(ids);
    if (options.kvCache) for (const id of ids.slice(1)) logits = session.forward([id]);
    t1 = performance.now();
    let prev = ids[ids.length - 1];
    for (let i = 0; i < steps; i++) {
      const next = sample(logits, temperature, options.topP ?? 0, rand);
      if (next === model.tokenizer.eos && options.stopAtEos !== false) {
        stopReason = 'eos';
        break;
      }
      out.push(next);
      const piece = decoder.decode(model.tokenizer.pieceBytes(next, prev), { stream: true });
      text += piece;
      options.onToken?.(next, piece);
      prev = next;
      if (i + 1 === steps) break;
      if (session.pos >= session.ctx) {
        stopReason = 'context';
        break;
      }
      logits = session.forward([next]);
    }
  } finally {
    session.free(); // the KV caches live in the kernels' WASM memory
  }
  text += decoder.decode();
  return { prompt: ids, tokens: out, text, prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (performance.now() - t1) / 1000, stopReason };
}
