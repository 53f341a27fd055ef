import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { quantizeModel } from '../src/index.js';

describe('SmoothQuant folded into the norms', () => {
  it('the smoothing fold keeps the function: int8 g32 + smooth 0.5 stays within 0.5% of full-precision perplexity, the norms change, smooth > 1 is refused', async () => {
    const path = fileURLToPath(defaultModelUrl);
    const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 6).join('\n');
    const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const fp = perplexity(await loadModel(path), valid, { ctx: 256 }).perplexity;
    const model = await loadModel(path);
    const norm0 = Float32Array.from(model.weights.layers[0].attnNorm);
    quantizeModel(model, { method: 'rtn', bits: 8, group: 32, smooth: 0.5, calibration, maxWindows: 2 });
    const q = perplexity(model, valid, { ctx: 256 }).perplexity;
    expect(model.weights.layers[0].attnNorm).not.toEqual(norm0);
    // int8 g32 alone moves this model's perplexity by ~0.1%; a wrong fold (s applied twice or not at all) by far more
    expect(Math.abs(q - fp) / fp).toBeLessThan(0.005);
    expect(() => quantizeModel(model, { method: 'rtn', bits: 4, smooth: 2, calibration })).toThrow(/smooth/);
  });
});
