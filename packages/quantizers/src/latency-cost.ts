// Hardware-aware recipes (QuantX): the allocator's cost per (layer, configuration) is the decode time
// that layer's GEMV takes on this machine instead of its stored bytes. Decode (one token) streams every
// weight once, so a layer's time is its packed bytes over the rate its format's kernel streams them.
// The rate comes either from a `npm run bench` results file (big 4096×4096 GEMVs) or from timing the
// layer's own shape on the spot through the runtime's `Linear`, the object the model runs it with.
import { type Kernels, LowbitError } from '@lowbit/kernels';
import type { PackedIntTensor } from '@lowbit/formats';
import { type DecoderModel, Linear, type LinearWeight, linearBytes, linearWeightFromPacked } from '@lowbit/runtime';
import { greedyChoice, type OneHotQuadraticProblem, type OneHotSolution, oneHotSizeRange, oneHotValue, solveOneHotMinCost, solveOneHotQuadratic, uniformChoice } from '@lowbit/solvers';
import type { Allocation, AllocationMethod, CladoCandidate, CladoMeasurement } from './clado.js';
import type { GgmlType } from './ggml-grid.js';

/** The weights the runtime runs a candidate with: ggml blocks as they are, INT-k as `linearWeightFromPacked` (ggml tiles, the int4 kernel or the formats' packed GEMV). */
export function candidateWeight(c: CladoCandidate, shape: [number, number]): LinearWeight {
  if (c.blocks) return { format: c.format as GgmlType, shape, data: c.blocks };
  if (!c.packed) throw new LowbitError('E_MISSING', `latency cost: candidate ${c.format} has neither ggml blocks nor packed codes`);
  return linearWeightFromPacked(c.packed as PackedIntTensor);
}

export interface LatencyCosts {
  /** Milliseconds per decoded token of layer l at choice c: ms[l·K + c]. */
  ms: Float64Array;
  /** Weight bytes that GEMV streams (what `Linear.bytes` reports), same index. */
  bytes: Float64Array;
  /** Where each candidate's time came from: 'measured' (its own shape, timed) or 'bench' (bytes / the file's rate). */
  source: ('measured' | 'bench')[];
  /** The runtime format each candidate ran as ('q4_0', 'int4', 'packed'), per choice (the same for every layer of one candidate). */
  runtimeFormats: string[];
  seconds: number;
}

export interface LatencyCostOptions {
  /** Kernels to time on. Default: the model's. */
  kernels?: Kernels;
  /**
   * Rates per candidate name ('q4_0', 'int4', ...) in weights per millisecond, from `benchRates`.
   * Candidates missing here are timed on the spot.
   */
  rates?: Record<string, number>;
  /** Time spent per distinct GEMV (candidate × shape) when timing on the spot, in ms, over all rounds. Default 100. */
  timePerCandidate?: number;
}

/**
 * Decode time of every (layer, candidate) of a CLADO measurement. Timing on the spot runs the GEMV
 * (batch 1) of each distinct (candidate, runtime format, shape) through a `Linear` on `kernels`, the
 * object the model would run it with; layers of one shape share that time (values do not change
 * it, and per-layer draws would let the solver chase timing noise). The GEMVs are timed in rounds,
 * one batch of calls each per round, and the cost is the fastest batch's time per call: on a shared
 * machine preemption only ever adds time, and interleaving spreads load changes over all
 * candidates. On layers as small as stories260K's (64×64) that time is mostly call overhead, not
 * bandwidth; it is still what a decoded token pays, so it is the cost used.
 */
