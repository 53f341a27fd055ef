// GPTQ on the K grid for a whole model (gptqQuantizeModelK): llama.cpp's per-layer types, RTN's exact
// fallback where rows are not whole super-blocks, and the saved GGUF run by llama.cpp (node-llama-cpp)
// with lowbit's log-probs. The model is a random-weights Llama whose rows are 256 wide (stories260K's
// 64- and 172-wide rows fit no super-block); its log-probs check the file, they measure no quality.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { Session, type DecoderModel, loadModel, quantizeModelK, readGguf, saveModel } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gptqQuantizeModelK } from '../src/index.js';
import '../../runtime/src/file-system-node.js';
import { type LlamaCpp, openLlamaCpp } from '../../runtime/test/llama-cpp-lib.js';
import { writeTinyGguf } from '../../runtime/test/tiny-models.js';

// ffn 320: gate/up rows are 256 wide (K types), ffn_down's 320 are not (RTN's fallback: Q4_K's Q5_0, Q6_K's Q8_0)
const DIMS = { D: 256, F: 320, L: 2, CTX: 256 };
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const validText = readFileSync(fileURLToPath(validTextUrl), 'utf8');

function logSoftmaxAt(logits: Float32Array, o: number, V: number, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[o + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - max);
  return logits[o + id] - max - Math.log(s);
}

describe('gptqQuantizeModelK', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-gptq-kmodel-'));
  const f32 = join(dir, 'f32.gguf');
  let llama: LlamaCpp | undefined;
  let skipReason = '';
  beforeAll(async () => {
    ({ llama, skipReason } = await openLlamaCpp('GPTQ K-quant cross-check'));
    await writeTinyGguf('llama', f32, 77, DIMS);
  });
  afterAll(async () => {
    await llama?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('Q4_K_M: llama.cpp\'s types, RTN\'s exact Q5_0 / Q8_0 fallbacks for 320-wide rows; llama.cpp runs the saved file with our log-probs', async (t) => {
    const m = await loadModel(f32);
    const r = gptqQuantizeModelK(m, { scheme: 'Q4_K_M', calibration, ctx: 256, maxWindows: 4 });
    const rtn = await loadModel(f32);
    const want = quantizeModelK(rtn, 'Q4_K_M');
    expect(r.layers.map((l) => [l.name, l.type])).toEqual(want.layers.map((l) => [l.name, l.type]));
    expect(r.bitsPerWeight).toBe(want.bitsPerWeight);
    // layers 1 (use_more_bits of 2 layers) attn_v and output.weight Q6_K; ffn_down the fallbacks (layer 0's
    // Q4_K → Q5_0, layer 1's Q6_K → Q8_0)
    const types = Object.fromEntries(r.layers.map((l) => [l.name, l.type]));
    expect(types).toMatchObject({ 'blk.0.attn_v.weight': 'Q4_K', 'blk.1.attn_v.weight': 'Q6_K', 'blk.0.ffn_down.weight': 'Q5_0', 'blk.1.ffn_down.weight': 'Q8_0', 'output.weight': 'Q6_K', 'blk.0.ffn_gate.weight': 'Q4_K' });
    const bytesOf = (model: DecoderModel, name: string) => (model.linear(name).source as { data: Uint8Array }).data;
    for (const l of r.layers) {
      if (l.method === 'rtn') expect(bytesOf(m, l.name), l.name).toEqual(bytesOf(rtn, l.name));
      else expect(bytesOf(m, l.name), `${l.name}: GPTQ moved some code`).not.toEqual(bytesOf(rtn, l.name));
    }
    rtn.free();

    const out = join(dir, 'gptq-q4_k_m.gguf');
    await saveModel(m, out, { target: 'F32' });
    const file = await readGguf(out);
    const saved = Object.fromEntries([...file.tensors.values()].map((x) => [x.name, x.type]));
    await file.source.close();
    for (const l of r.layers) expect(saved[l.name], l.name).toBe(l.type);
    if (!llama) {
      m.free();
      return t.skip(skipReason);
    }
    const ids = m.tokenizer.encode(validText.split('\n').slice(0, 6).join(' ')).slice(0, 200);
    const lm = await llama.loadModel({ modelPath: out });
    const ctx = await lm.createContext({ contextSize: DIMS.CTX, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const res = await ctx.getSequence().controlledEvaluate(ids.map((id) => [id as never, { generateNext: { probabilities: true } }]));
    const session = new Session(m, { ctx: DIMS.CTX });
    const logits = session.forward(ids, { logits: 'all' });
    session.free();
    const V = m.config.vocabSize;
    const d: number[] = [];
    for (let i = 0; i + 1 < ids.length; i++) {
      const p = res[i]?.next?.probabilities?.get(ids[i + 1] as never);
      if (p === undefined) throw new Error(`llama.cpp gave no probability at position ${i}`);
      d.push(Math.abs(Math.log(p) - logSoftmaxAt(logits, i * V, V, ids[i + 1])));
    }
    await ctx.dispose();
    await lm.dispose();
    m.free();
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    console.log('log-prob |Δ| vs llama.cpp, GPTQ Q4_K_M:', { n: d.length, max: Math.max(...d), mean });
    // the bounds of runtime's kquant-mix.test.ts (RTN Q4_K_M): llama.cpp's Q8_K activation rounding is the only difference
    expect(d.length).toBeGreaterThanOrEqual(150);
    expect(mean).toBeLessThan(0.05);
    expect(Math.max(...d)).toBeLessThan(0.5);
  });
});
