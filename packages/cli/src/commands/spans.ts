import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { type DecoderModel, LowbitError, type PerplexityResult, attentionDecodeSeconds, calibrateSpans, checkSoftMask, checkSpanOptions, learnSpans, perplexity, spanSkippedFraction } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { formatPerplexity } from './eval.js';

const options = {
  ...textOption, ...ctxOption, ...threadOption,
  eps: { type: 'number', default: 0.01, description: "attention mass a head's span may leave out, per query" },
  quantile: { type: 'number', default: 0.9, description: "quantile over a head's calibration queries of the span each needs (1: the largest)" },
  'calibration-windows': { type: 'integer', default: 16, min: 1, description: 'windows of the calibration text to measure attention on' },
  learn: { type: 'boolean', description: 'also learn spans with the adaptive-span soft mask on the calibration text (model frozen), and compare both at --ctx and at the model\'s longest context' },
  steps: { type: 'integer', default: 300, description: 'with --learn: optimizer steps (one window of --ctx each)' },
  penalty: { type: 'number', default: 5e-5, description: 'with --learn: λ of the L1 penalty λ/heads·Σ z on the spans (nats per token of span)' },
  ramp: { type: 'number', default: 32, description: 'with --learn: ramp R of the soft mask in tokens; a learned z serves as the span ⌈z + R⌉' },
  'joint-lr': { type: 'number', placeholder: 'lr', defaultText: 'none (model frozen)', description: 'with --learn: fine-tune every weight jointly with the spans at this AdamW learning rate (the learned rows then run on the fine-tuned weights)' },
} as const;

export const spansCommand = defineCommand({
  name: 'spans',
  summary: 'attention spans per head from attention statistics on the calibration text: key reads skipped, perplexity and attention time against full attention',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit spans', 'lowbit spans --ctx 2048 --eps 0.05', 'lowbit spans --learn', 'lowbit spans --learn --penalty 1e-4 --ramp 16', 'lowbit spans model.gguf --quantile 1 --json'],
  async run(ctx) {
    checkSpanOptions({ eps: ctx.values.eps, quantile: ctx.values.quantile });
    const file = textPath(ctx.values.text);
    const read = (f: string) =>
      readFile(f, 'utf8').catch((e: Error) => {
        throw new LowbitError('E_IO', `${f}: cannot read (${e.message})`);
      });
    const [text, calibration] = [await read(file), await read(fileURLToPath(calibrationTextUrl))];
    return withModel(ctx, (model) => run(ctx, model, file, text, calibration));
  },
});

function run(ctx: CommandContext<typeof options>, model: DecoderModel, file: string, text: string, calibration: string) {
  const v = ctx.values;
  const { nLayers, nHeads } = model.config;
  if (v.learn) {
    if (!(Number.isSafeInteger(v.steps) && v.steps >= 1 && v.steps <= 1e6)) throw new LowbitError('E_RANGE', `spans: --steps ${v.steps} is outside 1..1000000`);
    checkSoftMask(model.config, new Float64Array(model.config.nLayers * model.config.nHeads), v.ramp, v.penalty); // ramp and penalty before any pass
    const lr = v['joint-lr'];
    if (lr !== undefined && !(lr > 0 && lr <= 1)) throw new LowbitError('E_RANGE', `spans: --joint-lr ${lr} is outside (0, 1]`);
  }
  const cal = calibrateSpans(model, calibration, { ctx: v.ctx, maxWindows: v['calibration-windows'], eps: v.eps, quantile: v.quantile });
  ctx.print(`model ${model.name}`);
  ctx.print(`spans (ε ${v.eps}, quantile ${v.quantile}, ${cal.queries} calibration queries per head, windows of ${v.ctx}):`);
  for (let l = 0; l < nLayers; l++) ctx.print(`  layer ${l}: ${Array.from(cal.spans.subarray(l * nHeads, (l + 1) * nHeads)).join(' ')}`);
  const skipped = spanSkippedFraction(cal.spans, v.ctx);
  const full = perplexity(model, text, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'full attention') });
  const spanned = perplexity(model, text, { ctx: v.ctx, spans: cal.spans, onProgress: (d, t) => ctx.progress(d, t, 'spans') });
  const time = attentionDecodeSeconds(model, v.ctx, cal.spans);
  ctx.print(`text  ${file}`);
  ctx.print(`full attention perplexity ${formatPerplexity(full.perplexity, full.stderr)}`);
  ctx.print(`spans          perplexity ${formatPerplexity(spanned.perplexity, spanned.stderr)} (${spanned.perplexity >= full.perplexity ? '+' : ''}${(spanned.perplexity - full.perplexity).toFixed(4)}); key reads skipped in a window of ${v.ctx}: ${(100 * skipped).toFixed(1)}%`);
  ctx.print(`attention of one decode token at position ${v.ctx - 1}, all layers: ${(time.full * 1e6).toFixed(1)} µs full, ${(time.spans * 1e6).toFixed(1)} µs with spans (${(time.full / time.spans).toFixed(2)}×)`);
  const result = { model: model.name, text: file, ctx: v.ctx, eps: v.eps, quantile: v.quantile, spans: Array.from(cal.spans), meanNeeded: Array.from(cal.meanNeeded), skipped, full, spanned, attentionSeconds: time };
  return v.learn ? { ...result, learned: learn(ctx, model, text, calibration, cal.spans, full, spanned) } : result;
}

