// Lays the built worker and the @lowbit packages it imports out as workerd modules, in
// dist/workerd/, and writes dist/workerd/modules.capnp, the module list that workerd.capnp imports.
//
// workerd has no node_modules resolution: a module imports another by its name, and relative
// specifiers resolve against the importing module's name as URLs do. So each package is laid out
// under its own name (`@lowbit/kernels/dist/*.js`, `@lowbit/kernels/build/*.wasm`), and the bare
// name `@lowbit/kernels` is a one-line module re-exporting the entry its `workerd` export condition
// names. `.wasm` files become CompiledWasm modules (what wrangler does with a `.wasm` import), the
// `.gguf` models of @lowbit/data Data modules (an ArrayBuffer: wrangler.toml's `Data` rule). The
// other packages the runtime imports (comlink; highs, which @lowbit/solvers loads only when called)
// are single ES modules: only their entry is laid out.
import { cpSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(app, 'package.json'));

/** A package's directory, found from the app as Node would (the package need not export package.json). */
function packageDir(name) {
  for (let dir = app; ; dir = dirname(dir)) {
    try {
      return realpathSync(join(dir, 'node_modules', name));
    } catch {
      if (dirname(dir) === dir) throw new Error(`${name} is not installed (run npm install, then npm run build)`);
    }
  }
}

/** The file an export condition list picks for `.`, as wrangler resolves for Workers. */
function workerdEntry(pkg) {
  let entry = pkg.exports?.['.'] ?? pkg.exports ?? pkg.module ?? pkg.main ?? 'index.js';
  while (entry && typeof entry === 'object') entry = entry.workerd ?? entry.worker ?? entry.browser ?? entry.import ?? entry.default;
  if (typeof entry !== 'string') throw new Error(`${pkg.name}: no workerd, worker, browser or default export`);
  return entry.replace(/^\.\//, '');
}

function filesUnder(dir, keep) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p, keep) : keep(p) ? [p] : [];
  });
}

/**
 * Writes dist/workerd/ (modules and modules.capnp) from dist/worker.js and the installed @lowbit
 * dependencies (transitively); returns the directory. Run `npm run build` first.
 */
export function layOutModules() {
  const out = join(app, 'dist', 'workerd');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const modules = [];
  const add = (name, file, kind) => {
    mkdirSync(dirname(join(out, name)), { recursive: true });
    if (kind === 'esModule' && name.includes('/')) {
      // workerd resolves every specifier against the importing module's name, bare ones included,
      // so `@lowbit/core` imported by `@lowbit/kernels/dist/errors.js` must be written `../../core`
      const src = readFileSync(file, 'utf8').replace(/(\bfrom\s*|\bimport\s*\(\s*)(['"])(@lowbit\/[a-z0-9-]+|comlink|highs)\2/g, (_, lead, q, dep) => {
        const rel = posix.relative(posix.dirname(name), dep);
        return `${lead}${q}${rel.startsWith('.') ? rel : `./${rel}`}${q}`;
      });
      writeFileSync(join(out, name), src);
    } else cpSync(file, join(out, name));
    modules.push(`(name = "${name}", ${kind} = embed "${name}")`);
  };
  // the app's own modules at the top (worker.js is the main module: first in the list)
  const own = readdirSync(join(app, 'dist')).filter((f) => f.endsWith('.js'));
  for (const f of ['worker.js', ...own.filter((f) => f !== 'worker.js')]) add(f, join(app, 'dist', f), 'esModule');

  const queue = Object.keys(JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')).dependencies ?? {});
  for (const seen = new Set(); queue.length > 0; ) {
    const name = queue.shift();
    if (seen.has(name)) continue;
    seen.add(name);
    const dir = packageDir(name);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    const entry = workerdEntry(pkg);
    if (name.startsWith('@lowbit/')) {
      const keep = (p) => !p.includes('/node_modules/') && ((/\/(dist|build)\//.test(p) && /\.(js|wasm)$/.test(p)) || /\/files\/[^/]+\.gguf$/.test(p));
      for (const f of filesUnder(dir, keep)) {
        const rel = relative(dir, f);
        add(`${name}/${rel}`, f, rel.endsWith('.wasm') ? 'wasm' : rel.endsWith('.gguf') ? 'data' : 'esModule');
      }
      queue.push(...Object.keys(pkg.dependencies ?? {}));
    } else if (name === 'comlink' || name === 'highs') add(`${name}/${entry}`, join(dir, entry), 'esModule');
    else continue;
    const shim = `${name.replace('/', '__')}.shim.js`;
    // relative to the module name `@lowbit/kernels`, `./kernels/...` is `@lowbit/kernels/...`; a
    // package without a scope sits at the top: `./comlink/...`
    const exportsDefault = !name.startsWith('@lowbit/') && /\bexport\s+(default\b|\{[^}]*\bas\s+default\b)/.test(readFileSync(join(dir, entry), 'utf8'));
    const target = `./${basename(name)}/${entry}`;
    writeFileSync(join(out, shim), `export * from '${target}';\n${exportsDefault ? `export { default } from '${target}';\n` : ''}`);
    modules.push(`(name = "${name}", esModule = embed "${shim}")`);
  }
  writeFileSync(
    join(out, 'modules.capnp'),
    `# Written by scripts/workerd-modules.mjs: do not edit.\nusing Workerd = import "/workerd/workerd.capnp";\nconst modules :List(Workerd.Worker.Module) = [\n  ${modules.join(',\n  ')}\n];\n`,
  );
  return out;
}

/** The workerd binary of the `workerd` npm package (a devDependency). */
export const workerdBin = join(dirname(require.resolve('workerd/package.json')), 'bin', 'workerd');
