// Installs llama.cpp for the cross-check tests: node-llama-cpp 3.21.1 with the prebuilt CPU build of
// this platform only. node-llama-cpp lists every build (CUDA, CUDA-ext, Vulkan, other CPUs: ~650 MB on
// linux-x64) as optionalDependencies and npm has no way to pick among them, so this project is kept
// out of the workspaces, installed with --omit=optional, and given the one CPU package by name.
// The repository's node_modules/node-llama-cpp then links here, so tests keep `import('node-llama-cpp')`.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const version = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies['node-llama-cpp'];
const os = { darwin: 'mac', win32: 'win', linux: 'linux' }[process.platform];
if (!os) throw new Error(`llama-cpp: no prebuilt llama.cpp for ${process.platform}`);
const cpu = `@node-llama-cpp/${os}-${process.arch}${os === 'mac' && process.arch === 'arm64' ? '-metal' : ''}`;

// `--if-possible` (the root `prepare` script): a machine without the registry still installs lowbit;
// the llama.cpp cross-checks then report themselves skipped with the reason.
const ifPossible = process.argv.includes('--if-possible');
const installed = (name) => {
  try {
    return JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version === version;
  } catch {
    return false;
  }
};
if (!installed('node-llama-cpp') || !installed(cpu)) {
  // Run from the root's lifecycle, npm passes its own flags down as npm_config_*: a workspace or omit
  // flag meant for the root must not reach this separate project.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_(workspaces?|include_workspace_root|omit|include|global|prefix|save)/i.test(k)));
  // node-llama-cpp's postinstall would build llama.cpp from source when it finds no binary yet.
  Object.assign(env, { NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true', npm_config_update_notifier: 'false' });
  const npm = (args) => execFileSync('npm', [...args, '--omit=optional', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: here, env, stdio: 'inherit' });
  try {
    npm(['ci']);
    npm(['install', '--no-save', '--ignore-scripts', `${cpu}@${version}`]);
  } catch (e) {
    if (!ifPossible) throw e;
    console.warn(`llama-cpp: not installed (${e.message.split('\n')[0]}); the llama.cpp cross-check tests will be skipped. Retry: npm run llama-cpp`);
    process.exit(0);
  }
}

mkdirSync(join(root, 'node_modules'), { recursive: true });
const link = join(root, 'node_modules/node-llama-cpp');
const target = join(here, 'node_modules/node-llama-cpp');
if (existsSync(link) || isLink(link)) rmSync(link, { recursive: true, force: true });
const tmp = `${link}.tmp-${process.pid}`;
symlinkSync(relative(dirname(link), target), tmp, 'junction');
renameSync(tmp, link);
console.log(`llama-cpp: node-llama-cpp ${version} with ${cpu} only -> ${relative(root, link)}`);

function isLink(p) {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
