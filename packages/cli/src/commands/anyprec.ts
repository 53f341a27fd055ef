import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { QUANTIZE_DEFAULTS, anyPrecisionModel, applyAnyPrecision, f32Weights, layerSensitivities, upscaleAnyPrecision } from '@lowbit/quantizers';
import { type DecoderModel, LowbitError, generate, perplexity, saveModel, saveModelSafetensors } from '@lowbit/runtime';
import { UsageError, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';

/** "3", "3..8" or "3,5,8" as a list of widths (1..8), for --bits. */
export function parseBits(spec: string): number[] {
  const range = /^(\d)\.\.(\d)$/.exec(spec);
  const list = range ? Array.from({ length: Number(range[2]) - Number(range[1]) + 1 }, (_, i) => Number(range[1]) + i) : spec.split(',').map((s) => (/^\d$/.test(s.trim()) ? Number(s) : Number.NaN));
  if (list.length === 0 || !list.every((b) => Number.isInteger(b) && b >= 1 && b <= 8)) throw new UsageError(`--bits must be a width 1..8, a range like 3..8 or a list like 3,4,8; got "${spec}"`);
  return list;
}

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

const options = {
  'seed-bits': { type: 'integer', default: 3, min: 1, max: 8, description: 'width of the seed k-means model' },
  'max-bits': { type: 'integer', default: 8, min: 1, max: 8, description: 'widest model grown from the seed (one bit per upscaling step)' },
  calib: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'calibration text for the sensitivities diag(XᵀX), one document per line' },
  'calib-windows': { type: 'integer', min: 1, default: QUANTIZE_DEFAULTS.maxWindows, description: 'calibration windows of --ctx tokens taken from --calib' },
  compare: { type: 'boolean', description: 'also quantize a separate sensitivity-weighted k-means model at each width and measure it (the table of the runtime README)' },
  'decode-tokens': { type: 'integer', default: 0, min: 0, defaultText: '0 (no speed measured)', description: 'greedy tokens to decode at each width for decode tokens/s' },
  ...textOption,
  ...ctxOption,
  out: { type: 'string', short: 'o', placeholder: 'file', defaultText: 'none (nothing written)', description: 'write the nested model (every width in one file; lowbit eval/generate --bits pick one): .safetensors, or .gguf with lowbit type LB_ANYPREC' },
  ...threadOption,
} as const;

export const anyprecCommand = defineCommand({
  name: 'anyprec',
  summary: 'any-precision model: sensitivity-weighted k-means seed upscaled to every wider width, one nested file; perplexity per width',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: ['lowbit anyprec --out ap.safetensors', 'lowbit anyprec --seed-bits 3 --max-bits 8 --compare --decode-tokens 200', 'lowbit eval ap.safetensors --bits 3..8'],
  async run(ctx) {
    const v = ctx.values;
    const { out } = v;
    if (out) checkOutputFile(out);
    if (out && !/\.(safetensors|gguf)$/.test(out)) throw new UsageError(`--out must name a .safetensors or .gguf file, got "${out}"`);
    if (v['max-bits'] < v['seed-bits']) throw new UsageError(`--max-bits ${v['max-bits']} is below --seed-bits ${v['seed-bits']}`);
    const calibFile = v.calib ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const [calibration, valid] = [await readText(calibFile), await readText(validFile)];
    const widths = Array.from({ length: v['max-bits'] - v['seed-bits'] + 1 }, (_, i) => v['seed-bits'] + i);
    return withModel(ctx, async (model) => {
      const fp = perplexity(model, valid, { ctx: v.ctx });
      // the separate models are fitted from the same f32 weights and statistics, taken before the model changes
      const originals = new Map(model.linears().filter((l) => l.name !== 'output.weight').map((l) => [l.name, f32Weights(l.name, l.source)]));
      const t0 = performance.now();
      const sensitivities = layerSensitivities(model, calibration, originals.keys(), { ctx: v.ctx, maxWindows: v['calib-windows'] });
      const tensors = anyPrecisionModel(model, { sensitivities, seedBits: v['seed-bits'], maxBits: v['max-bits'], onProgress: (d, t) => ctx.progress(d, t, 'upscale') });
      const upscaleSeconds = (performance.now() - t0) / 1000;
      applyAnyPrecision(model, tensors);
      let bytes: number | null = null;
      if (out) {
        // GGUF holds the nested layers as LB_ANYPREC (the LM head and embeddings F32, as in memory)
        if (out.endsWith('.gguf')) await saveModel(model, out, { target: 'F32' });
        else await saveModelSafetensors(model, out);
        bytes = (await stat(out)).size;
      }
      const rows = widths.map((bits) => ({ bits, ...measure(model, valid, v.ctx, bits, v['decode-tokens']) }));
      let separate: { bits: number; perplexity: number; stderr: number }[] | null = null;
      if (v.compare) {
        // each width its own weighted k-means (seed = max = b): the quality the nesting is measured against
        separate = [];
        for (const bits of widths) {
          for (const [name, w] of originals) {
            const t = upscaleAnyPrecision(w.data, w.shape, { seedBits: bits, maxBits: bits, weights: sensitivities.get(name) });
            model.setLinear(name, { format: 'any-precision', shape: t.shape, tensor: t });
          }
          const p = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, `separate ${bits}-bit`) });
          separate.push({ bits, perplexity: p.perplexity, stderr: p.stderr });
        }
      }
      ctx.print(`any-precision ${v['seed-bits']}..${v['max-bits']} bits on ${model.name} (f32 perplexity ${fp.perplexity.toFixed(4)}), upscaled in ${upscaleSeconds.toFixed(1)} s`);
      ctx.print('| bits | perplexity, one upscaled file | separate k-means model | weight bytes/token | decode tokens/s |');
      ctx.print('|---:|---:|---:|---:|---:|');
      for (const r of rows) {
        const s = separate?.find((x) => x.bits === r.bits);
        ctx.print(`| ${r.bits} | ${r.perplexity.toFixed(4)} ± ${r.stderr.toFixed(4)} | ${s ? `${s.perplexity.toFixed(4)} ± ${s.stderr.toFixed(4)}` : '-'} | ${r.bytesPerToken} | ${r.decodeTokensPerSecond === null ? '-' : r.decodeTokensPerSecond.toFixed(1)} |`);
      }
      ctx.print(out ? `wrote ${out} (${bytes} bytes)` : 'nothing written (give --out ap.safetensors to keep the nested model)');
      return { seedBits: v['seed-bits'], maxBits: v['max-bits'], f32Perplexity: fp.perplexity, upscaleSeconds, widths: rows, separate, out: out ?? null, bytes };
    });
  },
});

/** Perplexity, bytes streamed per token and greedy decode speed of the model at one width. */
export function measure(model: DecoderModel, text: string, ctxLen: number, bits: number, decodeTokens: number) {
  const p = perplexity(model, text, { ctx: ctxLen, bits });
  const bytesPerToken = model.linears().reduce((s, l) => s + l.bytesAt(l.bitRange ? bits : undefined), 0);
  let decodeTokensPerSecond: number | null = null;
  if (decodeTokens > 0) {
    const g = generate(model, 'Once upon a time', { steps: decodeTokens, stopAtEos: false, bits });
    decodeTokensPerSecond = g.tokens.length / Math.max(g.decodeSeconds, 1e-9);
  }
  return { perplexity: p.perplexity, stderr: p.stderr, bytesPerToken, decodeTokensPerSecond };
}
