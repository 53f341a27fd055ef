// KernelPool in a real browser: a Vite-bundled, cross-origin isolated page talks through comlink to
// a dedicated worker that owns a 2-thread pool (Web Workers on one shared WebAssembly memory).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndServe, CHROMIUM, haveChromium, launchChromium, type ServedPage } from './browser-harness.js';

const here = dirname(fileURLToPath(import.meta.url));
if (!haveChromium) console.warn(`browser pool test skipped: no Chromium at ${CHROMIUM}`);

let served: ServedPage | undefined;
beforeAll(async () => {
  // Cross-origin isolation: required for shared WebAssembly memory in browsers.
  if (haveChromium) served = await buildAndServe(join(here, 'browser-pool-fixture'), { isolated: true });
}, 60_000);
afterAll(() => served?.close());

describe.skipIf(!haveChromium)('KernelPool in Chromium', () => {
  it('splits GEMVs over Web Workers sharing one memory and matches the reference', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const log: string[] = [];
      page.on('console', (m) => log.push(m.text()));
      page.on('pageerror', (e) => log.push(String(e)));
      page.on('worker', (w) => log.push(`worker ${w.url()}`));
      await page.goto(served!.url);
      await page
        .waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, null, { timeout: 30_000 })
        .catch((e) => {
          throw new Error(`${(e as Error).message}\npage log:\n${log.join('\n')}`);
        });
      const r = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as {
        error?: string; isolated: boolean; variant: string; y: number[]; yRef: number[]; q: number[]; qRef: number[];
      };
      expect(r.error).toBeUndefined();
      expect(r.isolated).toBe(true);
      expect(['relaxed-threads', 'simd-threads']).toContain(r.variant);
      // f32: 256 products of magnitude <= 1 in f32 vs the f64 reference; int4: exact integer dot,
      // f32 scaling (the Node tests' tolerances).
      r.y.forEach((v, i) => expect(Math.abs(v - r.yRef[i])).toBeLessThan(1e-5 * 256));
      r.q.forEach((v, i) => expect(Math.abs(v - r.qRef[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.qRef[i]))));
    } finally {
      await browser.close();
    }
  });
});
