import { LowbitError } from '@lowbit/core';
import highsImport, { type Highs } from 'highs';

type HighsLoader = () => Promise<Highs>;
// The package's types describe its CommonJS build; Node's ESM import resolves to the .mjs build, whose default export is the loader itself.
const highsModule = highsImport as unknown as HighsLoader | { default: HighsLoader };
const highsLoader: HighsLoader = typeof highsModule === 'function' ? highsModule : highsModule.default;

/**
 * min xᵀGx over binary x, exactly one choice per group, subject to Σ sizeᵢ·xᵢ ≤ budget.
 * Variables are numbered group after group: group g owns `choices[g]` consecutive variables.
 * The bit-allocation instance of CLADO: a group is a layer, a choice one of its quantization
 * configurations, G the measured loss-change matrix.
 */
export interface OneHotQuadraticProblem {
  /** Number of choices of each group (each ≥ 1). */
  choices: readonly number[];
  /** Symmetric n×n matrix, row-major, n = Σ choices. Entries between two choices of one group are ignored (one-hot: their product is 0). */
  G: ArrayLike<number>;
  /** Cost of each variable in the budget row (bytes, bits…), length n. */
  sizes: ArrayLike<number>;
  budget: number;
}

export interface OneHotSolveOptions {
  /**
   * How the products xᵢxⱼ become linear:
   * - 'assignment' (default): for every pair of groups, a table y of the K_g×K_h products with
   *   Σ_b y_ab = x_a and Σ_a y_ab = x_b, y ≥ 0. For one-hot binary x this forces y_ab = x_a·x_b
   *   whatever the signs of G, and its LP relaxation is at least as tight as McCormick's.
   * - 'mccormick': one y per nonzero product, y ≥ xᵢ + xⱼ − 1 where Gᵢⱼ > 0 (the objective pushes
   *   y down) and y ≤ xᵢ, y ≤ xⱼ where Gᵢⱼ < 0 (it pushes y up); y ∈ [0, 1].
   */
  linearisation?: 'assignment' | 'mccormick';
  /** Drop the off-diagonal terms: the usual additive-sensitivity allocation (a multiple-choice knapsack). */
  diagonalOnly?: boolean;
  /** Seconds; at the limit the best solution found is returned with its gap (status 'Time limit reached'). Default 60. */
  timeLimit?: number;
  /** Relative MIP gap at which HiGHS stops. Default 0 (prove optimality). */
  relGap?: number;
}

export interface OneHotSolution {
  /** Chosen index within each group. */
  choice: number[];
  /** xᵀGx of the choice with the full G (also when solved with `diagonalOnly`). */
  value: number;
  /** Σ size of the choice. */
  size: number;
  /** The solver's report. */
  solver: {
    /** HiGHS model status, e.g. 'Optimal', 'Time limit reached'. */
    status: string;
    /** HiGHS objective (the linearised model's, = `value` unless `diagonalOnly`). */
    objective: number;
    /** Best proven lower bound on the objective. */
    bound: number;
    /** Relative gap |objective − bound| / max(|objective|, ε), as HiGHS reports it. */
    gap: number;
    seconds: number;
    nodes: number;
    /** Columns and rows of the MILP. */
    columns: number;
    rows: number;
  };
}

let loaded: Promise<Highs> | null = null;
/** HiGHS compiled to WASM, loaded once per process. */
function highs(): Promise<Highs> {
  if (!loaded) loaded = highsLoader();
  return loaded;
}

/** Validates the problem; returns n and the first variable of each group. */
function check(p: OneHotQuadraticProblem): { n: number; start: number[] } {
  const start: number[] = [];
  let n = 0;
  for (const [g, k] of p.choices.entries()) {
    if (!Number.isInteger(k) || k < 1) throw new LowbitError('E_ARG', `one-hot IQP: group ${g} has ${k} choices (at least 1)`);
    start.push(n);
    n += k;
  }
  if (n === 0) throw new LowbitError('E_ARG', 'one-hot IQP: no groups');
  if (p.sizes.length !== n) throw new LowbitError('E_SHAPE', `one-hot IQP: ${n} variables but ${p.sizes.length} sizes`);
  if (p.G.length !== n * n) throw new LowbitError('E_SHAPE', `one-hot IQP: G has ${p.G.length} entries, ${n}×${n} = ${n * n} expected`);
  for (let i = 0; i < n * n; i++) if (!Number.isFinite(p.G[i])) throw new LowbitError('E_NAN', `one-hot IQP: G[${Math.floor(i / n)}][${i % n}] is ${p.G[i]}`);
  for (let i = 0; i < n; i++) if (!(Number.isFinite(p.sizes[i]) && p.sizes[i] >= 0)) throw new LowbitError('E_ARG', `one-hot IQP: size ${i} is ${p.sizes[i]} (finite, ≥ 0)`);
  if (!Number.isFinite(p.budget)) throw new LowbitError('E_ARG', `one-hot IQP: budget is ${p.budget}`);
  return { n, start };
}

