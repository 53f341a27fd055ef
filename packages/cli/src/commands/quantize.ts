import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { type ModelQuantizeOptions, QUANTIZE_DEFAULTS, gptqQuantizeModelK, quantizeModel } from '@lowbit/quantizers';
import { type KQuantScheme, LowbitError, perplexity, quantizeModelK, saveModel, saveModelSafetensors } from '@lowbit/runtime';
import { type CommandContext, UsageError, defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, loadModelFile, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';
import { formatPerplexity } from './eval.js';
import { quantizerOptions } from './quantizer-options.js';

const INT_FORMATS = ['int2', 'int3', 'int4', 'int5', 'int6', 'int8'] as const;
const GGML_FORMATS = ['q4_0', 'q4_1', 'q8_0'] as const;
const MX_FORMATS = ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const;
// llama.cpp K-quants (RTN with ggml's reference quantizers, or GPTQ on their grid): one type for every matrix, or the Q4_K_M mix
const K_FORMATS = ['q2_k', 'q3_k', 'q4_k', 'q5_k', 'q6_k', 'q4_k_m'] as const;
const FORMATS = [...INT_FORMATS, ...GGML_FORMATS, ...MX_FORMATS, ...K_FORMATS] as const;
type FormatArg = (typeof FORMATS)[number];

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

const options = {
  format: { type: 'string', choices: FORMATS, default: `int${QUANTIZE_DEFAULTS.bits}`, description: 'INT-k grid, llama.cpp block type (q*; q*_k K-quants and the q4_k_m mix: rows of 256k, others llama.cpp\'s 32-block fallback), or OCP MX format (mx*)' },
  ...quantizerOptions,
  smooth: { type: 'number', min: 0, max: 1, placeholder: 'alpha', defaultText: 'off', description: 'SmoothQuant migration strength α, folded into the norms before quantizing' },
  adadim: { type: 'boolean', description: 'AdaDim: per layer, groups along inputs or outputs, whichever has the lower output error (INT-k)' },
  'clip-search': { type: 'boolean', description: 'Q-Rater clipping search per layer, ratios 1..0.6 (INT-k)' },
  'clip-criterion': { type: 'string', choices: ['output', 'loss'], defaultText: 'output', description: "what the clipping search minimizes: the layer's output error or the model's calibration loss (implies --clip-search)" },
  calib: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'calibration text, one document per line' },
  'calib-windows': { type: 'integer', min: 1, default: QUANTIZE_DEFAULTS.maxWindows, description: 'calibration windows of --ctx tokens taken from --calib' },
  ...textOption,
  ...ctxOption,
  out: { type: 'string', short: 'o', placeholder: 'file', defaultText: 'none (nothing written)', description: 'write the quantized model: .gguf (ggml blocks or lowbit tensor types) or .safetensors (INT-k as a GPTQ checkpoint, MX)' },
  ...threadOption,
} as const;

