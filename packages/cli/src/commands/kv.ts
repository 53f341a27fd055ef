import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { CompressedKvCache, type DecoderModel, LowbitError, type MiniCacheOptions, miniCacheDistances, miniCachePairs, perplexity } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { formatPerplexity } from './eval.js';

const options = {
  ...textOption, ...ctxOption, ...threadOption,
  'kv-bits': { type: 'integer', default: 8, placeholder: 'b', description: 'storage width of every cached key and value: 4 or 8 (symmetric, per token and kv head, fp16 scale), 16 (fp16) or 32 (f32)' },
  'value-bits': { type: 'integer', placeholder: 'b', defaultText: 'as --kv-bits', description: 'storage width of the values alone (int4 values with int8 keys: keys need the finer steps)' },
  minicache: { type: 'boolean', description: 'merge the KV states of adjacent layers (MiniCache: SLERP directions, per-token magnitudes, retention rule)' },
  'merge-from': { type: 'integer', min: 0, defaultText: 'half the layers, rounded up', description: 'first merged layer: pairs (L, L+1), (L+2, L+3), ...' },
  'slerp-t': { type: 'number', default: 0.6, description: "SLERP position between a pair's directions (0: the first layer's, 1: the second's)" },
  'retain-gamma': { type: 'number', default: 0.05, description: 'retention threshold γ: tokens at angular distance > d_min + (d_max − d_min)·γ stay unmerged (1: merge all)' },
  range: { type: 'string', choices: ['sequence', 'calibration'], default: 'sequence', description: "the retention rule's [d_min, d_max]: the sequence's so far, or each merged pair's over the calibration text" },
  'int8-kernel': { type: 'boolean', description: 'also evaluate keys and values resident as int8 codes read by the attention kernel itself (kernels.attentionQ8; the cache memory is then a quarter of f32)' },
  'max-windows': { type: 'integer', min: 1, defaultText: 'the whole text', description: 'evaluate this many windows only' },
} as const;

export const kvCommand = defineCommand({
  name: 'kv',
  summary: 'perplexity with a compressed KV cache (int4/int8/fp16, MiniCache layer merging), evaluated token by token, its bytes per token and decode speed against the f32 cache',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit kv --kv-bits 8', 'lowbit kv --kv-bits 8 --value-bits 4', 'lowbit kv --kv-bits 8 --int8-kernel', 'lowbit kv --kv-bits 4 --minicache --ctx 2048', 'lowbit kv --kv-bits 32 --minicache --merge-from 1 --retain-gamma 1'],
  async run(ctx) {
    const file = textPath(ctx.values.text);
    const text = await readFile(file, 'utf8').catch((e: Error) => {
      throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
    });
    return withModel(ctx, async (model) => run(ctx, model, file, text));
  },
});

