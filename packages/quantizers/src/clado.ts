// CLADO (cross-layer dependency of quantization errors): the loss change of a mixed-precision
// configuration modelled as ΔL(x) = xᵀGx over one-hot choices x (one configuration per layer), with
// G measured from forward passes: the diagonal from quantizing one layer at a time, the off-diagonal
// from quantizing pairs, Gᵢⱼ = (ΔLᵢⱼ − ΔLᵢ − ΔLⱼ)/2. Then min ΔL s.t. size ≤ budget is solved exactly
// as an integer program (@lowbit/solvers, HiGHS).
import { intStorageBytes, type PackedIntTensor } from '@lowbit/formats';
import { GGML_BLOCK_BYTES, GGML_BLOCK_SIZE, isLowbitError, LowbitError } from '@lowbit/kernels';
import type { DecoderModel } from '@lowbit/runtime';
import { greedyChoice, type OneHotQuadraticProblem, type OneHotSolution, oneHotSizeRange, oneHotValue, solveOneHotQuadratic, uniformChoice } from '@lowbit/solvers';
import { BlockCalibration, calibrationWindows } from './calibrate.js';
import { type GgmlType, ggmlBlocks } from './ggml-grid.js';
import type { Gptq } from './gptq.js';
import { createQuantizer } from './quantizer.js';
import { f32Weights } from './source-weights.js';

export interface CladoOptions {
  /** Candidate INT-k bit widths per layer. Default [2, 3, 4, 8]. */
  bits?: number[];
  /**
   * Candidate ggml block types instead of INT-k widths (llama.cpp runs the result): layers whose rows
   * are not whole 32-blocks take no part (they stay F32, as `quantizeModel` leaves them).
   */
  ggml?: GgmlType[];
  /** Columns per group. Default 32. */
  group?: number;
  /** Default 'rtn'. GPTQ's statistics come from the full-precision model's inputs (each layer alone, not the sequential pipeline). */
  method?: 'rtn' | 'gptq';
  symmetric?: boolean;
  damp?: number;
  /** Text whose loss the sensitivities are measured on (never the validation text). */
  calibration: string;
  /** Window length in tokens. Default 128. */
  ctx?: number;
  /** Windows of the calibration text. Default 8. */
  maxWindows?: number;
  /**
   * Which pairs of layers get a measured cross term: 'all'; 'block' (both in the same transformer
   * block; pairs across blocks are taken as independent, Gᵢⱼ = 0); 'none' (the diagonal only).
   * Default 'block'.
   */
  pairs?: 'all' | 'block' | 'none';
  onProgress?: (done: number, total: number) => void;
}

/** One candidate configuration of one layer: its quantized weights and stored size. */
export interface CladoCandidate {
  /** INT-k: the width; ggml: stored bits per weight (4.5, 5, 8.5). */
  bits: number;
  /** 'int4', or the ggml type 'q4_0'. */
  format: string;
  /** ggml candidates: the llama.cpp blocks, [rows, cols/32 blocks]. */
  blocks?: Uint8Array;
  /** Ŵ (fake-quantized f32). */
  weights: Float32Array;
  /** INT-k candidates; null for ggml (see `blocks`). */
  packed: PackedIntTensor | null;
  /** Stored size in bits (codes, scales, zeros: formats' intStorageBytes × 8; ggml: the blocks). */
  sizeBits: number;
}

export interface CladoMeasurement {
  /** Quantized layers, in model order. */
  layers: string[];
  /** Weights per layer. */
  counts: number[];
  /** Candidate bit widths (the same for every layer), index = choice; ggml: stored bits per weight. */
  bits: number[];
  /** Candidate names, index = choice: 'int4' or a ggml type ('q4_0'). */
  formats: string[];
  group: number;
  method: 'rtn' | 'gptq';
  /** candidates[layer][choice]. */
  candidates: CladoCandidate[][];
  /** Mean next-token NLL of the full-precision model on the measurement windows. */
  baseLoss: number;
  /** ΔL of quantizing layer l alone at choice c: single[l·K + c]. */
  single: Float64Array;
  /** The symmetric n×n matrix (n = layers × K) of the quadratic model. */
  G: Float64Array;
  pairs: 'all' | 'block' | 'none';
  /** Pairs of (layer, choice) whose joint loss was measured. */
  pairEvaluations: number;
  /** Forward evaluations in all (singles + pairs). */
  evaluations: number;
  windows: number;
  ctx: number;
  seconds: number;
}

