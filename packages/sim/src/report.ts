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