export const quantizeCommand = defineCommand({
  name: 'quantize',
  summary: 'post-training quantization of a whole model (RTN or GPTQ, layer by layer on calibration text), perplexity before and after',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: [
    'lowbit quantize --method gptq --format int3 --group 32 --out m.gguf',
    'lowbit quantize --format int4 --group 128 --act-order --out m.safetensors',
    'lowbit quantize model.gguf --method gptq --format q4_0 --act-order --static-groups --out m.q4_0.gguf',
    'lowbit quantize --method rtn --format int3 --group 0 --adadim --clip-search',
    'lowbit quantize model.gguf --method rtn --format q4_k_m --out m.q4_k_m.gguf',
    'lowbit quantize model.gguf --method gptq --format q4_k --out m.q4_k.gguf',
  ],
  async run(ctx) {
    const v = ctx.values;
    const format = v.format as FormatArg;
    const ggml = (GGML_FORMATS as readonly string[]).includes(format);
    const mx = (MX_FORMATS as readonly string[]).includes(format);
    const kq = (K_FORMATS as readonly string[]).includes(format);
    if (kq) return quantizeK(ctx, format.toUpperCase() as KQuantScheme);
    const { out } = v;
    if (out) checkOutputFile(out);
    if (out && !out.endsWith('.gguf') && !out.endsWith('.safetensors')) throw new UsageError(`--out must name a .gguf or .safetensors file, got "${out}"`);
    if (out?.endsWith('.safetensors') && ggml) {
      throw new LowbitError('E_UNSUPPORTED', `--format ${format} is a llama.cpp block type with no safetensors layout; write it to a .gguf file, or pick an INT-k or MX format for ${out}`);
    }
    if ((ggml || mx) && (v.adadim || v['clip-search'] || v['clip-criterion'])) throw new UsageError(`--adadim, --clip-search and --clip-criterion are for INT-k formats, not ${format}`);
    const clipCriterion = v['clip-criterion'] ?? 'output';
    const clipSearch = v['clip-search'] || v['clip-criterion'] !== undefined;
    const calibFile = v.calib ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const [calibration, valid] = [await readText(calibFile), await readText(validFile)];
    const t0 = performance.now();
    return withModel(ctx, async (model) => {
      const before = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval fp') });
      const common = {
        method: v.method, actOrder: v['act-order'], staticGroups: v['static-groups'], damp: v.damp, calibration, ctx: v.ctx, maxWindows: v['calib-windows'],
        smooth: v.smooth, includeOutput: ggml, onLayer: (l: { name: string }, d: number, t: number) => ctx.progress(d, t, `${v.method} ${l.name}`),
      };
      const o: ModelQuantizeOptions = ggml || mx
        ? { ...common, format: format as 'q4_0' | 'mxfp4' }
        : { ...common, format: 'int', bits: Number(format.slice(3)), group: v.group, symmetric: !v.asym, adaDim: v.adadim, clipSearch, clipCriterion };
      const r = quantizeModel(model, o);
      const after = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval quantized') });
      let bytes: number | null = null;
      let file: { perplexity: number; stderr: number } | null = null;
      const keptF32: { name: string; cols: number }[] = [];
      if (out) {
        if (out.endsWith('.safetensors')) {
          // INT-k in the GPTQ checkpoint layout (f16 scales, as GPTQ loaders expect), MX in lowbit's layout
          await saveModelSafetensors(model, out, { packed: r.packed, damp: v.damp, staticGroups: v['static-groups'] });
        } else if (ggml) {
          // Layers with no block type (rows not a multiple of 32) stay F32, so the file evaluates exactly as
          // the perplexity printed here (stored F16, as llama.cpp's quantizer falls back, stories260K's
          // ffn_down moved it 5.9621 -> 5.9626 and `lowbit eval` of the file disagreed with this command)
          await saveModel(model, out, { target: 'F32' });
        } else {
          // INT-k / MX layers as lowbit tensor types (llama.cpp refuses these files); the layers left
          // in full precision stay F32, so the file evaluates exactly as the model in memory
          const packed = new Map(r.packed);
          if (format === 'mxfp4') {
            // ggml's MXFP4 (type 39) has no partial block, and llama.cpp never writes it for such rows
            // (llama-quantize stops with "Unsupported tensor size encountered"; its MXFP4_MOE mix puts
            // MXFP4 on expert tensors only, Q8_0 elsewhere). Rows that are not whole 32-blocks (stories260K's
            // 172-wide ffn_down) are saved F32 from their decoded values instead of LB_MXFP4, so the file
            // evaluates the same and llama.cpp runs it.
            for (const [name, t] of r.packed) if (t?.kind === 'mx-rows' && t.shape[1] % 32 !== 0) {
              packed.delete(name);
              keptF32.push({ name, cols: t.shape[1] });
            }
          }
          await saveModel(model, out, { target: 'F32', packed });
        }
        bytes = (await stat(out)).size;
        if (!ggml) {
          // The file runs its layers on the packed kernels, which round activations to int8 per block as
          // llama.cpp's kernels do, so its perplexity is not the in-memory one above (RTN int4 g32 on
          // stories260K: 6.4092 in memory, 6.4129 from the file). Print what `lowbit eval` will.
          const saved = await loadModelFile(out);
          try {
            file = perplexity(saved, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval file') });
          } finally {
            saved.free();
          }
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const grouping = ggml || mx ? '' : ` ${v.group ? `g${v.group}` : 'per-channel'} ${v.asym ? 'asym' : 'sym'}`;
      const extras = [v.smooth !== undefined ? `SmoothQuant α=${v.smooth}` : '', v.adadim ? 'AdaDim' : '', clipSearch ? `clip search (${clipCriterion})` : ''].filter(Boolean).join(', ');
      ctx.print(`${v.method} ${format}${grouping}${extras ? ` + ${extras}` : ''} on ${model.name}`);
      ctx.print(`  perplexity ${formatPerplexity(before.perplexity, before.stderr)} -> ${formatPerplexity(after.perplexity, after.stderr)} on ${validFile} (ctx ${v.ctx})`);
      ctx.print(`  ${r.layers.length} layers quantized, ${r.bitsPerWeight.toFixed(3)} bits/weight (quantized layers), ${r.seconds.toFixed(1)} s quantizing, ${seconds.toFixed(1)} s in all`);
      ctx.print(out ? `  wrote ${out} (${bytes} bytes)` : '  nothing written: the quantized model lived in memory only (give --out m.gguf or --out m.safetensors to keep it)');
      if (keptF32.length > 0) {
        ctx.print(`  ${keptF32.length} MXFP4 layers with rows that are not whole 32-blocks stored F32 (their MXFP4 values decoded, exact), as ggml's MXFP4 has no partial block: ${keptF32.map((k) => `${k.name} (${k.cols} wide)`).join(', ')}`);
      }
      if (file) {
        // packed-fast.ts: what repacks exactly onto Q4_0/Q8_0 tiles or the int4 kernel runs with int8
        // activations; the rest keeps the f32 table GEMV, which only sums in another order
        const why = "its layers run on the integer kernels, which round activations to int8 per block as llama.cpp's do (INT-k with groups not a multiple of 32 keeps the f32 table GEMV)";
        ctx.print(`  perplexity of the file as lowbit runs it: ${formatPerplexity(file.perplexity, file.stderr)} (${why})`);
      }
      return {
        method: v.method, format, group: ggml || mx ? 32 : v.group, symmetric: ggml || mx ? null : !v.asym, smooth: v.smooth ?? null, adadim: v.adadim, clip_search: clipSearch ? clipCriterion : null,
        perplexity_before: before.perplexity, perplexity_before_stderr: before.stderr, perplexity_after: after.perplexity, perplexity_after_stderr: after.stderr,
        perplexity_file: file?.perplexity ?? null, perplexity_file_stderr: file?.stderr ?? null,
        bits_per_weight: r.bitsPerWeight, layers: r.layers, seconds_quantize: r.seconds, seconds, out: out ?? null, bytes, stored_f32: keptF32.map((k) => k.name),
      };
    });
  },
});

/**
 * --format q*_k: every matrix K-quantized, per type as llama.cpp picks it (q4_k_m: its Q4_K_M mix), by
 * round to nearest with ggml's reference quantizers (the bytes llama-quantize writes) or by GPTQ on the
 * same grid (calibration text; rows that are not whole super-blocks take RTN's fallback either way).
 */
async function quantizeK(ctx: CommandContext<typeof options>, scheme: KQuantScheme) {
  const v = ctx.values;
  const format = v.format;
  const method = v.method;
  if (v.adadim || v['clip-search'] || v['clip-criterion'] || v.smooth !== undefined) throw new UsageError(`--adadim, --clip-search, --clip-criterion and --smooth are not available with --format ${format}`);
  const { out } = v;
  if (out) checkOutputFile(out);
  if (out && !out.endsWith('.gguf')) throw new UsageError(`--format ${format} is a llama.cpp type and is written to a .gguf file, got "${out}"`);
  const validFile = textPath(v.text);
  const valid = await readText(validFile);
  const calibFile = method === 'gptq' ? (v.calib ?? fileURLToPath(calibrationTextUrl)) : null;
  const calibration = calibFile ? await readText(calibFile) : '';
  const t0 = performance.now();
  return withModel(ctx, async (model) => {
    const before = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval fp') });
    const tq = performance.now();
    const r = method === 'gptq'
      ? gptqQuantizeModelK(model, {
        scheme, calibration, ctx: v.ctx, maxWindows: v['calib-windows'], damp: v.damp, actOrder: v['act-order'], staticGroups: v['static-groups'],
        onLayer: (l, d, t) => ctx.progress(d, t, `${l.method} ${l.name}`),
      })
      : quantizeModelK(model, scheme, (name, d, t) => ctx.progress(d, t, `rtn ${name}`));
    const secondsQuantize = (performance.now() - tq) / 1000;
    const after = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval quantized') });
    let bytes: number | null = null;
    // the layers run on the same K-quant GEMV after loading, so the file evaluates as the model here
    if (out) {
      await saveModel(model, out, { target: 'F32' });
      bytes = (await stat(out)).size;
    }
    const counts = new Map<string, number>();
    for (const l of r.layers) counts.set(l.type, (counts.get(l.type) ?? 0) + 1);
    const seconds = (performance.now() - t0) / 1000;
    ctx.print(`${method} ${format} on ${model.name}${calibFile ? ` (calibration: ${v['calib-windows']} windows of ${calibFile})` : ''}`);
    ctx.print(`  perplexity ${formatPerplexity(before.perplexity, before.stderr)} -> ${formatPerplexity(after.perplexity, after.stderr)} on ${validFile} (ctx ${v.ctx})`);
    ctx.print(`  ${r.layers.length} layers: ${[...counts].map(([t, n]) => `${n} ${t}`).join(', ')}; ${r.bitsPerWeight.toFixed(3)} bits/weight, ${secondsQuantize.toFixed(1)} s quantizing, ${seconds.toFixed(1)} s in all`);
    const fallback = r.layers.filter((l) => l.cols % 256 !== 0);
    if (fallback.length > 0) {
      const types = [...new Set(fallback.map((l) => l.type))].join(' / ');
      ctx.print(`  ${fallback.length} layers have rows that are not whole 256-weight super-blocks (${[...new Set(fallback.map((l) => l.cols))].join(', ')} wide): stored ${types} by round to nearest, llama.cpp's fallback for the type (F32 where rows are not whole 32-blocks, where llama.cpp uses F16)`);
    }
    ctx.print(out ? `  wrote ${out} (${bytes} bytes)` : '  nothing written: the quantized model lived in memory only (give --out m.gguf to keep it)');
    return {
      method, format, perplexity_before: before.perplexity, perplexity_before_stderr: before.stderr, perplexity_after: after.perplexity, perplexity_after_stderr: after.stderr,
      bits_per_weight: r.bitsPerWeight, layers: r.layers, seconds_quantize: secondsQuantize, seconds, out: out ?? null, bytes,
    };
  });
}
