// The acceptance check: a GPTQ Q4_0 / Q4_1 GGUF written by lowbit runs in llama.cpp
// (node-llama-cpp's prebuilt CPU binary) with the perplexity `lowbit eval` measures, within 0.5%.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { loadModel, perplexity, quantizeGguf, readGguf, saveModel, tokenizeDocuments } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quantizeModel } from '../src/index.js';
import { type LlamaCpp, openLlamaCpp } from '../../runtime/test/llama-cpp-lib.js';

let llamaLib: LlamaCpp | undefined;
let skipReason = '';
const dir = mkdtempSync(join(tmpdir(), 'lowbit-gptq-gguf-'));
const modelPath = fileURLToPath(defaultModelUrl);
const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8');
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');

beforeAll(async () => {
  ({ llama: llamaLib, skipReason } = await openLlamaCpp('llama.cpp checks'));
});
afterAll(async () => {
  await llamaLib?.dispose();
});

/** Perplexity by lowbit eval's protocol (BOS per line, windows of ctx from an empty cache), computed by llama.cpp. */
async function llamaCppPerplexity(path: string, ids: number[], ctxLen: number): Promise<number> {
  if (!llamaLib) throw new Error(skipReason);
  const lm = await llamaLib.loadModel({ modelPath: path });
  const ctx = await lm.createContext({ contextSize: ctxLen, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  const seq = ctx.getSequence();
  let nll = 0;
  let count = 0;
  for (let s = 0; s < ids.length; s += ctxLen) {
    const win = ids.slice(s, s + ctxLen);
    if (win.length < 2) break;
    await seq.clearHistory();
    const res = await seq.controlledEvaluate(win.map((t) => [t as never, { generateNext: { probabilities: true } }]));
    for (let i = 0; i + 1 < win.length; i++) {
      const p = res[i]?.next?.probabilities?.get(win[i + 1] as never);
      if (p === undefined) throw new Error(`llama.cpp gave no probability at ${s + i}`);
      nll -= Math.log(p);
      count++;
    }
  }
  await ctx.dispose();
  await lm.dispose();
  return Math.exp(nll / count);
}

describe('GPTQ GGUF files in llama.cpp', () => {
  for (const format of ['q4_0', 'q4_1'] as const) {
    it(`GPTQ ${format}: lowbit eval and llama.cpp agree within 0.5%, and it beats llama.cpp's own ${format.toUpperCase()} quantizer`, async (ctx) => {
      const model = await loadModel(modelPath);
      quantizeModel(model, { method: 'gptq', format, actOrder: true, staticGroups: true, includeOutput: true, calibration, ctx: 256, maxWindows: 4 }); // 1024 calibration tokens keep the test short; the study uses more
      const out = join(dir, `gptq-${format}.gguf`);
      await saveModel(model, out, { target: 'F16' }); // the 172-wide ffn_down stays f32 in memory → F16 on disk
      const file = await readGguf(out);
      const types = new Map([...file.tensors.values()].map((t) => [t.name, t.type]));
      await file.source.close();
      expect(types.get('blk.0.attn_q.weight')).toBe(format.toUpperCase());
      expect(types.get('output.weight')).toBe(format.toUpperCase());
      expect(types.get('blk.0.ffn_down.weight')).toBe('F16');

      const ours = await loadModel(out);
      const pplLowbit = perplexity(ours, valid, { ctx: 256 }).perplexity;
      const rtnOut = join(dir, `rtn-${format}.gguf`);
      await quantizeGguf(modelPath, rtnOut, format === 'q4_0' ? 'Q4_0' : 'Q4_1');
      const pplRtn = perplexity(await loadModel(rtnOut), valid, { ctx: 256 }).perplexity;
      console.log(`${format}: GPTQ lowbit ${pplLowbit.toFixed(4)}, llama.cpp RTN (lowbit eval) ${pplRtn.toFixed(4)}`);
      expect(pplLowbit).toBeLessThan(pplRtn);
      if (!llamaLib) return ctx.skip(`llama.cpp side not run: ${skipReason}`);
      const pplLlama = await llamaCppPerplexity(out, tokenizeDocuments(ours, valid), 256);
      console.log(`${format}: GPTQ llama.cpp ${pplLlama.toFixed(4)}`);
      expect(Math.abs(pplLlama - pplLowbit) / pplLowbit).toBeLessThan(0.005);
    }, 600_000);
  }
});
