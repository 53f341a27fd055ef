// What the page and the demo worker exchange: the runtime's worker API (`@lowbit/runtime`'s
// RuntimeApi, served by exposeRuntime) plus the demo's methods served beside it.
import type { RuntimeApi } from '@lowbit/runtime';
import type { BenchRow } from './bench.js';

export type { BenchRow };

export interface TensorRow {
  name: string;
  type: string;
  /** As the file stores it (GGUF: ggml order, row length first; safetensors: outermost first). */
  shape: number[];
  bytes: number;
  bitsPerWeight: number;
}

export interface ModelSummary {
  name: string;
  container: 'gguf' | 'safetensors';
  fileBytes: number;
  /** Loaded as a runnable model (GGUF of a supported architecture). */
  runnable: boolean;
  /** Why it is not runnable. */
  why?: string;
  /** The kernel build the worker got (runnable models). */
  kernels?: string;
  config?: { architecture: string; dim: number; nLayers: number; nHeads: number; nKvHeads: number; hiddenDim: number; vocabSize: number; contextLength: number };
  /** Scalar metadata (strings shortened), by key. */
  metadata: [string, string][];
  tensors: TensorRow[];
  params: number;
  /** Over every tensor: stored bits per element. */
  bitsPerWeight: number;
}

export const INT_BITS = [2, 3, 4, 5, 6, 8] as const;
export const GGML_FORMATS = ['q4_0', 'q4_1', 'q8_0'] as const;
export const MX_FORMATS = ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const;

export interface QuantizeSettings {
  method: 'rtn' | 'gptq';
  /** 'int' (INT-k of `bits`, groups of `group` columns), a ggml block type, or an MX format. */
  format: 'int' | (typeof GGML_FORMATS)[number] | (typeof MX_FORMATS)[number];
  bits: number;
  /** 0: one scale per output channel. */
  group: number;
  symmetric: boolean;
  actOrder: boolean;
  staticGroups: boolean;
  /** SmoothQuant migration strength α in [0, 1]; omitted: no smoothing. */
  smooth?: number;
  /** INT-k: AdaDim (per layer, groups along inputs or outputs, whichever has the lower output error). */
  adaDim?: boolean;
  /** INT-k: Q-Rater clipping search per layer (ratios 1..0.6, output error). */
  clipSearch?: boolean;
  /** Calibration text; omitted: the embedded TinyStories train excerpt. */
  calibration?: string;
  calibWindows: number;
  /** Validation windows of `ctx` tokens for the perplexities. */
  evalWindows: number;
  ctx: number;
}

export interface QuantizeReport {
  settings: QuantizeSettings;
  label: string;
  pplBefore: number;
  stderrBefore: number;
  pplAfter: number;
  stderrAfter: number;
  /** Tokens scored by each perplexity. */
  tokens: number;
  bitsPerWeight: number;
  layers: number;
  secondsQuantize: number;
  secondsTotal: number;
}

export type Stage = 'load' | 'eval original' | 'quantize' | 'eval quantized' | 'save' | 'measure' | 'solve' | 'capture' | 'simulate';

/** The mixed-precision allocator's settings (CLADO over INT-k widths, @lowbit/quantizers' allocate). */
export interface AllocateSettings {
  /** Candidate INT-k widths per layer (groups of 32, symmetric); empty when `ggml` is given. */
  bits: number[];
  /** Candidate llama.cpp block types instead of INT-k widths (the GGUF then runs in llama.cpp). */
  ggml: (typeof GGML_FORMATS)[number][];
  method: 'clado' | 'diagonal' | 'greedy' | 'uniform';
  /** Average stored bits per weight of the allocated layers (scales included). */
  budgetBits: number;
  /** 'block': loss changes of layer pairs in one transformer block measured too; 'none': single layers only. */
  pairs: 'block' | 'none';
  /** Windows of 128 calibration tokens the loss changes are measured on. */
  calibWindows: number;
  evalWindows: number;
  ctx: number;
}

export interface AllocateReport {
  settings: AllocateSettings;
  label: string;
  pplBefore: number;
  pplAfter: number;
  stderrAfter: number;
  tokens: number;
  bitsPerWeight: number;
  /** Reachable average bits per weight (every layer at the smallest / largest width). */
  minBits: number;
  maxBits: number;
  /** Loss change the quadratic model predicts for the chosen configuration (nats per token). */
  predictedDeltaLoss: number;
  /** Layer name and its chosen format, in model order. */
  layers: { name: string; format: string; weights: number }[];
  /** HiGHS's status (clado, diagonal), or null for the heuristics. */
  solver: string | null;
  evaluations: number;
  secondsMeasure: number;
  secondsSolve: number;
}

/** Per-layer result of the accelerator simulation (@lowbit/sim's LayerResult, the fields shown). */
export interface SimLayer {
  name: string;
  act_bits: number;
  wgt_bits: number;
  speedup: number;
  mac_utilisation: number;
}

