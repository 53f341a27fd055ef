// The README's browser recipe as a user follows it: a fresh project holding exactly the README's
// index.html and main.js, @lowbit/runtime and @lowbit/data installed into its node_modules with their
// dependencies (copied as npm lays out an install, so Vite sees packages, not workspace links), no
// vite.config. Stock Vite builds it (served as static files) and serves it in dev mode; Debian's
// Chromium opens each, and what the page prints is checked against Node running the same model.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { loadKernels } from '@lowbit/kernels';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, haveChromium, launchChromium, serveDir } from '../../kernels/test/browser-harness.js';
import { generate } from '../src/generate.js';
import { loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { modelFile } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoModules = join(here, '..', '..', '..', 'node_modules');
const validText = readFileSync(fileURLToPath(validTextUrl), 'utf8');
const noChromium = `no Chromium at ${CHROMIUM} (apt-get install chromium; or set LOWBIT_CHROMIUM to another binary)`;

/** The README's code blocks whose first line names the file they are: `<!-- index.html -->`, `// main.js`. */
function recipeFiles(readme: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const m of readme.matchAll(/```(?:html|js)\n([\s\S]*?)```/g)) {
    const name = /^(?:<!-- (\S+\.html) -->|\/\/ (\S+\.js))\n/.exec(m[1])?.slice(1).find(Boolean);
    if (name) files[name] = m[1];
  }
  return files;
}

/**
 * Copies `names` and everything they depend on into `dir/node_modules` as an install lays them out:
 * lowbit packages with only what their `files` publish (plus package.json), others whole.
 */
function install(dir: string, names: string[]): void {
  const done = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (done.has(name)) continue;
    done.add(name);
    const from = realpathSync(join(repoModules, name));
    const to = join(dir, 'node_modules', name);
    const pkg = JSON.parse(readFileSync(join(from, 'package.json'), 'utf8')) as { files?: string[]; dependencies?: Record<string, string> };
    mkdirSync(to, { recursive: true });
    if (!pkg.files) cpSync(from, to, { recursive: true, filter: (p) => !p.slice(from.length).includes('/node_modules') });
    else {
      cpSync(join(from, 'package.json'), join(to, 'package.json'));
      for (const entry of pkg.files) {
        // the only pattern the packages use: `dir/*.ext`
        const glob = /^(.*)\/\*(\.\w+)$/.exec(entry);
        if (glob) {
          mkdirSync(join(to, glob[1]), { recursive: true });
          for (const f of readdirSync(join(from, glob[1])).filter((f) => f.endsWith(glob[2]))) cpSync(join(from, glob[1], f), join(to, glob[1], f));
        } else if (existsSync(join(from, entry))) cpSync(join(from, entry), join(to, entry), { recursive: true });
      }
    }
    queue.push(...Object.keys(pkg.dependencies ?? {}));
  }
}

interface PagePrint {
  /** console.log lines in order */
  lines: string[];
  /** the <pre> the recipe streams generated text into */
  streamed: string;
  /** the line the file picker's handler logged */
  picked: string;
}

/** Opens the page, waits for the recipe's two console lines and its streamed text, then picks the model file. */
async function runPage(url: string): Promise<PagePrint> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const lines: string[] = [];
    const log: string[] = [];
    page.on('console', (m) => {
      log.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'log') lines.push(m.text());
    });
    page.on('pageerror', (e) => log.push(`pageerror: ${e}`));
    const waitFor = async (what: string, done: () => boolean) => {
      for (const deadline = Date.now() + 60_000; !done(); await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() > deadline || log.some((l) => l.startsWith('pageerror'))) throw new Error(`the page never ${what}; its log:\n${log.join('\n')}`);
      }
    };
    await page.goto(url);
    // The recipe logs the kernel build, then the perplexity. The dev server may reload the page once
    // after optimizing dependencies: read from the last kernel-build line.
    const fromKernels = () => {
      let i = lines.length - 1;
      while (i > 0 && !/^(relaxed|simd|scalar)$/.test(lines[i])) i--;
      return lines.slice(Math.max(i, 0));
    };
    await waitFor('printed its perplexity', () => fromKernels().length >= 2);
    const streamed = await page.evaluate(() => document.querySelector('pre')?.textContent ?? '');
    const before = lines.length;
    await page.setInputFiles('input[type=file]', modelFile);
    await waitFor('logged the picked file', () => lines.length > before);
    return { lines: fromKernels().slice(0, 2), streamed, picked: lines[before] };
  } finally {
    await browser.close();
  }
}

/** What the recipe prints, computed by Node on the page's kernel build. */
async function expectNodeNumbers(r: PagePrint): Promise<void> {
  const [variant, ppl] = r.lines;
  // the loader verified relaxed SIMD in Chromium before choosing it
  expect(variant).toBe('relaxed');
  const model = await loadModel(modelFile, { kernels: await loadKernels({ variant: 'relaxed' }) });
  try {
    // generate(..., { steps: 32 }) as main.js calls it: the callbacks' texts, joined, are the whole text
    expect(r.streamed).toBe(generate(model, 'Once upon a time', { steps: 32 }).text);
    expect(r.streamed.length).toBeGreaterThan(50);
    // Same kernel build, same f32 WebAssembly arithmetic: the logits are bit-identical and only the
    // f64 log-softmax (V8's software Math.exp/log in both) could move a last bit: 1e-12 relative.
    const want = perplexity(model, validText, { ctx: 256, maxWindows: 4 }).perplexity;
    expect(Math.abs(Number(ppl) - want)).toBeLessThanOrEqual(1e-12 * want);
    expect(r.picked).toBe(`stories260K.gguf ${model.config.nLayers} layers`);
  } finally {
    model.free();
  }
}

let project = '';
beforeAll(() => {
  if (!haveChromium) return;
  const files = recipeFiles(readFileSync(join(here, '..', 'README.md'), 'utf8'));
  expect(Object.keys(files).sort()).toEqual(['index.html', 'main.js']);
  project = mkdtempSync(join(tmpdir(), 'lowbit-vite-recipe-'));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'vite-recipe', private: true, type: 'module' }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, name), text);
  install(project, ['@lowbit/runtime', '@lowbit/data']);
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('the README browser recipe with stock Vite', () => {
  it('builds (vite build), and the built page prints what Node computes', async (ctx) => {
    if (!haveChromium) return ctx.skip(noChromium);
    const { build } = await import('vite');
    await build({ root: project, logLevel: 'error' });
    const served = await serveDir(join(project, 'dist'));
    try {
      await expectNodeNumbers(await runPage(served.url));
    } finally {
      served.close();
    }
  }, 120_000);

  it('runs under the dev server (vite) with the same results', async (ctx) => {
    if (!haveChromium) return ctx.skip(noChromium);
    const { createServer } = await import('vite');
    const server = await createServer({ root: project, logLevel: 'error', server: { host: '127.0.0.1', port: 0, watch: null } });
    try {
      await server.listen();
      await expectNodeNumbers(await runPage(server.resolvedUrls!.local[0]));
    } finally {
      await server.close();
    }
  }, 120_000);
});
