// Training area: tokens/s of one training step (forward + backward over a window of 256 tokens) on the
// embedded model, on 1 and 2 kernel threads, and what each quantization method adds to a step (QAT's
// fake quantization, AlphaTuning's expansion of Σ α·b and its α gradient). Baselines, each measured in
// the same run: the forward alone (what the backward costs on top), one thread (what a second adds),
// the plain step (what a method adds), and PyTorch CPU training the same model (f32, one thread,
// AdamW; runtime/test/torch_llama_grad.py --bench) where /usr/bin/python3 has torch, skipped otherwise.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type Kernels, createKernelPool, createKernels } from '@lowbit/kernels';
import { alphaTuning, fakeQuantWeights, fakeQuantizer } from '@lowbit/quantizers';
import { AdamW, type DecoderModel, formatNpy, lossAndGrad, loadModel, trainForward, trainParams, wasmMath } from '@lowbit/runtime';
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

const PYTHON = '/usr/bin/python3';

/** PyTorch's ms per AdamW step on the same window and weights (f32, one thread), or why it cannot run. */
function torchStepMs(model: DecoderModel, ids: number[], p: Map<string, Float32Array>): { ms: number; version: string } | string {
  if (spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' }).status !== 0) return `${PYTHON} cannot import torch and numpy (apt-get install -y python3-torch)`;
  const c = model.config;
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-torch-bench-'));
  try {
    for (const [name, t] of p) {
      const shape = name.endsWith('_norm.weight') ? [t.length] : /ffn_down|attn_output/.test(name) ? [c.dim, t.length / c.dim] : [t.length / c.dim, c.dim];
      writeFileSync(join(dir, `${name}.npy`), formatNpy(t, shape));
    }
    writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
    writeFileSync(join(dir, 'tokens.json'), JSON.stringify(ids));
    writeFileSync(join(dir, 'probe.json'), '{}');
    const script = fileURLToPath(new URL('../../packages/runtime/test/torch_llama_grad.py', import.meta.url));
    const r = spawnSync(PYTHON, [script, dir, '--bench', '10'], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: '1' } });
    if (r.status !== 0) return `torch_llama_grad.py failed: ${r.stderr.slice(-300)}`;
    const j = JSON.parse(r.stdout) as { torch: string; seconds: number; steps: number };
    return { ms: (j.seconds * 1000) / j.steps, version: j.torch };
  } finally {
    rmSync(dir, { recursive: true, force: true });
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
      const torch = torchStepMs(model, ids, p);
      if (typeof torch === 'string') ctx.log(`training: PyTorch row skipped: ${torch}`);
      else {
        const opt = new AdamW(p, { lr: 1e-4, steps: 1000 });
        const ours = await ctx.timeRuns(() => opt.step(lossAndGrad(model, ids, p).grads), 5);
        rows.push(row('train step + AdamW stories260K vs PyTorch', '1 thread', ours, torch.ms, `PyTorch ${torch.version} CPU, 1 thread`));
      }
      return plain;
    });
    await withModel(2, async (model) => {
      const ids = model.tokenizer.encode(text, { bos: true }).slice(0, CTX + 1);
      const p = trainParams(model);
      const ms = await ctx.timeRuns(() => lossAndGrad(model, ids, p), 5);
      rows.push(row('train step stories260K (fwd+bwd)', '2 threads', ms, step, 'plain step, 1 thread'));
    });
    return rows;
  },
};
