import { LowbitError } from '@lowbit/kernels';
import { type DecoderModel, Session, negLogLikelihood, tokenizeDocuments } from '@lowbit/runtime';
import { Gptq } from './gptq.js';

export interface CalibrationOptions {
  /** Window length in tokens (the perplexity protocol's ctx). Default 256. */
  ctx?: number;
  /** Use at most this many windows of the calibration text. */
  maxWindows?: number;
  /** Layers with at least this many inputs use the model's WASM kernels for XᵀX (default KERNEL_MIN_COLS = 512; Infinity: never). */
  kernelMinCols?: number;
}

/** The perplexity protocol's cut of a calibration text: `ctx`-token windows of the document stream. */
export interface CalibrationWindows {
  ctx: number;
  windows: number[][];
}

/** Tokenizes `text` once and cuts it into windows, with the checks every calibration shares. */
export function calibrationWindows(model: DecoderModel, text: string, o: CalibrationOptions = {}): CalibrationWindows {
  const ids = tokenizeDocuments(model, text);
  const tokens = ids.length;
  if (tokens < 64) throw new LowbitError('E_ARG', `calibration text is too short: ${tokens} tokens (at least 64 are needed, a few thousand are useful)`);
  const ctx = o.ctx ?? 256;
  if (!Number.isInteger(ctx) || ctx < 2 || ctx > model.config.contextLength) {
    throw new LowbitError('E_RANGE', `calibration: ctx ${ctx} is outside 2..${model.config.contextLength} (the model's context length)`);
  }
  let total = Math.ceil(tokens / ctx);
  if (tokens % ctx === 1) total--; // as perplexity: a lone trailing token predicts nothing
  if (o.maxWindows !== undefined) total = Math.min(total, o.maxWindows);
  return { ctx, windows: Array.from({ length: total }, (_, w) => ids.slice(w * ctx, (w + 1) * ctx)) };
}

/** The statistics being gathered for one set of layers, and which of them saw the current window. */
interface StatsTarget {
  acc: Map<string, Gptq>;
  seen: Set<string>;
}

function statsTarget(model: DecoderModel, names: Iterable<string>, o: CalibrationOptions): StatsTarget {
  const acc = new Map<string, Gptq>();
  // Wide layers (cols ≥ KERNEL_MIN_COLS) accumulate XᵀX as f32 matmuls on the model's own kernels.
  for (const name of names) acc.set(name, new Gptq(model.linear(name).cols, { kernels: model.kernels, kernelMinCols: o.kernelMinCols }));
  return { acc, seen: new Set() };
}

const windowDone = new Error('calibration: every named layer has seen this window');

/** A Session hook feeding the current target's layers; it ends the window's pass once all have their input. */
function statsSession(model: DecoderModel, ctx: number, current: () => StatsTarget | null): Session {
  return new Session(model, {
    ctx,
    onLinearInput: (name, x, batch) => {
      const t = current();
      const g = t?.acc.get(name);
      if (!t || !g) return;
      g.addBatch(x, batch);
      t.seen.add(name);
      if (t.seen.size === t.acc.size) throw windowDone;
    },
  });
}

/** Runs `pass`; a pass the hook ended early is a finished pass. */
function untilDone(pass: () => void): void {
  try {
    pass();
  } catch (e) {
    if (e !== windowDone) throw e;
  }
}

/**
 * Runs the model over calibration text and accumulates, for each named linear layer, the GPTQ
 * statistics of its inputs (H = (2/N)·XᵀX, one sample per token). Only the named layers are kept,
 * so memory is cols² per layer of interest, never the activations themselves.
 *
 * The windows are exactly those of the perplexity protocol (`perplexity`'s cut of the document
 * stream into `ctx`-token windows), but each window's forward pass stops as soon as every named
 * layer has seen its input: the blocks after them and the LM head cannot change those inputs. On a
 * 22-block model this halves the cost of the sequential pipeline's calibration passes on average.
 */
export function collectHessians(model: DecoderModel, text: string | CalibrationWindows, names: Iterable<string>, o: CalibrationOptions = {}): Map<string, Gptq> {
  const { ctx, windows } = typeof text === 'string' ? calibrationWindows(model, text, o) : text;
  const target = statsTarget(model, names, o);
  if (target.acc.size === 0) return target.acc;
  const session = statsSession(model, ctx, () => target);
  try {
    for (const win of windows) {
      target.seen.clear();
      session.reset();
      // logits 'all' as perplexity runs it, so output.weight sees every token of the window
      untilDone(() => session.forward(win, { logits: 'all' }));
    }
  } finally {
    // the KV caches live in the model's WASM memory: one pass per sequential group must not wait for GC
    session.free();
  }
  return target.acc;
}