export function measureLatencyCosts(model: DecoderModel, m: CladoMeasurement, o: LatencyCostOptions = {}): LatencyCosts {
  const t0 = performance.now();
  const K = m.bits.length;
  const ms = new Float64Array(m.layers.length * K);
  const bytes = new Float64Array(m.layers.length * K);
  const source: ('measured' | 'bench')[] = m.formats.map(() => 'measured');
  const runtimeFormats: string[] = [];
  const budget = o.timePerCandidate ?? 100;
  if (!(Number.isFinite(budget) && budget > 0)) throw new LowbitError('E_ARG', `latency cost: timePerCandidate must be > 0 ms, got ${budget}`);
  const toTime = new Map<string, { name: string; w: LinearWeight; at: number[] }>();
  m.layers.forEach((name, l) => {
    m.candidates[l].forEach((c, k) => {
      const lin = model.linear(name);
      const shape: [number, number] = [lin.rows, lin.cols];
      const w = candidateWeight(c, shape);
      runtimeFormats[k] = w.format;
      const i = l * K + k;
      bytes[i] = linearBytes(w);
      const rate = o.rates?.[m.formats[k]];
      if (rate !== undefined) {
        if (!(Number.isFinite(rate) && rate > 0)) throw new LowbitError('E_ARG', `latency cost: rate of ${m.formats[k]} is ${rate} (weights per ms, > 0)`);
        ms[i] = m.counts[l] / rate;
        source[k] = 'bench';
        return;
      }
      const key = `${m.formats[k]} ${w.format} ${shape[0]}×${shape[1]}`;
      const e = toTime.get(key) ?? { name, w, at: [] };
      e.at.push(i);
      toTime.set(key, e);
    });
  });
  const times = timeGemvs(o.kernels ?? model.kernels, [...toTime.values()], budget);
  [...toTime.values()].forEach((e, j) => {
    for (const i of e.at) ms[i] = times[j];
  });
  return { ms, bytes, source, runtimeFormats, seconds: (performance.now() - t0) / 1000 };
}

const ROUNDS = 8;

/** Fastest per-call time (ms) of each GEMV over ROUNDS interleaved rounds of one batch each, about `budgetMs` per GEMV in all. */
function timeGemvs(k: Kernels, list: { name: string; w: LinearWeight }[], budgetMs: number): number[] {
  const lins = list.map((e) => new Linear(k, e.name, e.w));
  try {
    const jobs = lins.map((lin) => {
      const x = new Float32Array(lin.cols);
      for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7);
      return { lin, x, out: new Float32Array(lin.rows), calls: 1, best: Infinity };
    });
    // warm-up, and enough calls per batch that a batch lasts about budget/ROUNDS
    for (const j of jobs) {
      for (;;) {
        const t = performance.now();
        for (let i = 0; i < j.calls; i++) j.lin.apply(j.x, 1, j.out);
        if (performance.now() - t >= budgetMs / ROUNDS || j.calls >= 1 << 20) break;
        j.calls *= 2;
      }
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const j of jobs) {
        const t = performance.now();
        for (let i = 0; i < j.calls; i++) j.lin.apply(j.x, 1, j.out);
        j.best = Math.min(j.best, (performance.now() - t) / j.calls);
      }
    }
    return jobs.map((j) => j.best);
  } finally {
    for (const lin of lins) lin.free();
  }
}

/**
 * GEMV rates per candidate name from a `npm run bench` results file (benchmarks/results/latest.json),
 * in weights per millisecond (a GEMV does 2 flops per weight, so GFLOP/s·1e6/2), for the kernel
 * variant `variant`: q4_0/q4_1/q8_0 from the "prepared tiles" rows (the form the runtime decodes
 * with), int4 from the int4 group GEMV row, f32 from the f32 GEMV. Other INT-k widths have no row
 * (they run on the formats' table GEMV) and are left to timing on the spot.
 */
export function benchRates(results: unknown, variant: string): Record<string, number> {
  const rows = (results as { rows?: unknown })?.rows;
  if (!Array.isArray(rows)) throw new LowbitError('E_FORMAT', 'bench results: no "rows" array (expected benchmarks/results/latest.json from npm run bench)');
  const rates: Record<string, number> = {};
  const take = (format: string, name: RegExp, v: string): void => {
    const r = rows.find((x) => x && x.area === 'kernels' && name.test(String(x.name)) && x.variant === v);
    if (!r) return;
    const gflops = Number(r.gflops);
    if (!(Number.isFinite(gflops) && gflops > 0)) throw new LowbitError('E_FORMAT', `bench results: row "${r.name}" / "${v}" has gflops ${r.gflops}`);
    rates[format] = (gflops * 1e6) / 2;
  };
  for (const t of ['q4_0', 'q4_1', 'q8_0']) take(t, new RegExp(`^${t} GEMV \\d+×\\d+$`), `wasm ${variant}, prepared tiles`);
  take('int4', /^int4 g\d+ GEMV \d+×\d+$/, `wasm ${variant}`);
  take('f32', /^f32 GEMV \d+×\d+$/, `wasm ${variant}`);
  return rates;
}

