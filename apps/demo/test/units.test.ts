// The demo's pure pieces in Node (no browser): run labels, pool sizes, the Formats panel's study.
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { loadModel } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { type AllocateSettings, type QuantizeSettings, allocationLabel, settingsLabel } from '../src/api.js';
import { poolSizes } from '../src/bench.js';
import { errorStats, studyFormat } from '../src/formats-study.js';

describe('settingsLabel', () => {
  const base: QuantizeSettings = { method: 'rtn', format: 'int', bits: 4, group: 32, symmetric: true, actOrder: false, staticGroups: false, calibWindows: 8, evalWindows: 4, ctx: 256 };
  it('names method, format, grouping and extras', () => {
    expect(settingsLabel(base)).toBe('RTN int4 g32');
    expect(settingsLabel({ ...base, group: 0, symmetric: false })).toBe('RTN int4 per-channel asym');
    expect(settingsLabel({ ...base, method: 'gptq', actOrder: true, format: 'q4_0' })).toBe('GPTQ act-order q4_0');
    expect(settingsLabel({ ...base, smooth: 0.5, adaDim: true, clipSearch: true })).toBe('RTN int4 g32 + SmoothQuant α=0.5 + AdaDim + clip search');
  });
});

describe('allocationLabel', () => {
  const base: AllocateSettings = { bits: [2, 4, 8], ggml: [], method: 'clado', budgetBits: 4, pairs: 'block', calibWindows: 4, evalWindows: 4, ctx: 256 };
  it('names the allocator, the candidates and the budget', () => {
    expect(allocationLabel(base)).toBe('CLADO int{2,4,8} g32 at 4 bits/weight');
    expect(allocationLabel({ ...base, method: 'uniform', bits: [], ggml: ['q4_0', 'q8_0'], budgetBits: 6 })).toBe('uniform {q4_0,q8_0} at 6 bits/weight');
  });
});

describe('poolSizes', () => {
  it('doubles from 2 and ends at the largest', () => {
    expect(poolSizes(1)).toEqual([]);
    expect(poolSizes(2)).toEqual([2]);
    expect(poolSizes(6)).toEqual([2, 4, 6]);
    expect(poolSizes(16)).toEqual([2, 4, 8, 16]);
  });
});

describe('errorStats', () => {
  it('matches a hand computation', () => {
    const w = new Float32Array([1, -1, 2, 0]);
    const q = new Float32Array([1, -0.5, 2, 0.5]);
    const s = errorStats(w, q, 4);
    // errors 0, 0.5, 0, 0.5: Σe² = 0.5, Σw² = 6
    expect(s.sqnrDb).toBeCloseTo(10 * Math.log10(12), 12);
    expect(s.rmsError).toBeCloseTo(Math.sqrt(0.5 / 4), 12);
    expect(s.maxAbsError).toBe(0.5);
    // bins of 0.25 over [-0.5, 0.5): 0 falls in bin 2, 0.5 (the top edge) in the last bin
    expect(s.hist).toEqual({ lo: -0.5, width: 0.25, counts: [0, 0, 2, 2] });
  });
});

describe('studyFormat on stories260K', () => {
  it('stores each format at its bits per weight and refuses ggml blocks on rows that are not whole blocks', async () => {
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    try {
      const gate = model.linear('blk.0.ffn_gate.weight'); // [172, 64]
      const w = (gate.source as { data: Float32Array }).data;
      const bits = (f: Parameters<typeof studyFormat>[0]) => studyFormat(f, gate.name, w, gate.rows, gate.cols).bitsPerWeight;
      expect(bits('q8_0')).toBe(8.5);
      expect(bits('q4_0')).toBe(4.5);
      expect(bits('int4 g32')).toBe(4.5); // 4-bit codes + an fp16 scale per 32
      expect(bits('mxfp4')).toBe(4.25); // 4-bit elements + an 8-bit scale per 32
      const q8 = studyFormat('q8_0', gate.name, w, gate.rows, gate.cols);
      const q4 = studyFormat('q4_0', gate.name, w, gate.rows, gate.cols);
      // about 6 dB per bit: 8-bit blocks are far closer than 4-bit ones
      expect(errorStats(w, q8.dequantized).sqnrDb - errorStats(w, q4.dequantized).sqnrDb).toBeGreaterThan(18);
      const down = model.linear('blk.0.ffn_down.weight'); // [64, 172]: 172 is not a multiple of 32
      expect(() => studyFormat('q4_0', down.name, (down.source as { data: Float32Array }).data, down.rows, down.cols)).toThrow(/not whole blocks of 32/);
    } finally {
      model.free();
    }
  });
});
