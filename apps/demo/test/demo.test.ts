// The demo end to end: Vite builds the app, the build is served on 127.0.0.1 with the cross-origin
// isolation headers `npm run demo` sends, and Debian's Chromium (playwright-core, no browser download)
// loads the embedded model, quantizes it (RTN int4 g32 on two validation windows), generates greedily
// on both models, downloads the GGUF and the safetensors, allocates widths with CLADO (HiGHS in the
// worker), simulates an accelerator, runs the kernels on 1 and 2 threads, cancels a run on every
// panel with a long task, and opens a truncated file. Node recomputes every number with the packages
// directly on the page's kernel build.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { dequantizeInt, quantizeInt } from '@lowbit/formats';
import { loadKernels } from '@lowbit/kernels';
import { allocate, applyAllocation, measureClado, quantizeModel } from '@lowbit/quantizers';
import { type Linear, generate, loadModel, loadQuantizedSafetensors, perplexity, readGguf, saveModel, saveModelSafetensors, writeSafetensors } from '@lowbit/runtime';
import { modelWorkload, simulateWorkload } from '@lowbit/sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, haveChromium, launchChromium, serveDir, type ServedPage } from '../../../packages/kernels/test/browser-harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const modelFile = fileURLToPath(defaultModelUrl);
const validText = readFileSync(fileURLToPath(validTextUrl), 'utf8');
const noChromium = `no Chromium at ${CHROMIUM} (apt-get install chromium; or set LOWBIT_CHROMIUM to another binary)`;
/** Set to a folder to keep the screenshots (the READMEs' come from here). */
const shots = process.env.LOWBIT_DEMO_SCREENSHOTS;
if (shots) mkdirSync(shots, { recursive: true });

const EVAL_WINDOWS = 2;
const PROMPT = 'Once upon a time';
const STEPS = 16;
const CALIB_WINDOWS = 2;

