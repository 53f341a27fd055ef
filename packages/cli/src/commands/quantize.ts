import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { quantizeModel } from '@lowbit/quantizers';
import { LowbitError, perplexity, saveModel, saveModelSafetensors } from '@lowbit/runtime';
import { type Command, UsageError, intOption, numberOption } from '../command.js';
import { textPath, threadOption, withModel } from '../model-arg.js';

const FORMATS = ['int2', 'int3', 'int4', 'int5', 'int6', 'int8', 'q4_0', 'q4_1', 'q8_0', 'mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const;
type FormatArg = (typeof FORMATS)[number];

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'post-training quantization of a whole model (RTN or GPTQ, layer by layer on calibration text), perplexity before and after',
  usage: 'lowbit quantize [model.gguf] --method rtn|gptq --format int2..int8|q4_0|q4_1|q8_0|mxfp4|mxfp6_e2m3|mxint8|... [--group 32] [--act-order] [--static-groups] [--asym] [--damp 0.01] [--smooth 0.5] [--adadim] [--clip-search] [--clip-criterion output|loss] [--calib train.txt] [--calib-windows 32] [--text valid.txt] [--ctx 256] [--out model.q.gguf|model.safetensors] [--json]',
  options: {
    method: { type: 'string' }, format: { type: 'string' }, group: { type: 'string' },
    'act-order': { type: 'boolean' }, 'static-groups': { type: 'boolean' }, asym: { type: 'boolean' }, damp: { type: 'string' },
    smooth: { type: 'string' }, adadim: { type: 'boolean' }, 'clip-search': { type: 'boolean' }, 'clip-criterion': { type: 'string' },
    calib: { type: 'string' }, 'calib-windows': { type: 'string' }, text: { type: 'string' }, ctx: { type: 'string' }, out: { type: 'string' },
    ...threadOption,
  },
  async run(ctx) {
    const method = (ctx.values.method as string | undefined) ?? 'gptq';
    if (method !== 'rtn' && method !== 'gptq') throw new UsageError(`--method must be rtn or gptq, got "${method}"`);
    const format = ((ctx.values.format as string | undefined) ?? 'int4') as FormatArg;
    if (!FORMATS.includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got "${format}"`);
    const ggml = format.startsWith('q');
    const mx = format.startsWith('mx');
    const out = ctx.values.out as string | undefined;
    if (out && !out.endsWith('.gguf') && !out.endsWith('.safetensors')) throw new UsageError(`--out must name a .gguf or .safetensors file, got "${out}"`);
    if (out?.endsWith('.safetensors') && ggml) {
      throw new LowbitError('E_UNSUPPORTED', `--format ${format} is a llama.cpp block type with no safetensors layout; write it to a .gguf file, or pick an INT-k or MX format for ${out}`);
    }
    const group = intOption(ctx, 'group', 32);
    // SmoothQuant strength α (paper eq. 4), folded into the norms before quantizing
    const smooth = ctx.values.smooth === undefined ? undefined : numberOption(ctx, 'smooth', 0.5);
    if (smooth !== undefined && !(smooth >= 0 && smooth <= 1)) throw new UsageError(`--smooth must be in [0, 1], got ${ctx.values.smooth}`);
    const clipCriterion = (ctx.values['clip-criterion'] as string | undefined) ?? 'output';
    if (clipCriterion !== 'output' && clipCriterion !== 'loss') throw new UsageError(`--clip-criterion must be output or loss, got "${clipCriterion}"`);
    const clipSearch = Boolean(ctx.values['clip-search']) || ctx.values['clip-criterion'] !== undefined;
    const ctxLen = intOption(ctx, 'ctx', 256);
    const calibFile = (ctx.values.calib as string | undefined) ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(ctx.values.text as string | undefined);
    const [calibration, valid] = [await readText(calibFile), await readText(validFile)];
    const t0 = performance.now();
    return withModel(ctx, async (model) => {
      const before = perplexity(model, valid, { ctx: ctxLen, onProgress: (d, t) => ctx.progress(d, t, 'eval fp') }).perplexity;
      const r = quantizeModel(model, {
        method, format: ggml || mx ? (format as 'q4_0' | 'mxfp4') : 'int', bits: ggml || mx ? 0 : Number(format.slice(3)),
        group: ggml || mx ? 32 : group, symmetric: !ctx.values.asym, actOrder: Boolean(ctx.values['act-order']), staticGroups: Boolean(ctx.values['static-groups']),
        damp: numberOption(ctx, 'damp', 0.01), calibration, ctx: ctxLen, maxWindows: intOption(ctx, 'calib-windows', 32),
        smooth, adaDim: Boolean(ctx.values.adadim), clipSearch, clipCriterion,
        includeOutput: ggml, onLayer: (l, d, t) => ctx.progress(d, t, `${method} ${l.name}`),
      });
      const after = perplexity(model, valid, { ctx: ctxLen, onProgress: (d, t) => ctx.progress(d, t, 'eval quantized') }).perplexity;
      let bytes: number | null = null;
      if (out) {
        if (out.endsWith('.safetensors')) {
          // INT-k in the GPTQ checkpoint layout (f16 scales, as GPTQ loaders expect), MX in lowbit's layout
          await saveModelSafetensors(model, out, { packed: r.packed, damp: numberOption(ctx, 'damp', 0.01), staticGroups: Boolean(ctx.values['static-groups']) });
        } else if (ggml) {
          // Layers with no block type (rows not a multiple of 32) stay F32, so the file evaluates exactly as
          // the perplexity printed here (stored F16, as llama.cpp's quantizer falls back, stories260K's
          // ffn_down moved it 5.9621 -> 5.9626 and `lowbit eval` of the file disagreed with this command)
          await saveModel(model, out, { target: 'F32' });
        } else {
          // INT-k / MX layers as lowbit tensor types (llama.cpp refuses these files); the layers left
          // in full precision stay F32, so the file evaluates exactly as the model in memory
          await saveModel(model, out, { target: 'F32', packed: r.packed });
        }
        bytes = (await stat(out)).size;
      }
      const seconds = (performance.now() - t0) / 1000;
      const extras = [smooth !== undefined ? `SmoothQuant α=${smooth}` : '', ctx.values.adadim ? 'AdaDim' : '', clipSearch ? `clip search (${clipCriterion})` : ''].filter(Boolean).join(', ');
      ctx.print(`${method} ${format}${ggml || mx ? '' : ` ${group ? `g${group}` : 'per-channel'}`}${extras ? ` + ${extras}` : ''}: perplexity ${before.toFixed(4)} -> ${after.toFixed(4)} on ${validFile}`);
      ctx.print(`  ${r.layers.length} layers quantized, ${r.bitsPerWeight.toFixed(3)} bits/weight (quantized layers), ${r.seconds.toFixed(1)} s quantizing, ${seconds.toFixed(1)} s in all${out ? `; wrote ${out} (${bytes} bytes)` : ''}`);
      return { method, format, group, smooth: smooth ?? null, adadim: Boolean(ctx.values.adadim), clip_search: clipSearch ? clipCriterion : null, perplexity_before: before, perplexity_after: after, bits_per_weight: r.bitsPerWeight, layers: r.layers, seconds_quantize: r.seconds, seconds, out: out ?? null, bytes };
    });
  },
};