/**
 * Calibration for the sequential pipeline with the residual stream cached at a block's input:
 * `collect` runs only the current block (up to the last named layer) on every window, and `advance`
 * pushes the cached streams through that block once its layers are quantized. A 1B-class model's
 * pipeline ran each of its 88 sequential groups through every block before it; this runs each block
 * about five times per window in all (same arithmetic, so the same statistics bit for bit).
 *
 * Memory: windows × ctx × dim f32 values (32 × 256 × 2048 × 4 bytes = 64 MiB for a 1B model).
 */
export class BlockCalibration {
  /** The block whose inputs `states` hold (nLayers: the LM head's). */
  block = 0;
  private readonly windows: number[][];
  private readonly states: Float32Array[];
  private readonly session: Session;
  private target: StatsTarget | null = null;
  private readonly scratch: Float32Array;

  constructor(
    private readonly model: DecoderModel,
    text: string | CalibrationWindows,
    private readonly o: CalibrationOptions = {},
  ) {
    const { ctx, windows } = typeof text === 'string' ? calibrationWindows(model, text, o) : text;
    this.windows = windows;
    this.session = statsSession(model, ctx, () => this.target);
    this.states = windows.map((w) => {
      this.session.reset();
      return this.session.embed(w);
    });
    this.scratch = new Float32Array(ctx * model.config.dim);
  }

  /** Bytes the cached streams take for this model and cut of the text (for choosing this over `collectHessians`). */
  static bytes(model: DecoderModel, text: string | CalibrationWindows, o: CalibrationOptions = {}): number {
    const { windows } = typeof text === 'string' ? calibrationWindows(model, text, o) : text;
    return windows.reduce((s, w) => s + w.length, 0) * model.config.dim * 4;
  }

  /** Windows cached. */
  get windowCount(): number {
    return this.states.length;
  }

  /** GPTQ statistics of the named layers, which must all belong to the current block (or be `output.weight` after the last). */
  collect(names: Iterable<string>): Map<string, Gptq> {
    const { nLayers } = this.model.config;
    const list = [...names];
    for (const name of list) {
      const b = name === 'output.weight' ? nLayers : Number(/^blk\.(\d+)\./.exec(name)?.[1]);
      if (b !== this.block) throw new LowbitError('E_ARG', `calibration: ${name} is not in block ${this.block}, whose inputs are cached`);
    }
    const target = statsTarget(this.model, list, this.o);
    if (target.acc.size === 0) return target.acc;
    this.target = target;
    try {
      for (let w = 0; w < this.states.length; w++) {
        target.seen.clear();
        const n = this.windows[w].length;
        untilDone(() => {
          if (this.block === nLayers) this.session.head(this.states[w], n, { logits: 'all' });
          else this.session.runBlocks(this.restart(w), n, this.block, this.block + 1);
        });
      }
    } finally {
      this.target = null;
    }
    return target.acc;
  }

  /**
   * Mean next-token NLL over the first `windows` cached windows with the model's weights as they are
   * now, run from the current block on: `perplexity(model, text, { maxWindows: windows }).nll` bit for
   * bit (the blocks before it have not changed since their streams were cached), at the cost of the
   * remaining blocks only. What the clipping search on the model loss evaluates per candidate.
   */
  loss(windows: number): number {
    const { nLayers, vocabSize } = this.model.config;
    if (!(Number.isInteger(windows) && windows >= 1 && windows <= this.states.length)) {
      throw new LowbitError('E_RANGE', `calibration: ${windows} loss windows, ${this.states.length} are cached`);
    }
    let nll = 0;
    let count = 0;
    for (let w = 0; w < windows; w++) {
      const win = this.windows[w];
      const n = win.length;
      const x = this.restart(w);
      this.session.runBlocks(x, n, this.block, nLayers);
      const logits = this.session.head(x, n, { logits: 'all' });
      for (let i = 0; i + 1 < n; i++) {
        nll += negLogLikelihood(logits, i * vocabSize, vocabSize, win[i + 1]);
        count++;
      }
    }
    return nll / count;
  }

  /** Runs the current block, with its weights as they are now, on every cached stream. */
  advance(): void {
    if (this.block >= this.model.config.nLayers) throw new LowbitError('E_RANGE', 'calibration: already past the last block');
    for (let w = 0; w < this.states.length; w++) {
      this.session.reset();
      this.session.runBlocks(this.states[w], this.windows[w].length, this.block, this.block + 1);
    }
    this.block++;
  }

  /** Returns the KV caches' WASM memory now. */
  free(): void {
    this.session.free();
  }

  /** Window w's cached stream in the scratch buffer (the cache stays as it is), the session at position 0. */
  private restart(w: number): Float32Array {
    const x = this.scratch.subarray(0, this.windows[w].length * this.model.config.dim);
    x.set(this.states[w]);
    this.session.reset();
    return x;
  }
}

/** The order GPTQ quantizes a Llama block's layers in: each group sees the earlier groups already quantized (the GPTQ authors' sequential mode). */
export const SEQUENTIAL_GROUPS = [['attn_q', 'attn_k', 'attn_v'], ['attn_output'], ['ffn_gate', 'ffn_up'], ['ffn_down']] as const;
