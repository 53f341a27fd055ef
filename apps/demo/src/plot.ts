// The perplexity-vs-bits chart: one point per run, the original model as a dashed line. A few dozen
// points and two axes: drawn as SVG here rather than pulling a charting library into the bundle.
import type { QuantizeReport } from './api.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 640;
const H = 320;
const M = { top: 16, right: 24, bottom: 48, left: 64 };

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo || 1;
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function perplexityPlot(runs: readonly QuantizeReport[], baseline: number | undefined): SVGSVGElement {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'plot' });
  root.append(svg('title', {}, 'Perplexity against bits per weight, one point per quantization run'));
  const xs = runs.map((r) => r.bitsPerWeight);
  const ys = runs.map((r) => r.pplAfter);
  if (baseline !== undefined) ys.push(baseline);
  const x0 = Math.max(0, Math.floor(Math.min(2, ...xs) - 0.5));
  const x1 = Math.ceil(Math.max(9, ...xs) + 0.5);
  const ylo = ys.length ? Math.min(...ys) : 1;
  const yhi = ys.length ? Math.max(...ys) : 10;
  const pad = (yhi - ylo) * 0.1 || ylo * 0.05 || 1;
  const y0 = ylo - pad;
  const y1 = yhi + pad;
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const axes = svg('g', { class: 'axes' });
  for (const t of ticks(x0, x1, 8)) {
    axes.append(svg('line', { x1: px(t), x2: px(t), y1: M.top, y2: H - M.bottom, class: 'grid' }));
    axes.append(svg('text', { x: px(t), y: H - M.bottom + 16, 'text-anchor': 'middle' }, String(t)));
  }
  for (const t of ticks(y0, y1, 6)) {
    axes.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t), class: 'grid' }));
    axes.append(svg('text', { x: M.left - 6, y: py(t) + 4, 'text-anchor': 'end' }, String(t)));
  }
  axes.append(svg('text', { x: (M.left + W - M.right) / 2, y: H - 8, 'text-anchor': 'middle', class: 'label' }, 'bits per weight (quantized layers, as stored)'));
  axes.append(svg('text', { x: 14, y: (M.top + H - M.bottom) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, 'perplexity (lower is better)'));
  root.append(axes);
  if (baseline !== undefined) {
    root.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(baseline), y2: py(baseline), class: 'baseline' }));
    root.append(svg('text', { x: W - M.right - 4, y: py(baseline) - 6, 'text-anchor': 'end', class: 'baseline-label' }, `original (f32): ${baseline.toFixed(4)}`));
  }
  runs.forEach((r, i) => {
    const g = svg('g', { class: `point ${r.settings.method}` });
    g.append(svg('title', {}, `#${i + 1} ${r.label}: ${r.bitsPerWeight.toFixed(3)} bits/weight, perplexity ${r.pplAfter.toFixed(4)}`));
    const [cx, cy] = [px(r.bitsPerWeight), py(r.pplAfter)];
    g.append(r.settings.method === 'gptq' ? svg('rect', { x: cx - 5, y: cy - 5, width: 10, height: 10 }) : svg('circle', { cx, cy, r: 5.5 }));
    g.append(svg('text', { x: cx + 8, y: cy - 7 }, `#${i + 1}`));
    root.append(g);
  });
  const legend = svg('g', { class: 'legend', transform: `translate(${M.left + 10} ${M.top + 6})` });
  legend.append(svg('circle', { cx: 5, cy: 5, r: 5, class: 'rtn' }), svg('text', { x: 14, y: 9 }, 'RTN'));
  legend.append(svg('rect', { x: 50, y: 0, width: 10, height: 10, class: 'gptq' }), svg('text', { x: 64, y: 9 }, 'GPTQ'));
  root.append(legend);
  return root;
}

