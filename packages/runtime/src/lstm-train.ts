// Training the LSTM language model: the runtime's AdamW (warmup + cosine schedule, global-norm clip)
// over `batch` streams of the token sequence (stream k starts at k/batch of the text and carries its
// state from window to window: truncated BPTT), checkpoints and the model file as safetensors.
import { LowbitError } from '@lowbit/kernels';
import { type LstmConfig, type LstmState, type LstmStepOptions, type LstmVec, checkLstmConfig, checkLstmParams, lstmLossAndGrad, lstmParamShapes, lstmZeroState } from './lstm.js';
import { type SafetensorsFile, readSafetensors, readSafetensorsF32, writeSafetensors } from './safetensors.js';
import { AdamW, type AdamWOptions } from './train.js';

export interface LstmTrainOptions extends AdamWOptions {
  /** Tokens per window (BPTT length). Default 64. */
  ctx?: number;
  /** Parallel streams whose window gradients are averaged per step. Default 8. */
  batch?: number;
  /** The batched products (lstmWasmMatmul for the kernels); default f64 loops. */
  matmul?: LstmStepOptions['matmul'];
  /** QAT: the matrices the forward sees (fake quantization); gradients pass straight through. */
  transform?: LstmStepOptions['transform'];
  /** After each update (projections, frozen weights). */
  afterStep?: (params: Map<string, Float32Array>, step: number) => void;
  /** Every `every` steps and after the last (or a stop), write the params to `path` atomically. */
  checkpoint?: { path: string; every: number };
  onStep?: (s: { step: number; loss: number; lr: number; gradNorm: number }) => void;
  signal?: AbortSignal;
}

export interface LstmTrainResult {
  losses: number[];
  tokens: number;
  seconds: number;
  stopped: boolean;
}

/** Trains `params` in place on `ids` (token ids of the training text). */
export async function trainLstm(c: LstmConfig, params: Map<string, Float32Array>, ids: ArrayLike<number>, o: LstmTrainOptions): Promise<LstmTrainResult> {
  checkLstmParams(c, params);
  const ctx = o.ctx ?? 64;
  const batch = o.batch ?? 8;
  if (!Number.isSafeInteger(ctx) || ctx < 1 || ctx > 65536) throw new LowbitError('E_RANGE', `trainLstm: ctx ${ctx} is outside 1..65536`);
  if (!Number.isSafeInteger(batch) || batch < 1 || batch > 4096) throw new LowbitError('E_RANGE', `trainLstm: batch ${batch} is outside 1..4096`);
  if (ids.length < batch * 2) throw new LowbitError('E_ARG', `trainLstm: the training text gives ${ids.length} token(s); ${batch} streams need at least ${batch * 2}`);
  if (o.checkpoint && (!Number.isSafeInteger(o.checkpoint.every) || o.checkpoint.every < 1)) throw new LowbitError('E_RANGE', `trainLstm: checkpoint every ${o.checkpoint.every} steps is not a positive integer`);
  const opt = new AdamW(params, o);
  const span = Math.floor(ids.length / batch);
  const starts = Array.from({ length: batch }, (_, k) => k * span);
  const pos = [...starts];
  const states: LstmState[] = starts.map(() => lstmZeroState(c));
  const losses: number[] = [];
  let tokens = 0;
  let stopped = false;
  const t0 = performance.now();
  for (let s = 0; s < o.steps; s++) {
    const grads = new Map<string, Float32Array>([...params].map(([n, p]) => [n, new Float32Array(p.length)]));
    let loss = 0;
    // the weights change only between steps: the fake quantization is computed once per step, not per stream
    const memo = new Map<string, LstmVec>();
    const tf = o.transform;
    const transform = tf && ((name: string, w: LstmVec) => {
      let q = memo.get(name);
      if (!q) {
        q = tf(name, w);
        memo.set(name, q);
      }
      return q;
    });
    for (let k = 0; k < batch; k++) {
      // a stream that reaches the end of its span starts over from its beginning, with a fresh state
      if (pos[k] + 1 >= starts[k] + span) {
        pos[k] = starts[k];
        states[k] = lstmZeroState(c);
      }
      const win = Array.prototype.slice.call(ids, pos[k], Math.min(pos[k] + ctx + 1, starts[k] + span)) as number[];
      pos[k] += win.length - 1;
      const r = lstmLossAndGrad(c, params, win, states[k], { transform, matmul: o.matmul });
      if (!Number.isFinite(r.loss)) throw new LowbitError('E_NAN', `trainLstm: step ${s} gave loss ${r.loss}; stopped before it reached the weights${o.checkpoint ? ` (${o.checkpoint.path} holds the last checkpoint)` : ''}`);
      states[k] = r.state;
      loss += r.loss / batch;
      tokens += r.count;
      for (const [n, g] of r.grads) {
        const a = grads.get(n) as Float32Array;
        for (let i = 0; i < g.length; i++) a[i] += g[i] / batch;
      }
    }
    const lr = opt.lrAt(s);
    const gradNorm = opt.step(grads);
    o.afterStep?.(params, s);
    losses.push(loss);
    o.onStep?.({ step: s, loss, lr, gradNorm });
    stopped = o.signal?.aborted === true && s + 1 < o.steps;
    const cp = o.checkpoint;
    if (cp && ((s + 1) % cp.every === 0 || s + 1 === o.steps || stopped)) await saveLstm(cp.path, c, params, { step: String(s + 1) });
    if (stopped) break;
  }
  return { losses, tokens, seconds: (performance.now() - t0) / 1000, stopped };
}

