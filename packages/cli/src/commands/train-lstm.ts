import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { loadKernels } from '@lowbit/kernels';
import { lstmFakeQuant, quantizeLstm } from '@lowbit/quantizers';
import {
  type LinearWeight, type LstmConfig, LSTM_LIMITS, LowbitError, PackedLstm, type Tokenizer, initLstmParams, loadLstm, lstmWasmMatmul, readGguf, saveLstm, tokenizerFromGguf, trainLstm,
} from '@lowbit/runtime';
import { UsageError, defineCommand } from '../command.js';
import { textOption, textPath } from '../model-arg.js';
import { checkOutputFile } from '../paths.js';

// the evaluation reads the text as one stream; this is only how many tokens each batched input projection covers
const EVAL_CHUNK = 256;

async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((e: Error) => {
    throw new LowbitError('E_IO', `${file}: cannot read (${e.message})`);
  });
}

/** One document per non-empty line, each from BOS (as the perplexity of the Llama path reads text). */
function tokenize(tok: Tokenizer, text: string): number[] {
  const ids: number[] = [];
  for (const line of text.split(/\r?\n/)) if (line.trim()) for (const id of tok.encode(line, { bos: true })) ids.push(id);
  return ids;
}

function parseBitsList(s: string): number[] {
  const out = s.split(',').map((x) => Number(x.trim()));
  for (const b of out) if (!Number.isInteger(b) || b < 2 || b > 8) throw new UsageError(`--quantize takes widths 2..8, comma-separated; got "${s}"`);
  return out;
}

const options = {
  from: { type: 'string', placeholder: 'file', defaultText: 'none (train from scratch)', description: 'start from an LSTM file written by --out (its shape options win; --steps 0 only quantizes it)' },
  hidden: { type: 'integer', min: LSTM_LIMITS.hidden[0], max: LSTM_LIMITS.hidden[1], default: 128, description: 'width of the embedding and of each LSTM layer' },
  layers: { type: 'integer', min: LSTM_LIMITS.layers[0], max: LSTM_LIMITS.layers[1], default: 1, description: 'LSTM layers' },
  'weight-norm': { type: 'boolean', description: 'weight normalization of the gate matrices (per-row gain × direction)' },
  'layer-norm': { type: 'boolean', description: 'layer normalization of the gate pre-activations' },
  steps: { type: 'integer', min: 0, max: 1_000_000, default: 300, description: 'AdamW steps (0 with --from: only evaluate and quantize)' },
  lr: { type: 'number', above: 0, max: 1, default: 0.003, description: 'peak learning rate (linear warmup, cosine decay to a tenth)' },
  warmup: { type: 'integer', min: 0, defaultText: 'steps/10', description: 'linear-warmup steps' },
  ctx: { type: 'integer', min: 2, max: 65536, default: 64, description: 'truncated-BPTT window in tokens (the state carries across windows)' },
  batch: { type: 'integer', min: 1, max: 4096, default: 8, description: 'text streams per step (their gradients are averaged)' },
  seed: { type: 'integer', min: 0, default: 1, description: 'initialization seed' },
  train: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'training text, one document per line' },
  ...textOption,
  out: { type: 'string', short: 'o', placeholder: 'file.safetensors', defaultText: 'none (nothing written)', description: 'write the trained f32 model; checkpoints go to the same file during training' },
  'checkpoint-every': { type: 'integer', min: 1, default: 100, description: 'with --out: write it every N steps (and on Ctrl-C)' },
  quantize: { type: 'string', placeholder: 'list', defaultText: 'none', description: 'INT-k widths to quantize the gate matrices and head to (2,3,4,8), each evaluated packed' },
  method: { type: 'string', choices: ['rtn', 'gptq'] as const, default: 'rtn', description: 'PTQ method (gptq: calibration inputs from the training text)' },
  group: { type: 'integer', min: 0, default: 32, description: 'columns per scale (0 = per output channel)' },
  'qat-steps': { type: 'integer', min: 0, max: 1_000_000, default: 0, description: 'per width: QAT (STE on the RTN grid) for N steps from the trained model, then RTN' },
  'qat-lr': { type: 'number', above: 0, max: 1, default: 0.001, description: 'QAT peak learning rate' },
} as const;

