// The allocation study's presentation: its markdown table, its perplexity-vs-size plot and the
// predictor's scatter plot, drawn as standalone SVG like `lowbit study`'s plot (study-report.ts).
import type { CladoStudyRow, PredictorReport } from '@lowbit/quantizers';

const METHODS: [CladoStudyRow['method'], string, string][] = [
  ['uniform', 'uniform', '#7f7f7f'],
  ['greedy', 'greedy', '#2ca02c'],
  ['diagonal', 'diagonal (IQP, no cross terms)', '#1f77b4'],
  ['clado', 'CLADO', '#d62728'],
  ['clado-block', 'CLADO (block pairs)', '#ff7f0e'],
  ['predictor', 'predictor (IQP)', '#9467bd'],
  ['clado-hybrid', 'CLADO + predictor cross-block terms', '#8c564b'],
];

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** One line per budget, one column per method: "perplexity (bits/weight reached)", the exact methods with HiGHS's status, gap and time. */
export function allocationMarkdown(rows: CladoStudyRow[]): string {
  const methods = METHODS.filter(([m]) => rows.some((r) => r.method === m));
  const budgets = [...new Set(rows.map((r) => r.budget))].sort((a, b) => a - b);
  const uniformAt = new Set(rows.filter((r) => r.method === 'uniform').map((r) => r.budget));
  const lines = [`| budget bits/w | ${methods.map(([, label]) => label).join(' | ')} |`, `|---|${methods.map(() => '---').join('|')}|`];
  for (const b of budgets) {
    const cells = methods.map(([m]) => {
      const r = rows.find((x) => x.method === m && x.budget === b);
      if (!r) return '—';
      const s = r.solver ? `, ${r.solver.status === 'Optimal' ? 'optimal' : r.solver.status} gap ${(100 * r.solver.gap).toFixed(0)}%, ${r.seconds.toFixed(1)} s` : '';
      return `${r.perplexity.toFixed(2)} (${r.bitsPerWeight.toFixed(3)}${s})`;
    });
    lines.push(`| ${b.toFixed(4)}${uniformAt.has(b) ? ' = uniform' : ''} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

interface Axes {
  W: number;
  H: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function frame(a: Axes, xLabel: string, yLabel: string): string[] {
  const { W, H, left, right, top, bottom } = a;
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${right}" y2="${H - bottom}" stroke="black"/><line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + right) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text x="16" y="${(top + H - bottom) / 2}" transform="rotate(-90 16 ${(top + H - bottom) / 2})" text-anchor="middle">${esc(yLabel)}</text>`];
}

const LOG_TICKS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 6, 7, 8, 10, 15, 20, 30, 50, 100, 200, 500, 1000];
const f = (v: number) => v.toFixed(1);

/**
 * Perplexity (log scale) against the bits per weight reached, one polyline per method through its
 * budgets, uniform as separate squares, full precision as a dashed line; a legend on the right.
 */
