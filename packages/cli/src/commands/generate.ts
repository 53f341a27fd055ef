import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { CompressedKvCache, type DecoderModel, calibrateSpans, generate, miniCachePairs } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, threadOption, withModel } from '../model-arg.js';

const options = {
  prompt: { type: 'string', short: 'p', default: 'Once upon a time', placeholder: 'text', description: 'the text to continue' },
  n: { type: 'integer', short: 'n', default: 64, min: 1, description: 'tokens to generate (fewer if the model context fills)' },
  temp: { type: 'number', default: 0, min: 0, description: 'sampling temperature; 0 = greedy (argmax)' },
  'top-p': { type: 'number', default: 1, above: 0, max: 1, placeholder: 'p', description: 'nucleus sampling: sample from the smallest set of tokens holding probability p (1 = all)' },
  seed: { type: 'integer', min: 0, max: 2 ** 31 - 1, defaultText: 'time of day', description: 'random seed for sampling (temp > 0)' },
  bits: { type: 'integer', min: 1, max: 8, defaultText: "each layer's widest", description: 'any-precision models (lowbit anyprec): the width to serve this request at' },
  'kv-bits': { type: 'integer', placeholder: 'b', defaultText: 'the f32 cache', description: 'store the KV cache at 4, 8, 16 or 32 bits (lowbit kv); the prompt then runs token by token' },
  minicache: { type: 'boolean', description: 'merge the KV states of adjacent layers from the middle on (MiniCache, lowbit kv)' },
  'span-eps': { type: 'number', placeholder: 'eps', description: 'attention spans per head leaving out this much attention mass, calibrated on the calibration text (lowbit spans)' },
  ...threadOption,
} as const;

export const generateCommand = defineCommand({
  name: 'generate',
  summary: 'stream text from a prompt (--temp 0: greedy)',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit generate --prompt "Once upon a time" -n 64', 'lowbit generate ap.safetensors --bits 3', 'lowbit generate --kv-bits 8 --span-eps 0.01', 'lowbit generate model.gguf -p "The cat" -n 100 --temp 0.8 --top-p 0.9 --seed 1'],
  async run(ctx) {
    return withModel(ctx, (model) => run(ctx, model));
  },
});

function run(ctx: CommandContext<typeof options>, model: DecoderModel) {
  const { prompt, n } = ctx.values;
  const c = model.config;
  const kvCache =
    ctx.values['kv-bits'] !== undefined || ctx.values.minicache
      ? new CompressedKvCache(c, c.contextLength, { bits: ctx.values['kv-bits'] ?? 32, minicache: ctx.values.minicache ? { pairs: miniCachePairs(c.nLayers) } : undefined })
      : undefined;
  const eps = ctx.values['span-eps'];
  const spans = eps === undefined ? undefined : calibrateSpans(model, readFileSync(fileURLToPath(calibrationTextUrl), 'utf8'), { eps, maxWindows: 16 }).spans;
  ctx.write(prompt);
  const r = generate(model, prompt, {
    steps: n,
    temperature: ctx.values.temp,
    topP: ctx.values['top-p'],
    seed: ctx.values.seed ?? Date.now() % 2 ** 31,
    bits: ctx.values.bits,
    kvCache,
    spans,
    onToken: (_id, text) => {
      ctx.write(text);
      ctx.emit({ type: 'token', text });
    },
  });
  ctx.write('\n');
  if (r.stopReason === 'context') ctx.warn(`stopped after ${r.tokens.length} of ${n} tokens: the model's context of ${model.config.contextLength} tokens is full`);
  const decodeTps = r.tokens.length / Math.max(r.decodeSeconds, 1e-9);
  return { model: model.name, prompt, text: r.text, tokens: r.tokens, promptTokens: r.prompt.length, prefillSeconds: r.prefillSeconds, decodeSeconds: r.decodeSeconds, decodeTokensPerSecond: decodeTps, bits: ctx.values.bits ?? null, stopReason: r.stopReason, kvCache: kvCache?.stats() ?? null, spans: spans ? Array.from(spans) : null };
}