export interface SimReport {
  accel: string;
  /** Which model ran (the quantized one from its stored codes, or the original: f32 taken as 16-bit weights). */
  modelLabel: string;
  seq: number;
  speedup: number;
  mac_utilisation: number;
  layers: SimLayer[];
  profile: string;
  seconds: number;
}

export type GenerateStop = 'steps' | 'eos' | 'context' | 'cancelled';

export interface DemoMethods {
  /** The embedded stories260K, fetched by the worker from the app's own assets. */
  openEmbedded(): Promise<ModelSummary>;
  /** A file the user dropped or picked, read in the worker. */
  openFile(file: Blob, name: string): Promise<ModelSummary>;
  /** The embedded TinyStories validation text's size (the perplexity text). */
  validationInfo(): Promise<{ chars: number; tokens: number; windows: number }>;
  /** Reloads the opened model, measures, quantizes it in place, measures again. */
  quantize(s: QuantizeSettings, onProgress?: (stage: Stage, done: number, total: number) => void): Promise<QuantizeReport>;
  /** The quantized model as GGUF bytes (moved, not copied, to the page). */
  saveGguf(): Promise<Uint8Array>;
  /** The quantized model as one safetensors file (`lowbit quantize --out m.safetensors`); INT-k and MX only. */
  saveSafetensors(): Promise<Uint8Array>;
  /** Measures per-layer loss changes, allocates widths under the budget, applies them, measures perplexity. */
  allocate(s: AllocateSettings, onProgress?: (stage: Stage, done: number, total: number) => void): Promise<AllocateReport>;
  /** The runtime's generate, yielding to messages between tokens so `stopGenerate` can end it. */
  generateStream(prompt: string, o: { steps: number; temperature: number; seed: number }, onToken: (text: string) => void): Promise<{ tokens: number; decodeSeconds: number; stopReason: GenerateStop }>;
  stopGenerate(): Promise<void>;
  /** Per-layer cycles of the held model on a bit-serial accelerator, on `seq` tokens of the calibration text. */
  simulate(accel: string, seq: number, modelLabel: string, onProgress?: (stage: Stage, done: number, total: number) => void): Promise<SimReport>;
}

/** Formats the Formats panel studies: element grids and block formats. */
export const STUDY_FORMATS = [
  'int2 g32', 'int3 g32', 'int4 g32', 'int8 g32', 'nf4 g64', 'q4_0', 'q4_1', 'q8_0',
  'mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8',
] as const;

export interface FormatStudy {
  format: string;
  tensor: string;
  rows: number;
  cols: number;
  /** The element grid: every code and its value (before the block's scale). */
  table: { code: number; value: number }[];
  /** How a stored value is made from a table entry. */
  tableNote: string;
  bitsPerWeight: number;
  /** 10·log10(Σw² / Σ(ŵ − w)²), in dB. */
  sqnrDb: number;
  rmsError: number;
  maxAbsError: number;
  rmsWeight: number;
  /** Histogram of ŵ − w: `counts[i]` errors in [lo + i·width, lo + (i+1)·width). */
  hist: { lo: number; width: number; counts: number[] };
}

export interface FormatsMethods {
  /** The names of the loaded model's linear layers (the tensors the Formats panel can quantize). */
  linearNames(): Promise<string[]>;
  /** Quantizes one linear layer's weights to `format` (not in the model) and measures the error. */
  formatStudy(format: (typeof STUDY_FORMATS)[number], tensor: string): Promise<FormatStudy>;
}

export interface KernelsMethods {
  /** GEMV of a [rows, cols] matrix on each kernel build and in plain JS, `ms` milliseconds each. */
  gemvBench(format: 'f32' | 'q8_0' | 'q4_0', rows: number, cols: number, ms: number, threads: number, onProgress?: (done: number, total: number, what: string) => void): Promise<BenchRow[]>;
}

export type DemoApi = RuntimeApi & DemoMethods & FormatsMethods & KernelsMethods;

/** The short name of a run's settings, as the runs table and the plot show it. */
export function settingsLabel(s: QuantizeSettings): string {
  const method = s.method === 'gptq' ? `GPTQ${s.actOrder ? ' act-order' : ''}` : 'RTN';
  const extras = [s.smooth !== undefined ? `SmoothQuant α=${s.smooth}` : '', s.adaDim ? 'AdaDim' : '', s.clipSearch ? 'clip search' : ''].filter(Boolean).join(' + ');
  const base = s.format !== 'int' ? `${method} ${s.format}` : `${method} int${s.bits} ${s.group ? `g${s.group}` : 'per-channel'}${s.symmetric ? '' : ' asym'}`;
  return extras ? `${base} + ${extras}` : base;
}

/** The short name of an allocation, as its card and the Generate panel show it. */
export function allocationLabel(s: AllocateSettings): string {
  const name = { clado: 'CLADO', diagonal: 'diagonal IQP', greedy: 'greedy', uniform: 'uniform' }[s.method];
  const candidates = s.ggml.length ? `{${s.ggml.join(',')}}` : `int{${s.bits.join(',')}} g32`;
  return `${name} ${candidates} at ${s.budgetBits} bits/weight`;
}
