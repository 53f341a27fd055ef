// Text forms of a simulation: an aligned table for people, CSV for spreadsheets, and an SVG bar chart
// of per-layer speedup (hand-written SVG: no charting dependency for one chart).
import type { SimResult } from './simulate.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function resultTable(r: SimResult): string {
  const w = Math.max(5, ...r.layers.map((l) => l.name.length));
  const head = `${'layer'.padEnd(w)}  type  act wgt  ${'baseline'.padStart(12)}  ${'cycles'.padStart(12)}  speedup  util`;
  const rows = r.layers.map((l) => `${l.name.padEnd(w)}  ${l.type.padEnd(4)}  ${String(l.act_bits).padStart(3)} ${String(l.wgt_bits).padStart(3)}  ${String(l.baseline_cycles).padStart(12)}  ${String(l.cycles).padStart(12)}  ${l.speedup.toFixed(3).padStart(7)}  ${l.mac_utilisation.toFixed(2)}`);
  const total = `${'total'.padEnd(w)}  ${''.padEnd(4)}  ${''.padStart(7)}  ${String(r.baseline_cycles).padStart(12)}  ${String(r.cycles).padStart(12)}  ${r.speedup.toFixed(3).padStart(7)}  ${r.mac_utilisation.toFixed(2)}`;
  return [head, ...rows, total].join('\n');
}

const CSV_FIELDS = ['name', 'type', 'act_bits', 'wgt_bits', 'macs', 'baseline_cycles', 'cycles', 'speedup', 'mac_utilisation', 'baseline_offchip_bytes', 'offchip_bytes'] as const;

export function resultCsv(r: SimResult): string {
  const q = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));
  const lines = [['network', 'accel', ...CSV_FIELDS].join(',')];
  for (const l of r.layers) lines.push([r.network, r.accel, ...CSV_FIELDS.map((f) => l[f])].map(q).join(','));
  lines.push([r.network, r.accel, 'total', '', '', '', '', r.baseline_cycles, r.cycles, r.speedup, r.mac_utilisation, r.baseline_offchip_bytes, r.offchip_bytes].map(q).join(','));
  return `${lines.join('\n')}\n`;
}

