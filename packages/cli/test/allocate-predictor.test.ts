// lowbit allocate --method predictor and the allocation study's table and plots, on a small
// measurement (2 windows of 64 tokens) and a short validation text.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import type { CladoStudyRow, PredictorReport } from '@lowbit/quantizers';
import { describe, expect, it } from 'vitest';
import { allocationMarkdown, allocationSvg, predictorSvg } from '../src/allocation-report.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-predictor-'));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 4).join('\n'));

describe('lowbit allocate --method predictor', () => {
  it('fits on the measured configurations, reports the held-out ones and allocates within the budget', async () => {
    const r = await run(['allocate', '--method', 'predictor', '--bits', '2,4', '--budget', '3', '--configs', '9', '--calib-windows', '2', '--calib-ctx', '64', '--text', valid, '--ctx', '128', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.method).toBe('predictor');
    expect(j.bits_per_weight).toBeLessThanOrEqual(3);
    // 9 configurations, every third held out
    expect(j.predictor.train).toBe(6);
    expect(j.predictor.held_out).toBe(3);
    expect(j.predictor.spearman).toBeGreaterThanOrEqual(-1);
    expect(j.predictor.spearman).toBeLessThanOrEqual(1);
    expect(j.solver.status).toBe('Optimal');
    expect(j.solver.timed_out).toBe(false);
    // HiGHS minimised the predictor's quadratic form: its objective is the predicted ΔL
    expect(j.predictor.predicted_delta_loss).toBeCloseTo(j.solver.objective, 9);
    expect(j.measurement.pairs).toBe('none');
  }, 600_000);
});

describe('allocation study report', () => {
  const row = (method: CladoStudyRow['method'], budget: number, perplexity: number, exact: boolean): CladoStudyRow => ({
    method, budget, bitsPerWeight: budget - 0.01, perplexity, stderr: 0.1, predictedDeltaLoss: 1, layers: {}, seconds: 0.25,
    solver: exact ? { status: 'Optimal', objective: 1, bound: 1, gap: 0, seconds: 0.25, nodes: 1, columns: 10, rows: 5 } : null,
  });
  const rows = [row('uniform', 3.52, 14.07, false), row('clado', 3.52, 13.45, true), row('clado', 3, 83.27, true), row('greedy', 3, 101.67, false)];

  it('puts one budget per line, one method per column, uniform only at its own size', () => {
    const md = allocationMarkdown(rows).split('\n');
    expect(md[0]).toBe('| budget bits/w | uniform | greedy | CLADO |');
    expect(md[2]).toBe('| 3.0000 | — | 101.67 (2.990) | 83.27 (2.990, optimal gap 0%, 0.3 s) |');
    expect(md[3]).toBe('| 3.5200 = uniform | 14.07 (3.510) | — | 13.45 (3.510, optimal gap 0%, 0.3 s) |');
  });

  it('draws every row and every predictor point', () => {
    const svg = allocationSvg(rows, 5.59);
    expect(svg.match(/<circle /g)?.length).toBe(3);
    expect(svg.match(/<rect x=/g)?.length).toBe(1);
    const report: PredictorReport = {
      fit: { coefficients: [1], names: ['hessian'], trainCount: 2 }, trainCount: 2, heldOutCount: 1, spearman: 1, meanAbsError: 0.1, medianRelativeError: 0.1, seconds: 1,
      points: [{ choice: [0], bitsPerWeight: 3, measured: 1, predicted: 1.1, heldOut: false }, { choice: [1], bitsPerWeight: 4, measured: 0.5, predicted: 0.4, heldOut: false }, { choice: [0], bitsPerWeight: 3, measured: 2, predicted: 1.8, heldOut: true }],
    };
    const p = predictorSvg(report);
    // the points and the two legend markers
    expect(p.match(/<circle /g)?.length).toBe(5);
    expect(p).toContain('held out: 1 configurations, Spearman 1.000');
  });
});
