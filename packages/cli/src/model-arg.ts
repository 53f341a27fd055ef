// What every model command shares: a model path (GGUF file, quantized .safetensors file written by
// `lowbit quantize`, or Hugging Face directory), the embedded
// model and validation text of @lowbit/data as
// defaults, and `--threads N` (a worker-thread kernel pool, closed when the command ends so the
// process can exit).
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type Kernels, createKernelPool } from '@lowbit/kernels';
import { statSync } from 'node:fs';
import { type LlamaModel, loadHfModel, loadModel, loadQuantizedSafetensors } from '@lowbit/runtime';
import { type CommandContext, type OptionSpec, UsageError, intOption } from './command.js';

export function modelPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(defaultModelUrl);
}

export function textPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(validTextUrl);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false; // the loader reports the missing file by name
  }
}

export const threadOption: OptionSpec = { threads: { type: 'string', short: 't' } };

/** Loads the model named by the first positional (or the embedded one), runs `fn`, frees everything. */
export async function withModel<T>(ctx: CommandContext, fn: (model: LlamaModel) => T | Promise<T>): Promise<T> {
  const threads = intOption(ctx, 'threads', 1);
  if (threads < 1 || threads > 64) throw new UsageError(`--threads must be 1..64, got ${threads}`);
  const pool = threads > 1 ? await createKernelPool({ threads }) : undefined;
  try {
    const path = modelPath(ctx.positionals[0]);
    const options = pool ? { kernels: pool as Kernels } : {};
    // a directory is a Hugging Face checkpoint (config.json + safetensors + tokenizer.json); one
    // .safetensors file is a quantized model whose config and tokenizer travel in its metadata
    const model = isDirectory(path)
      ? await loadHfModel(path, options)
      : path.endsWith('.safetensors') ? await loadQuantizedSafetensors(path, options) : await loadModel(path, options);
    try {
      return await fn(model);
    } finally {
      model.free();
    }
  } finally {
    await pool?.close();
  }
}
