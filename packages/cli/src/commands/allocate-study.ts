import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { runCladoStudy } from '@lowbit/quantizers';
import { LowbitError, perplexity, writeTextAtomic } from '@lowbit/runtime';
import { allocationMarkdown, allocationSvg, predictorSvg } from '../allocation-report.js';
import { defineCommand, parseNumber } from '../command.js';
import { ctxOption, MODEL_ARGUMENT, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';
import { formatPerplexity } from './eval.js';
import { parseBits } from './allocate.js';

export const allocateStudyCommand = defineCommand({
  name: 'allocate-study',
  summary: 'the bit-allocation study: uniform, greedy, diagonal, CLADO and the PTQ quality predictor at several budgets, one measurement, a table and plots',
  arguments: [MODEL_ARGUMENT],
  options: {
    budgets: { type: 'string', default: '2.75,3,3.25,3.5,3.75,4,4.25', placeholder: 'list', description: 'budgets in bits/weight, comma-separated (the uniform configurations’ own sizes are added)' },
    bits: { type: 'string', default: '2,3,4,8', placeholder: 'list', description: 'candidate INT-k widths per layer' },
    group: { type: 'integer', default: 32, min: 0, description: 'columns per scale group' },
    quantizer: { type: 'string', choices: ['rtn', 'gptq'], default: 'rtn', description: 'how each candidate configuration is quantized' },
    pairs: { type: 'string', choices: ['all', 'block'], default: 'block', description: 'CLADO cross terms measured (all: also the block-pairs row from the same measurement)' },
    'calib-windows': { type: 'integer', min: 1, default: 16, description: 'measurement windows of the embedded train excerpt' },
    'calib-ctx': { type: 'integer', min: 2, default: 128, description: 'measurement window length in tokens' },
    configs: { type: 'integer', min: 0, default: 96, description: 'random configurations measured for the predictor (a third held out); 0: no predictor' },
    svg: { type: 'string', placeholder: 'file', defaultText: 'none', description: 'write the perplexity against bits/weight plot' },
    scatter: { type: 'string', placeholder: 'file', defaultText: 'none', description: 'write the predictor’s predicted-vs-measured scatter plot' },
    ...textOption,
    ...ctxOption,
    ...threadOption,
  },
  examples: ['lowbit allocate-study --svg allocation.svg --scatter predictor.svg', 'lowbit allocate-study --quantizer gptq --budgets 3,3.5,4 --configs 0 --json'],
  async run(ctx) {
    const v = ctx.values;
    const budgets = v.budgets.split(',').map((s) => parseNumber(s, '--budgets', { above: 0 }));
    const bits = parseBits(v.bits);
    for (const file of [v.svg, v.scatter]) if (file) checkOutputFile(file);
    if (v.quantizer === 'gptq' && v.pairs === 'all') throw new LowbitError('E_ARG', '--pairs all is measured with --quantizer rtn only (GPTQ candidates are built block by block)');
    const calibFile = fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const [calibration, valid] = await Promise.all([readFile(calibFile, 'utf8'), readFile(validFile, 'utf8')]);
    return withModel(ctx, async (model) => {
      const fp = perplexity(model, valid, { ctx: v.ctx });
      const t0 = performance.now();
      const study = await runCladoStudy(model, {
        bits, group: v.group, method: v.quantizer, calibration, ctx: v['calib-ctx'], maxWindows: v['calib-windows'], pairs: v.pairs,
        valid, budgets, evalCtx: v.ctx,
        predictor: v.configs > 0 ? { configurations: v.configs } : undefined,
        onProgress: (d, t) => ctx.progress(d, t, 'measure ΔL'),
        onMeasured: (m) => ctx.print(`measured G on ${m.windows} windows of ${m.ctx} tokens: ${m.evaluations} passes (${m.pairEvaluations} pairs, --pairs ${m.pairs}) in ${m.seconds.toFixed(1)} s`),
        onPredictor: (r, f) => ctx.print(`predictor: features in ${f.seconds.toFixed(1)} s (${f.windows} windows, ${f.samples} Hutchinson probes each); ${r.trainCount + r.heldOutCount} configurations measured, fit on ${r.trainCount}; held out ${r.heldOutCount}: Spearman ${r.spearman.toFixed(3)}, mean |error| ${r.meanAbsError.toFixed(3)} nats, median relative error ${(100 * r.medianRelativeError).toFixed(0)}% (${r.seconds.toFixed(1)} s)`),
      });
      ctx.print(`full precision: ${formatPerplexity(fp.perplexity, fp.stderr)} on ${validFile} (ctx ${v.ctx}); study in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      ctx.print(allocationMarkdown(study.rows));
      if (study.predictor) {
        const c = study.predictor.fit;
        ctx.print(`predictor coefficients (≥ 0): ${c.names.map((n, i) => `${n} ${c.coefficients[i].toPrecision(3)}`).join(', ')}`);
      }
      if (v.svg) {
        await writeTextAtomic(v.svg, allocationSvg(study.rows, fp.perplexity));
        ctx.print(`wrote the plot to ${v.svg}`);
      }
      if (v.scatter && study.predictor) {
        await writeTextAtomic(v.scatter, predictorSvg(study.predictor));
        ctx.print(`wrote the predictor scatter to ${v.scatter}`);
      }
      const m = study.measurement;
      return {
        perplexity_fp: fp.perplexity, quantizer: v.quantizer, bits, group: v.group,
        measurement: { pairs: m.pairs, windows: m.windows, ctx: m.ctx, evaluations: m.evaluations, pair_evaluations: m.pairEvaluations, seconds: m.seconds },
        rows: study.rows.map((r) => ({ method: r.method, budget: r.budget, bits_per_weight: r.bitsPerWeight, perplexity: r.perplexity, perplexity_stderr: r.stderr, predicted_delta_loss: r.predictedDeltaLoss, seconds: r.seconds, solver: r.solver, layers: r.layers })),
        predictor: study.predictor ? {
          train: study.predictor.trainCount, held_out: study.predictor.heldOutCount, spearman: study.predictor.spearman,
          mean_abs_error: study.predictor.meanAbsError, median_relative_error: study.predictor.medianRelativeError,
          coefficients: Object.fromEntries(study.predictor.fit.names.map((n, i) => [n, study.predictor?.fit.coefficients[i]])),
          points: study.predictor.points.map((p) => ({ bits_per_weight: p.bitsPerWeight, measured: p.measured, predicted: p.predicted, held_out: p.heldOut })),
        } : null,
        svg: v.svg ?? null, scatter: v.scatter ?? null,
      };
    });
  },
});
