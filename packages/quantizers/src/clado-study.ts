// The allocation study: one CLADO measurement (every pair), then each method at each budget, its
// allocation applied to the model and evaluated on the validation text. The 'block' rows reuse the
// 'all' measurement with the cross-block entries of G set to zero, which is exactly what
// `pairs: 'block'` would have measured (the same windows, the same within-block pairs), so the two
// rows show what pruning the cross-block pairs costs. With `predictor`, the PTQ quality predictor is
// fitted on configurations measured on the calibration windows and allocates as a fifth method, and
// a sixth row fills the cross-block entries that block pairs leave at zero with the predictor's
// pair terms (`withPredictorCrossTerms`).
import { isLowbitError, LowbitError } from '@lowbit/kernels';
import { type DecoderModel, perplexity } from '@lowbit/runtime';
import { oneHotValue } from '@lowbit/solvers';
import { type Allocation, type AllocationMethod, allocate, allocationRange, applyAllocation, type CladoMeasurement, type CladoOptions, cladoProblem, measureClado } from './clado.js';
import { type PtqFeatureOptions, type PtqFeatures, ptqFeatures } from './ptq-features.js';
import { type PredictorOptions, type PredictorReport, predictorMatrix, trainPredictor } from './ptq-predictor.js';
import { f32Weights } from './source-weights.js';

export interface CladoStudyRow {
  method: AllocationMethod | 'clado-block' | 'clado-hybrid';
  budget: number;
  bitsPerWeight: number;
  perplexity: number;
  stderr: number;
  predictedDeltaLoss: number;
  layers: Record<string, number>;
  solver: Allocation['solver'];
  /** Time to choose the allocation (HiGHS's solve for the exact methods), seconds. */
  seconds: number;
}

/** G with the entries between layers of different blocks zeroed (what `pairs: 'block'` measures). */
export function blockMasked(m: CladoMeasurement): CladoMeasurement {
  const K = m.bits.length;
  const n = m.layers.length * K;
  const blk = m.layers.map((name) => /^blk\.(\d+)\./.exec(name)?.[1]);
  const G = Float64Array.from(m.G, (v, t) => (blk[Math.floor(Math.floor(t / n) / K)] === blk[Math.floor((t % n) / K)] ? v : 0));
  return { ...m, G, pairs: 'block' };
}

/**
 * CLADO's G with the PTQ predictor's pair terms (γ·uᵢ·uⱼ, from `predictorMatrix`) between layers of
 * different blocks, where `pairs: 'block'` measured nothing and plain CLADO assumes independence.
 * Within a block (and on the diagonal) the measured entries stay.
 */
export function withPredictorCrossTerms(m: CladoMeasurement, predictor: Float64Array): CladoMeasurement {
  const K = m.bits.length;
  const n = m.layers.length * K;
  if (predictor.length !== n * n) throw new LowbitError('E_SHAPE', `withPredictorCrossTerms: predictor matrix has ${predictor.length} entries, ${n}×${n} expected`);
  const blk = m.layers.map((name) => /^blk\.(\d+)\./.exec(name)?.[1]);
  const G = Float64Array.from(m.G, (v, t) => (blk[Math.floor(Math.floor(t / n) / K)] === blk[Math.floor((t % n) / K)] ? v : predictor[t]));
  return { ...m, G };
}

