import { loadModel, perplexity, tokenizeDocuments } from '@lowbit/runtime';
import type { CliEvent } from '../src/command.js';
import { runCli } from '../src/main.js';

/** Runs `lowbit argv…` in-process and collects stdout, stderr, the exit code and the progress events. */
export async function run(argv: string[]): Promise<{ code: number; out: string; err: string; events: CliEvent[] }> {
  let out = '';
  let err = '';
  const events: CliEvent[] = [];
  const code = await runCli(argv, { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, onEvent: (e) => events.push(e) });
  return { code, out, err, events };
}

/**
 * Perplexity of a GGUF over its first `windows` windows of 256 tokens of `text`, in lowbit and in
 * llama.cpp (node-llama-cpp), for the file tests that compare the two; `{ reason }` when
 * node-llama-cpp is not installed (the caller skips with it).
 */
export async function llamaCppPerplexity(path: string, text: string, windows: number): Promise<{ ours: number; theirs: number; tokens: number; oursTokens: number } | { reason: string }> {
  let getLlama: (typeof import('node-llama-cpp'))['getLlama'];
  try {
    ({ getLlama } = await import('node-llama-cpp'));
  } catch (err) {
    return { reason: `node-llama-cpp is not installed (npm run llama-cpp): ${(err as Error).message}` };
  }
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  const model = await loadModel(path);
  const ours = perplexity(model, text, { ctx: 256, maxWindows: windows });
  const ids = tokenizeDocuments(model, text);
  model.free();
  const lm = await llama.loadModel({ modelPath: path });
  let nll = 0;
  let n = 0;
  for (let w = 0; w < windows; w++) {
    const win = ids.slice(w * 256, (w + 1) * 256);
    // an F32 KV cache and no flash attention: llama.cpp's F16 cache would add ~1e-2 of its own
    const c = await lm.createContext({ contextSize: 256, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
    const res = await c.getSequence().controlledEvaluate(win.map((t) => [t as never, { generateNext: { probabilities: true } }]));
    for (let i = 0; i + 1 < win.length; i++) {
      const p = res[i]?.next?.probabilities?.get(win[i + 1] as never);
      if (p === undefined) throw new Error(`llama.cpp gave no probability at window ${w}, position ${i}`);
      nll -= Math.log(p);
      n++;
    }
    await c.dispose();
  }
  await lm.dispose();
  await llama.dispose();
  return { ours: ours.perplexity, theirs: Math.exp(nll / n), tokens: n, oursTokens: ours.tokens };
}
