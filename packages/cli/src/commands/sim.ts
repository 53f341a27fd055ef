import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { LowbitError, writeTextAtomic } from '@lowbit/runtime';
import {
  ACCELERATORS, type NetworkProfile, type SimResult, findNetwork, modelWorkload, networkNames, parseProfileJson, parseProfileList,
  resolvePrecisions, resultCsv, resultTable, simulateProfile, simulateWorkload, speedupSvg,
} from '@lowbit/sim';
import { type CommandContext, UsageError, defineCommand } from '../command.js';
import { threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';

const options = {
  accel: { type: 'string', default: 'stripes', choices: ACCELERATORS, description: 'the accelerator compared with the 16-bit DaDianNao-style baseline' },
  profile: { type: 'string', placeholder: 'file|p1,p2,...|name', defaultText: "the network's first published profile", description: 'shipped networks: per-conv-layer activation precisions, a JSON profile file, or a shipped profile name (100, 99, dnnsim-99)' },
  'bits-per-cycle': { type: 'integer', default: 1, min: 1, max: 4, description: 'serial bits per cycle: Tartan 1|2, Loom 1|2|4' },
  seq: { type: 'integer', default: 256, min: 2, description: 'models: tokens of calibration text each linear layer runs on' },
  'act-bits': { type: 'integer', default: 8, min: 2, max: 16, description: 'models: bits the captured activations are quantized to' },
  text: { type: 'string', placeholder: 'file', defaultText: 'embedded calibration text', description: 'models: text whose activations are captured' },
  group: { type: 'integer', default: 16, min: 16, max: 256, description: 'dpred: activations per precision group (16 or 256)' },
  'column-registers': { type: 'integer', default: 0, min: 0, max: 64, description: 'dpred: steps a column may run ahead of the slowest' },
  variant: { type: 'string', default: 'p', choices: ['p', 'e'], description: 'tactical: TCLp (activation precision) or TCLe (effectual terms) back end' },
  lookahead: { type: 'integer', default: 2, min: 0, max: 8, description: 'tactical: lookahead H' },
  lookaside: { type: 'integer', default: 5, min: 0, max: 15, description: 'tactical: lookaside D' },
  shape: { type: 'string', default: 'T', choices: ['L', 'T'], description: 'tactical: search shape' },
  csv: { type: 'string', placeholder: 'file', description: 'write the per-layer results as CSV' },
  svg: { type: 'string', placeholder: 'file', description: 'write a bar chart of per-layer speedup' },
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
  arguments: [{ name: 'network|model', description: `a shipped network (${networkNames().join(', ')}) or a model file (.gguf, .safetensors written by lowbit quantize)` }],
  options,
  examples: [
    'lowbit sim alexnet --accel stripes',
    'lowbit sim alexnet --accel stripes --profile 9,8,5,5,7 --json',
    'lowbit sim vgg19 --accel loom --bits-per-cycle 2 --svg vgg19-loom.svg',
    'lowbit sim model.q4_0.gguf --accel laconic --seq 128 --csv layers.csv',
  ],
  async run(ctx) {
    const target = ctx.positionals[0];
    if (!target) throw new UsageError(`name a network (${networkNames().join(', ')}) or a model file`);
    const accel = ctx.values.accel as string;
    const b = ctx.values['bits-per-cycle'] as number;
    const csv = ctx.values.csv as string | undefined;
    const svg = ctx.values.svg as string | undefined;
    if (csv) checkOutputFile(csv, '--csv');
    if (svg) checkOutputFile(svg, '--svg');
    let result: SimResult;
    const net = findNetwork(target);
    if (net) {
      const profile = profileFor(ctx, net);
      result = simulateProfile(net.name, accel, net.layers, resolvePrecisions(net, profile), { bitsPerCycle: b, profile: `${profile.name} [${profile.tag}] ${profile.source}` });
    } else if (isModelPath(target)) {
      const group = ctx.values.group as number;
      if (group !== 16 && group !== 256) throw new UsageError(`--group must be 16 or 256, got ${group}`);
      const text = readFileSync((ctx.values.text as string | undefined) ?? fileURLToPath(calibrationTextUrl), 'utf8');
      result = await withModel(ctx, (model) => {
        const w = modelWorkload(model, text, { seq: ctx.values.seq as number });
        return simulateWorkload(w, accel, {
          bitsPerCycle: b, actBits: ctx.values['act-bits'] as number,
          dpred: { group, columnRegisters: ctx.values['column-registers'] as number },
          tactical: { variant: ctx.values.variant as 'p' | 'e', lookahead: ctx.values.lookahead as number, lookaside: ctx.values.lookaside as number, shape: ctx.values.shape as 'L' | 'T' },
          onLayer: (d, t, name) => ctx.progress(d, t, name),
        });
      });
    } else {
      throw new LowbitError('E_MISSING', `${target}: neither a shipped network (${networkNames().join(', ')}) nor a model file`);
    }
    ctx.print(`${result.network} on ${result.accel}${b > 1 ? ` (${b} bits/cycle)` : ''} vs the 16-bit baseline (profile: ${result.profile})`);
    ctx.print(resultTable(result));
    ctx.print(`off-chip bytes: ${result.offchip_bytes} (baseline ${result.baseline_offchip_bytes}); energy: ${result.energy_note}`);
    if (csv) await writeTextAtomic(csv, resultCsv(result));
    if (svg) await writeTextAtomic(svg, speedupSvg(result));
    return result;
  },
});
