import { readFile } from 'node:fs/promises';
import { type DecoderModel, LowbitError, perplexity } from '@lowbit/runtime';
import { defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';

/** "5.5873 ± 0.0712" (± one standard error over windows), or the bare figure with a single window. */
export function formatPerplexity(ppl: number, stderr: number): string {
  return Number.isFinite(stderr) ? `${ppl.toFixed(4)} ± ${stderr.toFixed(4)}` : ppl.toFixed(4);
}

export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'perplexity of a model on real text, ± its standard error over windows (default: the embedded model and validation text)',
  arguments: [MODEL_ARGUMENT],
  options: { ...textOption, ...ctxOption, ...threadOption },
  examples: ['lowbit eval', 'lowbit eval model.gguf --text valid.txt --ctx 128 --threads 2', 'lowbit eval ./hf-checkpoint-dir --json'],
  async run(ctx) {
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