/** One build, served twice: with the COOP/COEP headers `npm run demo` sends, and without (a plain static host). */
let served: ServedPage | undefined;
let plain: ServedPage | undefined;
let work = '';
beforeAll(async () => {
  if (!haveChromium) return;
  work = mkdtempSync(join(tmpdir(), 'lowbit-demo-test-'));
  const { build } = await import('vite');
  const outDir = join(work, 'dist');
  await build({ root: join(here, '..'), logLevel: 'error', build: { outDir, emptyOutDir: true } });
  served = await serveDir(outDir, { isolated: true });
  plain = await serveDir(outDir);
}, 60_000);
afterAll(() => {
  served?.close();
  plain?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the demo app in Chromium', () => {
  it('every panel as Node computes it (quantize, allocate, generate, GGUF and safetensors downloads, formats, kernels, accelerator), Cancel on each long task, a corrupt file\'s error', async (ctx) => {
    if (!haveChromium || !served) return ctx.skip(noChromium);
    const browser = await launchChromium();
    const log: string[] = [];
    try {
      const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
      const page = await context.newPage();
      page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => log.push(`pageerror: ${e}`));
      page.setDefaultTimeout(40_000);
      await page.goto(served.url);
      const shot = async (name: string) => {
        if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
      };

      // Keyboard: arrow keys, Home and End move along the tabs and focus the one selected
      await page.focus('#tab-model');
      await page.keyboard.press('ArrowRight');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-quantize');
      expect(await page.locator('#panel-quantize').isVisible()).toBe(true);
      await page.keyboard.press('End');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-sim');
      await page.keyboard.press('Home');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-model');

      // Model panel: the table lists every tensor of the file
      await page.click('#open-embedded');
      await page.waitForSelector('#tensor-table tbody tr');
      const file = await readGguf(modelFile);
      const rows = await page.locator('#tensor-table tbody tr').count();
      expect(rows).toBe(file.tensors.size);
      const facts = (await page.locator('#model-facts').textContent()) ?? '';
      expect(facts).toContain('llama');
      const variant = /kernels\s*(relaxed|simd|scalar)/.exec(facts)?.[1];
      expect(variant, facts).toBeDefined();
      await file.source.close();

      // Quantize panel: RTN int4 g32 sym on two validation windows
      await page.click('#tab-quantize');
      await page.selectOption('#q-method', 'rtn');
      await page.selectOption('#q-format', 'int4');
      await page.selectOption('#q-group', '32');
      await page.fill('#q-eval-windows', String(EVAL_WINDOWS));
      await page.click('#q-run');
      await page.waitForSelector('#q-last');
      const shown = await page.locator('#q-last').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
      await shot('quantize');

      // Node: the same model on the page's kernel build, the same options `lowbit quantize` builds
      const kernels = await loadKernels({ variant: variant as 'relaxed' | 'simd' | 'scalar' });
      const model = await loadModel(modelFile, { kernels });
      const orig = await loadModel(modelFile, { kernels });
      try {
        const before = perplexity(model, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
        const r = quantizeModel(model, { method: 'rtn', format: 'int', bits: 4, group: 32, symmetric: true, ctx: 256 });
        const after = perplexity(model, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
        // Same kernel build, same f32 WebAssembly arithmetic, the same f64 log-softmax (the runtime's own
        // exp and log, not the engine's libm, which differs between Node 20 and Chromium 156): equal to the bit
        // (0 difference); the shown rounding equals Node's rounding too.
        expect(Number(shown.pplBefore)).toBe(before.perplexity);
        expect(Number(shown.pplAfter)).toBe(after.perplexity);
        expect(Number(shown.bits)).toBe(r.bitsPerWeight);
        expect(await page.locator('#q-ppl-after').textContent()).toBe(after.perplexity.toFixed(4));
        expect(after.perplexity).toBeGreaterThan(before.perplexity); // int4 costs something on a 260K model
        expect(await page.locator('#runs-table tbody tr').count()).toBe(1);
        expect(await page.locator('#q-plot g.point > *').count()).toBe(1);

        // Generate panel: 16 greedy tokens from each model, as Node's generate makes them
        await page.click('#tab-generate');
        await page.fill('#g-steps', String(STEPS));
        await page.fill('#g-temp', '0');
        await page.click('#g-run');
        await page.waitForFunction(() => /tokens\/s/.test(document.querySelector('#g-quant-stats')?.textContent ?? '') && /tokens\/s/.test(document.querySelector('#g-orig-stats')?.textContent ?? ''));
        const wantOrig = generate(orig, PROMPT, { steps: STEPS });
        const wantQuant = generate(model, PROMPT, { steps: STEPS });
        expect(await page.locator('#g-orig-text').textContent()).toBe(PROMPT + wantOrig.text);
        expect(await page.locator('#g-quant-text').textContent()).toBe(PROMPT + wantQuant.text);
        expect(await page.locator('#g-stage').textContent()).toBe('done');
        await shot('generate');

        // Cancel a long generation: both workers stop between tokens and keep their models
        await page.fill('#g-steps', '512');
        await page.click('#g-run');
        await page.waitForFunction(() => (document.querySelector('#g-orig-text')?.textContent ?? '').length > 40);
        await page.click('#g-cancel');
        await page.waitForFunction(() => /cancelled\)$/.test(document.querySelector('#g-orig-stats')?.textContent ?? ''));
        await page.waitForFunction(() => !(document.querySelector('#g-run') as HTMLButtonElement).disabled);
        expect(await page.locator('#g-stage').textContent()).toBe('cancelled');
        await page.fill('#g-steps', String(STEPS));
        await page.click('#g-run');
        await page.waitForFunction(() => document.querySelector('#g-stage')?.textContent === 'done');
        expect(await page.locator('#g-quant-text').textContent()).toBe(PROMPT + wantQuant.text);

        // Download: a GGUF the Node runtime loads and that evaluates as the page's model did
        await page.click('#tab-quantize');
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#q-download')]);
        const saved = join(work, download.suggestedFilename());
        await download.saveAs(saved);
        expect(saved).toMatch(/stories260K\.rtn-int4-g32\.gguf$/);
        // byte for byte the file `saveModel` writes in Node for the same quantized model
        const nodeFile = join(work, 'node.gguf');
        await saveModel(model, nodeFile, { target: 'F32', packed: r.packed });
        expect(readFileSync(saved).equals(readFileSync(nodeFile))).toBe(true);
        const back = await loadModel(saved, { kernels });
        try {
          // INT4 layers come back as INT4: those of whole 32-blocks from Q4_0 tiles (`packed`, codes read
          // back from the tiles), ffn_down's 172-column rows from the int4 kernel
          const int4 = (l: Linear) => {
            const s = l.source;
            return s.format === 'int4' || (s.format === 'packed' && (s.tensor as { kind?: string; bits?: number }).kind === 'int' && (s.tensor as { bits: number }).bits === 4);
          };
          expect(back.linears().filter(int4).length).toBe(r.layers.length);
          const again = perplexity(back, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
          // The loaded file runs its int4 layers on Q4_0 tiles or the int4 matmul, which quantize activations to
          // int8 per block of 32 (as llama.cpp's dot products do), where the page's model ran the
          // fake-quantized f32 weights: measured 5.1624 against 5.1761 (0.26 %) in Node alone too.
          // Bound: 1 % of the perplexity.
          expect(Math.abs(again.perplexity - after.perplexity)).toBeLessThanOrEqual(0.01 * after.perplexity);
        } finally {
          back.free();
        }

        // Download as safetensors: byte for byte Node's saveModelSafetensors, and the runtime loads it
        const [stDownload] = await Promise.all([page.waitForEvent('download'), page.click('#q-download-st')]);
        const savedSt = join(work, stDownload.suggestedFilename());
        await stDownload.saveAs(savedSt);
        expect(savedSt).toMatch(/stories260K\.rtn-int4-g32\.safetensors$/);
        const nodeSt = join(work, 'node.safetensors');
        await saveModelSafetensors(model, nodeSt, { packed: r.packed });
        expect(readFileSync(savedSt).equals(readFileSync(nodeSt))).toBe(true);
        const backSt = await loadQuantizedSafetensors(savedSt, { kernels });
        try {
          expect(backSt.linears().filter((l) => l.source.format !== 'f32').length).toBe(r.layers.length);
          const again = perplexity(backSt, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
          // int4 layers on the int4 matmul again (activations rounded to int8 per block): the GGUF bound
          expect(Math.abs(again.perplexity - after.perplexity)).toBeLessThanOrEqual(0.01 * after.perplexity);
        } finally {
          backSt.free();
        }
      } finally {
        model.free();
        orig.free();
      }

      // Cancel mid-run: the worker is replaced, the next run opens the model there again
      await page.selectOption('#q-method', 'gptq');
      await page.selectOption('#q-format', 'q4_0');
      await page.check('#q-act-order');
      await page.fill('#q-calib-windows', '16');
      await page.click('#q-run');
      await page.waitForFunction(() => /quantizing layers/.test(document.querySelector('#q-stage')?.textContent ?? ''));
      await page.click('#q-cancel');
      expect(await page.locator('#q-stage').textContent()).toBe('cancelled');
      expect(await page.locator('#q-run').isEnabled()).toBe(true);
      // the quantized model went with the stopped worker: nothing to download until the next run
      expect(await page.locator('#q-download').isEnabled()).toBe(false);

      // GPTQ act-order (static groups) q4_0 on 2 calibration windows, as `lowbit quantize` would
      await page.fill('#q-calib-windows', String(CALIB_WINDOWS));
      await page.click('#q-run');
      await page.waitForFunction(() => /^Run #2:/.test(document.querySelector('#q-last h3')?.textContent ?? ''));
      const shownGptq = await page.locator('#q-last').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
      const gptqModel = await loadModel(modelFile, { kernels });
      try {
        const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
        const r = quantizeModel(gptqModel, { method: 'gptq', format: 'q4_0', actOrder: true, staticGroups: true, calibration, ctx: 256, maxWindows: CALIB_WINDOWS, includeOutput: true });
        const after = perplexity(gptqModel, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
        // GPTQ's f64 solves run in the same V8 on the same kernels: 0 difference here too
        expect(Number(shownGptq.pplAfter)).toBe(after.perplexity);
        expect(Number(shownGptq.bits)).toBe(r.bitsPerWeight);
        expect(r.bitsPerWeight).toBe(4.5); // q4_0 blocks: 18 bytes per 32 weights
      } finally {
        gptqModel.free();
      }

      // RTN int4 g32 + SmoothQuant α=0.5 + AdaDim, on the same 2 calibration windows (the clipping
      // search runs 9 candidates per layer: left out to keep this test short)
      await page.selectOption('#q-method', 'rtn');
      await page.selectOption('#q-format', 'int4');
      await page.fill('#q-smooth', '0.5');
      await page.check('#q-adadim');
      await page.click('#q-run');
      await page.waitForFunction(() => /^Run #3:/.test(document.querySelector('#q-last h3')?.textContent ?? ''));
      expect(await page.locator('#q-last h3').textContent()).toBe('Run #3: RTN int4 g32 + SmoothQuant α=0.5 + AdaDim');
      const shownExtras = await page.locator('#q-last').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
      const extrasModel = await loadModel(modelFile, { kernels });
      try {
        const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
        quantizeModel(extrasModel, { method: 'rtn', format: 'int', bits: 4, group: 32, symmetric: true, smooth: 0.5, adaDim: true, calibration, ctx: 256, maxWindows: CALIB_WINDOWS });
        expect(Number(shownExtras.pplAfter)).toBe(perplexity(extrasModel, validText, { ctx: 256, maxWindows: EVAL_WINDOWS }).perplexity);
      } finally {
        extrasModel.free();
      }
      expect(await page.locator('#q-plot g.point > *').count()).toBe(3);
      await shot('quantize-three-runs');
      if (shots) {
        // the README's picture: 1280 × 800 from the last run's result down (result, chart, runs),
        // the viewport only, which keeps the PNG small
        await page.evaluate(() => window.scrollTo(0, (document.querySelector('#q-result') as HTMLElement).offsetTop - 8));
        await page.screenshot({ path: join(shots, 'screenshot.png') });
        await page.setViewportSize({ width: 420, height: 900 });
        await shot('quantize-narrow');
        await page.setViewportSize({ width: 1280, height: 800 });
      }

      // Mixed precision: CLADO over int2/int4/int8 at 4 bits/weight (single-layer terms, 2 windows:
      // quick), HiGHS in the worker; Node measures and solves the same problem
      await page.click('#tab-allocate');
      await page.uncheck('.a-bits[value="3"]');
      await page.selectOption('#a-method', 'clado');
      await page.fill('#a-budget', '4');
      await page.selectOption('#a-pairs', 'none');
      await page.fill('#a-calib-windows', '2');
      await page.fill('#a-eval-windows', String(EVAL_WINDOWS));
      await page.click('#a-run');
      await page.waitForSelector('#a-last');
      const shownAlloc = await page.locator('#a-last').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
      expect(await page.locator('#a-solver').textContent()).toBe('HiGHS: Optimal');
      // the three quantization runs and this allocation, on one chart
      expect(await page.locator('#a-plot g.point > *').count()).toBe(4);
      await shot('allocate');
      const allocModel = await loadModel(modelFile, { kernels });
      try {
        const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
        const m = measureClado(allocModel, { bits: [2, 4, 8], group: 32, symmetric: true, method: 'rtn', calibration, ctx: 128, maxWindows: 2, pairs: 'none' });
        const a = await allocate(m, { method: 'clado', budgetBits: 4 });
        const packed = applyAllocation(allocModel, m, a.choice);
        const after = perplexity(allocModel, validText, { ctx: 256, maxWindows: EVAL_WINDOWS });
        // the same measurements (same kernels, same V8) give HiGHS the same problem: the same choice
        expect(shownAlloc.formats).toBe(m.layers.map((n: string) => a.formats[n]).join(','));
        expect(Number(shownAlloc.bits)).toBe(a.bitsPerWeight);
        expect(Number(shownAlloc.pplAfter)).toBe(after.perplexity);
        expect(a.bitsPerWeight).toBeLessThanOrEqual(4);

        // Accelerator: the allocated model's GGUF (its int2/int4/int8 codes) on Loom, 32 tokens;
        // cancelled once first, then run to the end
        await page.click('#tab-sim');
        expect(await page.locator('#s-model').textContent()).toContain('CLADO');
        await page.selectOption('#s-accel', 'loom');
        await page.selectOption('#s-seq', '32');
        await page.click('#s-run');
        await page.click('#s-cancel');
        expect(await page.locator('#s-stage').textContent()).toBe('cancelled');
        expect(await page.locator('#s-run').isEnabled()).toBe(true);
        await page.click('#s-run');
        await page.waitForSelector('#s-card');
        const shownSim = await page.locator('#s-card').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
        const simFile = join(work, 'alloc.gguf');
        await saveModel(allocModel, simFile, { target: 'F32', packed });
        const simModel = await loadModel(simFile, { kernels });
        try {
          const w = modelWorkload(simModel, calibration, { seq: 32 });
          const sim = simulateWorkload(w, 'loom');
          // integer cycle counts from the same codes and the same captured activations: equal
          expect(Number(shownSim.speedup)).toBe(sim.speedup);
          expect(Number(shownSim.layers)).toBe(sim.layers.length);
          expect(sim.speedup).toBeGreaterThan(1);
        } finally {
          simModel.free();
        }
        await shot('sim');
      } finally {
        allocModel.free();
      }
      if (shots) {
        // the README's picture of the panel: a fuller allocation than the check above (llama.cpp
        // blocks at 6 bits/weight, block pairs, 4 windows); only when screenshots are asked for
        await page.click('#tab-allocate');
        for (const b of ['2', '4', '8']) await page.uncheck(`.a-bits[value="${b}"]`);
        await page.check('.a-ggml[value="q4_0"]');
        await page.check('.a-ggml[value="q8_0"]');
        await page.fill('#a-budget', '6');
        await page.selectOption('#a-pairs', 'block');
        await page.fill('#a-calib-windows', '4');
        await page.click('#a-run');
        await page.waitForFunction(() => /^CLADO \{q4_0,q8_0\}/.test(document.querySelector('#a-last h3')?.textContent ?? ''), undefined, { timeout: 120_000 });
        await shot('allocate');
      }

      // Formats panel: blk.0.ffn_gate.weight as int4 g32; SQNR recomputed here from @lowbit/formats
      await page.click('#tab-formats');
      await page.selectOption('#f-format', 'int4 g32');
      await page.selectOption('#f-tensor', 'blk.0.ffn_gate.weight');
      // Run and Cancel in one turn of the page's event loop: the cancel always lands mid-run; the
      // original worker is replaced and reopens the model for the next run
      await page.evaluate(() => {
        (document.querySelector('#f-run') as HTMLButtonElement).click();
        (document.querySelector('#f-cancel') as HTMLButtonElement).click();
      });
      expect(await page.locator('#f-stage').textContent()).toBe('cancelled');
      await page.click('#f-run');
      await page.waitForSelector('#f-card');
      const shownFormat = await page.locator('#f-card').evaluate((e) => ({ ...(e as HTMLElement).dataset }));
      const ref = await loadModel(modelFile, { kernels });
      try {
        const lin = ref.linear('blk.0.ffn_gate.weight');
        const w = (lin.source as { data: Float32Array }).data;
        const q = dequantizeInt(quantizeInt(w, [lin.rows, lin.cols], { bits: 4, symmetric: true, granularity: 'group-cols', group: 32 }));
        let se = 0;
        let sw = 0;
        for (let i = 0; i < w.length; i++) {
          se += (q[i] - w[i]) ** 2;
          sw += w[i] ** 2;
        }
        // the same f32 codes and the same f64 sums in the same order: 1e-12 relative covers any reassociation
        expect(Math.abs(Number(shownFormat.sqnr) - 10 * Math.log10(sw / se))).toBeLessThanOrEqual(1e-12 * 10 * Math.log10(sw / se));
        expect(Number(shownFormat.bits)).toBe(4.5); // 4-bit codes + one fp16 scale per 32
      } finally {
        ref.free();
      }
      expect(await page.locator('#f-codes span').count()).toBe(16);
      await shot('formats');

      // Kernels panel: cancel a long run, then a quick GEMV run on every build Chromium has, on a
      // pool of 2 threads (the page is cross-origin isolated), and plain JS
      await page.click('#tab-kernels');
      expect(await page.locator('#k-isolated').textContent()).toMatch(/^yes/);
      await page.selectOption('#k-format', 'q8_0');
      await page.selectOption('#k-size', '4096');
      await page.selectOption('#k-ms', '2000');
      await page.click('#k-run');
      await page.waitForFunction(() => /^timing/.test(document.querySelector('#k-stage')?.textContent ?? ''));
      await page.click('#k-cancel');
      expect(await page.locator('#k-stage').textContent()).toBe('cancelled');
      await page.selectOption('#k-size', '256');
      await page.selectOption('#k-ms', '100');
      await page.selectOption('#k-threads', '2');
      await page.click('#k-run');
      await page.waitForSelector('#bench-table');
      const bench = await page.locator('#bench-table tbody tr').evaluateAll((trs) => trs.map((t) => ({ variant: (t as HTMLElement).dataset.variant, threads: Number((t as HTMLElement).dataset.threads), gbps: Number((t as HTMLElement).dataset.gbps), diff: Number(t.lastElementChild?.textContent) })));
      expect(bench.map((b) => `${b.variant}/${b.threads}`).join(' ')).toMatch(/^scalar\/1 simd\/1 relaxed\/1 (relaxed|simd)-threads\/2 js\/1$/);
      for (const b of bench) {
        expect(b.gbps).toBeGreaterThan(0);
        // int8 dot products of the same blocks, summed in another order: 1e-5 of the largest output
        expect(b.diff).toBeLessThanOrEqual(1e-5);
      }
      await shot('kernels');

      // A safetensors file: inspected (tensor table), not run
      await page.click('#tab-model');
      await shot('model');
      const st = join(work, 'weights.safetensors');
      await writeSafetensors(st, [
        { name: 'a.weight', dtype: 'F16', shape: [4, 8], data: new Float32Array(32).fill(0.5) },
        { name: 'b.weight', dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
      ]);
      await page.setInputFiles('#model-file', st);
      await page.waitForFunction(() => /^Inspected weights\.safetensors/.test(document.querySelector('#model-status')?.textContent ?? ''));
      expect(await page.locator('#tensor-table tbody tr').count()).toBe(2);
      expect(await page.locator('#tensor-table tbody tr:first-child').textContent()).toBe('a.weightF16[4, 8]64 B16.000');
      expect(await page.locator('#q-run').isEnabled()).toBe(false);

      // A truncated GGUF: the LowbitError's code and message, and the app keeps working
      await page.click('#tab-model');
      const truncated = readFileSync(modelFile).subarray(0, 4096);
      await page.setInputFiles('#model-file', { name: 'broken.gguf', mimeType: 'application/octet-stream', buffer: truncated });
      await page.waitForSelector('#model-error:not([hidden])');
      const error = await page.locator('#model-error').textContent();
      expect(error).toMatch(/^Cannot open this file\. E_[A-Z_]+: broken\.gguf: /);
      expect(error).toMatch(/truncated/i);
      await shot('model-error');

      // Cancel an open: the previous model stays; opening again then works
      await page.evaluate(() => {
        (document.querySelector('#open-embedded') as HTMLButtonElement).click();
        (document.querySelector('#m-cancel') as HTMLButtonElement).click();
      });
      expect(await page.locator('#model-status').textContent()).toBe('Cancelled: still using weights.safetensors.');
      await page.click('#open-embedded');
      await page.waitForFunction(() => /^Loaded stories260K\.gguf/.test(document.querySelector('#model-status')?.textContent ?? ''));
      await page.click('#tab-formats');
      await page.click('#f-run');
      await page.waitForFunction(() => document.querySelector('#f-stage')?.textContent === 'done');
      if (shots) {
        // every panel on a narrow window (a phone held upright)
        await page.setViewportSize({ width: 420, height: 900 });
        for (const p of ['model', 'quantize', 'allocate', 'generate', 'formats', 'kernels', 'sim']) {
          await page.click(`#tab-${p}`);
          await shot(`narrow-${p}`);
        }
      }
      expect(log.filter((l) => l.startsWith('pageerror'))).toEqual([]);
    } catch (e) {
      throw new Error(`${(e as Error).message}\npage log:\n${log.join('\n')}`, { cause: e });
    } finally {
      await browser.close();
    }
  }, 240_000);

  it('without cross-origin isolation, runs the kernels on one thread and says why there are no threads', async (ctx) => {
    if (!haveChromium || !plain) return ctx.skip(noChromium);
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.setDefaultTimeout(40_000);
      await page.goto(plain.url);
      await page.click('#tab-kernels');
      expect(await page.locator('#k-isolated').textContent()).toMatch(/^no: no SharedArrayBuffer/);
      expect(await page.locator('#k-threads').isDisabled()).toBe(true);
      await page.selectOption('#k-size', '256');
      await page.selectOption('#k-ms', '100');
      await page.click('#k-run');
      await page.waitForSelector('#bench-table');
      const variants = await page.locator('#bench-table tbody tr').evaluateAll((trs) => trs.map((t) => `${(t as HTMLElement).dataset.variant}/${(t as HTMLElement).dataset.threads}`));
      expect(variants).toEqual(['scalar/1', 'simd/1', 'relaxed/1', 'js/1']);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});
