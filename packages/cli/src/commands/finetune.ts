import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import type { MxFormatName } from '@lowbit/formats';
import { type Misalignment, type TrainGrid, type TrainMethod, fakeQuantizer, measureMisalignment, quantTrainer, trainQuantize } from '@lowbit/quantizers';
import { LowbitError, applyTrainParams, perplexity, saveModel, trainParams } from '@lowbit/runtime';
import { UsageError, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, loadModelFile, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';
import { formatPerplexity } from './eval.js';

// int1: AlphaTuning's one bit-plane (the INT-k grids start at 2 bits)
const INT_FORMATS = ['int1', 'int2', 'int3', 'int4', 'int5', 'int6', 'int8'] as const;
const GGML_FORMATS = ['q4_0', 'q4_1', 'q8_0'] as const;
const MX_FORMATS = ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const;
const FORMATS = [...INT_FORMATS, ...GGML_FORMATS, ...MX_FORMATS] as const;
const METHODS = ['qat', 'regfreq', 'inq', 'alphatuning'] as const;
/**
 * Peak learning rates, the best of those tried on the embedded model at 150 steps of 4 × 256 tokens
 * (quantizers README, training study): QAT 1e-4 beat 3e-5 at int4/3/2, INQ 3e-4 beat 1e-4, AlphaTuning
 * 1e-3 beat 1e-4 and 3e-4 (3e-3 within 2%); regularization frequency was run at 3e-5 only.
 */
const DEFAULT_LR: Record<TrainMethod, number> = { qat: 1e-4, regfreq: 3e-5, inq: 3e-4, alphatuning: 1e-3 };

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

const options = {
  method: { type: 'string', choices: METHODS, default: 'qat', description: 'qat (STE fake-quant), regfreq (project every --every steps), inq (powers of two, frozen by magnitude), alphatuning (BCQ, train only the scales)' },
  format: { type: 'string', choices: FORMATS, default: 'int4', description: 'the grid: INT-k, a llama.cpp block type (q*) or OCP MX (mx*) for qat/regfreq; inq and alphatuning take intK (K bits; alphatuning: K bit-planes)' },
  group: { type: 'integer', min: 0, default: 32, description: 'INT-k columns per scale (0 = per output channel); ggml and MX use blocks of 32' },
  steps: { type: 'integer', min: 1, max: 1_000_000, default: 150, description: 'optimizer steps' },
  lr: { type: 'number', above: 0, max: 1, defaultText: 'qat 1e-4, regfreq 3e-5, inq 3e-4, alphatuning 1e-3', description: 'peak AdamW learning rate (linear warmup, cosine decay to a tenth)' },
  warmup: { type: 'integer', min: 0, defaultText: 'steps/10', description: 'linear-warmup steps' },
  batch: { type: 'integer', min: 1, max: 65536, default: 4, description: 'windows of --ctx tokens per step (gradient accumulation)' },
  every: { type: 'integer', min: 1, default: 10, description: 'regfreq: project onto the grid every N steps' },
  train: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'training text' },
  ...textOption,
  ...ctxOption,
  out: { type: 'string', short: 'o', placeholder: 'file.gguf', defaultText: 'none (nothing written)', description: 'write the quantized model (ggml blocks or lowbit tensor types; inq/alphatuning values as F32) and checkpoints beside it' },
  'checkpoint-every': { type: 'integer', min: 1, default: 50, description: 'with --out: write <out>.checkpoint.gguf (+ .adamw.safetensors) every N steps and on Ctrl-C' },
  resume: { type: 'string', placeholder: 'file', defaultText: 'none', description: 'continue from a checkpoint of the same method and grid (pass the checkpoint .gguf as the model and its .adamw.safetensors here)' },
  'learn-clip': { type: 'boolean', description: 'qat on intK: learn a clipping factor per scale group with the weights (LSQ/PACT-style, through the STE); stored scales are the learned ones' },
  misalignment: { type: 'boolean', description: 'qat/regfreq: per layer, local output error vs calibration-loss increase (layer alone on the grid), before and after training, and their Spearman ρ' },
  ...threadOption,
} as const;

function gridOf(format: string, group: number): TrainGrid {
  if ((INT_FORMATS as readonly string[]).includes(format)) return { format: 'int', bits: Number(format.slice(3)), group };
  if ((GGML_FORMATS as readonly string[]).includes(format)) return { format: format as 'q4_0' };
  return { format: format as MxFormatName };
}