const blockOf = (name: string): number => Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? Number.NaN);

/**
 * Measures G on the model for every linear layer inside the transformer blocks (the embeddings and
 * the LM head stay in full precision, as `quantizeModel` leaves them by default). Forward passes run
 * from the block of the first quantized layer on (`BlockCalibration`): a pair whose first layer is
 * in block b costs the blocks b..end and the head, not the whole model. The model is left as it was.
 */
export function measureClado(model: DecoderModel, o: CladoOptions): CladoMeasurement {
  const t0 = performance.now();
  const { bits, formats, group } = candidateFormats(o);
  const method = o.method ?? 'rtn';
  if (method !== 'rtn' && method !== 'gptq') throw new LowbitError('E_ARG', `clado: method must be rtn or gptq, got ${String(method)}`);
  const pairs = o.pairs ?? 'block';
  if (pairs !== 'all' && pairs !== 'block' && pairs !== 'none') throw new LowbitError('E_ARG', `clado: pairs must be all, block or none, got ${String(pairs)}`);
  const ctx = o.ctx ?? 128;
  const cut = calibrationWindows(model, o.calibration, { ctx, maxWindows: o.maxWindows ?? 8 });
  const windows = cut.windows.length;

  const layers = allocatedLayers(model, o.ggml !== undefined);
  if (layers.length === 0) throw new LowbitError('E_UNSUPPORTED', 'clado: the model has no linear layers inside transformer blocks');
  const K = bits.length;
  const L = layers.length;
  const n = L * K;
  const original = layers.map((name) => {
    const lin = model.linear(name);
    return { shape: [lin.rows, lin.cols] as [number, number], data: Float32Array.from(f32Weights(name, lin.source).data) };
  });
  const counts = original.map((w) => w.data.length);
  const quantizers = o.ggml
    ? o.ggml.map((t) => createQuantizer({ method, format: t, group: 32, damp: o.damp ?? 0.01, kernels: model.kernels }))
    : bits.map((b) => createQuantizer({ method, format: 'int', bits: b, group, symmetric: o.symmetric ?? true, damp: o.damp ?? 0.01, kernels: model.kernels }));
  const candidate = (l: number, c: number, stats?: Gptq): CladoCandidate => {
    const shape = original[l].shape;
    const r = quantizers[c].quantize({ weights: original[l].data, shape, stats });
    if (!o.ggml) {
      const packed = r.packed as PackedIntTensor;
      return { bits: bits[c], format: formats[c], weights: r.weights, packed, sizeBits: 8 * intStorageBytes(packed) };
    }
    const g = r.raw;
    if (!g) throw new LowbitError('E_MISSING', `clado: ${layers[l]} ${formats[c]} candidate has no grid codes`);
    const type = o.ggml[c];
    const blocks = ggmlBlocks(type, g.codes, shape[0], shape[1], g.scales, g.zeros);
    return { bits: bits[c], format: type, weights: r.weights, packed: null, blocks, sizeBits: 8 * blocks.length };
  };

  const { nLayers } = model.config;
  const byBlock = Array.from({ length: nLayers }, (_, b) => layers.map((name, l) => ({ name, l })).filter((x) => blockOf(x.name) === b).map((x) => x.l));
  const pairList = (l: number): number[] => {
    if (pairs === 'none') return [];
    const later = layers.map((_, m) => m).filter((m) => m > l);
    return pairs === 'all' ? later : later.filter((m) => blockOf(layers[m]) === blockOf(layers[l]));
  };
  const totalEvals = L * K + layers.reduce((s, _, l) => s + pairList(l).length * K * K, 0) + 1;
  let done = 0;
  const tick = (): void => {
    done++;
    o.onProgress?.(done, totalEvals);
  };

  const candidates: CladoCandidate[][] = [];
  const single = new Float64Array(n);
  const G = new Float64Array(n * n);
  const set = (l: number, w: Float32Array): void => model.setLinear(layers[l], { format: 'f32', shape: original[l].shape, data: w });
  const calib = new BlockCalibration(model, cut, { ctx });
  let baseLoss = Number.NaN;
  let pairEvaluations = 0;
  const joint: [number, number, number][] = [];
  try {
    baseLoss = calib.loss(windows);
    tick();
    for (let b = 0; b < nLayers; b++) {
      const here = byBlock[b];
      // the block's candidates, from the full-precision inputs it sees (its streams are cached now)
      const stats = method === 'gptq' ? calib.collect(here.map((l) => layers[l])) : null;
      for (const l of here) candidates[l] = quantizers.map((_, c) => candidate(l, c, stats?.get(layers[l]) as Gptq | undefined));
      for (const l of here) {
        for (let c = 0; c < K; c++) {
          set(l, candidates[l][c].weights);
          single[l * K + c] = calib.loss(windows) - baseLoss;
          tick();
        }
        set(l, original[l].data);
      }
      for (const l of here) {
        for (const m of pairList(l)) {
          // m's candidates exist when m is in this block; later blocks' GPTQ candidates need their own inputs
          const cm = candidates[m] ?? quantizeLater(m);
          for (let a = 0; a < K; a++) {
            set(l, candidates[l][a].weights);
            for (let c = 0; c < K; c++) {
              set(m, cm[c].weights);
              // the joint change for now: a later block's singles are measured on its own turn
              joint.push([l * K + a, m * K + c, calib.loss(windows) - baseLoss]);
              pairEvaluations++;
              tick();
            }
            set(m, original[m].data);
          }
          set(l, original[l].data);
        }
      }
      calib.advance();
    }
  } finally {
    for (let l = 0; l < L; l++) set(l, original[l].data);
    calib.free();
  }
  for (let i = 0; i < n; i++) G[i * n + i] = single[i];
  for (const [i, j, dl] of joint) {
    const g = (dl - single[i] - single[j]) / 2;
    G[i * n + j] = g;
    G[j * n + i] = g;
  }
  return {
    layers, counts, bits, formats, group, method, candidates, baseLoss, single, G, pairs, pairEvaluations,
    evaluations: done, windows, ctx, seconds: (performance.now() - t0) / 1000,
  };

  // RTN needs no statistics; GPTQ pairs across blocks would need the later block's full-precision
  // inputs before its turn, which the cached streams do not hold yet
  function quantizeLater(m: number): CladoCandidate[] {
    if (method === 'gptq') throw new LowbitError('E_UNSUPPORTED', "clado: pairs 'all' across blocks is measured with method rtn only (GPTQ candidates are built block by block)");
    candidates[m] = quantizers.map((_, c) => candidate(m, c));
    return candidates[m];
  }
}

