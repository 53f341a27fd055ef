import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import {
  type DecoderModel, LowbitError, type QdecResidualBits, type QdecStore, attachQdec, buildQdecStore, channelSaliency, generate, perplexity, qdecBytesPerToken, qdecStoreBytes, readQdecStore, writeQdecStore,
} from '@lowbit/runtime';
import { UsageError, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, loadModelFile, modelPath, textOption, textPath, withModel } from '../model-arg.js';
import { checkInputFile, checkOutputFile } from '../paths.js';

/** "0,4,16" as whole channel counts >= 0, for --k. */
export function parseKs(spec: string): number[] {
  const ks = spec.split(',').map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : Number.NaN));
  if (ks.length === 0 || !ks.every((k) => Number.isInteger(k) && k >= 0)) throw new UsageError(`--k must be channel counts >= 0 separated by commas, like 0,4,16; got "${spec}"`);
  return ks;
}

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

const options = {
  reference: { type: 'string', placeholder: 'model', defaultText: 'the embedded stories260K (f32)', description: 'the unquantized model the residuals W − Ŵ are taken against (same layers as the base)' },
  store: { type: 'string', placeholder: 'file.safetensors', description: 'an existing residual store (from --out) instead of building one; refused unless it was built for this base' },
  channels: { type: 'number', above: 0, defaultText: 'all', description: 'input channels stored per layer, the most salient by calibration mean |x|: a count, or a fraction of the layer inputs below 1' },
  'residual-bits': { type: 'string', default: '8', choices: ['4', '8', '32'], description: 'residual storage: int4 or int8 codes with an f32 scale per channel, or f32' },
  calib: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'calibration text for the channel saliency, one document per line' },
  'calib-windows': { type: 'integer', min: 1, default: 32, description: 'calibration windows of --ctx tokens' },
  k: { type: 'string', default: '0,1,2,4,8,16', placeholder: 'k,k,...', description: 'channels compensated per layer and token (the largest |x| among the stored), one perplexity each' },
  compare: { type: 'string', placeholder: 'model,model', description: 'models of a uniformly higher width (e.g. the int4 file beside an int3 base) measured on the same text, with their extra weight bytes per token' },
  'decode-tokens': { type: 'integer', default: 0, min: 0, defaultText: '0 (no speed measured)', description: 'greedy tokens to decode without and with each k, for tokens/s and the time overhead' },
  out: { type: 'string', short: 'o', placeholder: 'file.safetensors', defaultText: 'none', description: 'write the residual store built here' },
  ...textOption,
  ...ctxOption,
} as const;

