import { describe, expect, it } from 'vitest';
import { QUANTIZE_DEFAULTS, quantizeLayer } from '../src/index.js';
import { errorText, rng } from './helpers.js';

describe('quantizeLayer (the quantize-layer command)', () => {
  const rows = 16;
  const cols = 48;
  const n = 300;
  const r = rng(9);
  const w = Float32Array.from({ length: rows * cols }, r);
  const x = Float32Array.from({ length: n * cols }, (_, i) => r() * (1 + (i % cols) / 8));

  it('reports the fields of the issue, and GPTQ beats RTN', () => {
    const g = quantizeLayer(w, [rows, cols], x, [n, cols], { method: 'gptq', bits: 3, group: 16, symmetric: false });
    const t = quantizeLayer(w, [rows, cols], x, [n, cols], { method: 'rtn', bits: 3, group: 16, symmetric: false });
    for (const k of ['method', 'bits', 'group', 'err_output', 'err_weight', 'bits_per_weight', 'seconds'] as const) expect(g[k]).toBeDefined();
    expect(g.err_output).toBeLessThan(t.err_output);
    // RTN minimizes each weight's error, so its weight error is the smaller one
    expect(t.err_weight).toBeLessThan(g.err_weight);
    // 3-bit codes + an fp16 scale and a 3-bit zero per 16 weights (asymmetric)
    expect(g.bits_per_weight).toBeCloseTo(3 + (16 + 3) / 16, 12);
    // err_output is ‖WXᵀ − ŴXᵀ‖²_F computed directly
    let direct = 0;
    for (let s = 0; s < n; s++) for (let o = 0; o < rows; o++) {
      let d = 0;
      for (let c = 0; c < cols; c++) d += (w[o * cols + c] - g.weights[o * cols + c]) * x[s * cols + c];
      direct += d * d;
    }
    expect(g.err_output).toBeCloseTo(direct, 6);
  });

  it('defaults are QUANTIZE_DEFAULTS (int4 g32 symmetric, damp 0.01), as quantizeModel and both commands', () => {
    const d = quantizeLayer(w, [rows, cols], x, [n, cols], { method: 'gptq' });
    expect(d).toMatchObject({ bits: QUANTIZE_DEFAULTS.bits, group: QUANTIZE_DEFAULTS.group, sym: QUANTIZE_DEFAULTS.symmetric, damp: QUANTIZE_DEFAULTS.damp });
    expect([QUANTIZE_DEFAULTS.bits, QUANTIZE_DEFAULTS.group, QUANTIZE_DEFAULTS.symmetric]).toEqual([4, 32, true]);
  });

  it('names the mismatch of W and X shapes and NaN inputs', () => {
    expect(errorText(() => quantizeLayer(w, [rows, cols], x.subarray(0, n * 40), [n, 40], { method: 'rtn' }))).toMatch(/E_SHAPE inputs have 40 columns but the weights have 48/);
    const bad = Float32Array.from(x);
    bad[7] = Number.POSITIVE_INFINITY;
    expect(errorText(() => quantizeLayer(w, [rows, cols], bad, [n, cols], { method: 'gptq' }))).toMatch(/E_NAN input \[0, 7\]/);
    expect(errorText(() => quantizeLayer(w, [rows, cols], x, [n, cols], { method: 'gptq', bits: 1 }))).toMatch(/E_ARG/);
  });
});
