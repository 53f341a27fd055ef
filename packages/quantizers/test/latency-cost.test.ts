// The latency cost model (QuantX-style recipes) and the cost-swapped allocator. No speed is asserted:
// timings are only checked to be positive and finite; the formulation is checked by exhaustive search.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type DecoderModel, loadModel } from '@lowbit/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocateByCost, benchRates, type CladoMeasurement, measureClado, measureLatencyCosts } from '../src/index.js';

let model: DecoderModel;
let m: CladoMeasurement;

beforeAll(async () => {
  model = await loadModel(fileURLToPath(defaultModelUrl));
  const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
  // the diagonal only, one short window: the costs do not depend on the loss figures
  m = measureClado(model, { calibration, bits: [2, 4, 8], ctx: 32, maxWindows: 1, pairs: 'none' });
}, 120_000);

describe('measureLatencyCosts', () => {
  it('times every candidate through the runtime format it runs as; bytes grow with the width', () => {
    const c = measureLatencyCosts(model, m, { timePerCandidate: 1 });
    // the last layer's (ffn_down, 172 columns: not whole 32-blocks): int2 and int4 run on the int4
    // kernel (packed-fast.ts moves a k ≤ 4 code's zero to 8), int8 Q8_0 tiles over the row padded to 192
    expect(c.runtimeFormats).toEqual(['int4', 'int4', 'q8_0']);
    expect(c.source).toEqual(['measured', 'measured', 'measured']);
    for (let i = 0; i < c.ms.length; i++) {
      expect(Number.isFinite(c.ms[i]) && c.ms[i] > 0).toBe(true);
      expect(c.bytes[i]).toBeGreaterThan(0);
    }
    // layers of one shape share one timing per candidate (the GEMV's time does not depend on values)
    const q = m.layers.indexOf('blk.0.attn_q.weight');
    const o = m.layers.indexOf('blk.3.attn_output.weight');
    for (let k = 0; k < 3; k++) expect(c.ms[o * 3 + k]).toBe(c.ms[q * 3 + k]);
    for (let l = 0; l < m.layers.length; l++) {
      // resident bytes as the runtime holds them: int2 runs as 4-bit codes (Q4_0 tiles, fp16 scales, or
      // the int4 kernel), so it moves no more bytes than int4 and no fewer than 4-bit codes; int8 moves more
      expect(c.bytes[l * 3]).toBeLessThanOrEqual(c.bytes[l * 3 + 1]);
      expect(c.bytes[l * 3]).toBeGreaterThanOrEqual(m.counts[l] / 2);
      expect(c.bytes[l * 3 + 1]).toBeLessThan(c.bytes[l * 3 + 2]);
    }
  });

  it('with bench rates, a candidate costs its weights over the rate (positive, proportional to the layer size)', () => {
    const rate = 1e5;
    const c = measureLatencyCosts(model, m, { rates: { int4: rate }, timePerCandidate: 1 });
    expect(c.source).toEqual(['measured', 'bench', 'measured']);
    m.layers.forEach((_, l) => {
      expect(c.ms[l * 3 + 1]).toBeCloseTo(m.counts[l] / rate, 12);
    });
    expect(() => measureLatencyCosts(model, m, { rates: { int4: 0 } })).toThrow(/rate of int4/);
  });
});

describe('benchRates', () => {
  it('reads weights per ms from the kernels rows of a results file for the given variant', () => {
    const results = {
      rows: [
        { area: 'kernels', name: 'q4_0 GEMV 4096×4096', variant: 'wasm relaxed, prepared tiles', gflops: 20 },
        { area: 'kernels', name: 'q4_0 GEMV 4096×4096', variant: 'wasm simd, prepared tiles', gflops: 10 },
        { area: 'kernels', name: 'int4 g128 GEMV 4096×4096', variant: 'wasm simd', gflops: 8 },
        { area: 'kernels', name: 'f32 GEMV 4096×4096', variant: 'wasm simd', gflops: 4 },
      ],
    };
    // 2 flops per weight: GFLOP/s · 1e6 / 2 weights per ms
    expect(benchRates(results, 'simd')).toEqual({ q4_0: 5e6, int4: 4e6, f32: 2e6 });
    expect(benchRates(results, 'relaxed')).toEqual({ q4_0: 1e7 });
    expect(() => benchRates({}, 'simd')).toThrow(/rows/);
  });
});

