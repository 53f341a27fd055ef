// What every model command shares: a model path (GGUF file, quantized .safetensors file written by
// `lowbit quantize`, or Hugging Face directory), the embedded model and validation text of
// @lowbit/data as defaults, and `--threads N` (a worker-thread kernel pool, closed when the command
// ends so the process can exit).
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type Kernels, createKernelPool } from '@lowbit/kernels';
import { type DecoderModel, loadHfModel, loadModel, loadQuantizedSafetensors } from '@lowbit/runtime';
import type { ArgumentDef, CommandContext, NumberOption, StringOption } from './command.js';
import { isDirectory } from './paths.js';

export function modelPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(defaultModelUrl);
}

export function textPath(arg: string | undefined): string {
  return arg ?? fileURLToPath(validTextUrl);
}

export const MODEL_ARGUMENT: ArgumentDef = {
  name: 'model', optional: true,
  description: 'a GGUF file, a .safetensors file written by lowbit quantize, or a Hugging Face directory (default: the embedded stories260K model)',
};

export const GGUF_ARGUMENT: ArgumentDef = { name: 'model.gguf', optional: true, description: 'a GGUF file (default: the embedded stories260K model)' };

export const threadOption = {
  threads: { type: 'integer', short: 't', default: 1, min: 1, max: 64, description: 'kernel threads (a worker-thread pool; results are identical)' } satisfies NumberOption,
};

export const textOption = {
  text: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories valid', description: 'text to measure perplexity on, one document per line' } satisfies StringOption,
};

export const ctxOption = {
  ctx: { type: 'integer', default: 256, min: 2, description: 'perplexity window length in tokens (at most the model context)' } satisfies NumberOption,
};

/**
 * A model from a path: a directory is a Hugging Face checkpoint (config.json + safetensors +
 * tokenizer.json); one .safetensors file is a quantized model whose config and tokenizer travel in its
 * metadata; anything else is GGUF.
 */
export async function loadModelFile(path: string, options: { kernels?: Kernels } = {}): Promise<DecoderModel> {
  if (isDirectory(path)) return loadHfModel(path, options);
  return path.endsWith('.safetensors') ? loadQuantizedSafetensors(path, options) : loadModel(path, options);
}

/** Loads the model named by the first positional (or the embedded one), runs `fn`, frees everything. */
export async function withModel<T>(ctx: CommandContext, fn: (model: DecoderModel) => T | Promise<T>): Promise<T> {
  const threads = (ctx.values.threads as number | undefined) ?? 1;
  const pool = threads > 1 ? await createKernelPool({ threads }) : undefined;
  try {
    const model = await loadModelFile(modelPath(ctx.positionals[0]), pool ? { kernels: pool as Kernels } : {});
    try {
      return await fn(model);
    } finally {
      model.free();
    }
  } finally {
    await pool?.close();
  }
}
