import { readFile, stat } from 'node:fs/promises';
import { latencyFlags, latencyRecipe } from './allocate-cost.js';
import { allocationUnits, checkUnits, unitFlags } from './allocate-units.js';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { type AllocationMethod, type GgmlType, allocate, budgetRange, measureClado, predictorMatrix, ptqFeatures, trainPredictor } from '@lowbit/quantizers';
import { LowbitError, perplexity, saveModel, saveModelSafetensors } from '@lowbit/runtime';
import { defineCommand, parseNumber, UsageError } from '../command.js';
import { ctxOption, loadModelFile, MODEL_ARGUMENT, textOption, textPath, threadOption, withModel } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';
import { formatPerplexity } from './eval.js';

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

/** "3.25" → 3.25 bits per weight; "150000B" or "150000bytes" → a size in bytes. */
export function parseBudget(text: string): { bits?: number; bytes?: number } {
  const m = /^(.*?)(B|bytes)$/.exec(text.trim());
  if (m) return { bytes: parseNumber(m[1], '--budget (bytes)', { above: 0 }) };
  return { bits: parseNumber(text, '--budget (bits per weight, or bytes with a B suffix)', { above: 0 }) };
}

/** "2,3,4,8" → [2, 3, 4, 8]: distinct INT-k widths in 2..8. */
export function parseBits(text: string): number[] {
  const bits = text.split(',').map((s) => parseNumber(s, '--bits', { integer: true, min: 2, max: 8 }));
  if (new Set(bits).size !== bits.length) throw new UsageError(`--bits lists a width twice: "${text}"`);
  return bits.sort((a, b) => a - b);
}

const GGML_CANDIDATES = ['q4_0', 'q4_1', 'q8_0'] as const;

/** "q4_0,q8_0" → ['q4_0', 'q8_0']: distinct ggml block types llama.cpp runs. */
export function parseFormats(text: string): GgmlType[] {
  const types = text.split(',').map((s) => s.trim().toLowerCase());
  for (const t of types) if (!(GGML_CANDIDATES as readonly string[]).includes(t)) throw new UsageError(`--formats: "${t}" is not a candidate ggml type (${GGML_CANDIDATES.join(', ')})${/^q\d_k$/.test(t) ? '; K types hold 256-weight super-blocks per row and are not candidates yet (solvers README, K-quant candidates)' : ''}`);
  if (new Set(types).size !== types.length) throw new UsageError(`--formats lists a type twice: "${text}"`);
  return types as GgmlType[];
}

const options = {
  budget: { type: 'string', placeholder: 'bits|bytesB', defaultText: 'none (give one of --budget, --budget-ms, --max-dppl)', description: 'size budget of the quantized layers: average stored bits per weight (3.25) or bytes (150000B)' },
  ...latencyFlags,
  ...unitFlags,
  bits: { type: 'string', default: '2,3,4,8', placeholder: 'list', description: 'candidate INT-k widths per layer, comma-separated' },
  formats: { type: 'string', placeholder: 'list', defaultText: 'none (INT-k from --bits)', description: 'candidate ggml types instead of --bits (q4_0,q4_1,q8_0), so --out is a GGUF llama.cpp runs; layers of no 32-block rows stay F32' },
  group: { type: 'integer', default: 32, min: 0, description: 'columns per scale group (0: one scale per output channel)' },
  method: { type: 'string', choices: ['clado', 'diagonal', 'uniform', 'greedy', 'predictor'], default: 'clado', description: 'allocator: CLADO (pairwise G, exact IQP), diagonal (singles only, exact), uniform, greedy by ΔL per bit, predictor (fitted PTQ quality model, exact IQP)' },
  configs: { type: 'integer', min: 6, default: 96, description: 'with --method predictor: random configurations measured to fit it (a third held out for its report)' },
  quantizer: { type: 'string', choices: ['rtn', 'gptq'], default: 'rtn', description: 'how each candidate configuration is quantized (GPTQ from the full-precision inputs of each layer)' },
  pairs: { type: 'string', choices: ['all', 'block', 'none'], default: 'block', description: 'which layer pairs get a measured cross term (block: within a transformer block; others taken as independent)' },
  calib: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'text the loss changes are measured on, one document per line' },
  'calib-windows': { type: 'integer', min: 1, default: 16, description: 'measurement windows taken from --calib (fewer: sensitivities that do not generalise, see the solvers README)' },
  'calib-ctx': { type: 'integer', min: 2, default: 128, description: 'measurement window length in tokens' },
  'time-limit': { type: 'number', above: 0, default: 60, placeholder: 's', description: 'HiGHS time limit; at the limit the best allocation found is used, with its gap' },
  ...textOption,
  ...ctxOption,
  out: { type: 'string', short: 'o', placeholder: 'file', defaultText: 'none (nothing written)', description: 'write the model and its perplexity as loaded (.gguf: ggml types with --formats, llama.cpp runs it, else lowbit INT-k; .safetensors: lowbit INT-k)' },
  ...threadOption,
} as const;