export const trainLstmCommand = defineCommand({
  name: 'train-lstm',
  summary: 'train an LSTM language model (weight/layer norm options) at the embedded tokenizer, quantize it (PTQ, QAT), perplexity on packed weights',
  options,
  examples: [
    'lowbit train-lstm --hidden 128 --steps 300 --out lstm.safetensors',
    'lowbit train-lstm --from lstm.safetensors --steps 0 --quantize 2,3,4,8 --qat-steps 100 --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    if (v.out) {
      checkOutputFile(v.out);
      if (!v.out.endsWith('.safetensors')) throw new UsageError(`--out must name a .safetensors file, got "${v.out}"`);
    }
    if (v.steps === 0 && !v.from) throw new UsageError('--steps 0 needs --from (a model to evaluate)');
    const warmup = v.warmup ?? Math.floor(v.steps / 10);
    if (v.steps > 0 && warmup > v.steps) throw new UsageError(`--warmup ${warmup} is more than --steps ${v.steps}`);
    const bitsList = v.quantize ? parseBitsList(v.quantize) : [];
    const t0 = performance.now();
    const gguf = await readGguf(fileURLToPath(defaultModelUrl));
    const tok = await Promise.resolve()
      .then(() => tokenizerFromGguf(gguf))
      .finally(() => gguf.source.close());
    const trainFile = v.train ?? fileURLToPath(calibrationTextUrl);
    const validFile = textPath(v.text);
    const train = tokenize(tok, await readText(trainFile));
    const valid = tokenize(tok, await readText(validFile));
    if (train.length < 2) throw new LowbitError('E_ARG', `${trainFile}: the training text gives ${train.length} token(s); it is empty`);
    if (valid.length < 2) throw new LowbitError('E_ARG', `${validFile}: the validation text gives ${valid.length} token(s); it is empty`);
    let config: LstmConfig;
    let params: Map<string, Float32Array>;
    if (v.from) ({ config, params } = await loadLstm(v.from));
    else {
      config = { vocab: tok.vocabSize, hidden: v.hidden, layers: v.layers, weightNorm: v['weight-norm'] === true, layerNorm: v['layer-norm'] === true };
      params = initLstmParams(config, v.seed);
    }
    if (config.vocab !== tok.vocabSize) throw new LowbitError('E_SHAPE', `${v.from}: the model's vocabulary is ${config.vocab}, the embedded tokenizer's ${tok.vocabSize}`);
    const kernels = await loadKernels();
    const matmul = lstmWasmMatmul(kernels);
    const abort = new AbortController();
    const onSigint = () => {
      ctx.warn('stopping after this step (Ctrl-C again to quit at once)');
      abort.abort();
      process.once('SIGINT', () => process.exit(130));
    };
    let trained = { steps: 0, tokens: 0, seconds: 0, lossFirst: null as number | null, lossLast: null as number | null, stopped: false };
    if (v.steps > 0) {
      process.once('SIGINT', onSigint);
      try {
        const tt = performance.now();
        const r = await trainLstm(config, params, train, {
          lr: v.lr, steps: v.steps, warmup, ctx: v.ctx, batch: v.batch, matmul, signal: abort.signal,
          checkpoint: v.out ? { path: v.out, every: v['checkpoint-every'] } : undefined,
          onStep: (s) => {
            const rate = ((s.step + 1) * v.batch * v.ctx) / ((performance.now() - tt) / 1000);
            ctx.progress(s.step + 1, v.steps, `loss ${s.loss.toFixed(3)} ${rate.toFixed(0)} tok/s`);
          },
        });
        trained = { steps: r.losses.length, tokens: r.tokens, seconds: r.seconds, lossFirst: r.losses[0] ?? null, lossLast: r.losses.at(-1) ?? null, stopped: r.stopped };
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    } else if (v.out) await saveLstm(v.out, config, params);
    const evaluate = async (label: string, weights?: Map<string, LinearWeight>, p = params) => {
      const m = await PackedLstm.create(config, p, weights, kernels);
      try {
        const r = m.perplexity(valid, EVAL_CHUNK, (d, t) => ctx.progress(d, t, `eval ${label}`));
        return { perplexity: r.perplexity, bytes: m.matrixBytes };
      } finally {
        m.free();
      }
    };
    const fp = await evaluate('f32');
    const shape = `hidden ${config.hidden}, ${config.layers} layer${config.layers > 1 ? 's' : ''}${config.weightNorm ? ', weight norm' : ''}${config.layerNorm ? ', layer norm' : ''}`;
    ctx.print(`LSTM ${shape}, vocabulary ${config.vocab}`);
    if (trained.steps) ctx.print(`  trained ${trained.steps} steps × ${v.batch} streams × ${v.ctx} tokens = ${trained.tokens} tokens in ${trained.seconds.toFixed(1)} s (${(trained.tokens / trained.seconds).toFixed(0)} tokens/s), loss ${trained.lossFirst?.toFixed(3)} -> ${trained.lossLast?.toFixed(3)}`);
    if (trained.stopped) ctx.print(`  stopped early${v.out ? `; ${v.out} holds the last step` : ''}`);
    ctx.print(`  perplexity on ${validFile} (${valid.length} tokens): f32 ${fp.perplexity.toFixed(3)} (${fp.bytes} bytes of matrices)`);
    const quantized: Array<{ bits: number; group: number; method: string; bits_per_weight: number; bytes: number; perplexity_ptq: number; perplexity_qat: number | null; qat_seconds: number | null }> = [];
    for (const bits of bitsList) {
      const grid = { bits, group: v.group };
      const q = quantizeLstm(config, params, { ...grid, method: v.method, calibration: train.slice(0, 8192), ctx: v.ctx, matmul });
      const ptq = await evaluate(`int${bits} ${v.method}`, q.weights);
      let qat: number | null = null;
      let qatSeconds: number | null = null;
      if (v['qat-steps'] > 0) {
        const latent = new Map([...params].map(([n, a]) => [n, Float32Array.from(a)]));
        const r = await trainLstm(config, latent, train, {
          lr: v['qat-lr'], steps: v['qat-steps'], warmup: Math.floor(v['qat-steps'] / 10), ctx: v.ctx, batch: v.batch, matmul, transform: lstmFakeQuant(config, grid),
          onStep: (s) => ctx.progress(s.step + 1, v['qat-steps'], `QAT int${bits} loss ${s.loss.toFixed(3)}`),
        });
        qatSeconds = r.seconds;
        // the rounding the last QAT forward saw, stored packed
        qat = (await evaluate(`int${bits} QAT`, quantizeLstm(config, latent, { ...grid, method: 'rtn' }).weights, latent)).perplexity;
      }
      quantized.push({ bits, group: v.group, method: v.method, bits_per_weight: q.bitsPerWeight, bytes: ptq.bytes, perplexity_ptq: ptq.perplexity, perplexity_qat: qat, qat_seconds: qatSeconds });
      ctx.print(`  int${bits} ${v.group ? `g${v.group}` : 'per-channel'} (${q.bitsPerWeight.toFixed(2)} bits/weight, ${ptq.bytes} bytes): ${v.method} ${ptq.perplexity.toFixed(3)}${qat === null ? '' : `, QAT ${v['qat-steps']} steps ${qat.toFixed(3)}`}`);
    }
    if (v.out) ctx.print(`  wrote ${v.out}`);
    return {
      hidden: config.hidden, layers: config.layers, weight_norm: config.weightNorm, layer_norm: config.layerNorm, vocab: config.vocab,
      steps: trained.steps, tokens: trained.tokens, seconds_train: trained.seconds, loss_first: trained.lossFirst, loss_last: trained.lossLast, stopped: trained.stopped,
      lr: v.lr, warmup, ctx: v.ctx, batch: v.batch, perplexity: fp.perplexity, valid_tokens: valid.length, quantized, out: v.out ?? null, train: trainFile, text: validFile,
      seconds: (performance.now() - t0) / 1000,
    };
  },
});