/** Bars of a histogram of quantization errors (ŵ − w), zero marked. */
export function errorHistogram(hist: { lo: number; width: number; counts: number[] }): SVGSVGElement {
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'plot hist' });
  root.append(svg('title', {}, 'Histogram of the quantization error of each weight'));
  const n = hist.counts.length;
  const x0 = hist.lo;
  const x1 = hist.lo + n * hist.width;
  const ymax = Math.max(1, ...hist.counts);
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - (y / ymax) * (H - M.top - M.bottom);
  const axes = svg('g', { class: 'axes' });
  for (const t of ticks(0, ymax, 5)) {
    axes.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t), class: 'grid' }));
    axes.append(svg('text', { x: M.left - 6, y: py(t) + 4, 'text-anchor': 'end' }, String(t)));
  }
  for (const t of ticks(x0, x1, 6)) {
    axes.append(svg('text', { x: px(t), y: H - M.bottom + 16, 'text-anchor': 'middle' }, Math.abs(t) < 1e-12 ? '0' : t.toPrecision(2)));
  }
  axes.append(svg('text', { x: (M.left + W - M.right) / 2, y: H - 8, 'text-anchor': 'middle', class: 'label' }, 'error ŵ − w (weight units)'));
  axes.append(svg('text', { x: 14, y: (M.top + H - M.bottom) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, 'weights'));
  root.append(axes);
  hist.counts.forEach((c, i) => {
    const a = px(x0 + i * hist.width);
    const b = px(x0 + (i + 1) * hist.width);
    root.append(svg('rect', { x: a + 0.5, y: py(c), width: Math.max(0.5, b - a - 1), height: H - M.bottom - py(c), class: 'bar' }));
  });
  root.append(svg('line', { x1: px(0), x2: px(0), y1: M.top, y2: H - M.bottom, class: 'baseline' }));
  return root;
}

/** Speedup per layer as bars, with the baseline (1×) dashed and the whole model's speedup as a line. */
export function speedupBars(layers: readonly { name: string; speedup: number; act_bits: number; wgt_bits: number }[], total: number): SVGSVGElement {
  const H2 = 300;
  const bottom = 30;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H2}`, role: 'img', class: 'plot speedup' });
  root.append(svg('title', {}, 'Speedup of each linear layer over the 16-bit baseline'));
  const ymax = Math.max(1, total, ...layers.map((l) => l.speedup)) * 1.1;
  const px = (i: number) => M.left + (i / Math.max(1, layers.length)) * (W - M.left - M.right);
  const py = (y: number) => H2 - bottom - (y / ymax) * (H2 - M.top - bottom);
  const axes = svg('g', { class: 'axes' });
  for (const t of ticks(0, ymax, 5)) {
    axes.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t), class: 'grid' }));
    axes.append(svg('text', { x: M.left - 6, y: py(t) + 4, 'text-anchor': 'end' }, `${t}×`));
  }
  axes.append(svg('text', { x: (M.left + W - M.right) / 2, y: H2 - 8, 'text-anchor': 'middle', class: 'label' }, `linear layers in model order (${layers.length})`));
  axes.append(svg('text', { x: 14, y: (M.top + H2 - bottom) / 2, 'text-anchor': 'middle', class: 'label', transform: `rotate(-90 14 ${(M.top + H2 - bottom) / 2})` }, 'speedup (higher is faster)'));
  root.append(axes);
  const w = (W - M.left - M.right) / Math.max(1, layers.length);
  layers.forEach((l, i) => {
    const r = svg('rect', { x: px(i) + 0.5, y: py(l.speedup), width: Math.max(0.5, w - 1), height: H2 - bottom - py(l.speedup), class: 'bar' });
    r.append(svg('title', {}, `${l.name}: ${l.speedup.toFixed(3)}× (activations ${l.act_bits} bits, weights ${l.wgt_bits} bits)`));
    root.append(r);
  });
  root.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(1), y2: py(1), class: 'baseline' }));
  root.append(svg('line', { x1: M.left, x2: W - M.right, y1: py(total), y2: py(total), class: 'total' }));
  root.append(svg('text', { x: W - M.right - 4, y: py(total) - 6, 'text-anchor': 'end', class: 'total-label' }, `model: ${total.toFixed(2)}×`));
  return root;
}
