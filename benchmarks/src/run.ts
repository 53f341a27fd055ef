// `npm run bench`: runs every area (or those named on the command line), then writes
// results/latest.json and results/latest.md. Add an area: a file exporting an `Area`, listed below.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { type Area, createContext, type Row } from './harness.js';
import { anyprecArea } from './anyprec.js';
import { attentionArea } from './attention.js';
import { formatsArea } from './formats.js';
import { lowbitTypesArea } from './lowbit-types.js';
import { kernelsArea } from './kernels.js';
import { runtimeArea } from './runtime.js';
import { simArea } from './sim.js';
import { tokenizerArea } from './tokenizer.js';
import { trainingArea } from './training.js';
import { encodingsArea } from './encodings.js';
import { solversArea } from './solvers.js';
import { servingArea } from './serving.js';
import { kquantsArea } from './kquants.js';
import { bigModelArea } from './big-model.js';
import { enginesArea } from './engines.js';
import { edgeWorkerArea } from './edge-worker.js';

const areas: Area[] = [kernelsArea, formatsArea, lowbitTypesArea, runtimeArea, anyprecArea, tokenizerArea, simArea, encodingsArea, solversArea, attentionArea, servingArea, trainingArea, kquantsArea, bigModelArea, edgeWorkerArea, enginesArea];
// results/ is not in git (a fresh clone has none): make it before minutes of measuring, not after.
const dir = new URL('../results/', import.meta.url);
mkdirSync(fileURLToPath(dir), { recursive: true });

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((a) => !a.startsWith('--'));
const ctx = createContext(quick);
const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  loadavg1: loadavg()[0],
  date: new Date().toISOString(),
};

const all: Row[] = [];
for (const area of areas) {
  if (wanted.length && !wanted.includes(area.name)) continue;
  ctx.log(`bench: ${area.name} ...`);
  all.push(...(await area.run(ctx)));
}
// The machine is shared: the load at the end shows whether other work ran during the rows.
const loadEnd = loadavg()[0];

const fmt = (v: number | undefined, d = 2) => (v === undefined ? '' : v.toFixed(d));
const md = [
  `# lowbit benchmarks`,
  '',
  `${machine.cpu}, ${machine.cores} cores, ${machine.memGiB} GiB, Node ${machine.node}, load ${machine.loadavg1.toFixed(2)} at the start and ${loadEnd.toFixed(2)} at the end (1-minute averages), ${machine.date}. One thread unless the row says otherwise. ratio = baseline ms / row ms.`,
  '',
  '| area | benchmark | variant | ms | GB/s | GFLOP/s | rate | ratio | baseline |',
  '|---|---|---|---:|---:|---:|---:|---:|---|',
  ...all.map((r) => `| ${r.area} | ${r.name} | ${r.variant} | ${fmt(r.ms, 3)} | ${fmt(r.gbps)} | ${fmt(r.gflops)} | ${r.rate ? `${r.rate.value.toFixed(1)} ${r.rate.unit}` : ''} | ${fmt(r.ratio)}× | ${r.baseline} |`),
  '',
].join('\n');

for (const [name, text] of [['latest.json', JSON.stringify({ machine: { ...machine, loadavg1End: loadEnd }, rows: all }, null, 2)], ['latest.md', md]] as const) {
  const path = fileURLToPath(new URL(name, dir));
  writeFileSync(`${path}.tmp`, `${text}\n`);
  renameSync(`${path}.tmp`, path);
}
process.stdout.write(md);