export async function runCladoStudy(
  model: DecoderModel,
  o: CladoOptions & {
    valid: string;
    /** Average bits per weight; the uniform configurations' own sizes are added (the only budgets where uniform exists). */
    budgets: number[];
    evalCtx?: number;
    /** A measurement with pairs 'all' made earlier (else one is made here). */
    measurement?: CladoMeasurement;
    onMeasured?: (m: CladoMeasurement) => void;
    /** Fit the PTQ quality predictor (features on the calibration text) and add its rows. */
    predictor?: PredictorOptions & { features?: Omit<PtqFeatureOptions, 'calibration'> };
    onPredictor?: (r: PredictorReport, f: PtqFeatures) => void;
    onRow?: (r: CladoStudyRow) => void;
  },
): Promise<{ measurement: CladoMeasurement; rows: CladoStudyRow[]; predictor: PredictorReport | null; features: PtqFeatures | null }> {
  const m = o.measurement ?? measureClado(model, { ...o, pairs: o.pairs ?? 'all' });
  o.onMeasured?.(m);
  let features: PtqFeatures | null = null;
  let report: PredictorReport | null = null;
  let objective: Float64Array | undefined;
  if (o.predictor) {
    features = ptqFeatures(model, m, { calibration: o.calibration, ctx: m.ctx, ...o.predictor.features });
    report = trainPredictor(model, m, features, o.calibration, o.predictor);
    objective = predictorMatrix(report.fit, features);
    o.onPredictor?.(report, features);
  }
  const range = allocationRange(m);
  const uniformSizes = m.bits.map((_, c) => {
    const p = cladoProblem(m, Number.MAX_VALUE);
    return oneHotValue(p, m.layers.map(() => c)).size / m.counts.reduce((a, b) => a + b, 0);
  });
  const budgets = [...new Set([...o.budgets, ...uniformSizes])].filter((b) => b >= range.minBits && b <= range.maxBits).sort((a, b) => a - b);
  const mb = blockMasked(m);
  const methods: CladoStudyRow['method'][] = ['uniform', 'greedy', 'diagonal', 'clado'];
  if (m.pairs === 'all') methods.push('clado-block');
  if (objective) methods.push('predictor');
  const hybrid = objective && m.pairs === 'block' ? withPredictorCrossTerms(m, objective) : null;
  if (hybrid) methods.push('clado-hybrid');
  const originals = m.layers.map((name) => {
    const lin = model.linear(name);
    return { name, shape: [lin.rows, lin.cols] as [number, number], data: Float32Array.from(f32Weights(name, lin.source).data) };
  });
  const rows: CladoStudyRow[] = [];
  // methods often choose the same allocation: evaluate each distinct one once
  const evaluated = new Map<string, { perplexity: number; stderr: number }>();
  for (const budget of budgets) {
    for (const method of methods) {
      const source = method === 'clado-block' ? mb : method === 'clado-hybrid' ? (hybrid as CladoMeasurement) : m;
      const a = await allocate(source, { method: method === 'clado-block' || method === 'clado-hybrid' ? 'clado' : method, budgetBits: budget, objective }).catch((e: unknown) => {
        // uniform has no configuration at most budgets
        if (method === 'uniform' && isLowbitError(e) && e.code === 'E_RANGE') return null;
        throw e;
      });
      // uniform is only shown at its own sizes (elsewhere it would repeat the next smaller one)
      if (!a || (method === 'uniform' && !uniformSizes.includes(budget))) continue;
      const key = a.choice.join(',');
      let p = evaluated.get(key);
      if (!p) {
        applyAllocation(model, m, a.choice);
        const r = perplexity(model, o.valid, { ctx: o.evalCtx ?? 256 });
        for (const w of originals) model.setLinear(w.name, { format: 'f32', shape: w.shape, data: w.data });
        p = { perplexity: r.perplexity, stderr: r.stderr };
        evaluated.set(key, p);
      }
      const row: CladoStudyRow = {
        method, budget, bitsPerWeight: a.bitsPerWeight, perplexity: p.perplexity, stderr: p.stderr,
        // predicted with the full G, whichever G chose
        predictedDeltaLoss: fullValue(m, a.choice),
        layers: a.layers, solver: a.solver, seconds: a.seconds,
      };
      rows.push(row);
      o.onRow?.(row);
    }
  }
  return { measurement: m, rows, predictor: report, features };
}

function fullValue(m: CladoMeasurement, choice: number[]): number {
  const K = m.bits.length;
  const n = m.layers.length * K;
  const idx = choice.map((c, l) => l * K + c);
  let v = 0;
  for (const i of idx) for (const j of idx) v += m.G[i * n + j];
  return v;
}
