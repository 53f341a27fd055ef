import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { type DecoderModel, LowbitError, attentionDecodeSeconds, calibrateSpans, checkSpanOptions, perplexity, spanSkippedFraction } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { formatPerplexity } from './eval.js';

const options = {
  ...textOption, ...ctxOption, ...threadOption,
  eps: { type: 'number', default: 0.01, description: "attention mass a head's span may leave out, per query" },
  quantile: { type: 'number', default: 0.9, description: "quantile over a head's calibration queries of the span each needs (1: the largest)" },
  'calibration-windows': { type: 'integer', default: 16, min: 1, description: 'windows of the calibration text to measure attention on' },
} as const;

export const spansCommand = defineCommand({
  name: 'spans',
  summary: 'attention spans per head from attention statistics on the calibration text: key reads skipped, perplexity and attention time against full attention',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit spans', 'lowbit spans --ctx 2048 --eps 0.05', 'lowbit spans model.gguf --quantile 1 --json'],
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
  return { model: model.name, text: file, ctx: v.ctx, eps: v.eps, quantile: v.quantile, spans: Array.from(cal.spans), meanNeeded: Array.from(cal.meanNeeded), skipped, full, spanned, attentionSeconds: time };
}
