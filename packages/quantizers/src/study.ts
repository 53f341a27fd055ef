import type { DecoderModel } from '@lowbit/runtime';
import { perplexity } from '@lowbit/runtime';
import { type ModelQuantizeOptions, quantizeModel } from './model-quantize.js';
import { selectiveRtn } from './selective-rtn.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** One row of the study: a whole-model method, or selective RTN. */
export type StudyConfig =
  | ({ label: string } & DistributiveOmit<ModelQuantizeOptions, 'calibration'>)
  | { label: string; selective: { lowBits: number; highBits: number; budget: number; group?: number } }
  | { label: string; fp: true };

export interface StudyRow {
  label: string;
  /** Bits per quantized weight as stored (codes + fp16 scales + packed zeros); 32 for FP32. */
  bitsPerWeight: number;
  perplexity: number;
  seconds: number;
}

const g32 = { group: 32 } as const;
/** The table for the embedded model: INT-k at 4/3/2 bits (g32, per-channel) and MX formats, each method beside RTN. */
export const DEFAULT_STUDY: StudyConfig[] = [
  { label: 'FP32', fp: true },
  ...[4, 3].flatMap((bits) => [
    { label: `RTN int${bits} g32`, method: 'rtn' as const, bits, ...g32 },
    { label: `GPTQ int${bits} g32`, method: 'gptq' as const, bits, ...g32 },
    { label: `RTN int${bits} per-channel`, method: 'rtn' as const, bits, group: 0 },
    { label: `GPTQ int${bits} per-channel`, method: 'gptq' as const, bits, group: 0 },
    { label: `SmoothQuant(0.5)+GPTQ int${bits} g32`, method: 'gptq' as const, bits, smooth: 0.5, ...g32 },
    { label: `AdaDim+RTN int${bits} g32`, method: 'rtn' as const, bits, adaDim: true, ...g32 },
    { label: `AdaDim+GPTQ int${bits} g32`, method: 'gptq' as const, bits, adaDim: true, ...g32 },
  ]),
  { label: 'GPTQ int3 g32 act-order', method: 'gptq', bits: 3, actOrder: true, ...g32 },
  { label: 'GPTQ int3 g32 act-order + static groups', method: 'gptq', bits: 3, actOrder: true, staticGroups: true, ...g32 },
  { label: 'selective RTN int3/int8 per-channel, 3.5 code bits', selective: { lowBits: 3, highBits: 8, budget: 3.5 } },
  { label: 'RTN int2 g32 asym', method: 'rtn', bits: 2, symmetric: false, ...g32 },
  { label: 'GPTQ int2 g32 asym', method: 'gptq', bits: 2, symmetric: false, ...g32 },
  ...(['mxfp4', 'mxfp6_e2m3', 'mxint8'] as const).flatMap((format) => [
    { label: `RTN ${format}`, method: 'rtn' as const, format },
    { label: `GPTQ ${format}`, method: 'gptq' as const, format },
  ]),
  { label: 'SmoothQuant(0.5)+GPTQ mxfp4', method: 'gptq', format: 'mxfp4', smooth: 0.5 },
];

/** Runs each configuration on a fresh copy of the model (`load`), evaluates on `valid` (ctx 256 unless given). */
export async function runStudy(
  load: () => Promise<DecoderModel>, calibration: string, valid: string,
  o: { configs?: StudyConfig[]; maxWindows?: number; ctx?: number; onRow?: (row: StudyRow, done: number, total: number) => void } = {},
): Promise<StudyRow[]> {
  const configs = o.configs ?? DEFAULT_STUDY;
  const ctx = o.ctx ?? 256;
  const rows: StudyRow[] = [];
  for (const c of configs) {
    const model = await load();
    const t0 = performance.now();
    let bpw = 32;
    if ('selective' in c) {
      bpw = selectiveRtn(model, { ...c.selective, calibration, ctx, maxWindows: o.maxWindows }).bitsPerWeight;
    } else if (!('fp' in c)) {
      bpw = quantizeModel(model, { ...c, calibration, ctx, maxWindows: o.maxWindows }).bitsPerWeight;
    }
    const seconds = (performance.now() - t0) / 1000;
    const row = { label: c.label, bitsPerWeight: bpw, perplexity: perplexity(model, valid, { ctx }).perplexity, seconds };
    model.free();
    rows.push(row);
    o.onRow?.(row, rows.length, configs.length);
  }
  return rows;
}