export const allocateCommand = defineCommand({
  name: 'allocate',
  summary: 'mixed-precision bit allocation under a size budget (CLADO: measured pairwise loss changes, integer program solved by HiGHS), perplexity after',
  arguments: [MODEL_ARGUMENT],
  options,
  examples: [
    'lowbit allocate --budget 3',
    'lowbit allocate --bits 2,3,4,8 --budget 2.75 --pairs all --json',
    'lowbit allocate --budget 3.5 --method greedy --quantizer gptq --out mixed.gguf',
    'lowbit allocate --formats q4_0,q8_0 --budget 6 --out mixed.q4_0-q8_0.gguf',
    'lowbit allocate --budget 3.5 --embed-buckets 4 --out mixed.safetensors',
    'lowbit allocate --cost latency --max-dppl 0.3 --out fastest.gguf',
    'lowbit allocate --formats q4_0,q8_0 --cost latency --budget-ms 0.2',
  ],
  async run(ctx) {
    const v = ctx.values;
    const ggml = v.formats === undefined ? undefined : parseFormats(v.formats);
    const bits = parseBits(v.bits);
    // ggml blocks fix their own group of 32; a different --group would be silently ignored
    if (ggml && v.group !== 32) throw new UsageError(`--group ${v.group} does not apply to --formats (ggml blocks hold 32 weights each)`);
    const recipe = latencyRecipe(v);
    checkUnits(v);
    const budget = recipe ? { bits: undefined, bytes: undefined } : parseBudget(v.budget as string);
    const { out } = v;
    if (out) checkOutputFile(out);
    if (out && !/\.(gguf|safetensors)$/.test(out)) throw new UsageError(`--out must name a .gguf or .safetensors file, got "${out}"`);
    if (out && ggml && !out.endsWith('.gguf')) throw new UsageError(`--formats writes ggml block types, which only GGUF holds: --out must name a .gguf file, got "${out}"`);
    if (v.quantizer === 'gptq' && v.pairs === 'all') throw new UsageError('--pairs all is measured with --quantizer rtn only (GPTQ candidates are built block by block)');
    const calibFile = v.calib ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const [calibration, valid] = [await readText(calibFile), await readText(validFile)];
    const t0 = performance.now();
    return withModel(ctx, async (model) => {
      const range = budgetRange(model, { bits, group: v.group, ggml });
      const names = ggml ? ggml : bits.map((b) => `int${b}`);
      const candidates = ggml ? `--formats ${ggml.join(',')}` : `--bits ${bits.join(',')} --group ${v.group}`;
      const asBits = budget.bits ?? ((budget.bytes as number) * 8 * range.minBits) / (range.minBytes * 8);
      const tol = 1e-9;
      // with embedding buckets the budget also covers the embedding: allocate checks the range after measuring
      if (!recipe && v['embed-buckets'] === 0 && (asBits < range.minBits - tol || asBits > range.maxBits + tol)) {
        const sizes = ggml ? ggml.map((t) => budgetRange(model, { ggml: [t] }).minBits) : bits;
        const [lo, hi] = [names[sizes.indexOf(Math.min(...sizes))], names[sizes.indexOf(Math.max(...sizes))]];
        const side = asBits < range.minBits ? `below the smallest size, ${range.minBits.toFixed(4)} bits/weight = ${Math.ceil(range.minBytes)} bytes (every layer ${lo})` : `above the largest size, ${range.maxBits.toFixed(4)} bits/weight = ${Math.ceil(range.maxBytes)} bytes (every layer ${hi})`;
        throw new LowbitError('E_RANGE', `--budget ${v.budget} is ${side}; reachable with ${candidates}: ${range.minBits.toFixed(4)}..${range.maxBits.toFixed(4)} bits/weight, ${Math.ceil(range.minBytes)}..${Math.floor(range.maxBytes)} bytes`);
      }
      const before = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval fp') });
      // uniform and greedy need only the diagonal: no pair is measured for them
      // block-measured measures block pairs itself: the layers need their singles only
      const pairs = v.method === 'clado' && v.granularity !== 'block-measured' ? v.pairs : 'none';
      const m = measureClado(model, {
        bits, ggml, group: v.group, method: v.quantizer, calibration, ctx: v['calib-ctx'], maxWindows: v['calib-windows'], pairs,
        onProgress: (d, t) => ctx.progress(d, t, 'measure ΔL'),
      });
      const units = allocationUnits(model, m, v, { calibration, bits, group: v.group, onProgress: (d, t) => ctx.progress(d, t, 'measure embedding ΔL') });
      const costed = recipe ? await recipe.allocate(model, units.measurement, before.perplexity, { method: v.method as AllocationMethod, timeLimit: v['time-limit'], units: { layers: m, members: units.members } }) : null;
      // the predictor: cheap features, fitted on measured random configurations (solvers README, study)
      const pred = v.method === 'predictor' ? (() => {
        const features = ptqFeatures(model, m, { calibration, ctx: m.ctx, windows: Math.min(8, m.windows) });
        const report = trainPredictor(model, m, features, calibration, { configurations: v.configs, onProgress: (d, t) => ctx.progress(d, t, 'measure configurations') });
        return { report, objective: predictorMatrix(report.fit, features) };
      })() : null;
      const a = costed ?? (await allocate(units.measurement, { method: v.method as AllocationMethod, budgetBits: budget.bits, budgetBytes: budget.bytes, timeLimit: v['time-limit'], objective: pred?.objective }));
      const packed = units.apply(a.choice);
      const after = perplexity(model, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval allocated') });
      let bytes: number | null = null;
      let written: ReturnType<typeof perplexity> | null = null;
      if (out) {
        // mixed widths share one safetensors file only in lowbit's layout (GPTQ's holds one width)
        if (out.endsWith('.safetensors')) await saveModelSafetensors(model, out, { packed, gptq: false });
        else await saveModel(model, out, { target: 'F32', packed });
        bytes = (await stat(out)).size;
        // the file as `lowbit eval` loads it: its packed layers run on the packed kernels (int4-tile
        // layers quantize activations to int8), so this can differ from the in-memory figure above
        const saved = await loadModelFile(out, { kernels: model.kernels });
        try {
          written = perplexity(saved, valid, { ctx: v.ctx, onProgress: (d, t) => ctx.progress(d, t, 'eval written file') });
        } finally {
          saved.free();
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const config = (name: string) => (ggml ? `${name} ${v.quantizer}` : `${name} ${v.group ? `g${v.group}` : 'per-channel'} ${v.quantizer}`);
      if (costed) ctx.print(`${v.method} allocation on ${model.name}: ${costed.summary}; ${a.bitsPerWeight.toFixed(4)} bits/weight (${Math.ceil(a.sizeBits / 8)} bytes of quantized layers)`);
      else ctx.print(`${v.method} allocation on ${model.name}: ${a.bitsPerWeight.toFixed(4)} bits/weight for a budget of ${a.budgetBits.toFixed(4)} (${Math.ceil(a.sizeBits / 8)} bytes of quantized layers)`);
      for (const [name, f] of Object.entries(a.formats)) ctx.print(`  ${name.padEnd(24)} ${config(f)}`);
      const kept = model.linears().filter((l) => /^blk\./.test(l.name) && !m.layers.includes(l.name)).map((l) => l.name);
      if (kept.length) ctx.print(`  F32 (rows of no 32-block, outside the budget): ${kept.join(', ')}`);
      ctx.print(`  ΔL on ${calibFile} (${m.windows} windows of ${m.ctx}): predicted ${a.predictedDeltaLoss.toFixed(5)} with pairs, ${a.additiveDeltaLoss.toFixed(5)} additive; ${m.evaluations} passes (${m.pairEvaluations} pairs, --pairs ${pairs}) in ${m.seconds.toFixed(1)} s`);
      if (pred) {
        const r = pred.report;
        ctx.print(`  predictor: fit on ${r.trainCount} measured configurations; held out ${r.heldOutCount}: Spearman ${r.spearman.toFixed(3)}, median relative error ${(100 * r.medianRelativeError).toFixed(0)}%; predicts ΔL ${a.predictorDeltaLoss?.toFixed(5)}`);
      }
      if (a.fallback) ctx.warn(`HiGHS found no allocation within --time-limit ${v['time-limit']} s: the greedy allocation is used (no bound, no gap)`);
      if (a.solver) {
        const s = a.solver;
        ctx.print(`  HiGHS: ${s.status}, objective ${s.objective.toFixed(6)}, bound ${s.bound.toFixed(6)}, gap ${(100 * s.gap).toFixed(3)}%, ${s.columns} columns × ${s.rows} rows, ${s.seconds.toFixed(2)} s`);
        if (s.status !== 'Optimal') ctx.warn(`HiGHS stopped before proving optimality (${s.status}): the allocation is the best found, ${(100 * s.gap).toFixed(3)}% from the bound`);
      }
      ctx.print(`  perplexity ${formatPerplexity(before.perplexity, before.stderr)} -> ${formatPerplexity(after.perplexity, after.stderr)} on ${validFile} (ctx ${v.ctx})`);
      ctx.print(out ? `  wrote ${out} (${bytes} bytes${units.embedding ? ', token_embd in per-row INT-k buckets' : ''}); loaded back: perplexity ${formatPerplexity((written as ReturnType<typeof perplexity>).perplexity, (written as ReturnType<typeof perplexity>).stderr)} (lowbit eval ${out} --ctx ${v.ctx})` : '  nothing written (give --out mixed.gguf to keep the model)');
      if (out?.endsWith('.gguf') && !ggml) ctx.print(`  ${out} holds lowbit tensor types (LB_INT*${units.embedding ? ', token_embd.bucket*' : ''}): lowbit loads it, llama.cpp does not (--formats q4_0,q8_0 writes a GGUF llama.cpp runs)`);
      return {
        method: v.method, quantizer: v.quantizer, group: v.group, bits: ggml ? null : bits, budget: costed ? null : a.budgetBits, ...(costed ? costed.json : { cost: 'size' }), bits_per_weight: a.bitsPerWeight, size_bytes: Math.ceil(a.sizeBits / 8),
        perplexity: after.perplexity, perplexity_stderr: after.stderr, perplexity_fp: before.perplexity, perplexity_written: written?.perplexity ?? null,
        predicted_delta_loss: a.predictedDeltaLoss, additive_delta_loss: a.additiveDeltaLoss,
        formats: ggml ?? null,
        layers: Object.fromEntries(Object.entries(a.formats).map(([n, f]) => [n, config(f)])),
        kept_f32: kept,
        solver: a.solver ? { status: a.solver.status, objective: a.solver.objective, bound: a.solver.bound, gap: a.solver.gap, seconds: a.solver.seconds, timed_out: a.timedOut ?? false, fallback: a.fallback ?? null } : null,
        predictor: pred ? { train: pred.report.trainCount, held_out: pred.report.heldOutCount, spearman: pred.report.spearman, median_relative_error: pred.report.medianRelativeError, predicted_delta_loss: a.predictorDeltaLoss } : null,
        measurement: { pairs, windows: m.windows, ctx: m.ctx, evaluations: m.evaluations, pair_evaluations: m.pairEvaluations, base_loss: m.baseLoss, seconds: m.seconds },
        granularity: v.granularity, embedding_buckets: units.embedding ? units.embedding.rows.map((ids, b) => ({ tokens: ids.length, share: units.embedding?.share[b], bits: units.embedding?.bits[a.choice[a.choice.length - (units.embedding?.rows.length ?? 0) + b]] })) : null,
        out: out ?? null, bytes, seconds,
      };
    });
  },
});
