// `lowbit allocate`'s hardware-aware recipes (QuantX): --cost latency counts each layer's decode time
// on this machine instead of its bytes; --budget-ms bounds that time, --max-dppl swaps objective and
// constraint (the cheapest model whose predicted perplexity stays within +x of full precision).
import { readFile } from 'node:fs/promises';
import { type AllocationMethod, allocateByCost, benchRates, type CladoMeasurement, type CostAllocation, type LatencyCosts, measureLatencyCosts } from '@lowbit/quantizers';
import { type DecoderModel, LowbitError } from '@lowbit/runtime';
import { UsageError } from '../command.js';

export const latencyFlags = {
  cost: { type: 'string', choices: ['size', 'latency'], default: 'size', description: 'what a configuration costs: its stored size, or its decode time per token here (its GEMV timed on the runtime\'s kernels, or --rates)' },
  'budget-ms': { type: 'number', above: 0, placeholder: 'ms', defaultText: 'none', description: 'with --cost latency: decode time per token of the allocated layers\' GEMVs; least predicted ΔL under it' },
  'max-dppl': { type: 'number', above: 0, placeholder: 'x', defaultText: 'none', description: 'cheapest model (by --cost) whose predicted perplexity is within +x of full precision: least cost s.t. predicted ΔL ≤ ln(1 + x/ppl_fp)' },
  rates: { type: 'string', placeholder: 'file', defaultText: 'none (each layer timed on the spot)', description: 'with --cost latency: GEMV rates per format from npm run bench results (benchmarks/results/latest.json); formats without a row are timed' },
} as const;

interface RecipeValues {
  budget?: string;
  cost: string;
  'budget-ms'?: number;
  'max-dppl'?: number;
  rates?: string;
}

export interface CostedAllocation extends CostAllocation {
  /** One line for the report. */
  summary: string;
  /** Fields added to --json. */
  json: Record<string, unknown>;
}

/** How the allocation units of `m` map onto linear layers (blocks, embedding buckets): `members[u]` are layer indices into `layers`. */
export interface UnitLayers {
  layers: CladoMeasurement;
  members: number[][];
}

export interface Recipe {
  allocate(model: DecoderModel, m: CladoMeasurement, perplexityFp: number, o: { method: AllocationMethod; timeLimit?: number; units?: UnitLayers }): Promise<CostedAllocation>;
}

/** Null for the plain size budget (--budget); otherwise the recipe the flags ask for. */
export function latencyRecipe(v: RecipeValues): Recipe | null {
  const given = [v.budget !== undefined && '--budget', v['budget-ms'] !== undefined && '--budget-ms', v['max-dppl'] !== undefined && '--max-dppl'].filter(Boolean);
  if (given.length !== 1) throw new UsageError(given.length ? `give one of --budget, --budget-ms and --max-dppl, not ${given.join(' and ')}` : 'give one of --budget (size), --budget-ms (with --cost latency) or --max-dppl');
  if (v.cost !== 'size' && v.cost !== 'latency') throw new UsageError(`--cost must be size or latency, got "${v.cost}"`);
  if (v.budget !== undefined && v.cost === 'latency') throw new UsageError('--budget is a size budget; with --cost latency give --budget-ms or --max-dppl');
  if (v['budget-ms'] !== undefined && v.cost !== 'latency') throw new UsageError('--budget-ms needs --cost latency');
  if (v.rates !== undefined && v.cost !== 'latency') throw new UsageError('--rates needs --cost latency');
  if (v.budget !== undefined) return null;
  const { cost, rates } = v;
  const budgetMs = v['budget-ms'];
  const maxDppl = v['max-dppl'];
  return {
    async allocate(model, m, perplexityFp, o) {
      let lat: LatencyCosts | null = null;
      let costs: Float64Array;
      const K = m.bits.length;
      const layerM = o.units?.layers ?? m;
      if (cost === 'latency') {
        const r = rates === undefined ? undefined : benchRates(await readJson(rates), model.kernels.variant);
        lat = measureLatencyCosts(model, layerM, { rates: r });
        const ms = lat.ms;
        // a block's decode time is its layers' GEMV times added. An embedding bucket runs no GEMV (one
        // row is copied per token): its cost is 1e-9 ms per stored byte, nothing against a budget, but
        // enough that --max-dppl takes the smallest widths meeting the bound rather than any
        const members = o.units?.members ?? m.layers.map((_, l) => [l]);
        if (members.length !== m.layers.length) throw new LowbitError('E_SHAPE', `latency costs: ${members.length} unit member lists for ${m.layers.length} units`);
        costs = new Float64Array(m.layers.length * K);
        members.forEach((ls, u) => {
          for (let k = 0; k < K; k++) {
            if (ls.length === 0) costs[u * K + k] = 1e-9 * (m.candidates[u][k].sizeBits / 8);
            for (const l of ls) costs[u * K + k] += ms[l * K + k];
          }
        });
      } else costs = Float64Array.from(m.candidates.flatMap((cs) => cs.map((c) => c.sizeBits / 8)));
      const maxDeltaLoss = maxDppl === undefined ? undefined : Math.log1p(maxDppl / perplexityFp);
      const a = await allocateByCost(m, { method: o.method, costs, budget: budgetMs, maxDeltaLoss, timeLimit: o.timeLimit });
      const unit = cost === 'latency' ? 'ms/token' : 'bytes';
      const uniform = m.formats.map((f, k) => `${f} ${m.layers.reduce((s, _, l) => s + costs[l * K + k], 0).toPrecision(4)}`).join(', ');
      const bound = maxDeltaLoss === undefined
        ? `budget ${budgetMs} ms/token`
        : `predicted perplexity ≤ ${perplexityFp.toFixed(4)} + ${maxDppl} (ΔL ≤ ${maxDeltaLoss.toFixed(5)} nats)`;
      const source = lat ? ` (${[...new Set(lat.source.map((s, k) => `${m.formats[k]} ${s === 'bench' ? `from ${rates}` : 'timed here'}`))].join(', ')})` : '';
      return {
        ...a,
        summary: `${cost === 'latency' ? 'allocated layers\' GEMVs take' : 'quantized layers take'} ${a.cost.toPrecision(5)} ${unit}${source} for ${bound}; every layer at ${uniform} ${unit}`,
        json: {
          cost, cost_total: a.cost, cost_unit: unit, budget_ms: budgetMs ?? null, max_dppl: maxDppl ?? null, max_delta_loss: maxDeltaLoss ?? null,
          latency: lat ? {
            runtime_formats: Object.fromEntries(m.formats.map((f, k) => [f, lat.runtimeFormats[k]])),
            source: Object.fromEntries(m.formats.map((f, k) => [f, lat.source[k]])),
            ms: Object.fromEntries(layerM.layers.map((name, l) => [name, Array.from(lat.ms.subarray(l * K, (l + 1) * K))])),
            seconds: lat.seconds,
          } : null,
        },
      };
    },
  };
}

async function readJson(file: string): Promise<unknown> {
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LowbitError('E_FORMAT', `${file}: not JSON (${(e as Error).message})`);
  }
}