/** The smallest and largest total size over all choices (the budgets for which the problem is feasible start at the first). */
export function oneHotSizeRange(p: Pick<OneHotQuadraticProblem, 'choices' | 'sizes'>): { min: number; max: number } {
  let i = 0;
  let min = 0;
  let max = 0;
  for (const k of p.choices) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < k; c++, i++) {
      lo = Math.min(lo, p.sizes[i]);
      hi = Math.max(hi, p.sizes[i]);
    }
    min += lo;
    max += hi;
  }
  return { min, max };
}

/** xᵀGx and Σ size for a choice per group (only products across groups and the diagonal count). */
export function oneHotValue(p: OneHotQuadraticProblem, choice: readonly number[]): { value: number; size: number } {
  const { n, start } = check(p);
  if (choice.length !== p.choices.length) throw new LowbitError('E_SHAPE', `one-hot IQP: ${choice.length} choices for ${p.choices.length} groups`);
  const idx = choice.map((c, g) => {
    if (!(Number.isInteger(c) && c >= 0 && c < p.choices[g])) throw new LowbitError('E_RANGE', `one-hot IQP: group ${g} choice ${c} is outside 0..${p.choices[g] - 1}`);
    return start[g] + c;
  });
  let value = 0;
  let size = 0;
  for (const i of idx) {
    size += p.sizes[i];
    for (const j of idx) value += p.G[i * n + j];
  }
  return { value, size };
}

/**
 * Solves the one-hot integer quadratic program exactly (up to `relGap`) as a MILP with HiGHS.
 * The objective is Σᵢ Gᵢᵢxᵢ + Σ_{i<j, different groups} 2Gᵢⱼ·yᵢⱼ with yᵢⱼ = xᵢxⱼ enforced by the
 * chosen linearisation (xᵢ² = xᵢ for binaries, so the diagonal is linear already).
 * A budget below the smallest reachable size is a LowbitError naming that size.
 */
export async function solveOneHotQuadratic(p: OneHotQuadraticProblem, o: OneHotSolveOptions = {}): Promise<OneHotSolution> {
  const { n } = check(p);
  const range = oneHotSizeRange(p);
  if (p.budget < range.min) {
    throw new LowbitError('E_RANGE', `one-hot IQP: budget ${p.budget} is below the smallest reachable size ${range.min} (largest: ${range.max})`);
  }
  const cost = Array.from({ length: n }, (_, i) => p.G[i * n + i]);
  return solveLinearised(p, o, { cost, budget: { sizes: p.sizes, max: p.budget } }, `budget ${p.budget} (reachable sizes ${range.min}..${range.max})`);
}

/**
 * The same one-hot program with objective and constraint swapped: min Σ costᵢ·xᵢ subject to
 * xᵀGx ≤ maxValue (QuantX-style recipes: the fastest configuration whose predicted loss change stays
 * under a bound). The products are linearised as in `solveOneHotQuadratic`; both linearisations stay
 * exact in a ≤ row (assignment forces y = xᵢxⱼ; McCormick's one-sided bounds let y equal the product
 * and only make the row harder otherwise). `sizes` is the linear cost minimised; `budget` is unused.
 */
export async function solveOneHotMinCost(p: OneHotQuadraticProblem & { maxValue: number }, o: Omit<OneHotSolveOptions, 'diagonalOnly'> = {}): Promise<OneHotSolution> {
  check(p);
  if (!Number.isFinite(p.maxValue)) throw new LowbitError('E_ARG', `one-hot IQP: maxValue is ${p.maxValue}`);
  return solveLinearised(p, o, { cost: Array.from(p.sizes), quadraticMax: p.maxValue }, `xᵀGx ≤ ${p.maxValue}`);
}

/**
 * Builds and solves the MILP: x binary (one per choice), y continuous (one per linearised product).
 * `budget` puts Σ sizes·x ≤ max as a row and the quadratic in the objective; `quadraticMax` puts the
 * quadratic in a row ≤ quadraticMax and leaves the objective linear in x.
 */
