// Every published package, as `npm pack` makes it, installed into an empty project with nothing but its
// declared @lowbit dependencies (and the @lowbit packages its README example imports, as tarballs), must
// run the first example of its README as written there. This is what a user who runs
// `npm install @lowbit/<pkg>` and pastes the example gets; the workspace links cannot hide a missing
// `files` entry, an undeclared dependency or a stale export path.
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const work = mkdtempSync(join(tmpdir(), 'lowbit-pack-install-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Manifest = { name: string; version: string; private?: boolean; license?: string; dependencies?: Record<string, string>; files?: string[] };
const dirs = readdirSync(join(root, 'packages')).filter((d) => existsSync(join(root, 'packages', d, 'package.json')));
const manifests = new Map<string, { dir: string; json: Manifest }>();
for (const d of dirs) {
  const json = JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8')) as Manifest;
  if (!json.private) manifests.set(json.name, { dir: join(root, 'packages', d), json });
}
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');

const env = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
const npm = (args: string[], cwd: string) => execFileSync('npm', [...args, '--loglevel=error'], { cwd, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });

/** The @lowbit packages a tarball install of `names` pulls in: the names and their dependencies, transitively. */
function closure(names: Iterable<string>): Set<string> {
  const out = new Set<string>();
  const visit = (n: string) => {
    if (out.has(n)) return;
    const m = manifests.get(n);
    if (!m) throw new Error(`${n} is not a published workspace package`);
    out.add(n);
    for (const d of Object.keys(m.json.dependencies ?? {})) if (d.startsWith('@lowbit/')) visit(d);
  };
  for (const n of names) visit(n);
  return out;
}

/** The README's example as users see it: the first ```js or ```ts block, or for the CLI the first `npx lowbit` line. */
function readmeExample(dir: string, name: string): { kind: 'js' | 'ts'; code: string } | { kind: 'sh'; line: string } | null {
  const text = readFileSync(join(dir, 'README.md'), 'utf8');
  if (name === '@lowbit/cli') {
    const block = /```sh\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    const line = block.split('\n').find((l) => l.startsWith('npx lowbit '));
    return line ? { kind: 'sh', line: line.replace(/\s+#.*$/, '') } : null;
  }
  const m = /```(js|mjs|javascript|ts|typescript)\n([\s\S]*?)```/.exec(text);
  return m ? { kind: m[1].startsWith('t') ? 'ts' : 'js', code: m[2] } : null;
}

// What each example prints where it states its result (README comments): checked, not just "exit 0".
const prints: Record<string, RegExp> = {
  '@lowbit/kernels': /\[ -2, -2 \]/,
  '@lowbit/data': /^1185376 19$/m,
  '@lowbit/core': /^E_SHAPE tensor: expected 2 dimensions, got \[6\]$/m,
  '@lowbit/runtime': /^5\.58\d*$/m,
};
// Examples that cannot run yet, with the reason shown as a skip: the package still installs and imports.
const pending: Record<string, string> = {};

const tarballs = new Map<string, string>();
const packedFiles = new Map<string, string[]>();
beforeAll(() => {
  // One `npm pack` for all of them: npm starts once.
  const args = ['pack', '--json', '--pack-destination', work];
  for (const { dir } of manifests.values()) args.push('--workspace', dir);
  const packed = JSON.parse(npm(args, root)) as { name: string; filename: string; files: { path: string }[] }[];
  for (const p of packed) {
    tarballs.set(p.name, join(work, p.filename));
    packedFiles.set(p.name, p.files.map((f) => f.path));
  }
}, 120_000);

describe.each([...manifests.keys()])('%s', (name) => {
  const { dir, json } = manifests.get(name)!;

  it('tarball: LICENSE (the repository MIT text), README, dist, the sources its maps name, no tests', () => {
    const files = packedFiles.get(name)!;
    expect(files).toContain('LICENSE');
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(rootLicense);
    expect(files).toContain('README.md');
    expect(files.some((f) => f.startsWith('dist/'))).toBe(true);
    expect(files.some((f) => f.startsWith('test/'))).toBe(false);
    for (const f of files.filter((f) => f.endsWith('.map'))) {
      const map = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { sources: string[] };
      for (const s of map.sources) expect(files, `${f} names ${s}`).toContain(join(dirname(f), s));
    }
    for (const [dep, range] of Object.entries(json.dependencies ?? {})) {
      if (dep.startsWith('@lowbit/')) expect(range, `${name} -> ${dep}`).toBe(`^${manifests.get(dep)!.json.version}`);
    }
  });

  it('installs alone from tarballs and runs its README example', (ctx) => {
    const example = pending[name] ? null : readmeExample(dir, name);
    if (!pending[name]) expect(example, `${name}/README.md has no runnable example (a \`\`\`js block)`).not.toBeNull();
    // The example may import sibling packages (e.g. @lowbit/data for a model file): those are
    // installed too, as a user following the README would.
    const imported = example && example.kind !== 'sh' ? [...example.code.matchAll(/from '(@lowbit\/[a-z]+)/g)].map((m) => m[1]) : [];
    const wanted = closure([name, ...imported]);
    const app = join(work, `app-${name.slice('@lowbit/'.length)}`);
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    npm(['install', '--prefer-offline', ...[...wanted].map((n) => tarballs.get(n)!)], app);
    // Nothing beyond the closure of declared dependencies: a package cannot lean on a sibling by accident.
    expect(readdirSync(join(app, 'node_modules/@lowbit')).sort()).toEqual([...wanted].map((n) => n.slice(8)).sort());

    const run = (file: string, code: string) => {
      writeFileSync(join(app, file), code);
      return execFileSync(process.execPath, [file], { cwd: app, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    };
    if (!example) {
      run('import.mjs', `const m = await import('${name}'); if (typeof m !== 'object') process.exit(1);\n`);
      ctx.skip(`${name}: README example not run: ${pending[name]}`);
      return;
    }
    let out: string;
    if (example.kind === 'js') out = run('readme.mjs', example.code);
    else if (example.kind === 'ts') {
      // a TypeScript example must type-check against the installed declarations, then run
      writeFileSync(join(app, 'readme.mts'), example.code);
      const tsc = join(root, 'node_modules/.bin/tsc');
      const args = ['--module', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', '--types', '', '--strict', '--skipLibCheck', '--outDir', 'out', 'readme.mts'];
      execFileSync(tsc, args, { cwd: app, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
      out = execFileSync(process.execPath, ['out/readme.mjs'], { cwd: app, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    } else {
      out = execSync(example.line, { cwd: app, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
      if (example.line.includes('--json')) expect(() => JSON.parse(out)).not.toThrow();
    }
    if (prints[name]) expect(out).toMatch(prints[name]);
  }, 120_000);
});
