// Writes fixtures/clado-stories260K.json: the CLADO instance of the embedded model as `lowbit allocate`
// measures it by default (RTN int{2,3,4,8} g32, 16 windows of 128 tokens of the train excerpt, block
// pairs), so the solver rows time HiGHS on the real instance without the minutes of forward passes.
// Run: npm run build -w @lowbit/benchmarks && node benchmarks/dist/clado-fixture.js
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { measureClado } from '@lowbit/quantizers';
import { loadModel } from '@lowbit/runtime';

/** The stored instance: G as its nonzero upper-triangle entries (block pairs leave most of it zero). */
export interface CladoFixture {
  model: string;
  settings: { bits: number[]; group: number; windows: number; ctx: number; pairs: string };
  layers: string[];
  counts: number[];
  /** Stored bits of layer l at choice c: sizeBits[l·K + c]. */
  sizeBits: number[];
  n: number;
  /** [i, j, Gᵢⱼ] for i ≤ j, Gᵢⱼ ≠ 0. */
  entries: [number, number, number][];
}

export const FIXTURE_URL = new URL('../fixtures/clado-stories260K.json', import.meta.url);

/** G as a dense symmetric row-major matrix. */
export function fixtureG(f: CladoFixture): Float64Array {
  const G = new Float64Array(f.n * f.n);
  for (const [i, j, v] of f.entries) {
    G[i * f.n + j] = v;
    G[j * f.n + i] = v;
  }
  return G;
}

async function main(): Promise<void> {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  const settings = { bits: [2, 3, 4, 8], group: 32, windows: 16, ctx: 128, pairs: 'block' as const };
  const m = measureClado(model, {
    calibration: readFileSync(fileURLToPath(calibrationTextUrl), 'utf8'), bits: settings.bits, group: settings.group,
    maxWindows: settings.windows, ctx: settings.ctx, pairs: settings.pairs,
    onProgress: (d, t) => { if (d % 200 === 0) process.stderr.write(`clado fixture: ${d}/${t}\n`); },
  });
  const n = m.layers.length * m.bits.length;
  const entries: [number, number, number][] = [];
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) if (m.G[i * n + j] !== 0) entries.push([i, j, m.G[i * n + j]]);
  const f: CladoFixture = {
    model: 'stories260K.gguf', settings, layers: m.layers, counts: m.counts,
    sizeBits: m.candidates.flatMap((cs) => cs.map((c) => c.sizeBits)), n, entries,
  };
  const path = fileURLToPath(FIXTURE_URL);
  mkdirSync(fileURLToPath(new URL('.', FIXTURE_URL)), { recursive: true });
  writeFileSync(`${path}.tmp-${process.pid}`, `${JSON.stringify(f)}\n`);
  renameSync(`${path}.tmp-${process.pid}`, path);
  process.stderr.write(`clado fixture: ${entries.length} entries, ${m.evaluations} passes in ${m.seconds.toFixed(0)} s -> ${path}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
