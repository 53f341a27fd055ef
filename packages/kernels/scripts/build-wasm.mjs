// Compiles assembly/ into the three builds the loaders choose from. Run by `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const asc = join(dirname(createRequire(import.meta.url).resolve('assemblyscript/package.json')), 'bin', 'asc.js');
const builds = {
  simd: ['--enable', 'simd'],
  relaxed: ['--enable', 'simd', '--enable', 'relaxed-simd'],
  scalar: ['--disable', 'simd'],
  // Shared, imported memory for thread pools: every worker instantiates the same module on one
  // SharedArrayBuffer. The maximum must be declared for shared memory; 4 GiB is only reserved.
  'simd-threads': ['--enable', 'simd', '--enable', 'threads', '--importMemory', '--sharedMemory', '--maximumMemory', '65536'],
  'relaxed-threads': ['--enable', 'simd', '--enable', 'relaxed-simd', '--enable', 'threads', '--importMemory', '--sharedMemory', '--maximumMemory', '65536'],
};
mkdirSync(join(root, 'build'), { recursive: true });
for (const [name, flags] of Object.entries(builds)) {
  const out = join(root, 'build', `lowbit-${name}.wasm`);
  const tmp = `${out}.tmp-${process.pid}`;
  execFileSync(process.execPath, [asc, 'assembly/index.ts', '-O3', '--runtime', 'stub', '--noAssert', ...flags, '--outFile', tmp], {
    cwd: root,
    stdio: 'inherit',
  });
  renameSync(tmp, out); // never leave a half-written module where a loader would pick it up
}