const GGML_TYPES: readonly GgmlType[] = ['q4_0', 'q4_1', 'q8_0'];

/** The candidates' names and nominal bits; ggml candidates store groups of 32 whatever `group` says. */
function candidateFormats(o: Pick<CladoOptions, 'bits' | 'group' | 'ggml'>): { bits: number[]; formats: string[]; group: number } {
  if (o.ggml) {
    if (o.ggml.length === 0 || !o.ggml.every((t) => GGML_TYPES.includes(t))) throw new LowbitError('E_ARG', `clado: ggml candidates must be among ${GGML_TYPES.join(', ')}, got ${o.ggml.join(',')}`);
    if (new Set(o.ggml).size !== o.ggml.length) throw new LowbitError('E_ARG', `clado: ggml list has repeats: ${o.ggml.join(',')}`);
    return { bits: o.ggml.map((t) => (8 * GGML_BLOCK_BYTES[t]) / GGML_BLOCK_SIZE), formats: [...o.ggml], group: GGML_BLOCK_SIZE };
  }
  const bits = o.bits ?? [2, 3, 4, 8];
  if (bits.length === 0 || !bits.every((b) => Number.isInteger(b) && b >= 2 && b <= 8)) throw new LowbitError('E_ARG', `clado: bits must be integers in 2..8, got ${bits.join(',')}`);
  if (new Set(bits).size !== bits.length) throw new LowbitError('E_ARG', `clado: bits list has repeats: ${bits.join(',')}`);
  return { bits, formats: bits.map((b) => `int${b}`), group: o.group ?? 32 };
}

