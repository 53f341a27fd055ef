import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { calibrationLoss, isLowbitError, quantizeModel, rtnQuantize } from '../src/index.js';

const path = fileURLToPath(defaultModelUrl);
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const ratios = [1, 0.9, 0.8, 0.7];
const base = { method: 'rtn', bits: 3, group: 0, calibration, maxWindows: 2, clipSearch: ratios } as const;
const nll = async (m: Awaited<ReturnType<typeof loadModel>>) => perplexity(m, calibration, { ctx: 256, maxWindows: 2 }).nll;

describe('clipping search on the model loss (Q-Rater, optional criterion), embedded model, RTN int3 per-channel', async () => {
  // one run shared by the first two tests (each candidate costs a 2-window pass of the model)
  const byLoss = await loadModel(path);
  const r = quantizeModel(byLoss, { ...base, clipCriterion: 'loss', lossWindows: 2 });

  it('picks, for the first layer, the ratio with the lowest calibration NLL (recomputed independently)', async () => {
    const name = 'blk.0.attn_q.weight';
    const fresh = await loadModel(path);
    const lin = fresh.linear(name);
    const w = (lin.source as { data: Float32Array }).data.slice();
    const losses = ratios.map((clip) => {
      const q = rtnQuantize(w, [lin.rows, lin.cols], { bits: 3, symmetric: true, clip });
      fresh.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data: q.weights });
      return perplexity(fresh, calibration, { ctx: 256, maxWindows: 2 }).nll;
    });
    expect(r.layers[0].name).toBe(name);
    expect(r.layers[0].clip).toBe(ratios[losses.indexOf(Math.min(...losses))]);
    // the chosen layer's output error is still reported (measured on its calibration inputs)
    expect(r.layers.every((l) => Number.isFinite(l.errOutput))).toBe(true);
  });

  it('ends at a calibration NLL no higher than the output-error criterion (the quantity it minimizes)', async () => {
    const byOutput = await loadModel(path);
    const a = r;
    const b = quantizeModel(byOutput, { ...base });
    const la = await nll(byLoss);
    const lb = await nll(byOutput);
    console.log(`calibration NLL, clip by model loss ${la.toFixed(4)}, by output error ${lb.toFixed(4)}; ratios differ on ${a.layers.filter((l, i) => l.clip !== b.layers[i].clip).length} of ${a.layers.length} layers`);
    // Greedy layer by layer, so not a theorem; measured on this model: see the README's clipping rows.
    expect(la).toBeLessThanOrEqual(lb);
    // the two criteria do disagree somewhere (otherwise this test would not test the option)
    expect(a.layers.some((l, i) => l.clip !== b.layers[i].clip)).toBe(true);
  });

  it('calibrationLoss leaves the candidate in the layer; a bad criterion is an E_ARG', async () => {
    const m = await loadModel(path);
    const lin = m.linear('blk.1.ffn_up.weight');
    const zero = new Float32Array(lin.rows * lin.cols);
    const l0 = perplexity(m, calibration, { ctx: 256, maxWindows: 1 }).nll;
    const l1 = calibrationLoss(m, lin.name, [lin.rows, lin.cols], zero, calibration, { windows: 1 });
    expect(l1).toBeGreaterThan(l0);
    expect(Array.from((m.linear(lin.name).source as { data: Float32Array }).data.slice(0, 4))).toEqual([0, 0, 0, 0]);
    let err: unknown;
    try {
      quantizeModel(m, { ...base, clipCriterion: 'nll' as 'loss' });
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err) && err.code === 'E_ARG' && /clipCriterion/.test(err.message)).toBe(true);
  });
});
