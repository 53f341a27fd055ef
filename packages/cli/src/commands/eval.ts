import { readFile } from 'node:fs/promises';
import { type LlamaModel, LowbitError, perplexity } from '@lowbit/runtime';
import { type Command, intOption } from '../command.js';
import { textPath, threadOption, withModel } from '../model-arg.js';

export const evalCommand: Command = {
  name: 'eval',
  summary: 'perplexity of a model on real text (default: the embedded model and validation text)',
  usage: 'lowbit eval [model.gguf | model.safetensors | hf-dir] [--text file] [--ctx 256] [--threads 1] [--json]',
  options: { text: { type: 'string' }, ctx: { type: 'string' }, ...threadOption },
  async run(ctx) {
    const file = textPath(ctx.values.text as string | undefined);
    const text = await readFile(file, 'utf8').catch((e: Error) => {
      throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
    });
    const measure = (model: LlamaModel) => perplexity(model, text, { ctx: intOption(ctx, 'ctx', 256), onProgress: (d, t) => ctx.progress(d, t, 'eval') });
    const r = await withModel(ctx, measure);
    ctx.print(`perplexity ${r.perplexity.toFixed(4)} over ${r.tokens} tokens (${r.windows} windows of ${r.ctx}) in ${r.seconds.toFixed(2)} s`);
    return { ...r, text: file, threads: intOption(ctx, 'threads', 1) };
  },
};