/**
 * The linear layers inside transformer blocks; for ggml candidates only those whose rows are whole
 * 32-blocks (stories260K's ffn_down, 172 wide, has no block type and stays F32, outside the budget).
 */
export function allocatedLayers(model: DecoderModel, ggml: boolean): string[] {
  return model.linears().filter((l) => Number.isFinite(blockOf(l.name)) && (!ggml || l.cols % GGML_BLOCK_SIZE === 0)).map((l) => l.name);
}

/**
 * The reachable budgets before any measurement (every layer at the smallest, or the largest, of
 * `bits`): sizes depend only on the shapes and grid, so a budget can be refused before the passes.
 */
export function budgetRange(model: DecoderModel, o: Pick<CladoOptions, 'bits' | 'group' | 'symmetric' | 'ggml'> = {}): { minBits: number; maxBits: number; minBytes: number; maxBytes: number } {
  const { bits } = candidateFormats(o);
  const names = new Set(allocatedLayers(model, o.ggml !== undefined));
  const lins = model.linears().filter((l) => names.has(l.name));
  const count = lins.reduce((s, l) => s + l.rows * l.cols, 0);
  // ggml sizes are exact from the block table: bits per weight × weights
  const size = (b: number): number => (o.ggml ? b * count : lins.reduce((s, l) => {
    const q = createQuantizer({ method: 'rtn', format: 'int', bits: b, group: o.group ?? 32, symmetric: o.symmetric ?? true });
    const r = q.quantize({ weights: new Float32Array(l.rows * l.cols), shape: [l.rows, l.cols] });
    return s + 8 * intStorageBytes(r.packed as PackedIntTensor);
  }, 0));
  const [lo, hi] = [size(Math.min(...bits)), size(Math.max(...bits))];
  return { minBits: lo / count, maxBits: hi / count, minBytes: lo / 8, maxBytes: hi / 8 };
}

export type AllocationMethod = 'clado' | 'diagonal' | 'uniform' | 'greedy' | 'predictor';

export interface AllocationOptions {
  method?: AllocationMethod;
  /** Average stored bits per quantized weight (codes + scales as stored). Exactly one of this and `budgetBytes`. */
  budgetBits?: number;
  /** Stored bytes of all quantized layers. */
  budgetBytes?: number;
  /** HiGHS time limit in seconds. Default 60. */
  timeLimit?: number;
  /**
   * The n×n matrix the 'predictor' method minimises instead of the measured G (`predictorMatrix`
   * of a fitted PTQ quality predictor); required for that method, ignored by the others.
   */
  objective?: Float64Array;
}

