// The runtime worker in a real browser: a Vite-bundled page starts it with createRuntimeWorker
// (@lowbit/runtime/browser), loads the embedded stories260K by URL and by transferred bytes, and
// tokenizes, generates and measures perplexity in Debian's Chromium (driven by playwright-core),
// on one thread and on a 2-thread KernelPool inside the worker. Node recomputes every number on
// its main thread with the same kernel build.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadKernels } from '@lowbit/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndServe, CHROMIUM, haveChromium, pageResult, type ServedPage } from '../../kernels/test/browser-harness.js';
import { generate } from '../src/generate.js';
import { type LlamaConfig, type DecoderModel, loadModel } from '../src/model.js';
import { type PerplexityResult, perplexity } from '../src/perplexity.js';
import { modelFile, validLines } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
if (!haveChromium) console.warn(`browser runtime-worker test skipped: no Chromium at ${CHROMIUM} (CI installs Debian's chromium; set LOWBIT_CHROMIUM to another binary)`);

interface PageResult {
  failed?: boolean;
  error?: { name?: string; code?: string; message: string };
  threads: number;
  isolated: boolean;
  variant: string;
  modelName: string;
  urlModel: string;
  configByUrl: LlamaConfig;
  configByBytes: LlamaConfig;
  modelBytes: number;
  bytesAfterTransfer: number;
  story: string;
  ids: number[];
  decoded: string;
  prompt: string;
  steps: number;
  tokens: number[];
  text: string;
  streamed: { id: number; text: string }[];
  ppl: { ctx: number; maxWindows: number };
  perplexity: PerplexityResult;
  progress: [number, number][];
}

let served: ServedPage | undefined;
beforeAll(async () => {
  // isolated: the 2-thread case shares WebAssembly memory between workers (harmless for 1 thread)
  if (haveChromium) served = await buildAndServe(join(here, 'worker-browser-fixture'), { isolated: true });
}, 60_000);

/** Node's model on the page's kernel build (a pool's '-threads' build computes each row alike). */
const nodeModels = new Map<string, Promise<DecoderModel>>();
function nodeModel(variant: string): Promise<DecoderModel> {
  const v = variant.replace(/-threads$/, '') as 'relaxed' | 'simd';
  if (!nodeModels.has(v)) nodeModels.set(v, loadKernels({ variant: v }).then((kernels) => loadModel(modelFile, { kernels })));
  return nodeModels.get(v)!;
}
afterAll(async () => {
  served?.close();
  for (const m of nodeModels.values()) (await m).free();
});

/** The page's numbers against Node's, which ran the same kernel build on one thread. */
async function expectNodeResults(r: PageResult): Promise<void> {
  const m = await nodeModel(r.variant);
  expect(r.configByUrl).toEqual(m.config);
  expect(r.configByBytes).toEqual(m.config);

  // (1) tokenization of the shipped text's first story
  expect(r.story).toBe(validLines[0]);
  const ids = m.tokenizer.encode(r.story, { bos: true });
  expect(r.ids).toEqual(ids);
  expect(r.decoded).toBe(m.tokenizer.decode(ids.slice(1)));

  // (2) greedy generation, token for token; the streamed callbacks had all run when it resolved
  const gen = generate(m, r.prompt, { steps: r.steps, stopAtEos: false });
  expect(r.tokens).toHaveLength(32);
  expect(r.tokens).toEqual(gen.tokens);
  expect(r.text).toBe(gen.text);
  expect(r.streamed.map((s) => s.id)).toEqual(gen.tokens);
  expect(r.streamed.map((s) => s.text).join('')).toBe(gen.text);

  // (3) perplexity of one short window. Same kernel build, same f32 WebAssembly arithmetic (a
  // pool splits rows, never a row's sum), so the logits are bit-identical; only the f64
  // log-softmax runs outside WebAssembly, in Math.exp/Math.log, which V8 computes in software
  // (an fdlibm port) in Node and in Chromium alike. 1e-12 relative leaves room for a last-bit
  // change between the two V8 versions and for nothing else: one f32 logit rounding differently
  // would move it by ~1e-8.
  const p = perplexity(m, r.story, r.ppl);
  expect(r.perplexity.tokens).toBe(p.tokens);
  expect(r.perplexity.tokens).toBe(r.ppl.ctx - 1);
  expect(r.perplexity.windows).toBe(1);
  console.log(
    `${r.threads} thread(s), ${r.variant}: perplexity ctx ${r.ppl.ctx} Chromium ${r.perplexity.perplexity} Node ${p.perplexity} |Δ| ${Math.abs(r.perplexity.perplexity - p.perplexity)}`,
  );
  expect(Math.abs(r.perplexity.perplexity - p.perplexity)).toBeLessThanOrEqual(1e-12 * p.perplexity);
  expect(r.progress.at(-1)).toEqual([1, 1]);
}

/** What both cases check about loading, transfer and errors. */
function expectLoaded(r: PageResult): void {
  expect(r.failed, r.error?.message).toBeUndefined();
  expect(r.isolated).toBe(true);
  expect(r.urlModel).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/.*stories260K.*\.gguf$/);
  expect(r.modelName).toBe('stories260K.gguf');
  // transferred, not copied: the page's buffer is detached
  expect(r.modelBytes).toBeGreaterThan(1_000_000);
  expect(r.bytesAfterTransfer).toBe(0);
  // LowbitError's code survives the trip through comlink
  expect(r.error).toMatchObject({ name: 'LowbitError', code: 'E_RANGE', message: expect.stringMatching(/token id 99999/) });
}

describe.skipIf(!haveChromium)('runtime worker in Chromium', () => {
  it('loads the embedded model into a Web Worker and matches Node token for token', async () => {
    const r = await pageResult<PageResult>(served!.url, 30_000);
    expectLoaded(r);
    // the loader checked relaxed SIMD against plain SIMD before choosing it
    expect(r.variant).toBe('relaxed');
    await expectNodeResults(r);
  });

  it('splits the matmuls over a 2-thread pool inside the worker with the same results', async () => {
    const r = await pageResult<PageResult>(`${served!.url}?threads=2`, 30_000);
    expectLoaded(r);
    expect(r.threads).toBe(2);
    expect(r.variant).toBe('relaxed-threads');
    await expectNodeResults(r);
  });

  it('rejects calls, pending and later, when the worker script does not load', async () => {
    const r = await pageResult<{ early: unknown; late: unknown }>(`${served!.url}?missing`, 30_000);
    const failure = { name: 'LowbitError', code: 'E_IO', message: expect.stringMatching(/runtime worker failed/) };
    expect(r.early).toMatchObject(failure);
    expect(r.late).toMatchObject(failure);
  });
});
