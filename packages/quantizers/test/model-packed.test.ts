// quantizeModel's packed tensors are what the model computes with: every INT-k layer (act-order
// without static groups included, through its column → group map) and every MX layer decodes to
// exactly the fake-quantized weights left in the model, and a saved file evaluates as the model did.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type PackedIntTensor, dequantizeInt } from '@lowbit/formats';
import { type MxRowsTensor, dequantizeMxRows, loadModel, loadQuantizedSafetensors, perplexity, saveModel, saveModelSafetensors } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { quantizeModel } from '../src/index.js';

const path = fileURLToPath(defaultModelUrl);
const calibration = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
// the first 6 stories of the validation text keep the perplexity checks short
const valid = readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 6).join('\n');
const dir = mkdtempSync(join(tmpdir(), 'lowbit-model-packed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('quantizeModel packed tensors (2 calibration windows)', () => {
  it('GPTQ int3 g32 act-order without static groups: every layer packed with its g_idx, decoding to the weights in the model; GGUF and safetensors evaluate the same', async () => {
    const model = await loadModel(path);
    const r = quantizeModel(model, { method: 'gptq', bits: 3, group: 32, actOrder: true, calibration, maxWindows: 2 });
    expect(r.packed.size).toBe(35);
    let permuted = 0;
    for (const [name, t] of r.packed) {
      expect(t?.kind).toBe('int');
      const p = t as PackedIntTensor;
      const g = p.gIdx as Int32Array;
      expect(g).toBeInstanceOf(Int32Array);
      if (g.some((v, c) => v !== Math.floor(c / 32))) permuted++;
      expect(dequantizeInt(p)).toEqual((model.linear(name).source as { data: Float32Array }).data);
    }
    expect(permuted).toBeGreaterThan(30); // act-order moves columns between groups in (nearly) every layer

    const before = perplexity(model, valid, { ctx: 256 }).perplexity;
    const gguf = join(dir, 'ao.gguf');
    await saveModel(model, gguf, { target: 'F32', packed: r.packed });
    const fromGguf = await loadModel(gguf);
    // x gathered in group order onto Q4_0 tiles (runtime packed-fast.ts): the same weights, int8
    // activations (the embedded model's int3 g32 without act-order: 0.14% on perplexity), 1% allowed
    expect(fromGguf.linear('blk.0.attn_q.weight').format).toBe('q4_0');
    expect(Math.abs(perplexity(fromGguf, valid, { ctx: 256 }).perplexity / before - 1)).toBeLessThan(1e-2);
    const st = join(dir, 'ao.safetensors');
    await saveModelSafetensors(model, st, { packed: r.packed });
    const fromSt = await loadQuantizedSafetensors(st);
    // the GPTQ layout rounds scales to f16 (2^-11 relative each), activations int8 as above: 1%
    expect(Math.abs(perplexity(fromSt, valid, { ctx: 256 }).perplexity / before - 1)).toBeLessThan(1e-2);
    for (const m of [model, fromGguf, fromSt]) m.free();
  }, 300_000);

  it('RTN MXFP6 E3M2: every layer packed as E8M0 blocks per row, decoding to the weights in the model', async () => {
    const model = await loadModel(path);
    const r = quantizeModel(model, { method: 'rtn', format: 'mxfp6_e3m2' });
    for (const [name, t] of r.packed) {
      expect(t?.kind).toBe('mx-rows');
      const m = t as MxRowsTensor;
      expect(m.scales.length).toBe(m.shape[0] * Math.ceil(m.shape[1] / 32));
      expect(dequantizeMxRows(m)).toEqual((model.linear(name).source as { data: Float32Array }).data);
    }
    model.free();
  });

  it('ggml formats keep their blocks in the model: nothing extra to pack', async () => {
    const model = await loadModel(path);
    const r = quantizeModel(model, { method: 'rtn', format: 'q8_0' });
    expect([...r.packed.values()].every((t) => t === null)).toBe(true);
    model.free();
  });
});
