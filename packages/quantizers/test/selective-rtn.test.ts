import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { quantizeModel, selectiveRtn } from '../src/index.js';

describe('selective RTN on the embedded model', () => {
  it('keeps the measured most sensitive layers at 8 bits within a 3.5-bit budget and beats plain 3-bit RTN', async () => {
    const path = fileURLToPath(defaultModelUrl);
    const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
    const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8');
    const model = await loadModel(path);
    const r = selectiveRtn(model, { lowBits: 3, highBits: 8, budget: 3.5, calibration, maxWindows: 2 });
    expect(r.codeBits).toBeLessThanOrEqual(3.5);
    const high = r.layers.filter((l) => l.bits === 8);
    expect(high.length).toBeGreaterThan(0);
    // the promoted layers are the densest in sensitivity per weight
    const density = (l: { sensitivity: number; weights: number }) => l.sensitivity / l.weights;
    expect(Math.min(...high.map(density))).toBeGreaterThan(Math.min(...r.layers.filter((l) => l.bits === 3).map(density)));
    const plain = await loadModel(path);
    quantizeModel(plain, { method: 'rtn', bits: 3, group: 0 });
    const pSel = perplexity(model, valid, { ctx: 256 }).perplexity;
    const pPlain = perplexity(plain, valid, { ctx: 256 }).perplexity;
    console.log(`selective RTN 3/8 at ${r.codeBits.toFixed(3)} code bits: ppl ${pSel.toFixed(4)}; plain RTN int3 per-channel: ${pPlain.toFixed(4)}; promoted: ${high.map((l) => l.name).join(', ')}`);
    expect(pSel).toBeLessThan(pPlain);
  });
});
