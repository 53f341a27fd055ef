// The browser loader in a real browser: a page bundled by Vite imports @lowbit/kernels, runs an f32
// and an int4 GEMV in Debian's Chromium (driven by playwright-core), and we compare with the reference.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndServe, CHROMIUM, haveChromium, pageResult, type ServedPage } from './browser-harness.js';

const here = dirname(fileURLToPath(import.meta.url));
if (!haveChromium) console.warn(`browser test skipped: no Chromium at ${CHROMIUM} (CI installs Debian's chromium; set LOWBIT_CHROMIUM to another binary)`);

let page: ServedPage | undefined;
beforeAll(async () => {
  if (haveChromium) page = await buildAndServe(join(here, 'browser-fixture'));
}, 60_000);
afterAll(() => page?.close());

describe.skipIf(!haveChromium)('kernels in Chromium', () => {
  it('the Vite-bundled page loads the WASM and matches the reference', async () => {
    const r = await pageResult<{ error?: string; variant: string; y: number[]; yRef: number[]; q: number[]; qRef: number[] }>(page!.url, 20_000);
    expect(r.error).toBeUndefined();
    // Chromium >= 114 has relaxed SIMD; the loader verified it before choosing it.
    expect(r.variant).toBe('relaxed');
    // f32 SIMD vs f64 reference over 70 products of magnitude <= 1; int4: exact integer dot,
    // f32 scaling (same tolerances as the Node tests).
    r.y.forEach((v, i) => expect(Math.abs(v - r.yRef[i])).toBeLessThan(1e-5));
    r.q.forEach((v, i) => expect(Math.abs(v - r.qRef[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.qRef[i]))));
  });
});