export interface Allocation {
  method: AllocationMethod;
  /** Choice index per layer (into `measurement.bits`). */
  choice: number[];
  /** layer name → bits. */
  layers: Record<string, number>;
  /** layer name → candidate name ('int4', 'q4_0'). */
  formats: Record<string, string>;
  /** xᵀGx: the loss change the quadratic model predicts (full G, whichever method chose). */
  predictedDeltaLoss: number;
  /** Σ diagonal: the loss change an additive model predicts. */
  additiveDeltaLoss: number;
  /** 'predictor': the loss change the predictor predicts (xᵀ·objective·x); null for the other methods. */
  predictorDeltaLoss?: number | null;
  sizeBits: number;
  bitsPerWeight: number;
  budgetBits: number;
  /**
   * HiGHS stopped before proving optimality (its time limit): `choice` is the best allocation found,
   * `solver.gap` its distance from the bound (NaN when `fallback` says no incumbent was found).
   */
  timedOut?: boolean;
  /** 'greedy' when HiGHS found no allocation before its time limit and the greedy one is used. */
  fallback?: 'greedy' | null;
  /** HiGHS's report for clado, diagonal and predictor; null for the heuristics. */
  solver: OneHotSolution['solver'] | null;
  seconds: number;
}

/** The instance the solver sees: sizes in stored bits, the budget in stored bits. */
export function cladoProblem(m: CladoMeasurement, budgetSizeBits: number): OneHotQuadraticProblem {
  const sizes = new Float64Array(m.layers.length * m.bits.length);
  m.candidates.forEach((cs, l) => {
    cs.forEach((c, k) => {
      sizes[l * m.bits.length + k] = c.sizeBits;
    });
  });
  return { choices: m.layers.map(() => m.bits.length), G: m.G, sizes, budget: budgetSizeBits };
}

/** Smallest and largest reachable average bits per weight of the measurement's configurations. */
export function allocationRange(m: CladoMeasurement): { minBits: number; maxBits: number; minBytes: number; maxBytes: number } {
  const total = m.counts.reduce((a, b) => a + b, 0);
  const { min, max } = oneHotSizeRange(cladoProblem(m, 0));
  return { minBits: min / total, maxBits: max / total, minBytes: min / 8, maxBytes: max / 8 };
}

