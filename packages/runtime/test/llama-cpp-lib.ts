// llama.cpp through node-llama-cpp's prebuilt CPU binary (never built, nothing downloaded), for the
// cross-check tests of every package. Where the binary cannot load, the checks skip with the reason
// printed once.
import { Session } from '../src/forward.js';
import type { DecoderModel } from '../src/model.js';
import { logProb } from './helpers.js';

export type LlamaCpp = Awaited<ReturnType<(typeof import('node-llama-cpp'))['getLlama']>>;

export async function openLlamaCpp(what: string): Promise<{ llama?: LlamaCpp; skipReason: string }> {
  try {
    const { getLlama } = await import('node-llama-cpp');
    return { llama: await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false }), skipReason: '' };
  } catch (e) {
    const skipReason = `node-llama-cpp cannot load its prebuilt llama.cpp here: ${(e as Error).message}`;
    console.warn(`SKIPPED ${what}: ${skipReason}`);
    return { skipReason };
  }
}

export type LlamaCppModel = Awaited<ReturnType<LlamaCpp['loadModel']>>;

/**
 * |log p_lowbit − log p_llama.cpp| of each next token over `ids`, one window from an empty cache on
 * both sides. llama.cpp runs with an F32 KV cache and no flash attention: its defaults (F16 cache)
 * would add ~1e-2 of their own.
 */
export async function logProbDiffs(lm: LlamaCppModel, ours: DecoderModel, ids: number[], contextSize = 512): Promise<number[]> {
  const ctx = await lm.createContext({ contextSize, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const res = await ctx.getSequence().controlledEvaluate(ids.map((t) => [t as never, { generateNext: { probabilities: true } }]));
  const session = new Session(ours, { ctx: contextSize });
  const logits = session.forward(ids, { logits: 'all' });
  session.free();
  const V = ours.config.vocabSize;
  const d: number[] = [];
  for (let i = 0; i + 1 < ids.length; i++) {
    const p = res[i]?.next?.probabilities?.get(ids[i + 1] as never);
    if (p === undefined) throw new Error(`llama.cpp gave no probability at position ${i}`);
    d.push(Math.abs(Math.log(p) - logProb(logits, i, V, ids[i + 1])));
  }
  await ctx.dispose();
  return d;
}
