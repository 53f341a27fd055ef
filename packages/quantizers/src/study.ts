import type { LlamaModel } from '@lowbit/runtime';
import { perplexity } from '@lowbit/runtime';
import { type ModelQuantizeOptions, quantizeModel } from './model-quantize.js';
import { selectiveRtn } from './selective-rtn.js';

/** One row of the study: a whole-model method, or selective RTN. */
export type StudyConfig =
  | ({ label: string } & Omit<ModelQuantizeOptions, 'calibration'>)
  | { label: string; selective: { lowBits: number; highBits: number; budget: number; group?: number } }
  | { label: string; fp: true };

export interface StudyRow {
  label: string;
  /** Bits per quantized weight as stored (codes + f32 scales/zeros); 32 for FP32. */
  bitsPerWeight: number;
  perplexity: number;
  seconds: number;
}

const g32 = { group: 32 } as const;
/** The table for the embedded model (INT formats; MX grids for GPTQ are not in yet). */
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
  { label: 'selective RTN int3/int8 per-channel, 3.5 code bits', selective: { lowBits: 3, highBits: 8, budget: 3.5 } },
  { label: 'RTN int2 g32 asym', method: 'rtn', bits: 2, symmetric: false, ...g32 },
  { label: 'GPTQ int2 g32 asym', method: 'gptq', bits: 2, symmetric: false, ...g32 },
  ...(['mxfp4', 'mxfp6_e2m3', 'mxint8'] as const).flatMap((format) => [
    { label: `RTN ${format}`, method: 'rtn' as const, format, bits: 0, ...g32 },
    { label: `GPTQ ${format}`, method: 'gptq' as const, format, bits: 0, ...g32 },
  ]),
];

/** Runs each configuration on a fresh copy of the model (`load`), evaluates on `valid` (ctx 256 unless given). */
export async function runStudy(
  load: () => Promise<LlamaModel>, calibration: string, valid: string,
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

export function studyMarkdown(rows: StudyRow[]): string {
  const lines = ['| method | bits/weight | perplexity | quantization time (s) |', '|---|---:|---:|---:|'];
  for (const r of rows) lines.push(`| ${r.label} | ${r.bitsPerWeight.toFixed(3)} | ${r.perplexity.toFixed(4)} | ${r.seconds.toFixed(1)} |`);
  return lines.join('\n');
}

/** Perplexity (log scale) against bits per weight, one labelled point per row, as a standalone SVG. */
export function studySvg(rows: StudyRow[]): string {
  const pts = rows.filter((r) => r.bitsPerWeight < 16);
  const W = 640;
  const H = 400;
  const m = 50;
  const xs = pts.map((r) => r.bitsPerWeight);
  const ys = pts.map((r) => Math.log(r.perplexity));
  const fp = rows.find((r) => r.bitsPerWeight >= 16);
  if (fp) ys.push(Math.log(fp.perplexity));
  const [x0, x1] = [Math.min(...xs) - 0.2, Math.max(...xs) + 0.2];
  const [y0, y1] = [Math.min(...ys) - 0.05, Math.max(...ys) + 0.05];
  const X = (v: number) => m + ((v - x0) / (x1 - x0)) * (W - 2 * m);
  const Y = (v: number) => H - m - ((Math.log(v) - y0) / (y1 - y0)) * (H - 2 * m);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${m}" y1="${H - m}" x2="${W - m}" y2="${H - m}" stroke="black"/><line x1="${m}" y1="${m}" x2="${m}" y2="${H - m}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">bits per weight (codes + scales)</text>`,
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">perplexity (log scale)</text>`];
  for (let b = Math.ceil(x0); b <= x1; b++) out.push(`<text x="${X(b)}" y="${H - m + 14}" text-anchor="middle">${b}</text>`);
  if (fp) out.push(`<line x1="${m}" y1="${Y(fp.perplexity)}" x2="${W - m}" y2="${Y(fp.perplexity)}" stroke="gray" stroke-dasharray="4"/><text x="${W - m}" y="${Y(fp.perplexity) - 4}" text-anchor="end">FP32 ${fp.perplexity.toFixed(3)}</text>`);
  for (const r of pts) {
    const gptq = /GPTQ/.test(r.label);
    out.push(`<circle cx="${X(r.bitsPerWeight)}" cy="${Y(r.perplexity)}" r="4" fill="${gptq ? '#d62728' : '#1f77b4'}"/>`);
    out.push(`<text x="${X(r.bitsPerWeight) + 6}" y="${Y(r.perplexity) + 3}">${esc(r.label)} ${r.perplexity.toFixed(2)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}
