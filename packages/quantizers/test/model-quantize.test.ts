import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadModel } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { quantizeModel } from '../src/index.js';
import { errorText } from './helpers.js';

const path = fileURLToPath(defaultModelUrl);
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
const base = { bits: 3, group: 0, calibration, maxWindows: 2, measure: true } as const;
const total = (r: { layers: { errOutput: number }[] }) => r.layers.reduce((s, l) => s + l.errOutput, 0);

describe('quantizeModel on the embedded model (sequential, 2 calibration windows)', () => {
  it('covers the 35 block linears in forward order, output.weight only on request', async () => {
    const r = quantizeModel(await loadModel(path), { ...base, method: 'rtn' });
    expect(r.layers.map((l) => l.name).slice(0, 4)).toEqual(['blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight']);
    expect(r.layers.length).toBe(35);
    // 3-bit codes + one fp16 scale per row: 3 + 16/64 on 64-wide rows, 3 + 16/172 (+ row padding) on ffn_down
    expect(r.bitsPerWeight).toBeGreaterThan(3.09);
    expect(r.bitsPerWeight).toBeLessThanOrEqual(3.25);
    const withOut = quantizeModel(await loadModel(path), { ...base, method: 'rtn', includeOutput: true });
    expect(withOut.layers.at(-1)?.name).toBe('output.weight');
  });

  it('clipping search and AdaDim never lose to their plain method on a layer, and gain in total (RTN int3 per-channel)', async () => {
    const plain = quantizeModel(await loadModel(path), { ...base, method: 'rtn' });
    const clipped = quantizeModel(await loadModel(path), { ...base, method: 'rtn', clipSearch: true });
    const ada = quantizeModel(await loadModel(path), { ...base, method: 'rtn', adaDim: true });
    expect(total(clipped)).toBeLessThan(0.95 * total(plain));
    expect(clipped.layers.some((l) => l.clip < 1)).toBe(true);
    expect(total(ada)).toBeLessThan(total(plain));
    expect(ada.layers.some((l) => l.dim === 'ic')).toBe(true);
  });

  it('GPTQ: lower total output error than RTN, sequentially', async () => {
    const rtn = quantizeModel(await loadModel(path), { ...base, method: 'rtn' });
    const gptq = quantizeModel(await loadModel(path), { ...base, method: 'gptq' });
    expect(total(gptq)).toBeLessThan(0.8 * total(rtn));
  });

  it('cached block inputs give bit for bit the weights and errors of passes from the embeddings (GPTQ + SmoothQuant + LM head)', async () => {
    const o = { ...base, bits: 4, group: 32, method: 'gptq', smooth: 0.5, includeOutput: true, maxWindows: 3, ctx: 128 } as const;
    const cachedModel = await loadModel(path);
    const fullModel = await loadModel(path);
    const cached = quantizeModel(cachedModel, o);
    const full = quantizeModel(fullModel, { ...o, cacheInputs: false });
    // a cache limit below the streams' size falls back to full passes too
    const limited = quantizeModel(await loadModel(path), { ...o, cacheBytes: 1024 });
    expect(cached.layers.length).toBe(36);
    expect(cached.layers.map((l) => l.errOutput)).toEqual(full.layers.map((l) => l.errOutput));
    expect(limited.layers.map((l) => l.errOutput)).toEqual(full.layers.map((l) => l.errOutput));
    for (const l of cachedModel.linears()) {
      const a = l.source as { data: Float32Array };
      const b = fullModel.linear(l.name).source as { data: Float32Array };
      expect(Array.from(a.data), l.name).toEqual(Array.from(b.data));
    }
  });

  it('the clipping search on the model loss from cached block inputs chooses and scores as with whole passes', async () => {
    const o = { ...base, method: 'rtn', clipSearch: [1, 0.8, 0.6] as number[], clipCriterion: 'loss', lossWindows: 2, maxWindows: 2, ctx: 128, measure: false } as const;
    const a = quantizeModel(await loadModel(path), o);
    const b = quantizeModel(await loadModel(path), { ...o, cacheInputs: false });
    expect(a.layers.map((l) => l.clip)).toEqual(b.layers.map((l) => l.clip));
    expect(a.layers.some((l) => l.clip < 1)).toBe(true);
  });

  it('bad input: GPTQ without calibration text, text too short to give inputs, NaN weights', async () => {
    const model = await loadModel(path);
    expect(errorText(() => quantizeModel(model, { method: 'gptq', bits: 4 }))).toMatch(/E_ARG .*needs calibration text/);
    expect(errorText(() => quantizeModel(model, { method: 'gptq', bits: 4, calibration: '\n\n' }))).toMatch(/E_ARG calibration text is too short: 0 tokens/);
    // source is a copy of the layer's weights: a NaN goes in through setLinear
    const lin = model.linear('blk.0.attn_q.weight');
    const w = (lin.source as { data: Float32Array }).data;
    w[3] = Number.NaN;
    model.setLinear(lin.name, { format: 'f32', shape: [lin.rows, lin.cols], data: w });
    expect(errorText(() => quantizeModel(model, { method: 'rtn', bits: 4 }))).toMatch(/E_NAN/);
  });
});