export const qdecCommand = defineCommand({
  name: 'qdec',
  summary: 'QDEC decode-time error compensation: residuals of salient channels kept off the resident model, the top-k |x| channels added per token; perplexity vs residual bytes per token',
  arguments: [{ ...MODEL_ARGUMENT, description: 'the quantized base model (e.g. from lowbit quantize --format int3 --out m.gguf)' }],
  options,
  examples: [
    'lowbit qdec int3.gguf --out r.safetensors --k 0,4,16',
    'lowbit qdec int3.gguf --store r.safetensors --k 8 --compare int4.gguf --decode-tokens 200',
    'lowbit qdec int4.gguf --channels 0.25 --residual-bits 4 --k 0,2,8',
  ],
  async run(ctx) {
    const v = ctx.values;
    if (!ctx.positionals[0]) throw new UsageError('qdec needs the quantized base model (lowbit quantize --format int3 --out m.gguf writes one)');
    if (v.out) checkOutputFile(v.out);
    if (v.out && !v.out.endsWith('.safetensors')) throw new UsageError(`--out must name a .safetensors file, got "${v.out}"`);
    if (v.store && v.out) throw new UsageError('--store reads a residual store, --out writes a new one: give one of them');
    if (v.store) checkInputFile(v.store, 'a residual store (.safetensors)');
    const ks = parseKs(v.k);
    const validFile = textPath(v.text);
    const valid = await readText(validFile);
    return withModel(ctx, async (base) => {
      let store: QdecStore;
      let built: { channels: number | 'all'; bits: number; calibWindows: number } | null = null;
      if (v.store) store = await readQdecStore(v.store);
      else {
        const reference = await loadModelFile(modelPath(v.reference));
        try {
          const calibFile = v.calib ?? fileURLToPath(calibrationTextUrl);
          const names = base.linears().map((l) => l.name);
          const saliency = channelSaliency(reference, await readText(calibFile), names, { ctx: v.ctx, maxWindows: v['calib-windows'] });
          store = buildQdecStore(base, reference, saliency, { channels: v.channels, bits: Number(v['residual-bits']) as QdecResidualBits });
          built = { channels: v.channels ?? 'all', bits: Number(v['residual-bits']), calibWindows: v['calib-windows'] };
        } finally {
          reference.free();
        }
        if (v.out) await writeQdecStore(v.out, store, { 'lowbit.qdec.base': base.name });
      }
      if (store.layers.size === 0) throw new LowbitError('E_ARG', `${base.name}: no layer differs from the reference: nothing to compensate (is the base quantized?)`);
      const baseBytes = weightBytes(base);
      const rows = ks.map((k) => measure(ctx, base, store, k, valid, v.ctx, v['decode-tokens']));
      const plainTps = v['decode-tokens'] > 0 ? decodeSpeed(base, v['decode-tokens']) : null;
      const compared = [];
      for (const path of v.compare ? v.compare.split(',').map((s) => s.trim()).filter(Boolean) : []) {
        const m = await loadModelFile(path);
        try {
          const p = perplexity(m, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, `eval ${path}`) });
          compared.push({ model: path, perplexity: p.perplexity, stderr: p.stderr, weightBytesPerToken: weightBytes(m), extraBytesPerToken: weightBytes(m) - baseBytes });
        } finally {
          m.free();
        }
      }
      const storeBytes = qdecStoreBytes(store);
      ctx.print(`QDEC on ${base.name}: ${store.layers.size} layers, residual store ${storeBytes} bytes${v.store ? ` (${v.store})` : ''}, base weights ${baseBytes} bytes/token`);
      ctx.print('| k | perplexity | residual bytes/token | decode tokens/s | time vs k = 0 |');
      ctx.print('|---:|---:|---:|---:|---:|');
      const t0 = rows.find((r) => r.k === 0)?.decodeTokensPerSecond ?? plainTps;
      for (const r of rows) {
        const over = r.decodeTokensPerSecond && t0 ? `${((t0 / r.decodeTokensPerSecond - 1) * 100).toFixed(1)}%` : '-';
        ctx.print(`| ${r.k} | ${r.perplexity.toFixed(4)} ± ${r.stderr.toFixed(4)} | ${r.residualBytesPerToken} | ${r.decodeTokensPerSecond === null ? '-' : r.decodeTokensPerSecond.toFixed(1)} | ${over} |`);
      }
      for (const c of compared) {
        const k = equalBytesK(store, c.extraBytesPerToken);
        ctx.print(`${c.model}: perplexity ${c.perplexity.toFixed(4)} ± ${c.stderr.toFixed(4)}, ${c.extraBytesPerToken} more weight bytes/token than the base (QDEC k = ${k} fetches ${qdecBytesPerToken(store, k)})`);
      }
      if (v.out) ctx.print(`wrote ${v.out} (${storeBytes} bytes of residuals, channels and scales)`);
      return { model: base.name, text: validFile, ctx: v.ctx, built, storeBytes, layers: store.layers.size, baseWeightBytesPerToken: baseBytes, plainDecodeTokensPerSecond: plainTps, rows, compare: compared, out: v.out ?? null };
    });
  },
});

/** Weight bytes a token streams through the model's linear layers. */
function weightBytes(m: DecoderModel): number {
  return m.linears().reduce((s, l) => s + l.bytes, 0);
}

/** The largest k whose residual bytes per token do not exceed `bytes`. */
function equalBytesK(store: QdecStore, bytes: number): number {
  const maxCols = Math.max(...[...store.layers.values()].map((l) => l.channels.length));
  let k = 0;
  while (k < maxCols && qdecBytesPerToken(store, k + 1) <= bytes) k++;
  return k;
}

function decodeSpeed(model: DecoderModel, tokens: number): number {
  const g = generate(model, 'Once upon a time', { steps: tokens, stopAtEos: false });
  return g.tokens.length / Math.max(g.decodeSeconds, 1e-9);
}

function measure(ctx: { progress(d: number, t: number, l?: string): void }, base: DecoderModel, store: QdecStore, k: number, text: string, ctxLen: number, decodeTokens: number) {
  const h = attachQdec(base, store, { k, where: 'residual store' });
  try {
    const p = perplexity(base, text, { ctx: ctxLen, onProgress: (d, t) => ctx.progress(d, t, `eval k=${k}`) });
    const decodeTokensPerSecond = decodeTokens > 0 ? decodeSpeed(base, decodeTokens) : null;
    return { k, perplexity: p.perplexity, stderr: p.stderr, tokens: p.tokens, residualBytesPerToken: qdecBytesPerToken(store, k), measuredBytesPerToken: h.bytesPerToken(), decodeTokensPerSecond };
  } finally {
    h.detach();
  }
}