export interface CostAllocationOptions {
  method?: AllocationMethod;
  /** Cost of layer l at choice c, costs[l·K + c] (e.g. `LatencyCosts.ms`). */
  costs: ArrayLike<number>;
  /** Upper bound on Σ cost (ms per token for latency costs): minimise predicted ΔL under it. */
  budget?: number;
  /** Upper bound on the predicted ΔL (nats): minimise Σ cost under it instead. */
  maxDeltaLoss?: number;
  /** HiGHS time limit in seconds. Default 60. */
  timeLimit?: number;
}

export interface CostAllocation extends Allocation {
  /** Σ cost of the choice (ms per token for latency costs). */
  cost: number;
  /** The bound that was imposed: 'cost' (budget on Σ cost) or 'delta-loss' (maxDeltaLoss). */
  bound: 'cost' | 'delta-loss';
}

/**
 * The allocator with any per-(layer, choice) cost in place of stored bits: either "least predicted ΔL
 * with Σ cost ≤ budget" (same programs as `allocate`) or "least Σ cost with predicted ΔL ≤
 * maxDeltaLoss" (objective and constraint swapped, `solveOneHotMinCost`). Exactly one of the two.
 * For the swapped form: clado bounds xᵀGx, diagonal the additive Σ Gᵢᵢ, uniform takes the cheapest
 * same-width configuration under the bound, greedy upgrades from the cheapest by diagonal loss
 * decrease per unit cost until the additive ΔL is under the bound.
 */
