import { generate } from '@lowbit/runtime';
import type { LlamaModel } from '@lowbit/runtime';
import { type Command, type CommandContext, intOption, numberOption } from '../command.js';
import { threadOption, withModel } from '../model-arg.js';

export const generateCommand: Command = {
  name: 'generate',
  summary: 'stream text from a prompt (--temp 0: greedy)',
  usage: 'lowbit generate [model.gguf | model.safetensors | hf-dir] --prompt "Once upon a time" [-n 64] [--temp 0] [--top-p 0.9] [--seed 1] [--threads 1] [--json]',
  options: {
    prompt: { type: 'string', short: 'p' },
    n: { type: 'string', short: 'n' },
    temp: { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    ...threadOption,
  },
  async run(ctx) {
    return withModel(ctx, (model) => run(ctx, model));
  },
};

function run(ctx: CommandContext, model: LlamaModel) {
  const prompt = (ctx.values.prompt as string | undefined) ?? 'Once upon a time';
  ctx.write(prompt);
  const r = generate(model, prompt, {
    steps: intOption(ctx, 'n', 64),
    temperature: numberOption(ctx, 'temp', 0),
    topP: numberOption(ctx, 'top-p', 0),
    seed: intOption(ctx, 'seed', Date.now() % 2 ** 31),
    onToken: (id, text) => {
      ctx.write(text);
      ctx.emit({ type: 'token', text });
    },
  });
  ctx.write('\n');
  if (r.stopReason === 'context') ctx.warn(`stopped after ${r.tokens.length} of ${intOption(ctx, 'n', 64)} tokens: the model's context of ${model.config.contextLength} tokens is full`);
  const decodeTps = r.tokens.length / Math.max(r.decodeSeconds, 1e-9);
  return { model: model.name, prompt, text: r.text, tokens: r.tokens, promptTokens: r.prompt.length, prefillSeconds: r.prefillSeconds, decodeSeconds: r.decodeSeconds, decodeTokensPerSecond: decodeTps, stopReason: r.stopReason };
}
