import { readFile } from 'node:fs/promises';
import { type DecoderModel, LowbitError, perplexity } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { parseBits } from './anyprec.js';

/** "5.5873 ± 0.0712" (± one standard error over windows), or the bare figure with a single window. */
export function formatPerplexity(ppl: number, stderr: number): string {
  return Number.isFinite(stderr) ? `${ppl.toFixed(4)} ± ${stderr.toFixed(4)}` : ppl.toFixed(4);
}

const options = {
  ...textOption, ...ctxOption, ...threadOption,
  bits: { type: 'string', placeholder: 'b|a..b|a,b', defaultText: "each layer's widest", description: 'any-precision models (lowbit anyprec): the width(s) to run, one file loaded once: 3, 3..8 or 3,4,8' },
} as const;

export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'perplexity of a model on real text, ± its standard error over windows (default: the embedded model and validation text)',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit eval', 'lowbit eval model.gguf --text valid.txt --ctx 128 --threads 2', 'lowbit eval ./hf-checkpoint-dir --json', 'lowbit eval ap.safetensors --bits 3..8'],
  async run(ctx) {
    if (ctx.values.bits !== undefined) return evalWidths(ctx, parseBits(ctx.values.bits));
    const file = textPath(ctx.values.text);
    const text = await readFile(file, 'utf8').catch((e: Error) => {
      throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
    });
    const measure = (model: DecoderModel) => perplexity(model, text, { ctx: ctx.values.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval') });
    const r = await withModel(ctx, measure);
    ctx.print(`model ${r.model}`);
    ctx.print(`text  ${file}`);
    ctx.print(`perplexity ${formatPerplexity(r.perplexity, r.stderr)} over ${r.tokens} tokens (${r.windows} windows of ${r.ctx}; ± one standard error over windows) in ${r.seconds.toFixed(2)} s`);
    return { ...r, text: file, threads: ctx.values.threads };
  },
});

/** One nested any-precision model served at several widths from the one copy in memory. */
async function evalWidths(ctx: CommandContext<typeof options>, widths: number[]) {
  const file = textPath(ctx.values.text);
  const text = await readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
  return withModel(ctx, (model) => {
    ctx.print(`model ${model.name}`);
    ctx.print(`text  ${file}`);
    const rows = widths.map((bits) => {
      const r = perplexity(model, text, { ctx: ctx.values.ctx, bits, onProgress: (d, t) => ctx.progress(d, t, `eval ${bits}-bit`) });
      const bytes = model.linears().reduce((s, l) => s + l.bytesAt(l.bitRange ? bits : undefined), 0);
      ctx.print(`${bits} bits: perplexity ${formatPerplexity(r.perplexity, r.stderr)} over ${r.tokens} tokens, ${bytes} weight bytes/token, ${r.seconds.toFixed(2)} s`);
      return { bits, ...r, weightBytesPerToken: bytes };
    });
    return { model: model.name, text: file, widths: rows };
  });
}