/** Chooses a configuration per layer under the budget; a budget outside the reachable range is a LowbitError naming it. */
export async function allocate(m: CladoMeasurement, o: AllocationOptions): Promise<Allocation> {
  const t0 = performance.now();
  const method = o.method ?? 'clado';
  if (!['clado', 'diagonal', 'uniform', 'greedy', 'predictor'].includes(method)) throw new LowbitError('E_ARG', `allocate: method must be clado, diagonal, uniform, greedy or predictor, got ${String(method)}`);
  if (method === 'predictor' && o.objective?.length !== m.G.length) throw new LowbitError('E_ARG', `allocate: method predictor needs the predictor's objective matrix (${m.G.length} entries), got ${o.objective?.length ?? 'none'}`);
  if ((o.budgetBits === undefined) === (o.budgetBytes === undefined)) throw new LowbitError('E_ARG', 'allocate: give exactly one of budgetBits and budgetBytes');
  const total = m.counts.reduce((a, b) => a + b, 0);
  const budget = o.budgetBits !== undefined ? o.budgetBits * total : (o.budgetBytes as number) * 8;
  if (!Number.isFinite(budget)) throw new LowbitError('E_ARG', `allocate: budget is ${o.budgetBits ?? o.budgetBytes}`);
  const range = allocationRange(m);
  const minSize = range.minBits * total;
  // a little slack for the float sum of sizes
  if (budget < minSize * (1 - 1e-12)) {
    throw new LowbitError('E_RANGE', `allocate: budget ${(budget / total).toFixed(4)} bits/weight (${Math.floor(budget / 8)} bytes) is below the smallest configuration, ${range.minBits.toFixed(4)} bits/weight (${Math.ceil(range.minBytes)} bytes, every layer at ${m.formats[m.bits.indexOf(Math.min(...m.bits))]}); reachable: ${range.minBits.toFixed(4)}..${range.maxBits.toFixed(4)} bits/weight`);
  }
  if (budget > range.maxBits * total * (1 + 1e-12)) {
    throw new LowbitError('E_RANGE', `allocate: budget ${(budget / total).toFixed(4)} bits/weight is above the largest configuration, ${range.maxBits.toFixed(4)} bits/weight (${Math.ceil(range.maxBytes)} bytes, every layer at ${m.formats[m.bits.indexOf(Math.max(...m.bits))]}); reachable: ${range.minBits.toFixed(4)}..${range.maxBits.toFixed(4)} bits/weight`);
  }
  const p = cladoProblem(m, Math.max(budget, minSize));
  let choice: number[];
  let solver: OneHotSolution['solver'] | null = null;
  let predictorDeltaLoss: number | null = null;
  let fallback: 'greedy' | null = null;
  if (method === 'predictor' || method === 'clado' || method === 'diagonal') {
    const q = method === 'predictor' ? { ...p, G: o.objective as Float64Array } : p;
    const s = await solveOneHotQuadratic(q, { diagonalOnly: method === 'diagonal', timeLimit: o.timeLimit }).catch((e: unknown) => {
      // a time limit hit before HiGHS's first incumbent is no infeasibility (the budget was checked):
      // the greedy allocation is always feasible, so it stands in, flagged, with no proven bound
      if (!(isLowbitError(e) && e.code === 'E_RANGE' && e.message.includes('Time limit reached'))) throw e;
      const g = greedyChoice(q);
      const info = { status: 'Time limit reached', objective: g.value, bound: Number.NaN, gap: Number.NaN, seconds: o.timeLimit ?? 60, nodes: 0, columns: 0, rows: 0 };
      return { ...g, solver: info, fallback: 'greedy' as const };
    });
    choice = s.choice;
    solver = s.solver;
    if (method === 'predictor') predictorDeltaLoss = s.value;
    if ('fallback' in s) fallback = s.fallback;
  } else if (method === 'greedy') {
    choice = greedyChoice(p).choice;
  } else {
    const u = uniformChoice(p);
    if (!u) throw new LowbitError('E_RANGE', `allocate: no uniform configuration fits ${(budget / total).toFixed(4)} bits/weight (the smallest uniform one is ${m.formats[m.bits.indexOf(Math.min(...m.bits))]})`);
    choice = u.choice;
  }
  const { value, size } = oneHotValue(p, choice);
  const K = m.bits.length;
  return {
    method, choice,
    layers: Object.fromEntries(m.layers.map((name, l) => [name, m.bits[choice[l]]])),
    formats: Object.fromEntries(m.layers.map((name, l) => [name, m.formats[choice[l]]])),
    predictedDeltaLoss: value,
    additiveDeltaLoss: choice.reduce((s, c, l) => s + m.single[l * K + c], 0),
    predictorDeltaLoss,
    timedOut: solver !== null && solver.status !== 'Optimal', fallback,
    sizeBits: size, bitsPerWeight: size / total, budgetBits: budget / total, solver,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * Puts each layer's chosen candidate into the model (INT-k: fake-quantized f32; ggml: its blocks, so
 * the model runs on the kernels llama.cpp's file will) and returns the packed INT-k tensors by name
 * (none for ggml: `saveModel` writes the model's block layers as they are).
 */
export function applyAllocation(model: DecoderModel, m: CladoMeasurement, choice: readonly number[]): Map<string, PackedIntTensor> {
  if (choice.length !== m.layers.length) throw new LowbitError('E_SHAPE', `applyAllocation: ${choice.length} choices for ${m.layers.length} layers`);
  const packed = new Map<string, PackedIntTensor>();
  m.layers.forEach((name, l) => {
    const c = m.candidates[l][choice[l]];
    if (!c) throw new LowbitError('E_RANGE', `applyAllocation: ${name} has no choice ${choice[l]}`);
    const lin = model.linear(name);
    if (c.blocks) {
      model.setLinear(name, { format: c.format as GgmlType, shape: [lin.rows, lin.cols], data: c.blocks });
      return;
    }
    model.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data: c.weights });
    packed.set(name, c.packed as PackedIntTensor);
  });
  return packed;
}
