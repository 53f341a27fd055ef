// KernelPool in a real browser: a Vite-bundled, cross-origin isolated page talks through comlink to
// a dedicated worker that owns a 2-thread pool (Web Workers on one shared WebAssembly memory).
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser pool test skipped: no Chromium at ${CHROMIUM}`);

let server: Server | undefined;
let outDir = '';
let url = '';
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

beforeAll(async () => {
  if (!haveChromium) return;
  const { build } = await import('vite');
  outDir = mkdtempSync(join(tmpdir(), 'lowbit-vite-pool-'));
  await build({
    root: join(here, 'browser-pool-fixture'),
    logLevel: 'error',
    build: { outDir, emptyOutDir: true, target: 'es2022' },
    worker: { format: 'es' },
  });
  server = createServer((req, res) => {
    const path = normalize(join(outDir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    const file = path.endsWith('/') || !extname(path) ? join(path, 'index.html') : path;
    if (!file.startsWith(outDir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    // Cross-origin isolation: required for shared WebAssembly memory in browsers.
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
}, 60_000);

afterAll(() => {
  server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe.skipIf(!haveChromium)('KernelPool in Chromium', () => {
  it('splits GEMVs over Web Workers sharing one memory and matches the reference', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      const log: string[] = [];
      page.on('console', (m) => log.push(m.text()));
      page.on('pageerror', (e) => log.push(String(e)));
      page.on('worker', (w) => log.push(`worker ${w.url()}`));
      await page.goto(url);
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