export async function allocateByCost(m: CladoMeasurement, o: CostAllocationOptions): Promise<CostAllocation> {
  const t0 = performance.now();
  const method = o.method ?? 'clado';
  if (!['clado', 'diagonal', 'uniform', 'greedy'].includes(method)) throw new LowbitError('E_ARG', `allocateByCost: method must be clado, diagonal, uniform or greedy, got ${String(method)}`);
  if ((o.budget === undefined) === (o.maxDeltaLoss === undefined)) throw new LowbitError('E_ARG', 'allocateByCost: give exactly one of budget and maxDeltaLoss');
  const K = m.bits.length;
  const n = m.layers.length * K;
  if (o.costs.length !== n) throw new LowbitError('E_SHAPE', `allocateByCost: ${o.costs.length} costs for ${m.layers.length} layers × ${K} choices = ${n}`);
  for (let i = 0; i < n; i++) if (!(Number.isFinite(o.costs[i]) && o.costs[i] >= 0)) throw new LowbitError('E_ARG', `allocateByCost: cost of ${m.layers[Math.floor(i / K)]} ${m.formats[i % K]} is ${o.costs[i]} (finite, ≥ 0)`);
  const p: OneHotQuadraticProblem = { choices: m.layers.map(() => K), G: m.G, sizes: Float64Array.from(o.costs), budget: o.budget ?? 0 };
  const range = oneHotSizeRange(p);
  let choice: number[];
  let solver: OneHotSolution['solver'] | null = null;
  if (o.budget !== undefined) {
    if (!(Number.isFinite(o.budget) && o.budget >= range.min * (1 - 1e-12))) {
      throw new LowbitError('E_RANGE', `allocateByCost: budget ${o.budget} is below the cheapest configuration, ${range.min} (reachable: ${range.min}..${range.max})`);
    }
    if (method === 'clado' || method === 'diagonal') {
      const s = await solveOneHotQuadratic({ ...p, budget: Math.max(o.budget, range.min) }, { diagonalOnly: method === 'diagonal', timeLimit: o.timeLimit });
      choice = s.choice;
      solver = s.solver;
    } else if (method === 'greedy') choice = greedyChoice(p).choice;
    else {
      const u = uniformChoice(p);
      if (!u) throw new LowbitError('E_RANGE', `allocateByCost: no uniform configuration costs at most ${o.budget}`);
      choice = u.choice;
    }
  } else {
    const bound = o.maxDeltaLoss as number;
    if (!Number.isFinite(bound)) throw new LowbitError('E_ARG', `allocateByCost: maxDeltaLoss is ${bound}`);
    const diag = diagonalOf(m.G, n);
    if (method === 'clado' || method === 'diagonal') {
      const s = await solveOneHotMinCost({ ...p, G: method === 'clado' ? m.G : diag, maxValue: bound }, { timeLimit: o.timeLimit });
      choice = s.choice;
      solver = s.solver;
    } else if (method === 'uniform') {
      let best: number[] | null = null;
      let bestCost = Infinity;
      for (let c = 0; c < K; c++) {
        const ch = m.layers.map(() => c);
        const r = oneHotValue(p, ch);
        if (r.value <= bound && r.size < bestCost) [best, bestCost] = [ch, r.size];
      }
      if (!best) throw new LowbitError('E_RANGE', `allocateByCost: no uniform configuration has predicted ΔL ≤ ${bound}`);
      choice = best;
    } else choice = greedyUnderLoss({ ...p, G: diag }, bound, m);
  }
  const { value, size } = oneHotValue(p, choice);
  const total = m.counts.reduce((a, b) => a + b, 0);
  const sizeBits = choice.reduce((s, c, l) => s + m.candidates[l][c].sizeBits, 0);
  return {
    method, choice,
    layers: Object.fromEntries(m.layers.map((name, l) => [name, m.bits[choice[l]]])),
    formats: Object.fromEntries(m.layers.map((name, l) => [name, m.formats[choice[l]]])),
    predictedDeltaLoss: value,
    additiveDeltaLoss: choice.reduce((s, c, l) => s + m.single[l * K + c], 0),
    sizeBits, bitsPerWeight: sizeBits / total, budgetBits: Number.NaN, solver,
    cost: size, bound: o.budget !== undefined ? 'cost' : 'delta-loss',
    seconds: (performance.now() - t0) / 1000,
  };
}

function diagonalOf(G: ArrayLike<number>, n: number): Float64Array {
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) D[i * n + i] = G[i * n + i];
  return D;
}

/** From the cheapest choice per layer, the upgrade with the largest loss decrease per unit of added cost, until Σ diagonal ≤ bound. */
function greedyUnderLoss(p: OneHotQuadraticProblem, bound: number, m: CladoMeasurement): number[] {
  const K = m.bits.length;
  const n = p.sizes.length;
  const d = (l: number, c: number): number => p.G[(l * K + c) * n + l * K + c];
  const s = (l: number, c: number): number => p.sizes[l * K + c];
  const choice = m.layers.map((_, l) => {
    let best = 0;
    for (let c = 1; c < K; c++) if (s(l, c) < s(l, best) || (s(l, c) === s(l, best) && d(l, c) < d(l, best))) best = c;
    return best;
  });
  let loss = choice.reduce((t, c, l) => t + d(l, c), 0);
  while (loss > bound) {
    let move: [number, number] | null = null;
    let rate = 0;
    for (let l = 0; l < choice.length; l++) {
      for (let c = 0; c < K; c++) {
        const gain = d(l, choice[l]) - d(l, c);
        if (gain <= 0) continue;
        const extra = s(l, c) - s(l, choice[l]);
        const r = extra <= 0 ? Infinity : gain / extra;
        if (r > rate) [rate, move] = [r, [l, c]];
      }
    }
    if (!move) throw new LowbitError('E_RANGE', `allocateByCost: greedy cannot bring the additive ΔL (${loss.toFixed(5)}) under ${bound}`);
    loss += d(move[0], move[1]) - d(move[0], choice[move[0]]);
    choice[move[0]] = move[1];
  }
  return choice;
}
