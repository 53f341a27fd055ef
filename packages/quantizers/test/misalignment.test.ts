// The per-layer misalignment measure: Spearman's ρ by hand, and one layer's loss increase and local
// error recomputed independently on the embedded model.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { collectHessians, fakeQuantizer, measureMisalignment, outputError, spearmanRho } from '../src/index.js';

describe('misalignment', () => {
  it("Spearman's ρ: 1 for the same order, −1 reversed, ties averaged", () => {
    expect(spearmanRho([1, 2, 3, 4], [10, 20, 30, 400])).toBeCloseTo(1, 12);
    expect(spearmanRho([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(-1, 12);
    // ranks a = (0, 1.5, 1.5, 3), b = (0, 1, 2, 3): Σ(ra−m)(rb−m) = 4.5, √(Σ(ra−m)²·Σ(rb−m)²) = √(4.5·5)
    expect(spearmanRho([1, 2, 2, 5], [1, 2, 3, 4])).toBeCloseTo(4.5 / Math.sqrt(4.5 * 5), 12);
  });

  it("each layer's loss increase is the NLL with it alone rounded minus the full-precision NLL; the model is left as it was", async () => {
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 4000);
    const fq = fakeQuantizer(model, { format: 'int', bits: 3, group: 32 });
    const o = { ctx: 64, windows: 1 };
    const before = perplexity(model, text, { ctx: 64, maxWindows: 1 }).nll;
    const m = measureMisalignment(model, fq, text, o);
    expect(m.nll).toBe(before);
    expect(m.layers).toHaveLength(35);
    const name = 'blk.3.ffn_up.weight';
    const l = m.layers.find((x) => x.name === name);
    const lin = model.linear(name);
    const src = lin.source;
    if (src.format !== 'f32') throw new Error('f32 model');
    const q = fq.quantize(name, src.data);
    const gram = collectHessians(model, text, [name], { ctx: 64, maxWindows: 1 }).get(name)?.gram() as Float64Array;
    expect(l?.localError).toBe(outputError(src.data, q, [lin.rows, lin.cols], gram));
    model.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data: q });
    expect(l?.lossIncrease).toBe(perplexity(model, text, { ctx: 64, maxWindows: 1 }).nll - before);
    model.setLinear(name, src);
    expect(perplexity(model, text, { ctx: 64, maxWindows: 1 }).nll).toBe(before);
    model.free();
  });
});
