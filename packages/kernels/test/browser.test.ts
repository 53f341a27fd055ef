// The browser loader in a real browser: a page bundled by Vite imports @lowbit/kernels, runs an f32
// and an int4 GEMV in Debian's Chromium (driven by playwright-core), and we compare with the reference.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? '/usr/bin/chromium';
const here = dirname(fileURLToPath(import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`browser test skipped: no Chromium at ${CHROMIUM} (CI installs Debian's chromium; set LOWBIT_CHROMIUM to another binary)`);

let server: Server | undefined;
let outDir = '';
let url = '';

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

beforeAll(async () => {
  if (!haveChromium) return;
  const { build } = await import('vite');
  outDir = mkdtempSync(join(tmpdir(), 'lowbit-vite-'));
  await build({ root: join(here, 'browser-fixture'), logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' } });
  server = createServer((req, res) => {
    const path = normalize(join(outDir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    const file = path.endsWith('/') || !extname(path) ? join(path, 'index.html') : path;
    if (!file.startsWith(outDir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
}, 60_000);

afterAll(() => {
  server?.close();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

describe.skipIf(!haveChromium)('kernels in Chromium', () => {
  it('the Vite-bundled page loads the WASM and matches the reference', async () => {
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, null, { timeout: 20_000 });
      const r = (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as {
        error?: string; variant: string; y: number[]; yRef: number[]; q: number[]; qRef: number[];
      };
      expect(r.error).toBeUndefined();
      // Chromium >= 114 has relaxed SIMD; the loader verified it before choosing it.
      expect(r.variant).toBe('relaxed');
      // f32 SIMD vs f64 reference over 70 products of magnitude <= 1; int4: exact integer dot,
      // f32 scaling (same tolerances as the Node tests).
      r.y.forEach((v, i) => expect(Math.abs(v - r.yRef[i])).toBeLessThan(1e-5));
      r.q.forEach((v, i) => expect(Math.abs(v - r.qRef[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(r.qRef[i]))));
    } finally {
      await browser.close();
    }
  });
});
