// `npm pack` of this package, installed alone into an empty project, must import and run: proves the
// `files` list, the exports map and the built .wasm travel in the tarball.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = mkdtempSync(join(tmpdir(), 'lowbit-pack-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const npm = (args: string[], cwd: string) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });

it('packs, installs offline into a fresh project, imports and runs a GEMV', () => {
  const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], pkgDir)) as { filename: string; files: { path: string }[] }[];
  const files = packed[0].files.map((f) => f.path);
  for (const f of ['build/lowbit-simd.wasm', 'build/lowbit-relaxed.wasm', 'build/lowbit-scalar.wasm', 'dist/index-node.js', 'dist/index-node.d.ts', 'README.md']) {
    expect(files).toContain(f);
  }
  expect(files.some((f) => f.startsWith('test/'))).toBe(false);

  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', '--offline', join(work, packed[0].filename)], app);
  writeFileSync(
    join(app, 'main.mjs'),
    `import { loadKernels } from '@lowbit/kernels';
const k = await loadKernels();
const y = k.gemvF32(Float32Array.of(1, 2, 3, 4, 5, 6), 2, 3, Float32Array.of(1, 0, -1));
console.log(JSON.stringify({ variant: k.variant, y: Array.from(y) }));
`,
  );
  const out = JSON.parse(execFileSync(process.execPath, ['main.mjs'], { cwd: app, encoding: 'utf8' }));
  expect(out.y).toEqual([-2, -2]);
  expect(['relaxed', 'simd', 'scalar']).toContain(out.variant);
});
