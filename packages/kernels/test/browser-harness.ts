// Shared set-up of the browser tests: a fixture page bundled by Vite, served on 127.0.0.1, opened in
// Debian's Chromium through playwright-core (no browser download; CI installs the chromium package).
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';

export const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = existsSync(CHROMIUM);

const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };

export interface ServedPage {
  url: string;
  close(): void;
}

/**
 * Builds `fixtureDir` with Vite and serves the result. `isolated` adds the COOP/COEP headers that
 * browsers require before they share WebAssembly memory between workers.
 */
export async function buildAndServe(fixtureDir: string, o: { isolated?: boolean } = {}): Promise<ServedPage> {
  const { build } = await import('vite');
  const outDir = mkdtempSync(join(tmpdir(), 'lowbit-vite-'));
  await build({ root: fixtureDir, logLevel: 'error', build: { outDir, emptyOutDir: true, target: 'es2022' }, worker: { format: 'es' } });
  const served = await serveDir(outDir, o);
  return {
    url: served.url,
    close() {
      served.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

/** Serves the files of `dir` (a built page) on 127.0.0.1; `isolated` as in buildAndServe. */
export async function serveDir(outDir: string, o: { isolated?: boolean } = {}): Promise<ServedPage> {
  const isolation = o.isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
  const server = createServer((req, res) => {
    const path = normalize(join(outDir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    const file = path.endsWith('/') || !extname(path) ? join(path, 'index.html') : path;
    if (!file.startsWith(outDir) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', ...isolation }).end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/`,
    close() {
      server.close();
    },
  };
}

/** Headless Debian Chromium with the flags this closed network needs (no background connections). */
export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Opens `url` in a fresh Chromium and returns what the page stores in `window.result`; if it never
 * does, the error carries the page's console, uncaught errors and workers.
 */
export async function pageResult<T>(url: string, timeout: number): Promise<T> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('pageerror', (e) => log.push(String(e)));
    page.on('worker', (w) => log.push(`worker ${w.url()}`));
    await page.goto(url);
    await page
      .waitForFunction(() => (window as unknown as { result?: unknown }).result !== undefined, null, { timeout })
      .catch((e) => {
        throw new Error(`${(e as Error).message}\npage log:\n${log.join('\n')}`);
      });
    return (await page.evaluate(() => (window as unknown as { result: unknown }).result)) as T;
  } finally {
    await browser.close();
  }
}