async function solveLinearised(
  p: OneHotQuadraticProblem, o: OneHotSolveOptions,
  mode: { cost: number[]; budget?: { sizes: ArrayLike<number>; max: number }; quadraticMax?: number }, what: string,
): Promise<OneHotSolution> {
  const { n, start } = check(p);
  const lin = o.linearisation ?? 'assignment';
  if (lin !== 'assignment' && lin !== 'mccormick') throw new LowbitError('E_ARG', `one-hot IQP: linearisation must be 'assignment' or 'mccormick', got ${String(lin)}`);
  const inObjective = mode.quadraticMax === undefined;
  const groups = p.choices.length;

  // Columns: x (binary) first, then y (continuous); rows built as CSR.
  const cost: number[] = [];
  const lower: number[] = [];
  const upper: number[] = [];
  const integrality: number[] = [];
  for (let i = 0; i < n; i++) {
    cost.push(mode.cost[i]);
    lower.push(0);
    upper.push(1);
    integrality.push(1);
  }
  const rowLower: number[] = [];
  const rowUpper: number[] = [];
  const starts: number[] = [0];
  const indices: number[] = [];
  const values: number[] = [];
  const row = (lo: number, hi: number, entries: [number, number][]): void => {
    for (const [c, v] of entries) {
      indices.push(c);
      values.push(v);
    }
    starts.push(indices.length);
    rowLower.push(lo);
    rowUpper.push(hi);
  };
  // the quadratic's entries when it is a row rather than the objective
  const quadratic: [number, number][] = inObjective ? [] : Array.from({ length: n }, (_, i) => [i, p.G[i * n + i]] as [number, number]);
  const addY = (c: number, ub: number): number => {
    cost.push(inObjective ? c : 0);
    lower.push(0);
    upper.push(ub);
    integrality.push(0);
    if (!inObjective) quadratic.push([cost.length - 1, c]);
    return cost.length - 1;
  };
  const pairCost = (i: number, j: number): number => p.G[i * n + j] + p.G[j * n + i]; // 2Gᵢⱼ for a symmetric G; a non-symmetric one counts as its symmetric part

  const inf = (await highs()).infinity;
  for (let g = 0; g < groups; g++) {
    row(1, 1, Array.from({ length: p.choices[g] }, (_, c) => [start[g] + c, 1] as [number, number]));
  }
  const budget = mode.budget;
  if (budget) row(-inf, budget.max, Array.from({ length: n }, (_, i) => [i, budget.sizes[i]] as [number, number]));

  if (!o.diagonalOnly) {
    for (let g = 0; g < groups; g++) {
      for (let h = g + 1; h < groups; h++) {
        const [kg, kh] = [p.choices[g], p.choices[h]];
        let any = false;
        for (let a = 0; a < kg && !any; a++) for (let b = 0; b < kh && !any; b++) any = pairCost(start[g] + a, start[h] + b) !== 0;
        if (!any) continue;
        if (lin === 'assignment') {
          const y: number[][] = [];
          for (let a = 0; a < kg; a++) {
            y.push([]);
            for (let b = 0; b < kh; b++) y[a].push(addY(pairCost(start[g] + a, start[h] + b), inf));
          }
          for (let a = 0; a < kg; a++) row(0, 0, [...y[a].map((c) => [c, 1] as [number, number]), [start[g] + a, -1]]);
          for (let b = 0; b < kh; b++) row(0, 0, [...y.map((r) => [r[b], 1] as [number, number]), [start[h] + b, -1]]);
        } else {
          for (let a = 0; a < kg; a++) {
            for (let b = 0; b < kh; b++) {
              const [i, j] = [start[g] + a, start[h] + b];
              const c = pairCost(i, j);
              if (c === 0) continue;
              const yc = addY(c, 1);
              if (c > 0) row(-1, inf, [[yc, 1], [i, -1], [j, -1]]);
              else {
                row(-inf, 0, [[yc, 1], [i, -1]]);
                row(-inf, 0, [[yc, 1], [j, -1]]);
              }
            }
          }
        }
      }
    }
  }
  if (!inObjective) row(-inf, mode.quadraticMax as number, quadratic);

  const h = await highs();
  const columns = cost.length;
  const rows = rowLower.length;
  const model = h.createModel();
  try {
    // symmetry detection alone took ~0.5 s per solve in the WASM build, more than whole small solves
    model.options.set({ output_flag: false, time_limit: o.timeLimit ?? 60, mip_rel_gap: o.relGap ?? 0, mip_detect_symmetry: false });
    model.passModel({
      numCols: columns, numRows: rows, colCost: cost, colLower: lower, colUpper: upper, rowLower, rowUpper, integrality: integrality as (0 | 1)[],
      matrix: { format: 'csr', numRows: rows, numCols: columns, starts, indices, values },
    });
    const t0 = performance.now();
    model.run();
    const seconds = (performance.now() - t0) / 1000;
    const code = model.getModelStatus();
    const status = statusName(h, code);
    const x = code === h.constants.modelStatus.infeasible ? null : model.getSolution().colValue;
    const choice: number[] = [];
    if (x && x.length === columns) {
      for (let g = 0; g < groups; g++) {
        let best = 0;
        for (let c = 1; c < p.choices[g]; c++) if (x[start[g] + c] > x[start[g] + best]) best = c;
        choice.push(best);
      }
    }
    if (choice.length !== groups || !(Number(model.info.get('primal_solution_status')) >= 2)) {
      throw new LowbitError('E_RANGE', `one-hot IQP: HiGHS found no feasible choice (status: ${status}) for ${what}`);
    }
    const { value, size } = oneHotValue(p, choice);
    return {
      choice, value, size,
      solver: {
        status, seconds, columns, rows,
        objective: model.getObjectiveValue(),
        bound: Number(model.info.get('mip_dual_bound')),
        gap: Number(model.info.get('mip_gap')),
        nodes: Number(model.info.get('mip_node_count')),
      },
    };
  } finally {
    model.dispose();
  }
}

