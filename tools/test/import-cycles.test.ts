// No package's modules import each other in a cycle (a cycle makes load order matter and ties modules
// that should change apart, as runtime's hf-model.ts <-> quantized-safetensors.ts and formats'
// validate.ts <-> int-quant.ts once did). Each graph is read from a package's sources' relative
// imports and re-exports, type-only ones included.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packages = resolve(dirname(fileURLToPath(import.meta.url)), '../../packages');

/** Relative imports and re-exports of every module of `src`, as module file names. */
function importGraph(src: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(src).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(src, f), 'utf8');
    const deps = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.\/[^']+)'/g)].map((m) => m[1].replace(/^\.\//, '').replace(/\.js$/, '.ts'));
    graph.set(f, [...new Set(deps)]);
  }
  return graph;
}

/** Every cycle's modules (strongly connected components of more than one module, or a self-import). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || graph.get(v)?.includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const sources = readdirSync(packages).map((p) => join(packages, p, 'src')).filter((d) => existsSync(d));

describe('import graphs', () => {
  it('reads the imports it checks (runtime hf-model.ts imports hf-names.ts, rope-order.ts, quantized-safetensors.ts)', () => {
    expect(sources.length).toBeGreaterThanOrEqual(6);
    expect(importGraph(join(packages, 'runtime/src')).get('hf-model.ts')).toEqual(expect.arrayContaining(['hf-names.ts', 'rope-order.ts', 'quantized-safetensors.ts']));
  });

  it('finds a cycle where there is one (a -> b -> c -> a) and none in a chain', () => {
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]))).toEqual([['a', 'b', 'c']]);
    expect(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', []]]))).toEqual([]);
  });

  it.each(sources.map((s) => [s.split(/[\\/]/).slice(-2)[0], s]))('%s has no import cycles', (_name, src) => {
    expect(cycles(importGraph(src))).toEqual([]);
  });
});
