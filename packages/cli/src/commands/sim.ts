import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { LowbitError, writeTextAtomic } from '@lowbit/runtime';
import {
  ACCELERATORS, type NetworkProfile, a3Study, ginexStudy, gradiveqStudy, powerLawGraph, quantizationResiduals, trainingGradients, samplingTrace, type SimResult, findNetwork, modelWorkload, networkNames, parseProfileJson, parseProfileList,
  resolvePrecisions, resultCsv, resultTable, simulateProfile, simulateWorkload, speedupSvg, rowsCsv, lineChartSvg, type ChartSeries,
} from '@lowbit/sim';
import { type CommandContext, UsageError, defineCommand } from '../command.js';
import { threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';

const options = {
  accel: { type: 'string', default: 'stripes', choices: ACCELERATORS, description: 'the accelerator compared with the 16-bit DaDianNao-style baseline' },
  profile: { type: 'string', placeholder: 'file|p1,p2,...|name', defaultText: "the network's first published profile", description: 'shipped networks: per-conv-layer activation precisions, a JSON profile file, or a shipped profile name (100, 99, dnnsim-99)' },
  'bits-per-cycle': { type: 'integer', default: 1, min: 1, max: 4, description: 'serial bits per cycle: Tartan 1|2, Loom 1|2|4' },
  machine: { type: 'string', default: 'dadn', choices: ['dadn', 'mac128'], description: 'machine size: dadn (4096 16-bit MACs/cycle) or mac128 (baseline and loom: the Loom paper\'s 128-MAC comparison)' },
  seq: { type: 'integer', default: 256, min: 2, description: 'models: tokens of calibration text each linear layer runs on; a3: tokens of attention; gradiveq: tokens per node' },
  'act-bits': { type: 'integer', default: 8, min: 2, max: 16, description: 'models: bits the captured activations are quantized to' },
  text: { type: 'string', placeholder: 'file', defaultText: 'embedded calibration text (a3: validation text)', description: 'models: text whose activations are captured; a3: attention text; gradiveq: training text' },
  group: { type: 'integer', default: 16, min: 16, max: 256, description: 'dpred: activations per precision group (16 or 256)' },
  'column-registers': { type: 'integer', default: 0, min: 0, max: 64, description: 'dpred: steps a column may run ahead of the slowest' },
  variant: { type: 'string', default: 'p', choices: ['p', 'e'], description: 'tactical: TCLp (activation precision) or TCLe (effectual terms) back end' },
  lookahead: { type: 'integer', default: 2, min: 0, max: 8, description: 'tactical: lookahead H' },
  lookaside: { type: 'integer', default: 5, min: 0, max: 15, description: 'tactical: lookaside D' },
  shape: { type: 'string', default: 'T', choices: ['L', 'T'], description: 'tactical: search shape' },
  m: { type: 'string', default: '0,4,8,16,32', placeholder: 'list', description: 'a3: greedy search iterations per query, one row each (0: no search)' },
  k: { type: 'integer', default: 1000000, min: 1, description: 'a3: rows kept after exact scoring (top-k)' },
  threshold: { type: 'number', min: 0, defaultText: 'none', description: 'a3: drop rows whose logit is this far below the best' },
  nodes: { type: 'integer', default: 4, min: 2, max: 64, description: 'gradiveq: nodes in the ring' },
  slice: { type: 'integer', default: 32, min: 2, max: 1024, description: 'gradiveq: slice length d' },
  components: { type: 'string', default: '4,8,16', placeholder: 'list', description: 'gradiveq: principal components k, one row each' },
  grads: { type: 'string', default: 'training', choices: ['training', 'residuals'], description: 'gradiveq: real gradients (one --seq window of --text per node; f32 models) or Q4_0 residuals of blk.0..n-1.attn_q (any model)' },
  bandwidth: { type: 'number', default: 1.25e9, above: 0, description: 'gradiveq: link bandwidth in bytes/s' },
  latency: { type: 'number', default: 5e-6, min: 0, description: 'gradiveq: per-step latency in seconds' },
  'graph-nodes': { type: 'integer', default: 100000, min: 2, description: 'ginex: nodes of the synthetic power-law graph' },
  degree: { type: 'number', default: 10, above: 0, description: 'ginex: mean degree' },
  gamma: { type: 'number', default: 2.5, above: 2, description: 'ginex: power-law exponent' },
  batch: { type: 'integer', default: 1024, min: 1, description: 'ginex: training nodes per mini-batch' },
  fanouts: { type: 'string', default: '10,5', placeholder: 'list', description: 'ginex: neighbours sampled per hop' },
  batches: { type: 'integer', default: 100, min: 1, description: 'ginex: mini-batches traced' },
  cache: { type: 'string', default: '0.01,0.05,0.1,0.2,0.4', placeholder: 'list', description: 'ginex: cache sizes as fractions of the nodes' },
  'feature-bytes': { type: 'integer', default: 512, min: 1, description: 'ginex: bytes of one node feature vector' },
  csv: { type: 'string', placeholder: 'file', description: 'write the per-layer results (a3, gradiveq, ginex: one row per setting) as CSV' },
  svg: { type: 'string', placeholder: 'file', description: 'write a chart: per-layer speedup bars; a3 error vs skipped; gradiveq ring time vs k; ginex hit rate vs cache size' },
  ...threadOption,
} as const;

function isModelPath(arg: string): boolean {
  return /\.(gguf|safetensors)$/i.test(arg) || (existsSync(arg) && !findNetwork(arg));
}

function profileFor(ctx: CommandContext, net: NonNullable<ReturnType<typeof findNetwork>>): NetworkProfile {
  const p = ctx.values.profile as string | undefined;
  if (p === undefined) return net.profiles[0];
  const named = net.profiles.find((x) => x.name === p);
  if (named) return named;
  if (/^[\d\s,]+$/.test(p)) return parseProfileList(net, p);
  if (!existsSync(p)) throw new LowbitError('E_MISSING', `--profile ${p}: not a file, a list of precisions, or a profile of ${net.name} (${net.profiles.map((x) => x.name).join(', ')})`);
  return parseProfileJson(net, readFileSync(p, 'utf8'), p);
}

export const simCommand = defineCommand({
  name: 'sim',
  summary: 'cycles, speedup, utilisation and off-chip bytes of a CNN or a model on bit-serial accelerators (Stripes, Tartan, Loom, DPRed, Laconic, Bit-Tactical)',
  arguments: [
    { name: 'network|model|a3|gradiveq|ginex', description: `a shipped network (${networkNames().join(', ')}), a model file (.gguf, .safetensors written by lowbit quantize), or one of the system studies` },
    { name: 'model', optional: true, description: 'a3, gradiveq: the model (default: the embedded stories260K)' },
  ],
  options,
  examples: [
    'lowbit sim alexnet --accel stripes',
    'lowbit sim alexnet --accel stripes --profile 9,8,5,5,7 --json',
    'lowbit sim vgg19 --accel loom --bits-per-cycle 2 --svg vgg19-loom.svg',
    'lowbit sim alexnet --accel loom --machine mac128 --profile dnnsim-99',
    'lowbit sim model.q4_0.gguf --accel laconic --seq 128 --csv layers.csv',
    'lowbit sim a3 --seq 64 --m 0,8,32',
    'lowbit sim gradiveq --nodes 4 --components 4,8,16',
    'lowbit sim ginex --graph-nodes 20000 --batches 50 --csv ginex.csv --svg ginex.svg',
  ],
  async run(ctx) {
    const target = ctx.positionals[0];
    if (!target) throw new UsageError(`name a network (${networkNames().join(', ')}), a model file, or a3 / gradiveq / ginex`);
    const csv = ctx.values.csv as string | undefined;
    const svg = ctx.values.svg as string | undefined;
    if (csv) checkOutputFile(csv, '--csv');
    if (svg) checkOutputFile(svg, '--svg');
    if (target === 'a3' || target === 'gradiveq' || target === 'ginex') return systemStudy(ctx, target, csv, svg);
    const accel = ctx.values.accel as string;
    const b = ctx.values['bits-per-cycle'] as number;
    let result: SimResult;
    const net = findNetwork(target);
    if (net) {
      const profile = profileFor(ctx, net);
      result = simulateProfile(net.name, accel, net.layers, resolvePrecisions(net, profile), { bitsPerCycle: b, machine: ctx.values.machine as string, profile: `${profile.name} [${profile.tag}] ${profile.source}` });
    } else if (isModelPath(target)) {
      const group = ctx.values.group as number;
      if (group !== 16 && group !== 256) throw new UsageError(`--group must be 16 or 256, got ${group}`);
      const text = readFileSync((ctx.values.text as string | undefined) ?? fileURLToPath(calibrationTextUrl), 'utf8');
      result = await withModel(ctx, (model) => {
        const w = modelWorkload(model, text, { seq: ctx.values.seq as number });
        return simulateWorkload(w, accel, {
          bitsPerCycle: b, machine: ctx.values.machine as string, actBits: ctx.values['act-bits'] as number,
          dpred: { group, columnRegisters: ctx.values['column-registers'] as number },
          tactical: { variant: ctx.values.variant as 'p' | 'e', lookahead: ctx.values.lookahead as number, lookaside: ctx.values.lookaside as number, shape: ctx.values.shape as 'L' | 'T' },
          onLayer: (d, t, name) => ctx.progress(d, t, name),
        });
      });
    } else {
      throw new LowbitError('E_MISSING', `${target}: neither a shipped network (${networkNames().join(', ')}) nor a model file`);
    }
    ctx.print(`${result.network} on ${result.accel}${b > 1 ? ` (${b} bits/cycle)` : ''} vs the 16-bit ${result.machine === 'mac128' ? '128-MAC' : 'DaDN'} baseline (profile: ${result.profile})`);
    ctx.print(resultTable(result));
    ctx.print(`off-chip bytes: ${result.offchip_bytes} (baseline ${result.baseline_offchip_bytes}); energy: ${result.energy_note}`);
    if (csv) await writeTextAtomic(csv, resultCsv(result));
    if (svg) await writeTextAtomic(svg, speedupSvg(result));
    return result;
  },
});

const list = (text: string, what: string) => text.split(',').map((x) => {
  const n = Number(x.trim());
  if (!Number.isFinite(n) || x.trim() === '') throw new UsageError(`${what} must be a comma-separated list of numbers, got "${text}"`);
  return n;
});

/** The studies' --csv and --svg: rows as CSV, and the chart built from them. */
async function writeStudy(ctx: CommandContext, csv: string | undefined, svg: string | undefined, rows: readonly object[], fields: string[], chart: () => string): Promise<void> {
  if (csv) {
    await writeTextAtomic(csv, rowsCsv(rows, fields));
    ctx.print(`wrote ${rows.length} rows to ${csv}`);
  }
  if (svg) {
    await writeTextAtomic(svg, chart());
    ctx.print(`wrote the chart to ${svg}`);
  }
}

const byX = (s: ChartSeries): ChartSeries => ({ ...s, points: [...s.points].sort((a, b) => a.x - b.x) });

async function systemStudy(ctx: CommandContext, which: 'a3' | 'gradiveq' | 'ginex', csv?: string, svg?: string): Promise<unknown> {
  const modelCtx = { ...ctx, positionals: ctx.positionals.slice(1) };
  if (which === 'a3') {
    const text = readFileSync((ctx.values.text as string | undefined) ?? fileURLToPath(validTextUrl), 'utf8');
    const threshold = (ctx.values.threshold as number | undefined) ?? Number.POSITIVE_INFINITY;
    const settings = list(ctx.values.m as string, '--m').map((m) => ({ m, k: ctx.values.k as number, threshold }));
    const r = await withModel(modelCtx, (model) => a3Study(model, text, settings, ctx.values.seq as number));
    ctx.print(`A3 on ${r.seq} tokens of real attention (every layer and head, causal); error vs exact attention`);
    ctx.print('     m       k  threshold  skipped  rel.error  search products/query');
    for (const x of r.rows) ctx.print(`${String(x.m).padStart(6)}  ${String(x.k).padStart(6)}  ${String(x.threshold).padStart(9)}  ${(100 * x.skipped).toFixed(1).padStart(6)}%  ${x.relError.toFixed(4).padStart(9)}  ${x.searchProductsPerQuery.toFixed(1).padStart(8)}`);
    await writeStudy(ctx, csv, svg, r.rows, ['m', 'k', 'threshold', 'skipped', 'relError', 'searchProductsPerQuery'], () => lineChartSvg({
      title: `A3 on ${r.seq} tokens of real attention: output error vs dot products skipped`,
      xLabel: 'dot products skipped (%)', yLabel: 'relative error vs exact attention',
      series: [byX({ name: `A3, k ${ctx.values.k}`, colour: '#1f77b4', points: r.rows.map((x) => ({ x: 100 * x.skipped, y: x.relError, label: `m=${x.m}` })) })],
    }));
    return { study: 'a3', seq: r.seq, rows: r.rows.map((x) => ({ ...x, threshold: Number.isFinite(x.threshold) ? x.threshold : null })) };
  }
  if (which === 'gradiveq') {
    const nodes = ctx.values.nodes as number;
    const seq = ctx.values.seq as number;
    const training = ctx.values.grads === 'training';
    const { grads, what } = await withModel(modelCtx, (model) => {
      if (!training) return { grads: quantizationResiduals(model, 'attn_q', nodes), what: `Q4_0 residuals of blk.0..${nodes - 1}.attn_q (gradient stand-ins)` };
      const text = readFileSync((ctx.values.text as string | undefined) ?? fileURLToPath(calibrationTextUrl), 'utf8');
      const g = trainingGradients(model, text, nodes, { ctx: seq });
      return { grads: g.grads, what: `real gradients of all ${g.names.length} weight tensors, node i on its own ${seq}-token window (losses ${g.losses.map((x) => x.toFixed(3)).join(', ')})` };
    });
    const rows = list(ctx.values.components as string, '--components').map((k) => gradiveqStudy(grads, { d: ctx.values.slice as number, k, bandwidthBytesPerS: ctx.values.bandwidth as number, latencyS: ctx.values.latency as number }));
    ctx.print(`GradiVeQ over ${nodes} nodes; tensors: ${what}`);
    ctx.print('   d    k  ratio  rel.error  ring time uncompressed  compressed (incl. codec)');
    for (const x of rows) ctx.print(`${String(x.d).padStart(4)} ${String(x.k).padStart(4)}  ${x.compressionRatio.toFixed(1).padStart(5)}  ${x.relError.toFixed(4).padStart(9)}  ${(x.uncompressedSeconds * 1e3).toFixed(4).padStart(18)} ms  ${(x.compressedSeconds * 1e3).toFixed(4)} ms`);
    await writeStudy(ctx, csv, svg, rows, ['d', 'k', 'nodes', 'values', 'compressionRatio', 'relError', 'ringMaxDiff', 'uncompressedSeconds', 'compressedSeconds', 'codecSeconds'], () => lineChartSvg({
      title: `GradiVeQ ring all-reduce over ${nodes} nodes (d ${ctx.values.slice}): aggregation time vs components k`,
      xLabel: 'principal components k', yLabel: 'aggregation time (ms)',
      series: [
        byX({ name: 'uncompressed ring', colour: '#7f7f7f', points: rows.map((x) => ({ x: x.k, y: x.uncompressedSeconds * 1e3 })) }),
        byX({ name: 'compressed (incl. codec)', colour: '#d62728', points: rows.map((x) => ({ x: x.k, y: x.compressedSeconds * 1e3, label: `${x.compressionRatio.toFixed(1)}x, err ${x.relError.toFixed(3)}` })) }),
      ],
    }));
    return { study: 'gradiveq', tensors: what, rows };
  }
  const g = powerLawGraph(ctx.values['graph-nodes'] as number, ctx.values.degree as number, ctx.values.gamma as number);
  const { trace } = samplingTrace(g, { batchSize: ctx.values.batch as number, fanouts: list(ctx.values.fanouts as string, '--fanouts'), batches: ctx.values.batches as number });
  const rows = ginexStudy(trace, g.n, list(ctx.values.cache as string, '--cache'), ctx.values['feature-bytes'] as number);
  ctx.print(`Ginex feature cache: synthetic Chung-Lu power-law graph (${g.n} nodes, ${g.adj.length / 2} edges, gamma ${ctx.values.gamma}), ${trace.length} feature accesses`);
  ctx.print('  cache  LRU hit  Belady hit  LRU I/O bytes  Belady I/O bytes');
  for (const x of rows) ctx.print(`${(100 * x.cacheFraction).toFixed(1).padStart(6)}%  ${(100 * x.lruHitRate).toFixed(1).padStart(6)}%  ${(100 * x.beladyHitRate).toFixed(1).padStart(9)}%  ${String(x.lruBytes).padStart(13)}  ${String(x.beladyBytes).padStart(16)}`);
  await writeStudy(ctx, csv, svg, rows, ['cacheFraction', 'capacity', 'lruHitRate', 'beladyHitRate', 'lruBytes', 'beladyBytes'], () => lineChartSvg({
    title: `Ginex feature cache on ${trace.length} sampled accesses (${g.n}-node power-law graph)`,
    xLabel: 'cache size (% of nodes)', yLabel: 'hit rate (%)',
    series: [
      byX({ name: 'LRU', colour: '#1f77b4', points: rows.map((x) => ({ x: 100 * x.cacheFraction, y: 100 * x.lruHitRate })) }),
      byX({ name: 'Belady (Ginex)', colour: '#2ca02c', points: rows.map((x) => ({ x: 100 * x.cacheFraction, y: 100 * x.beladyHitRate })) }),
    ],
  }));
  return { study: 'ginex', graph: { kind: 'chung-lu power law', nodes: g.n, edges: g.adj.length / 2 }, accesses: trace.length, rows };
}
