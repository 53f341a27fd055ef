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
    { label: `RTN ${format}`, method: 'rtn' as const, format, bits: 0, ...g32 },
    { label: `GPTQ ${format}`, method: 'gptq' as const, format, bits: 0, ...g32 },
  ]),
  { label: 'SmoothQuant(0.5)+GPTQ mxfp4', method: 'gptq', format: 'mxfp4', bits: 0, smooth: 0.5, ...g32 },
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

/** Method families of the plot's colours, matched on a row's label in this order. */
const FAMILIES: [RegExp, string, string][] = [
  [/SmoothQuant/, 'SmoothQuant+GPTQ', '#ff7f0e'],
  [/AdaDim\+GPTQ/, 'AdaDim+GPTQ', '#9467bd'],
  [/AdaDim/, 'AdaDim+RTN', '#2ca02c'],
  [/selective/, 'selective RTN', '#8c564b'],
  [/GPTQ/, 'GPTQ', '#d62728'],
  [/./, 'RTN', '#1f77b4'],
];

/**
 * Perplexity (log scale) against bits per weight, one labelled point per quantized row coloured by
 * method, FP32 as a dashed line, as a standalone SVG. Labels that would overlap are pushed down and
 * tied to their point by a thin line (many rows share a bits/weight value).
 */
export function studySvg(rows: StudyRow[]): string {
  const pts = rows.filter((r) => r.bitsPerWeight < 16);
  const fp = rows.find((r) => r.bitsPerWeight >= 16);
  const W = 900;
  const H = 640;
  const [left, right, top, bottom] = [60, 250, 20, 50];
  const xs = pts.map((r) => r.bitsPerWeight);
  const ys = [...pts, ...(fp ? [fp] : [])].map((r) => Math.log(r.perplexity));
  const [x0, x1] = [Math.min(...xs) - 0.2, Math.max(...xs) + 0.2];
  const [y0, y1] = [Math.min(...ys) - 0.05, Math.max(...ys) + 0.05];
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * (W - left - right);
  const Y = (v: number) => H - bottom - ((Math.log(v) - y0) / (y1 - y0)) * (H - top - bottom);
  const f = (v: number) => v.toFixed(1);
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="10">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="black"/><line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">bits per weight (codes + scales)</text>`,
    `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">perplexity on TinyStories-valid (log scale)</text>`];
  for (let b = Math.ceil(x0); b <= x1; b++) out.push(`<text x="${f(X(b))}" y="${H - bottom + 14}" text-anchor="middle">${b}</text>`);
  for (const t of [5, 6, 7, 8, 10, 12, 15, 20, 30, 50, 100, 200, 500, 1000]) {
    if (Math.log(t) < y0 || Math.log(t) > y1) continue;
    out.push(`<line x1="${left - 4}" y1="${f(Y(t))}" x2="${W - right}" y2="${f(Y(t))}" stroke="#eee"/><text x="${left - 6}" y="${f(Y(t) + 3)}" text-anchor="end">${t}</text>`);
  }
  if (fp) out.push(`<line x1="${left}" y1="${f(Y(fp.perplexity))}" x2="${W - right}" y2="${f(Y(fp.perplexity))}" stroke="gray" stroke-dasharray="4"/><text x="${W - right}" y="${f(Y(fp.perplexity) - 4)}" text-anchor="end">FP32 ${fp.perplexity.toFixed(3)}</text>`);
  const family = (label: string) => FAMILIES.find(([re]) => re.test(label)) as [RegExp, string, string];
  // Labels right of their point, placed top to bottom; one that would overlap a placed label moves down.
  const placed: { x: number; y: number; w: number }[] = [];
  const labels: string[] = [];
  for (const r of [...pts].sort((a, b) => Y(a.perplexity) - Y(b.perplexity))) {
    const [px, py] = [X(r.bitsPerWeight), Y(r.perplexity)];
    const text = `${r.label} ${r.perplexity.toFixed(2)}`;
    const w = text.length * 5.5;
    let y = py + 3;
    while (placed.some((q) => Math.abs(q.y - y) < 11 && px + 6 < q.x + q.w && q.x < px + 6 + w)) y += 11;
    placed.push({ x: px + 6, y, w });
    if (y !== py + 3) labels.push(`<line x1="${f(px)}" y1="${f(py)}" x2="${f(px + 6)}" y2="${f(y - 3)}" stroke="#bbb"/>`);
    labels.push(`<text x="${f(px + 8)}" y="${f(y)}">${esc(text)}</text>`);
  }
  out.push(...labels);
  for (const r of pts) out.push(`<circle cx="${f(X(r.bitsPerWeight))}" cy="${f(Y(r.perplexity))}" r="4" fill="${family(r.label)[2]}"/>`);
  const used = FAMILIES.filter(([, name]) => pts.some((r) => family(r.label)[1] === name));
  used.forEach(([, name, colour], i) => {
    out.push(`<circle cx="${W - right + 30}" cy="${top + 10 + i * 16}" r="4" fill="${colour}"/><text x="${W - right + 40}" y="${top + 13 + i * 16}">${name}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
