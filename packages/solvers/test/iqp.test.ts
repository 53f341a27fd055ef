import { describe, expect, it } from 'vitest';
import { greedyChoice, isLowbitError, type OneHotQuadraticProblem, oneHotSizeRange, solveOneHotMinCost, solveOneHotQuadratic, uniformChoice } from '../src/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A random instance shaped like bit allocation: sizes grow with the choice, diagonal loss falls, cross terms of both signs. */
function instance(seed: number, groups: number, k: number): OneHotQuadraticProblem {
  const r = rng(seed);
  const n = groups * k;
  const G = new Float64Array(n * n);
  const sizes = new Float64Array(n);
  for (let g = 0; g < groups; g++) {
    const w = 1 + Math.floor(r() * 4);
    for (let c = 0; c < k; c++) {
      const i = g * k + c;
      sizes[i] = w * (c + 2);
      G[i * n + i] = (k - c) * (0.2 + r()) ** 2;
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (Math.floor(i / k) === Math.floor(j / k)) continue;
      const v = (r() - 0.5) * 0.8;
      G[i * n + j] = v;
      G[j * n + i] = v;
    }
  }
  const { min, max } = oneHotSizeRange({ choices: Array(groups).fill(k), sizes });
  return { choices: Array(groups).fill(k), G, sizes, budget: min + (max - min) * (0.25 + 0.5 * r()) };
}

/** Independent reference: every assignment, xᵀGx summed over all (i, j) pairs of chosen variables. */
function exhaustive(p: OneHotQuadraticProblem): { value: number; choice: number[] } {
  const n = p.sizes.length;
  const starts = p.choices.map((_, g) => p.choices.slice(0, g).reduce((a, b) => a + b, 0));
  let best = { value: Infinity, choice: [] as number[] };
  const pick: number[] = [];
  const rec = (g: number): void => {
    if (g === p.choices.length) {
      const idx = pick.map((c, h) => starts[h] + c);
      if (idx.reduce((s, i) => s + p.sizes[i], 0) > p.budget) return;
      let v = 0;
      for (const i of idx) for (const j of idx) v += p.G[i * n + j];
      if (v < best.value) best = { value: v, choice: [...pick] };
      return;
    }
    for (let c = 0; c < p.choices[g]; c++) {
      pick[g] = c;
      rec(g + 1);
    }
  };
  rec(0);
  return best;
}

describe('solveOneHotQuadratic', () => {
  it('reaches the exhaustive optimum on random instances, with both linearisations', async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const p = instance(seed, 3 + (seed % 3), seed % 2 ? 3 : 4);
      const ref = exhaustive(p);
      for (const linearisation of ['assignment', 'mccormick'] as const) {
        const s = await solveOneHotQuadratic(p, { linearisation });
        expect(s.solver.status).toBe('Optimal');
        // HiGHS's feasibility and integrality tolerances are 1e-6..1e-9 on O(1) data
        expect(s.value).toBeCloseTo(ref.value, 6);
        expect(s.solver.objective).toBeCloseTo(ref.value, 6);
        expect(s.solver.bound).toBeLessThanOrEqual(s.solver.objective + 1e-6);
        expect(s.solver.gap).toBeLessThanOrEqual(1e-6);
        expect(s.size).toBeLessThanOrEqual(p.budget);
      }
    }
  }, 120_000);

  it('diagonalOnly solves the additive problem exactly and reports the full value of its choice', async () => {
    for (let seed = 20; seed < 26; seed++) {
      const p = instance(seed, 4, 3);
      const n = p.sizes.length;
      const D = new Float64Array(n * n);
      for (let i = 0; i < n; i++) D[i * n + i] = p.G[i * n + i];
      const ref = exhaustive({ ...p, G: D });
      const s = await solveOneHotQuadratic(p, { diagonalOnly: true });
      expect(s.solver.objective).toBeCloseTo(ref.value, 6);
      const sub = subGrid(p, s.choice);
      expect(s.value).toBeCloseTo(sub.reduce((a, v) => a + v, 0), 9);
      // the full optimum can only be at least as good as the diagonal one's true value
      expect(exhaustive(p).value).toBeLessThanOrEqual(s.value + 1e-9);
    }
  }, 60_000);

  it('names the smallest reachable size when the budget is below it', async () => {
    const p = instance(3, 3, 3);
    const { min } = oneHotSizeRange(p);
    const err = await solveOneHotQuadratic({ ...p, budget: min - 1 }).catch((e: unknown) => e);
    expect(isLowbitError(err) && err.code).toBe('E_RANGE');
    expect(String((err as Error).message)).toContain(`smallest reachable size ${min}`);
    const ok = await solveOneHotQuadratic({ ...p, budget: min });
    expect(ok.size).toBe(min);
  });

  it('rejects a G of the wrong size and non-finite entries', async () => {
    const p = instance(4, 2, 2);
    await expect(solveOneHotQuadratic({ ...p, G: new Float64Array(3) })).rejects.toMatchObject({ code: 'E_SHAPE' });
    const G = Float64Array.from(p.G);
    G[1] = Number.NaN;
    await expect(solveOneHotQuadratic({ ...p, G })).rejects.toMatchObject({ code: 'E_NAN' });
  });
});

