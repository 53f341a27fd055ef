// The universal entry (`@lowbit/runtime` in browsers, workers, edge runtimes) and the browser worker
// import no Node built-in, statically or lazily: every module reachable from them in dist/ is read and
// its import specifiers collected. The Node entry reaches node:fs (the scan sees it), and without
// the Node entry a path is a named error.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const dist = new URL('../dist/', import.meta.url);

/** Every specifier of `import … from`, `export … from`, `import '…'` and `import('…')` in a module. */
function specifiers(code: string): string[] {
  const out: string[] = [];
  for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])([^'"]+)\1/g)) out.push(m[2]);
  return out;
}

/** Relative modules reachable from `entry` (followed), and the bare specifiers they import. */
function importGraph(entry: string): { modules: string[]; bare: Set<string> } {
  const seen = new Set<string>();
  const bare = new Set<string>();
  const queue = [new URL(entry, dist).href];
  while (queue.length) {
    const url = queue.pop() as string;
    if (seen.has(url)) continue;
    seen.add(url);
    for (const s of specifiers(readFileSync(fileURLToPath(url), 'utf8'))) {
      if (s.startsWith('.')) queue.push(new URL(s, url).href);
      else bare.add(s);
    }
  }
  return { modules: [...seen].map((u) => u.slice(dist.href.length)), bare };
}

const isBuiltin = (s: string) => s.startsWith('node:') || builtinModules.includes(s.split('/')[0]);

describe('universal entry', () => {
  it.each(['index.js', 'worker-browser.js', 'worker-browser-entry.js'])('dist/%s reaches no Node built-in', (entry) => {
    const { modules, bare } = importGraph(entry);
    expect(modules.length).toBeGreaterThan(entry === 'index.js' ? 20 : 1);
    expect([...bare].filter(isBuiltin)).toEqual([]);
    expect(modules).not.toContain('file-system-node.js');
  });

  it('the scan sees Node built-ins where they are: dist/index-node.js reaches node:fs', () => {
    const { bare } = importGraph('index-node.js');
    expect([...bare].filter(isBuiltin).sort()).toEqual(['node:fs', 'node:fs/promises', 'node:path', 'node:url']);
  });

  it("under Node, '@lowbit/runtime' is the Node entry; the universal entry alone names the fix for a path", () => {
    const script = `
      const universal = await import(${JSON.stringify(new URL('index.js', dist).href)});
      const err = await universal.readGguf('/no/such/model.gguf').catch((e) => e);
      // the same modules: importing the Node entry installs the file functions for them too
      const node = await import('@lowbit/runtime');
      const after = await universal.readGguf('/no/such/model.gguf').catch((e) => e);
      process.stdout.write(JSON.stringify({ universal: typeof universal.fileSource, node: typeof node.fileSource, readNpy: typeof node.readNpy, code: err.code, message: err.message, after: after.code }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', dist)) });
    expect(r.stderr).toBe('');
    const got = JSON.parse(r.stdout);
    expect(got).toMatchObject({ universal: 'undefined', node: 'function', readNpy: 'function', code: 'E_UNSUPPORTED', after: 'E_IO' });
    expect(got.message).toContain("/no/such/model.gguf: file paths need Node (import from '@lowbit/runtime/node')");
  });
});
