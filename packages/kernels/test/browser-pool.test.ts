// KernelPool in a real browser: a Vite-bundled, cross-origin isolated page talks through comlink to
// a dedicated worker that owns a 2-thread pool (Web Workers on one shared WebAssembly memory).
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAndServe, CHROMIUM, haveChromium, pageResult, type ServedPage } from './browser-harness.js';

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
    const r = await pageResult<{
      error?: string; isolated: boolean; variant: string; y: number[]; yRef: number[]; q: number[]; qRef: number[];
    }>(served!.url, 30_000);
    expect(r.error).toBeUndefined();
    expect(r.isolated).toBe(true);
    expect(['relaxed-threads', 'simd-threads']).toContain(r.variant);
    // f32: 256 products of magnitude <= 1 in f32 vs the f64 reference; int4: exact integer dot,
    // f32 scaling (the Node tests' tolerances).
    r.y.forEach((v, i) => expect(Math.abs(v - r.yRef[i])).toBeLessThan(1e-5 * 256));
    r.q.forEach((v, i) => expect(Math.abs(v - r.qRef[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.qRef[i]))));
  });
});
