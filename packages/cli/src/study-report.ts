// The study's presentation: its markdown table and its plot. They live in the command, not in
// @lowbit/quantizers, so the library computes rows and the command decides how to show them.
import type { StudyRow } from '@lowbit/quantizers';

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
 * Perplexity (log scale) against bits per weight as a standalone SVG: one numbered point per quantized
 * row, coloured by method, FP32 as a dashed line, and the numbers' key (label, perplexity, bits/weight)
 * beside the plot; many rows share a bits/weight value, so the points carry numbers, not labels. Rows
 * above four times FP32's perplexity (2-bit RTN) are drawn as triangles on the top edge.
 */
export function studySvg(rows: StudyRow[]): string {
  const pts = rows.filter((r) => r.bitsPerWeight < 16);
  const fp = rows.find((r) => r.bitsPerWeight >= 16);
  const keyRows = Math.max(pts.length, 1);
  const W = 1000;
  const H = Math.max(520, 40 + keyRows * 15);
  const [left, plotRight, top, bottom] = [60, 600, 20, 50];
  const all = [...pts, ...(fp ? [fp] : [])].map((r) => r.perplexity);
  const cap = fp ? 4 * fp.perplexity : Math.max(...all);
  const [x0, x1] = [Math.min(...pts.map((r) => r.bitsPerWeight)) - 0.25, Math.max(...pts.map((r) => r.bitsPerWeight)) + 0.25];
  const [y0, y1] = [Math.log(Math.min(...all)) - 0.03, Math.log(Math.min(cap, Math.max(...all))) + 0.03];
  const X = (v: number) => left + ((v - x0) / (x1 - x0)) * (plotRight - left);
  const Y = (v: number) => H - bottom - ((Math.min(Math.log(v), y1) - y0) / (y1 - y0)) * (H - top - bottom);
  const f = (v: number) => v.toFixed(1);
  const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const family = (label: string) => FAMILIES.find(([re]) => re.test(label)) as [RegExp, string, string];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<line x1="${left}" y1="${H - bottom}" x2="${plotRight}" y2="${H - bottom}" stroke="black"/><line x1="${left}" y1="${top}" x2="${left}" y2="${H - bottom}" stroke="black"/>`,
    `<text x="${(left + plotRight) / 2}" y="${H - 14}" text-anchor="middle">bits per weight (codes + scales)</text>`,
    `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">perplexity (log scale)</text>`];
  for (let b = Math.ceil(x0); b <= x1; b++) out.push(`<text x="${f(X(b))}" y="${H - bottom + 15}" text-anchor="middle">${b}</text>`);
  for (const t of [5, 5.5, 6, 6.5, 7, 8, 9, 10, 12, 15, 20, 30, 50, 100, 200, 500]) {
    if (Math.log(t) < y0 || Math.log(t) > y1) continue;
    out.push(`<line x1="${left - 4}" y1="${f(Y(t))}" x2="${plotRight}" y2="${f(Y(t))}" stroke="#eee"/><text x="${left - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${t}</text>`);
  }
  if (fp) out.push(`<line x1="${left}" y1="${f(Y(fp.perplexity))}" x2="${plotRight}" y2="${f(Y(fp.perplexity))}" stroke="gray" stroke-dasharray="4"/><text x="${plotRight}" y="${f(Y(fp.perplexity) + 14)}" text-anchor="end">FP32 ${fp.perplexity.toFixed(3)}</text>`);
  // Each point's number goes to the first free spot around it (right, left, above, below, then further out).
  const boxes: { x: number; y: number; w: number }[] = [];
  const free = (x: number, y: number, w: number) => !boxes.some((b) => Math.abs(b.y - y) < 11 && x < b.x + b.w && b.x < x + w);
  pts.forEach((r, i) => {
    const [px, py] = [X(r.bitsPerWeight), Y(r.perplexity)];
    const colour = family(r.label)[2];
    const off = r.perplexity > cap;
    out.push(off
      ? `<path d="M${f(px - 5)},${f(py + 4)} L${f(px + 5)},${f(py + 4)} L${f(px)},${f(py - 5)} Z" fill="${colour}"/>`
      : `<circle cx="${f(px)}" cy="${f(py)}" r="4" fill="${colour}"/>`);
    const text = String(i + 1);
    const w = text.length * 6.5;
    const spots: [number, number][] = [];
    for (let ring = 1; ring <= 6; ring++) spots.push([px + 6 * ring, py + 4], [px - 6 * ring - w, py + 4], [px - w / 2, py - 6 - 10 * (ring - 1)], [px - w / 2, py + 15 + 10 * (ring - 1)]);
    const [tx, ty] = spots.find(([x, y]) => free(x, y, w)) ?? spots[0];
    boxes.push({ x: tx, y: ty, w });
    out.push(`<text x="${f(tx)}" y="${f(ty)}" fill="${colour}">${text}</text>`);
  });
  // the key: number, colour, label, perplexity, bits/weight
  const kx = plotRight + 30;
  out.push(`<text x="${kx}" y="${top + 4}" font-weight="bold">#  method (perplexity @ bits/weight)</text>`);
  pts.forEach((r, i) => {
    const y = top + 20 + i * 15;
    out.push(`<circle cx="${kx + 4}" cy="${y - 4}" r="4" fill="${family(r.label)[2]}"/><text x="${kx + 14}" y="${y}">${i + 1}  ${esc(r.label)} (${r.perplexity.toFixed(2)} @ ${r.bitsPerWeight.toFixed(2)})</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