/** The 1-choice-per-group problem whose G is the chosen variables' submatrix (to evaluate a choice by the reference's own sum). */
function subGrid(p: OneHotQuadraticProblem, choice: number[]): Float64Array {
  const n = p.sizes.length;
  const k = choice.length;
  const starts = p.choices.map((_, g) => p.choices.slice(0, g).reduce((a, b) => a + b, 0));
  const idx = choice.map((c, g) => starts[g] + c);
  return Float64Array.from({ length: k * k }, (_, t) => p.G[idx[Math.floor(t / k)] * n + idx[t % k]]);
}

describe('baselines', () => {
  it('uniform picks the best same-index choice that fits', () => {
    const p = instance(7, 4, 3);
    const u = uniformChoice(p);
    // sizes are w·(c+2): the uniform choices' sizes are Σw·(c+2)
    const feasible = [0, 1, 2].filter((c) => p.choices.reduce((s, _, g) => s + p.sizes[g * 3 + c], 0) <= p.budget);
    if (feasible.length === 0) expect(u).toBeNull();
    else expect(feasible).toContain(u?.index);
    expect(uniformChoice({ ...p, budget: oneHotSizeRange(p).min - 1 })).toBeNull();
  });

  it('greedy stays within the budget and never beats the exact diagonal optimum on the diagonal objective', async () => {
    for (let seed = 30; seed < 36; seed++) {
      const p = instance(seed, 4, 4);
      const n = p.sizes.length;
      const g = greedyChoice(p);
      expect(g.size).toBeLessThanOrEqual(p.budget);
      const diag = (choice: number[]) => choice.reduce((s, c, h) => s + p.G[(h * 4 + c) * n + h * 4 + c], 0);
      const d = await solveOneHotQuadratic(p, { diagonalOnly: true });
      expect(diag(g.choice)).toBeGreaterThanOrEqual(d.solver.objective - 1e-9);
    }
  }, 60_000);

  it('greedy with an unlimited budget takes every group to its least-loss choice', () => {
    const p = { ...instance(40, 3, 4), budget: 1e12 };
    const n = p.sizes.length;
    const g = greedyChoice(p);
    for (let h = 0; h < 3; h++) {
      const d = [0, 1, 2, 3].map((c) => p.G[(h * 4 + c) * n + h * 4 + c]);
      expect(d[g.choice[h]]).toBe(Math.min(...d));
    }
  });
});

/** Every assignment: the least Σ cost among those with xᵀGx ≤ maxValue (the swapped program). */
function exhaustiveMinCost(p: OneHotQuadraticProblem, maxValue: number): { cost: number; value: number } | null {
  const n = p.sizes.length;
  const starts = p.choices.map((_, g) => p.choices.slice(0, g).reduce((a, b) => a + b, 0));
  let best: { cost: number; value: number } | null = null;
  const pick: number[] = [];
  const rec = (g: number): void => {
    if (g === p.choices.length) {
      const idx = pick.map((c, h) => starts[h] + c);
      let v = 0;
      for (const i of idx) for (const j of idx) v += p.G[i * n + j];
      const cost = idx.reduce((s, i) => s + p.sizes[i], 0);
      if (v <= maxValue && (!best || cost < best.cost)) best = { cost, value: v };
      return;
    }
    for (let c = 0; c < p.choices[g]; c++) {
      pick[g] = c;
      rec(g + 1);
    }
  };
  rec(0);
  return best;
}

describe('solveOneHotMinCost (objective and constraint swapped)', () => {
  it('reaches the exhaustive least cost under a loss bound, with both linearisations', async () => {
    for (let seed = 50; seed < 56; seed++) {
      const p = instance(seed, 3 + (seed % 2), 3);
      // a bound between the best and a middling configuration's loss, so the row binds
      const best = exhaustive({ ...p, budget: Infinity }).value;
      const maxValue = best + (0.3 + 0.1 * (seed % 3)) * Math.abs(best) + 0.5;
      const ref = exhaustiveMinCost(p, maxValue);
      expect(ref).not.toBeNull();
      for (const linearisation of ['assignment', 'mccormick'] as const) {
        const s = await solveOneHotMinCost({ ...p, maxValue }, { linearisation });
        expect(s.solver.status).toBe('Optimal');
        // sizes are integers here, so the least cost is exact; the row holds to HiGHS's 1e-6 feasibility tolerance
        expect(s.size).toBe(ref?.cost);
        expect(s.solver.objective).toBeCloseTo(ref?.cost as number, 6);
        expect(s.value).toBeLessThanOrEqual(maxValue + 1e-6);
      }
    }
  }, 120_000);

  it('a bound below every configuration is E_RANGE', async () => {
    const p = instance(60, 3, 3);
    const best = exhaustive({ ...p, budget: Infinity }).value;
    await expect(solveOneHotMinCost({ ...p, maxValue: best - 1 })).rejects.toMatchObject({ code: 'E_RANGE' });
  });
});
