import { readFile } from 'node:fs/promises';
import { type Kernels, createKernelPool } from '@lowbit/kernels';
import { type LlamaModel, LowbitError, loadQuantizedSafetensors, perplexity } from '@lowbit/runtime';
import { type CommandContext, UsageError, type Command, intOption } from '../command.js';
import { textPath, threadOption, withModel } from '../model-arg.js';

/** A quantized model saved as one .safetensors file (`lowbit quantize --out x.safetensors`): config and tokenizer come from its metadata. */
async function withSafetensorsModel<T>(ctx: CommandContext, path: string, fn: (model: LlamaModel) => T | Promise<T>): Promise<T> {
  const threads = intOption(ctx, 'threads', 1);
  if (threads < 1 || threads > 64) throw new UsageError(`--threads must be 1..64, got ${threads}`);
  const pool = threads > 1 ? await createKernelPool({ threads }) : undefined;
  try {
    const model = await loadQuantizedSafetensors(path, pool ? { kernels: pool as Kernels } : {});
    try {
      return await fn(model);
    } finally {
      model.free();
    }
  } finally {
    await pool?.close();
  }
}

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
    const path = ctx.positionals[0];
    const r = path?.endsWith('.safetensors') ? await withSafetensorsModel(ctx, path, measure) : await withModel(ctx, measure);
    ctx.print(`perplexity ${r.perplexity.toFixed(4)} over ${r.tokens} tokens (${r.windows} windows of ${r.ctx}) in ${r.seconds.toFixed(2)} s`);
    return { ...r, text: file, threads: intOption(ctx, 'threads', 1) };
  },
};
