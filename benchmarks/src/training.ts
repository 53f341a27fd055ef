// Training area: tokens/s of one training step (forward + backward over a window of 256 tokens) on the
// embedded model, on 1 and 2 kernel threads, and what each quantization method adds to a step (QAT's
// fake quantization, AlphaTuning's expansion of Σ α·b and its α gradient). Baselines, each measured in
// the same run: the forward alone (what the backward costs on top), one thread (what a second adds),
// the plain step (what a method adds). The PyTorch comparison is not here: it needs python3 with
// torch, and no row runs without it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type Kernels, createKernelPool, createKernels } from '@lowbit/kernels';
import { alphaTuning, fakeQuantWeights, fakeQuantizer } from '@lowbit/quantizers';
import { type DecoderModel, lossAndGrad, loadModel, trainForward, trainParams, wasmMath } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const CTX = 256;

function row(name: string, variant: string, ms: number, baselineMs: number, baseline: string): Row {
  return { area: 'training', name, variant, ms, rate: { value: (CTX * 1000) / ms, unit: 'tokens/s' }, ratio: baselineMs / ms, baseline };
}

async function withModel<T>(threads: number, fn: (m: DecoderModel) => Promise<T>): Promise<T> {
  const k: Kernels = threads > 1 ? await createKernelPool({ threads }) : await createKernels();
  const model = await loadModel(fileURLToPath(defaultModelUrl), { kernels: k });
  try {
    return await fn(model);
  } finally {
    model.free();
    await (k as { close?: () => Promise<void> }).close?.();
  }
}

export const trainingArea: Area = {
  name: 'training',
  async run(ctx: Context): Promise<Row[]> {
    const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').slice(0, 20_000);
    const rows: Row[] = [];
    const step = await withModel(1, async (model) => {
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, CTX + 1);
      const p = trainParams(model);
      const fwd = await ctx.timeRuns(() => trainForward(model.config, p, ids, wasmMath(model.kernels)), 5);
      const plain = await ctx.timeRuns(() => lossAndGrad(model, ids, p), 5);
      rows.push(row('train step stories260K (fwd+bwd)', '1 thread', plain, fwd, 'forward only, 1 thread'));
      const fq = fakeQuantizer(model, { format: 'int', bits: 4, group: 32 });
      const qat = await ctx.timeRuns(() => lossAndGrad(model, ids, fakeQuantWeights(fq, p)), 5);
      rows.push(row('QAT step int4 g32 (fake-quant + fwd+bwd)', '1 thread', qat, plain, 'plain step, 1 thread'));
      const at = alphaTuning(model, { bits: 2, group: 32 });
      const alphas = at.hooks.params as Map<string, Float32Array>;
      const forward = at.hooks.forward as NonNullable<typeof at.hooks.forward>;
      const backward = at.hooks.backward as NonNullable<typeof at.hooks.backward>;
      const atMs = await ctx.timeRuns(() => backward(lossAndGrad(model, ids, forward(alphas, 0)).grads, 0), 5);
      rows.push(row('AlphaTuning step 2 planes g32', '1 thread', atMs, plain, 'plain step, 1 thread'));
      return plain;
    });
    await withModel(2, async (model) => {
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, CTX + 1);
      const p = trainParams(model);
      const ms = await ctx.timeRuns(() => lossAndGrad(model, ids, p), 5);
      rows.push(row('train step stories260K (fwd+bwd)', '2 threads', ms, step, 'plain step, 1 thread'));
    });
    ctx.log('training: no PyTorch row (python3 with torch is not a dependency; see the runtime README for its gradient check)');
    return rows;
  },
};