/** A measurement with hand-made G and costs (only the fields the allocator reads). */
function synthetic(seed: number, layers: number): { m: CladoMeasurement; costs: Float64Array } {
  let s = seed;
  const r = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const K = 3;
  const n = layers * K;
  const G = new Float64Array(n * n);
  const costs = new Float64Array(n);
  for (let l = 0; l < layers; l++) {
    for (let c = 0; c < K; c++) {
      G[(l * K + c) * n + l * K + c] = (K - c) * (0.1 + r());
      costs[l * K + c] = (1 + r()) * (c + 1);
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (Math.floor(i / K) === Math.floor(j / K)) continue;
      G[i * n + j] = G[j * n + i] = (r() - 0.5) * 0.3;
    }
  }
  const names = Array.from({ length: layers }, (_, l) => `blk.0.l${l}.weight`);
  const m = {
    layers: names, counts: names.map(() => 100), bits: [2, 4, 8], formats: ['int2', 'int4', 'int8'],
    candidates: names.map(() => [2, 4, 8].map((b) => ({ bits: b, format: `int${b}`, weights: new Float32Array(0), packed: null, sizeBits: 100 * b }))),
    single: Float64Array.from({ length: n }, (_, i) => G[i * n + i]), G,
  } as unknown as CladoMeasurement;
  return { m, costs };
}

/** Every assignment: (value, cost). */
function all(m: CladoMeasurement, costs: Float64Array): { value: number; cost: number }[] {
  const L = m.layers.length;
  const n = L * 3;
  const out: { value: number; cost: number }[] = [];
  for (let code = 0; code < 3 ** L; code++) {
    const idx = Array.from({ length: L }, (_, l) => l * 3 + (Math.floor(code / 3 ** l) % 3));
    let value = 0;
    for (const i of idx) for (const j of idx) value += m.G[i * n + j];
    out.push({ value, cost: idx.reduce((t, i) => t + costs[i], 0) });
  }
  return out;
}

describe('allocateByCost', () => {
  it('least ΔL under a cost budget and least cost under a ΔL bound both equal exhaustive search', async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const { m: sm, costs } = synthetic(seed, 4);
      const every = all(sm, costs);
      const costs_ = every.map((e) => e.cost).sort((a, b) => a - b);
      const budget = costs_[Math.floor(costs_.length / 3)];
      const refLoss = Math.min(...every.filter((e) => e.cost <= budget).map((e) => e.value));
      const a = await allocateByCost(sm, { costs, budget });
      expect(a.solver?.status).toBe('Optimal');
      // HiGHS's feasibility and optimality tolerances are ≤ 1e-6 on O(1) data
      expect(a.predictedDeltaLoss).toBeCloseTo(refLoss, 6);
      expect(a.cost).toBeLessThanOrEqual(budget + 1e-9);

      const values = every.map((e) => e.value).sort((x, y) => x - y);
      const bound = values[Math.floor(values.length / 4)];
      const refCost = Math.min(...every.filter((e) => e.value <= bound).map((e) => e.cost));
      const b = await allocateByCost(sm, { costs, maxDeltaLoss: bound });
      expect(b.bound).toBe('delta-loss');
      expect(b.cost).toBeCloseTo(refCost, 9);
      expect(b.predictedDeltaLoss).toBeLessThanOrEqual(bound + 1e-6);
    }
  }, 60_000);

  it('the heuristics respect the bound they are given; out-of-range bounds are E_RANGE', async () => {
    const { m: sm, costs } = synthetic(9, 4);
    const g = await allocateByCost(sm, { method: 'greedy', costs, maxDeltaLoss: 6 });
    expect(g.additiveDeltaLoss).toBeLessThanOrEqual(6);
    const u = await allocateByCost(sm, { method: 'uniform', costs, budget: 1e9 });
    expect(new Set(u.choice).size).toBe(1);
    await expect(allocateByCost(sm, { costs, budget: 0.1 })).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(allocateByCost(sm, { costs, maxDeltaLoss: -100 })).rejects.toMatchObject({ code: 'E_RANGE' });
    await expect(allocateByCost(sm, { costs, budget: 5, maxDeltaLoss: 1 })).rejects.toMatchObject({ code: 'E_ARG' });
  }, 60_000);
});