/** Bars of per-layer speedup with a dashed line at 1x (the baseline) and one at the network total. */
export function speedupSvg(r: SimResult): string {
  const n = r.layers.length;
  const bar = Math.max(4, Math.min(28, Math.floor(900 / Math.max(1, n))));
  const left = 56;
  const top = 36;
  const h = 260;
  const width = left + n * bar + 24;
  const maxS = Math.max(1, r.speedup, ...r.layers.map((l) => l.speedup)) * 1.1;
  const y = (s: number) => top + h - (s / maxS) * h;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + h + 110}" font-family="sans-serif" font-size="11">`);
  parts.push(`<text x="${left}" y="20" font-size="13">${esc(`${r.network} on ${r.accel}${r.bits_per_cycle > 1 ? ` (${r.bits_per_cycle} b/cycle)` : ''}: ${r.speedup.toFixed(2)}x over the 16-bit baseline`)}</text>`);
  for (let k = 0; k <= 4; k++) {
    const s = (maxS * k) / 4;
    parts.push(`<line x1="${left - 4}" x2="${width - 16}" y1="${y(s).toFixed(1)}" y2="${y(s).toFixed(1)}" stroke="#ddd"/><text x="${left - 8}" y="${(y(s) + 4).toFixed(1)}" text-anchor="end">${s.toFixed(1)}x</text>`);
  }
  r.layers.forEach((l, i) => {
    const x = left + i * bar;
    const yy = y(l.speedup);
    parts.push(`<rect x="${x + 1}" y="${yy.toFixed(1)}" width="${bar - 2}" height="${(top + h - yy).toFixed(1)}" fill="${l.type === 'fc' ? '#d08c3a' : '#3a7bd0'}"><title>${esc(`${l.name}: ${l.speedup.toFixed(3)}x (act ${l.act_bits} b, wgt ${l.wgt_bits} b)`)}</title></rect>`);
    parts.push(`<text transform="translate(${x + bar / 2 + 3},${top + h + 6}) rotate(60)" font-size="9">${esc(l.name)}</text>`);
  });
  parts.push(`<line x1="${left}" x2="${width - 16}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#000" stroke-dasharray="4 3"/>`);
  parts.push(`<line x1="${left}" x2="${width - 16}" y1="${y(r.speedup).toFixed(1)}" y2="${y(r.speedup).toFixed(1)}" stroke="#c0392b" stroke-dasharray="2 2"/>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** CSV of study rows (A3, GradiVeQ, Ginex): one column per field, in the order given; null for absent values. */
export function rowsCsv(rows: readonly object[], fields: readonly string[]): string {
  const q = (v: unknown) => {
    const s = v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v)) ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [fields.join(',')];
  for (const r of rows) lines.push(fields.map((f) => q((r as Record<string, unknown>)[f])).join(','));
  return `${lines.join('\n')}\n`;
}

export interface ChartPoint {
  x: number;
  y: number;
  /** Written next to the point (e.g. the knob that produced it). */
  label?: string;
}
export interface ChartSeries {
  name: string;
  colour: string;
  points: ChartPoint[];
}

/**
 * A line chart of one or more series on linear axes, as a standalone SVG (the same hand-written approach
 * as speedupSvg and the cli's study plot: one chart does not justify a charting dependency). Points are
 * drawn in the order given, so callers sort by x when the line should read left to right.
 */
export function lineChartSvg(o: { title: string; xLabel: string; yLabel: string; series: ChartSeries[]; yFrom0?: boolean }): string {
  const pts = o.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const [W, H] = [720, 420];
  const [left, right, top, bottom] = [70, 170, 40, 50];
  const span = (v: number[], from0: boolean): [number, number] => {
    let lo = from0 ? Math.min(0, ...v) : Math.min(...v);
    let hi = Math.max(...v);
    if (!(hi > lo)) [lo, hi] = [lo - 1, hi + 1];
    const pad = (hi - lo) * 0.05;
    return [from0 && lo === 0 ? 0 : lo - pad, hi + pad];
  };
  const [x0, x1] = pts.length ? span(pts.map((p) => p.x), false) : [0, 1];
  const [y0, y1] = pts.length ? span(pts.map((p) => p.y), o.yFrom0 ?? true) : [0, 1];
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * (W - left - right);
  const Y = (v: number) => H - bottom - ((v - y0) / (y1 - y0)) * (H - top - bottom);
  const f = (v: number) => v.toFixed(1);
  const tick = (v: number) => (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(2));
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="13">${esc(o.title)}</text>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${W - right}" y2="${H - bottom}" stroke="black"/><line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + W - right) / 2}" y="${H - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text x="16" y="${(top + H - bottom) / 2}" transform="rotate(-90 16 ${(top + H - bottom) / 2})" text-anchor="middle">${esc(o.yLabel)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const xv = x0 + ((x1 - x0) * i) / 4;
    const yv = y0 + ((y1 - y0) * i) / 4;
    out.push(`<text x="${f(X(xv))}" y="${H - bottom + 15}" text-anchor="middle">${tick(xv)}</text>`);
    out.push(`<line x1="${left - 4}" y1="${f(Y(yv))}" x2="${W - right}" y2="${f(Y(yv))}" stroke="#eee"/><text x="${left - 6}" y="${f(Y(yv) + 4)}" text-anchor="end">${tick(yv)}</text>`);
  }
  o.series.forEach((s, i) => {
    const ok = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (ok.length > 1) out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="1.5" points="${ok.map((p) => `${f(X(p.x))},${f(Y(p.y))}`).join(' ')}"/>`);
    for (const p of ok) {
      out.push(`<circle cx="${f(X(p.x))}" cy="${f(Y(p.y))}" r="3.5" fill="${s.colour}"><title>${esc(`${s.name}: ${p.label ? `${p.label}, ` : ''}x ${p.x}, y ${p.y}`)}</title></circle>`);
      if (p.label) out.push(`<text x="${f(X(p.x) + 5)}" y="${f(Y(p.y) - 6)}" fill="${s.colour}" font-size="9">${esc(p.label)}</text>`);
    }
    const ky = top + 10 + i * 16;
    out.push(`<line x1="${W - right + 14}" y1="${ky - 4}" x2="${W - right + 30}" y2="${ky - 4}" stroke="${s.colour}" stroke-width="2"/><text x="${W - right + 34}" y="${ky}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