export const finetuneCommand = defineCommand({
  name: 'finetune',
  summary: 'quantization by training (QAT, regularization frequency, INQ, AlphaTuning) on text, perplexity before, at the PTQ start and after',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: [
    'lowbit finetune --method qat --format int3 --out m.gguf',
    'lowbit finetune --method qat --learn-clip --format int2 --steps 150',
    'lowbit finetune --method regfreq --every 10 --format q4_0',
    'lowbit finetune --method inq --format int4 --json',
    'lowbit finetune --method alphatuning --format int2 --group 32 --out m.gguf',
  ],
  async run(ctx) {
    const v = ctx.values;
    const method = v.method as TrainMethod;
    const grid = gridOf(v.format, v.group);
    if ((method === 'inq' || method === 'alphatuning') && grid.format !== 'int') throw new UsageError(`--method ${method} takes an INT-k --format (int2..int8), not ${v.format}`);
    if (grid.format !== 'int' && v.group !== 32) throw new UsageError(`--format ${v.format} stores blocks of 32; --group ${v.group} applies to INT-k only`);
    const learnClip = v['learn-clip'] === true;
    if (learnClip && (method !== 'qat' || grid.format !== 'int')) throw new UsageError(`--learn-clip works with --method qat on an INT-k --format (int2..int8), not ${method} ${v.format}`);
    if (learnClip && v.misalignment) throw new UsageError('--misalignment measures the RTN grid; it does not apply with --learn-clip');
    if (v.misalignment && method !== 'qat' && method !== 'regfreq') throw new UsageError(`--misalignment works with qat and regfreq (a grid to round each layer onto), not ${method}`);
    const { out } = v;
    if (out) checkOutputFile(out);
    if (out && !out.endsWith('.gguf')) throw new UsageError(`--out must name a .gguf file, got "${out}"`);
    const lr = v.lr ?? DEFAULT_LR[method];
    const warmup = v.warmup ?? Math.floor(v.steps / 10);
    if (warmup > v.steps) throw new UsageError(`--warmup ${warmup} is more than --steps ${v.steps}`);
    const trainFile = v.train ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const [train, valid] = [await readText(trainFile), await readText(validFile)];
    if (!train.trim()) throw new LowbitError('E_ARG', `${trainFile}: the training text is empty`);
    const t0 = performance.now();
    return withModel(ctx, async (model) => {
      // refuses packed layers up front, naming the layer and what to do, before any evaluation
      const original = (() => {
        try {
          return trainParams(model);
        } catch (e) {
          if (!(e instanceof LowbitError) || !/training needs f32 weights/.test(e.message)) throw e;
          throw new LowbitError('E_UNSUPPORTED', `${e.message}: \`lowbit convert ${ctx.positionals[0] ?? 'model.gguf'} --to f32 --out model.f32.gguf\`, then fine-tune model.f32.gguf`);
        }
      })();
      const before = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval fp') });
      const trainer = quantTrainer(model, { method, grid, every: v.every, steps: v.steps, learnClip });
      const fq = v.misalignment ? fakeQuantizer(model, grid) : null;
      const misalign = (when: string): Misalignment | null => {
        if (!fq) return null;
        ctx.progress(0, 1, `misalignment ${when}`);
        const m = measureMisalignment(model, fq, train, { ctx: v.ctx, windows: 4 });
        ctx.progress(1, 1, `misalignment ${when}`);
        return m;
      };
      const misBefore = misalign('before');
      applyTrainParams(model, trainer.startWeights());
      const ptq = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval untrained') });
      applyTrainParams(model, original);
      const abort = new AbortController();
      const onSigint = () => {
        ctx.warn('stopping after this step (Ctrl-C again to quit at once)');
        abort.abort();
        process.once('SIGINT', () => process.exit(130));
      };
      process.once('SIGINT', onSigint);
      const tokensPerStep = v.batch * v.ctx;
      const tt = performance.now();
      let r: Awaited<ReturnType<typeof trainQuantize>>;
      try {
        r = await trainQuantize(model, train, {
          method, grid, every: v.every, steps: v.steps, learnClip, lr, warmup, ctx: v.ctx, accumulate: v.batch, resume: v.resume, signal: abort.signal,
          checkpoint: out ? { path: `${out}.checkpoint.gguf`, every: v['checkpoint-every'] } : undefined,
          onStep: (s) => {
            const rate = ((s.step + 1) * tokensPerStep) / ((performance.now() - tt) / 1000);
            ctx.progress(s.step + 1, v.steps, `${method} loss ${s.loss.toFixed(3)} ${rate.toFixed(0)} tok/s`);
          },
        }, trainer);
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
      if (r.stopped) {
        ctx.print(`stopped after step ${r.losses.length}${out ? `; the checkpoint ${out}.checkpoint.gguf (+ .adamw.safetensors) holds it (resume with --resume)` : ' (no --out, so no checkpoint was written)'}`);
      }
      const after = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval trained') });
      let misAfter: Misalignment | null = null;
      if (fq) {
        // on the trained latent weights (the model holds their rounding now), then the rounding is put back
        const held = new Map(fq.names.map((n) => [n, model.linear(n).source]));
        applyTrainParams(model, trainer.hooks.params as Map<string, Float32Array>);
        misAfter = misalign('after');
        for (const [n, src] of held) model.setLinear(n, src);
      }
      let bytes: number | null = null;
      let file: { perplexity: number; stderr: number } | null = null;
      if (out) {
        // qat/regfreq INT-k and MX layers as lowbit tensor types, ggml as blocks; INQ's powers of two and
        // AlphaTuning's Σ α·b have no tensor type yet and are stored as their F32 values (exact)
        await saveModel(model, out, { target: 'F32', packed: r.packed ?? undefined });
        bytes = (await stat(out)).size;
        const saved = await loadModelFile(out);
        try {
          file = perplexity(saved, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval file') });
        } finally {
          saved.free();
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const what = `${method}${learnClip ? ' (learned clipping)' : ''} ${v.format}${grid.format === 'int' ? ` ${v.group ? `g${v.group}` : 'per-channel'}` : ''}${method === 'regfreq' ? ` every ${v.every}` : ''}`;
      const start = { qat: 'RTN', regfreq: 'RTN', inq: 'one-shot powers of two', alphatuning: 'BCQ untuned' }[method];
      ctx.print(`${what} on ${model.name}: ${r.losses.length} steps × ${v.batch} windows of ${v.ctx} = ${r.tokens} tokens in ${r.seconds.toFixed(1)} s (${(r.tokens / r.seconds).toFixed(0)} tokens/s), lr ${lr}`);
      ctx.print(`  training loss ${r.losses[0]?.toFixed(4)} (first step) -> ${r.losses.at(-1)?.toFixed(4)} (last)`);
      ctx.print(`  perplexity on ${validFile} (ctx ${v.ctx}): full precision ${formatPerplexity(before.perplexity, before.stderr)}, ${start} ${formatPerplexity(ptq.perplexity, ptq.stderr)}, trained ${formatPerplexity(after.perplexity, after.stderr)}`);
      ctx.print(`  ${r.bitsPerWeight.toFixed(3)} bits/weight (quantized layers)`);
      if (misBefore && misAfter) {
        ctx.print(`  misalignment (4 calibration windows): Spearman ρ(local output error, loss increase) over ${misBefore.layers.length} layers ${misBefore.spearman.toFixed(3)} before, ${misAfter.spearman.toFixed(3)} after training`);
        const sum = (m: Misalignment) => m.layers.reduce((a, l) => a + l.lossIncrease, 0);
        ctx.print(`  sum of per-layer loss increases ${sum(misBefore).toFixed(4)} before, ${sum(misAfter).toFixed(4)} after (nats/token)`);
      }
      if (out && file) ctx.print(`  wrote ${out} (${bytes} bytes); perplexity of the file as lowbit runs it: ${formatPerplexity(file.perplexity, file.stderr)}`);
      return {
        method, learn_clip: learnClip, format: v.format, group: grid.format === 'int' ? v.group : 32, every: method === 'regfreq' ? v.every : null, lr, warmup, batch: v.batch, ctx: v.ctx,
        steps: r.losses.length, stopped: r.stopped, tokens: r.tokens, seconds_train: r.seconds, tokens_per_second: r.tokens / r.seconds,
        loss_first: r.losses[0] ?? null, loss_last: r.losses.at(-1) ?? null,
        perplexity_before: before.perplexity, perplexity_ptq: ptq.perplexity, perplexity_after: after.perplexity, perplexity_after_stderr: after.stderr,
        perplexity_file: file?.perplexity ?? null, misalignment_before: misBefore, misalignment_after: misAfter, bits_per_weight: r.bitsPerWeight, out: out ?? null, bytes, train: trainFile, text: validFile, seconds,
      };
    });
  },
});