function statusName(h: Highs, code: number): string {
  const names: Record<string, string> = {
    notSet: 'Not set', loadError: 'Load error', modelError: 'Model error', presolveError: 'Presolve error', solveError: 'Solve error',
    postsolveError: 'Postsolve error', empty: 'Empty', optimal: 'Optimal', infeasible: 'Infeasible', unboundedOrInfeasible: 'Infeasible or unbounded',
    unbounded: 'Unbounded', objectiveBound: 'Bound on objective reached', objectiveTarget: 'Target for objective reached',
    timeLimit: 'Time limit reached', iterationLimit: 'Iteration limit reached',
  };
  for (const [key, value] of Object.entries(h.constants.modelStatus)) if (value === code) return names[key] ?? key;
  return `status ${code}`;
}

/**
 * Uniform precision: the same choice index in every group (groups must list their choices in the
 * same order), the feasible one with the least xᵀGx. Null when no uniform choice fits the budget.
 */
export function uniformChoice(p: OneHotQuadraticProblem): { choice: number[]; value: number; size: number; index: number } | null {
  check(p);
  const k = p.choices[0];
  if (!p.choices.every((c) => c === k)) throw new LowbitError('E_ARG', 'uniform allocation: every group must have the same choices');
  let best: { choice: number[]; value: number; size: number; index: number } | null = null;
  for (let c = 0; c < k; c++) {
    const choice = p.choices.map(() => c);
    const r = oneHotValue(p, choice);
    if (r.size <= p.budget && (!best || r.value < best.value)) best = { choice, ...r, index: c };
  }
  return best;
}

/**
 * Greedy by sensitivity per unit size: start every group at its smallest choice, then repeatedly
 * take the upgrade (any larger choice of one group) with the largest diagonal-loss decrease per
 * unit of added size that still fits the budget, until none improves. The usual heuristic the
 * exact programs are compared with; it sees only the diagonal of G.
 */
export function greedyChoice(p: OneHotQuadraticProblem): { choice: number[]; value: number; size: number } {
  const { n, start } = check(p);
  const range = oneHotSizeRange(p);
  if (p.budget < range.min) throw new LowbitError('E_RANGE', `greedy allocation: budget ${p.budget} is below the smallest reachable size ${range.min}`);
  const d = (g: number, c: number): number => p.G[(start[g] + c) * n + start[g] + c];
  const s = (g: number, c: number): number => p.sizes[start[g] + c];
  const choice = p.choices.map((k, g) => {
    let best = 0;
    for (let c = 1; c < k; c++) if (s(g, c) < s(g, best) || (s(g, c) === s(g, best) && d(g, c) < d(g, best))) best = c;
    return best;
  });
  let size = choice.reduce((t, c, g) => t + s(g, c), 0);
  for (;;) {
    let move: [number, number] | null = null;
    let rate = 0;
    for (let g = 0; g < choice.length; g++) {
      for (let c = 0; c < p.choices[g]; c++) {
        const gain = d(g, choice[g]) - d(g, c);
        const extra = s(g, c) - s(g, choice[g]);
        if (gain <= 0 || size + extra > p.budget) continue;
        // a free improvement (no extra size) beats any paid one
        const r = extra <= 0 ? Infinity : gain / extra;
        if (r > rate || (r === rate && move && gain > d(move[0], choice[move[0]]) - d(move[0], move[1]))) {
          rate = r;
          move = [g, c];
        }
      }
    }
    if (!move) break;
    size += s(move[0], move[1]) - s(move[0], choice[move[0]]);
    choice[move[0]] = move[1];
  }
  return { choice, ...oneHotValue(p, choice) };
}