const META = 'lowbit.lstm.';

/** Writes the model (config in the metadata, every tensor F32) atomically. */
export async function saveLstm(path: string, c: LstmConfig, params: Map<string, LstmVec>, extra: Record<string, string> = {}): Promise<void> {
  checkLstmParams(c, params);
  const shapes = lstmParamShapes(c);
  const meta: Record<string, string> = { [`${META}vocab`]: String(c.vocab), [`${META}hidden`]: String(c.hidden), [`${META}layers`]: String(c.layers), [`${META}weight_norm`]: String(c.weightNorm), [`${META}layer_norm`]: String(c.layerNorm) };
  for (const [k, v] of Object.entries(extra)) meta[`${META}${k}`] = v;
  await writeSafetensors(path, [...shapes].map(([name, shape]) => ({ name, dtype: 'F32' as const, shape, data: Float32Array.from(params.get(name) as LstmVec) })), meta);
}

/** Reads a saveLstm file: the configuration from its metadata, every tensor checked against it. */
export async function loadLstm(path: string): Promise<{ config: LstmConfig; params: Map<string, Float32Array> }> {
  const f = await readSafetensors(path);
  try {
    return await readLstmTensors(path, f);
  } finally {
    await f.source.close();
  }
}

async function readLstmTensors(path: string, f: SafetensorsFile): Promise<{ config: LstmConfig; params: Map<string, Float32Array> }> {
  const md = f.metadata ?? {};
  const int = (k: string) => {
    const v = md[`${META}${k}`];
    const n = Number(v);
    if (v === undefined || !Number.isSafeInteger(n)) throw new LowbitError('E_BAD_FILE', `${path}: metadata ${META}${k} is ${v ?? 'missing'}, not an integer (not an LSTM file of lowbit train-lstm?)`);
    return n;
  };
  const bool = (k: string) => {
    const v = md[`${META}${k}`];
    if (v !== 'true' && v !== 'false') throw new LowbitError('E_BAD_FILE', `${path}: metadata ${META}${k} is ${v ?? 'missing'}, not true/false`);
    return v === 'true';
  };
  const config: LstmConfig = { vocab: int('vocab'), hidden: int('hidden'), layers: int('layers'), weightNorm: bool('weight_norm'), layerNorm: bool('layer_norm') };
  checkLstmConfig(config, path);
  const shapes = lstmParamShapes(config);
  const params = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const t = f.tensors.get(name);
    if (!t) throw new LowbitError('E_MISSING', `${path}: tensor ${name} is missing`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new LowbitError('E_SHAPE', `${path}: tensor ${name} has shape [${t.shape}], the configuration needs [${shape}]`);
    params.set(name, await readSafetensorsF32(f, name));
  }
  for (const name of f.tensors.keys()) if (!shapes.has(name)) throw new LowbitError('E_SHAPE', `${path}: unexpected tensor ${name} for this configuration`);
  return { config, params };
}
