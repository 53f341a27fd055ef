// No import cycles among this package's modules (type-only imports included): the packed tensor
// types, bit packing, the MX constants and the INT-k layout live in leaf modules that the encoders,
// decoders, validation and serialization import, never the other way round.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const src = join(__dirname, '..', 'src');

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of readdirSync(src).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(src, f), 'utf8');
    const deps = [...text.matchAll(/(?:import|export)[^'";]*?from\s+'\.\/([^']+)\.js'/g)].map((m) => `${m[1]}.ts`);
    g.set(f, [...new Set(deps)]);
  }
  return g;
}

/** Every cycle found by depth-first search, as the module path that closes it. */
function cycles(g: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const visit = (n: string) => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe('formats import graph', () => {
  it('has no cycles', () => {
    const g = graph();
    expect(g.get('validate.ts')).toBeDefined();
    // the search itself finds a cycle when there is one
    expect(cycles(new Map([['a.ts', ['b.ts']], ['b.ts', ['a.ts']]]))).toEqual([['a.ts', 'b.ts', 'a.ts']]);
    expect(cycles(g)).toEqual([]);
  });

  it('the leaf modules import no module of this package but the shared types', () => {
    const g = graph();
    for (const leaf of ['tensor-types.ts', 'bits.ts', 'half.ts', 'round.ts']) expect(g.get(leaf), leaf).toEqual([]);
    expect(g.get('mx-spec.ts')).toEqual(['tensor-types.ts']);
    expect(g.get('int-layout.ts')).toEqual(['tensor-types.ts']);
  });
});