export function allocationSvg(rows: CladoStudyRow[], fpPerplexity?: number): string {
  const a: Axes = { W: 900, H: 480, left: 60, right: 620, top: 20, bottom: 50 };
  const pts = rows.filter((r) => Number.isFinite(r.perplexity));
  const ys = [...pts.map((r) => r.perplexity), ...(fpPerplexity ? [fpPerplexity] : [])];
  const [x0, x1] = [Math.min(...pts.map((r) => r.bitsPerWeight)) - 0.1, Math.max(...pts.map((r) => r.bitsPerWeight)) + 0.1];
  const [y0, y1] = [Math.log(Math.min(...ys)) - 0.05, Math.log(Math.max(...ys)) + 0.05];
  const X = (v: number) => a.left + ((v - x0) / (x1 - x0)) * (a.right - a.left);
  const Y = (v: number) => a.H - a.bottom - ((Math.log(v) - y0) / (y1 - y0)) * (a.H - a.top - a.bottom);
  const out = frame(a, 'stored bits per weight reached (codes + scales)', 'perplexity on TinyStories-valid (log scale)');
  for (let b = Math.ceil(x0 * 2) / 2; b <= x1; b += 0.5) out.push(`<text x="${f(X(b))}" y="${a.H - a.bottom + 15}" text-anchor="middle">${b}</text>`);
  for (const t of LOG_TICKS) {
    if (Math.log(t) < y0 || Math.log(t) > y1) continue;
    out.push(`<line x1="${a.left - 4}" y1="${f(Y(t))}" x2="${a.right}" y2="${f(Y(t))}" stroke="#eee"/><text x="${a.left - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  if (fpPerplexity) out.push(`<line x1="${a.left}" y1="${f(Y(fpPerplexity))}" x2="${a.right}" y2="${f(Y(fpPerplexity))}" stroke="gray" stroke-dasharray="4"/><text x="${a.right}" y="${f(Y(fpPerplexity) - 4)}" text-anchor="end">full precision ${fpPerplexity.toFixed(2)}</text>`);
  let legend = 0;
  for (const [m, label, colour] of METHODS) {
    const mine = pts.filter((r) => r.method === m).sort((p, q) => p.bitsPerWeight - q.bitsPerWeight);
    if (mine.length === 0) continue;
    if (m !== 'uniform') out.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${mine.map((r) => `${f(X(r.bitsPerWeight))},${f(Y(r.perplexity))}`).join(' ')}"/>`);
    for (const r of mine) {
      out.push(m === 'uniform'
        ? `<rect x="${f(X(r.bitsPerWeight) - 5)}" y="${f(Y(r.perplexity) - 5)}" width="10" height="10" fill="none" stroke="${colour}" stroke-width="2"/>`
        : `<circle cx="${f(X(r.bitsPerWeight))}" cy="${f(Y(r.perplexity))}" r="3" fill="${colour}"/>`);
    }
    const ly = a.top + 10 + 18 * legend++;
    out.push(`<line x1="${a.right + 20}" y1="${ly}" x2="${a.right + 40}" y2="${ly}" stroke="${colour}" stroke-width="2"/><text x="${a.right + 46}" y="${ly + 4}">${esc(label)}</text>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/**
 * The predictor's scatter: predicted against measured loss change (both log scale), the fit's
 * configurations as grey circles, the held-out ones as filled purple, y = x dashed.
 */
export function predictorSvg(r: PredictorReport): string {
  const a: Axes = { W: 560, H: 500, left: 60, right: 540, top: 40, bottom: 50 };
  const pts = r.points.filter((p) => p.measured > 0 && p.predicted > 0);
  const all = pts.flatMap((p) => [p.measured, p.predicted]);
  const [lo, hi] = [Math.log(Math.min(...all)) - 0.1, Math.log(Math.max(...all)) + 0.1];
  const X = (v: number) => a.left + ((Math.log(v) - lo) / (hi - lo)) * (a.right - a.left);
  const Y = (v: number) => a.H - a.bottom - ((Math.log(v) - lo) / (hi - lo)) * (a.H - a.top - a.bottom);
  const out = frame(a, 'measured ΔL (nats, calibration windows, log scale)', 'predicted ΔL (nats, log scale)');
  out.push(`<text x="${a.left}" y="16">${esc(`held out: ${r.heldOutCount} configurations, Spearman ${r.spearman.toFixed(3)}, median relative error ${(100 * r.medianRelativeError).toFixed(0)}%; fit on ${r.trainCount}`)}</text>`);
  for (const t of LOG_TICKS) {
    if (Math.log(t) < lo || Math.log(t) > hi) continue;
    out.push(`<text x="${a.left - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${t}</text><text x="${f(X(t))}" y="${a.H - a.bottom + 15}" text-anchor="middle">${t}</text>`);
  }
  out.push(`<line x1="${f(X(Math.exp(lo)))}" y1="${f(Y(Math.exp(lo)))}" x2="${f(X(Math.exp(hi)))}" y2="${f(Y(Math.exp(hi)))}" stroke="gray" stroke-dasharray="4"/>`);
  for (const p of pts.filter((q) => !q.heldOut)) out.push(`<circle cx="${f(X(p.measured))}" cy="${f(Y(p.predicted))}" r="3" fill="none" stroke="#999"/>`);
  for (const p of pts.filter((q) => q.heldOut)) out.push(`<circle cx="${f(X(p.measured))}" cy="${f(Y(p.predicted))}" r="3.5" fill="#9467bd"/>`);
  out.push(`<circle cx="${a.right - 150}" cy="${a.H - a.bottom - 30}" r="3" fill="none" stroke="#999"/><text x="${a.right - 142}" y="${a.H - a.bottom - 26}">fit (${r.trainCount})</text>`);
  out.push(`<circle cx="${a.right - 150}" cy="${a.H - a.bottom - 14}" r="3.5" fill="#9467bd"/><text x="${a.right - 142}" y="${a.H - a.bottom - 10}">held out (${r.heldOutCount})</text>`);
  out.push('</svg>');
  return out.join('\n');
}