async function run(ctx: CommandContext<typeof options>, model: DecoderModel, file: string, text: string) {
  const v = ctx.values;
  const c = model.config;
  const minicache: MiniCacheOptions | undefined = v.minicache ? { pairs: miniCachePairs(c.nLayers, v['merge-from']), t: v['slerp-t'], gamma: v['retain-gamma'] } : undefined;
  new CompressedKvCache(c, 1, { bits: v['kv-bits'], valueBits: v['value-bits'], minicache }); // checks bits, pairs, t, γ before any pass
  ctx.print(`model ${model.name}`);
  ctx.print(`text  ${file} (windows of ${v.ctx}, run token by token: each token attends to the cache as stored)`);
  let distances: ReturnType<typeof miniCacheDistances> | undefined;
  if (minicache) {
    const calibration = await readFile(fileURLToPath(calibrationTextUrl), 'utf8');
    distances = miniCacheDistances(model, calibration, { ctx: Math.min(v.ctx, 256), maxWindows: 8 });
    const d = distances;
    if (v.range === 'calibration') minicache.ranges = (minicache.pairs ?? []).map(([a]) => ({ keys: [d[a].keys.min, d[a].keys.max], values: [d[a].values.min, d[a].values.max] }));
    ctx.print('angular distance arccos(cos)/π between adjacent layers\' states on the calibration text (0.5 = orthogonal):');
    for (const d of distances) ctx.print(`  layers ${d.pair[0]},${d.pair[1]}: keys ${d.keys.mean.toFixed(3)} (${d.keys.min.toFixed(3)}..${d.keys.max.toFixed(3)}), values ${d.values.mean.toFixed(3)} (${d.values.min.toFixed(3)}..${d.values.max.toFixed(3)})`);
  }
  const kv = new CompressedKvCache(c, v.ctx, { bits: v['kv-bits'], valueBits: v['value-bits'], minicache });
  if (minicache) ctx.print(`merged pairs: ${kv.pairs.map((p) => `[${p}]`).join(' ')} (t ${kv.t}, γ ${kv.gamma}, d range: ${v.range === 'calibration' ? 'calibration text' : 'the sequence so far'})`);
  const eval_ = (label: string, kvCache?: CompressedKvCache) =>
    perplexity(model, text, { ctx: v.ctx, maxWindows: v['max-windows'], decode: true, kvCache, onProgress: (d, t) => ctx.progress(d, t, label) });
  perplexity(model, text, { ctx: v.ctx, maxWindows: 1, decode: true }); // warm-up, so the first timed run is not the JIT's
  const base = eval_('f32 cache');
  const r = eval_(`${kv.bits}/${kv.valueBits}-bit${minicache ? ' MiniCache' : ''}`, kv);
  const resident = v['int8-kernel']
    ? perplexity(model, text, { ctx: v.ctx, maxWindows: v['max-windows'], decode: true, int8Cache: true, onProgress: (d, t) => ctx.progress(d, t, 'int8 resident') })
    : undefined;
  const s = kv.stats();
  const tps = (x: { tokens: number; seconds: number }) => x.tokens / x.seconds;
  ctx.print(`f32 cache      perplexity ${formatPerplexity(base.perplexity, base.stderr)}, ${s.fp16BytesPerToken * 2} B/token, ${tps(base).toFixed(0)} tokens/s`);
  ctx.print(`compressed     perplexity ${formatPerplexity(r.perplexity, r.stderr)} (${r.perplexity >= base.perplexity ? '+' : ''}${(r.perplexity - base.perplexity).toFixed(4)}), ${s.bytesPerToken.toFixed(1)} B/token, ${tps(r).toFixed(0)} tokens/s`);
  if (resident) {
    const bytes = c.nLayers * 2 * (c.nKvHeads * c.headDim + c.nKvHeads * 4);
    ctx.print(`int8 resident  perplexity ${formatPerplexity(resident.perplexity, resident.stderr)} (${resident.perplexity >= base.perplexity ? '+' : ''}${(resident.perplexity - base.perplexity).toFixed(4)}), ${bytes} B/token resident (codes and f32 scales), ${tps(resident).toFixed(0)} tokens/s`);
  }
  ctx.print(`compression    ${s.ratio.toFixed(2)}× against the fp16 cache (${s.fp16BytesPerToken} B/token)${minicache ? `; retained unmerged: keys ${(100 * s.retained.keys).toFixed(1)}%, values ${(100 * s.retained.values).toFixed(1)}%` : ''}`);
  return { model: model.name, text: file, ctx: v.ctx, kvBits: kv.bits, valueBits: kv.valueBits, minicache: minicache ? { pairs: kv.pairs, t: kv.t, gamma: kv.gamma, range: v.range } : null, distances: distances ?? null, baseline: { ...base, tokensPerSecond: tps(base) }, compressed: { ...r, tokensPerSecond: tps(r) }, int8Resident: resident ? { ...resident, tokensPerSecond: tps(resident) } : null, cache: s };
}