/** --learn: spans from the soft mask, against the calibrated ones at --ctx and at the model's context length. */
function learn(ctx: CommandContext<typeof options>, model: DecoderModel, text: string, calibration: string, calibrated: Int32Array, full: PerplexityResult, spanned: PerplexityResult) {
  const v = ctx.values;
  const { nLayers, nHeads, contextLength } = model.config;
  const eval_ = (c: number, spans: Int32Array | undefined, label: string) => perplexity(model, text, { ctx: c, spans, onProgress: (d, t) => ctx.progress(d, t, label) });
  const long = contextLength > v.ctx;
  // the baselines at the longest context run before learning: with --joint-lr learning changes the weights
  const longFull = long ? eval_(contextLength, undefined, `full attention, ctx ${contextLength}`) : undefined;
  const longCalibrated = long ? eval_(contextLength, calibrated, `calibrated spans, ctx ${contextLength}`) : undefined;
  const joint = v['joint-lr'];
  const r = learnSpans(model, calibration, { steps: v.steps, penalty: v.penalty, ramp: v.ramp, ctx: v.ctx, jointLr: joint, onStep: (s) => ctx.progress(s.step + 1, v.steps, `learning spans (mean z ${s.meanZ.toFixed(1)})`) });
  ctx.print(`learned spans ⌈z + R⌉ (soft mask, R ${v.ramp}, λ ${v.penalty}, ${v.steps} steps of ${v.ctx} tokens of the calibration text, ${r.seconds.toFixed(0)} s; ${joint === undefined ? 'model frozen' : `weights fine-tuned jointly at lr ${joint}`}):`);
  for (let l = 0; l < nLayers; l++) ctx.print(`  layer ${l}: ${Array.from(r.spans.subarray(l * nHeads, (l + 1) * nHeads)).join(' ')}`);
  const learned = eval_(v.ctx, r.spans, 'learned spans');
  const longLearned = long ? eval_(contextLength, r.spans, `learned spans, ctx ${contextLength}`) : undefined;
  const tuned = joint === undefined ? undefined : { full: eval_(v.ctx, undefined, 'fine-tuned weights, full attention'), longest: long ? eval_(contextLength, undefined, `fine-tuned weights, full attention, ctx ${contextLength}`) : undefined };
  const time = attentionDecodeSeconds(model, v.ctx, r.spans);
  const row = (c: number, full: PerplexityResult, cal: PerplexityResult, lrn: PerplexityResult, tunedFull?: PerplexityResult) => {
    const f = (p: PerplexityResult) => `${formatPerplexity(p.perplexity, p.stderr)} (${p.perplexity >= full.perplexity ? '+' : ''}${(p.perplexity - full.perplexity).toFixed(4)}`;
    const t = tunedFull ? `; fine-tuned weights, full attention ${f(tunedFull)})` : '';
    ctx.print(`ctx ${String(c).padStart(5)}: full ${formatPerplexity(full.perplexity, full.stderr)}; calibrated ${f(cal)}, ${(100 * spanSkippedFraction(calibrated, c)).toFixed(1)}% of key reads skipped); learned ${f(lrn)}, ${(100 * spanSkippedFraction(r.spans, c)).toFixed(1)}% skipped)${t}`);
  };
  ctx.print('perplexity, full attention against calibrated and learned spans:');
  row(v.ctx, full, spanned, learned, tuned?.full);
  if (longFull && longCalibrated && longLearned) row(contextLength, longFull, longCalibrated, longLearned, tuned?.longest);
  ctx.print(`attention of one decode token at position ${v.ctx - 1}, all layers, learned spans: ${(time.full * 1e6).toFixed(1)} µs full, ${(time.spans * 1e6).toFixed(1)} µs (${(time.full / time.spans).toFixed(2)}×)`);
  // at the longest context the reads saved are largest: both span sets timed in one run against full attention
  const longTime = long ? { calibrated: attentionDecodeSeconds(model, contextLength, calibrated), learned: attentionDecodeSeconds(model, contextLength, r.spans) } : undefined;
  if (longTime) {
    const t = longTime;
    ctx.print(`at position ${contextLength - 1}: ${(t.learned.full * 1e6).toFixed(1)} µs full, ${(t.calibrated.spans * 1e6).toFixed(1)} µs calibrated, ${(t.learned.spans * 1e6).toFixed(1)} µs learned spans (${(t.learned.full / t.learned.spans).toFixed(2)}×)`);
  }
  return {
    steps: v.steps, penalty: v.penalty, ramp: v.ramp, jointLr: joint ?? null, z: Array.from(r.z), spans: Array.from(r.spans), losses: r.losses, seconds: r.seconds,
    skipped: spanSkippedFraction(r.spans, v.ctx), perplexity: learned, attentionSeconds: time, tunedFull: tuned?.full ?? null,
    longest: long
      ? { ctx: contextLength, full: longFull, calibrated: longCalibrated, learned: longLearned, tunedFull: tuned?.longest ?? null, attentionSeconds: longTime, skippedCalibrated: spanSkippedFraction(calibrated, contextLength), skippedLearned: spanSkippedFraction(r.spans, contextLength) }
      : undefined,
  };
}
