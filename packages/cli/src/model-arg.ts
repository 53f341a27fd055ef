// What every model command shares: the embedded model and validation text of @lowbit/data as
// defaults, and `--threads N` (a worker-thread kernel pool, closed when the command ends so the
// process can exit).
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type Kernels, createKernelPool } from '@lowbit/kernels';
import { type LlamaModel, loadModel } from '@lowbit/runtime';
import { type CommandContext, type OptionSpec, UsageError, intOption } from './command.js';

export function modelPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(defaultModelUrl);
}

export function textPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(validTextUrl);
}

export const threadOption: OptionSpec = { threads: { type: 'string', short: 't' } };

/** Loads the model named by the first positional (or the embedded one), runs `fn`, frees everything. */
export async function withModel<T>(ctx: CommandContext, fn: (model: LlamaModel) => T | Promise<T>): Promise<T> {
  const threads = intOption(ctx, 'threads', 1);
  if (threads < 1 || threads > 64) throw new UsageError(`--threads must be 1..64, got ${threads}`);
  const pool = threads > 1 ? await createKernelPool({ threads }) : undefined;
  try {
    const model = await loadModel(modelPath(ctx.positionals[0]), pool ? { kernels: pool as Kernels } : {});
    try {
      return await fn(model);
    } finally {
      model.free();
    }
  } finally {
    await pool?.close();
  }
}
