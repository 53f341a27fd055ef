// The demo's charts, drawn with Observable Plot: declarative (a chart is its marks: dots, rules,
// bars), SVG output (crisp at any zoom, text a screen reader and the e2e test can read, native
// tooltips through <title>), and maintained by d3's authors. Colours follow style.css.
import * as Plot from '@observablehq/plot';
import type { AllocateReport, QuantizeReport } from './api.js';

const ACCENT = '#1f5fbf';
const GPTQ = '#c2571a';
const MIXED = '#2e8540';
const MUTED = '#5b6572';
const TOTAL = '#c0392b';
const common = { width: 640, height: 320, marginLeft: 60, marginBottom: 44, className: 'plot', style: { fontSize: '12px' } } as const;

/**
 * Perplexity against bits per weight, one point per run (#1, #2, ...) and per mixed-precision
 * allocation (A1, A2, ...); the original model as a dashed line.
 */
export function perplexityPlot(runs: readonly QuantizeReport[], baseline: number | undefined, allocations: readonly AllocateReport[] = []): SVGSVGElement | HTMLElement {
  const data = [
    ...runs.map((r, i) => ({ n: `#${i + 1}`, label: r.label, bits: r.bitsPerWeight, ppl: r.pplAfter, method: r.settings.method === 'gptq' ? 'GPTQ' : 'RTN' })),
    ...allocations.map((a, i) => ({ n: `A${i + 1}`, label: a.label, bits: a.bitsPerWeight, ppl: a.pplAfter, method: 'mixed precision' })),
  ];
  const ys = [...data.map((d) => d.ppl), ...(baseline !== undefined ? [baseline] : [])];
  return Plot.plot({
    ...common,
    ariaLabel: 'Perplexity against bits per weight, one point per quantization run',
    x: { label: 'bits per weight (quantized layers, as stored)', labelAnchor: 'center', labelArrow: 'none', domain: [Math.max(0, Math.floor(Math.min(2, ...data.map((d) => d.bits)) - 0.5)), Math.ceil(Math.max(9, ...data.map((d) => d.bits)) + 0.5)], grid: true },
    y: { label: 'perplexity (lower is better)', labelAnchor: 'center', labelArrow: 'none', grid: true, nice: true, ...(ys.length ? {} : { domain: [1, 10] }) },
    symbol: { domain: ['RTN', 'GPTQ', 'mixed precision'], range: ['circle', 'square', 'diamond'], legend: true },
    color: { domain: ['RTN', 'GPTQ', 'mixed precision'], range: [ACCENT, GPTQ, MIXED] },
    marks: [
      baseline !== undefined ? Plot.ruleY([baseline], { stroke: MUTED, strokeDasharray: '6 4' }) : null,
      baseline !== undefined ? Plot.text([baseline], { y: (d: number) => d, frameAnchor: 'right', dy: -8, fill: MUTED, text: () => `original (f32): ${baseline.toFixed(4)}` }) : null,
      Plot.dot(data, { x: 'bits', y: 'ppl', symbol: 'method', fill: 'method', r: 5.5, className: 'point', title: (d) => `${d.n} ${d.label}: ${d.bits.toFixed(3)} bits/weight, perplexity ${d.ppl.toFixed(4)}` }),
      Plot.text(data, { x: 'bits', y: 'ppl', text: 'n', dx: 9, dy: -9, textAnchor: 'start' }),
    ],
  });
}

/** Histogram of quantization errors (ŵ − w) from precomputed bins, zero marked. */
export function errorHistogram(hist: { lo: number; width: number; counts: number[] }): SVGSVGElement | HTMLElement {
  const bins = hist.counts.map((count, i) => ({ x1: hist.lo + i * hist.width, x2: hist.lo + (i + 1) * hist.width, count }));
  return Plot.plot({
    ...common,
    ariaLabel: 'Histogram of the quantization error of each weight',
    x: { label: 'error ŵ − w (weight units)', labelAnchor: 'center', labelArrow: 'none' },
    y: { label: 'weights', labelAnchor: 'center', labelArrow: 'none', grid: true },
    marks: [
      Plot.rectY(bins, { x1: 'x1', x2: 'x2', y: 'count', fill: ACCENT, insetLeft: 0.5, insetRight: 0.5, className: 'bar', title: (d) => `${d.count} weights with error in [${d.x1.toPrecision(3)}, ${d.x2.toPrecision(3)})` }),
      Plot.ruleX([0], { stroke: MUTED, strokeDasharray: '6 4' }),
      Plot.ruleY([0]),
    ],
  });
}

/** Speedup per layer as bars, with the baseline (1×) dashed and the whole model's speedup as a line. */
export function speedupBars(layers: readonly { name: string; speedup: number; act_bits: number; wgt_bits: number }[], total: number): SVGSVGElement | HTMLElement {
  return Plot.plot({
    ...common,
    height: 300,
    ariaLabel: 'Speedup of each linear layer over the 16-bit baseline',
    x: { domain: layers.map((l) => l.name), label: `linear layers in model order (${layers.length})`, labelAnchor: 'center', labelArrow: 'none', tickFormat: () => '', tickSize: 0, padding: 0.1 },
    y: { label: 'speedup (higher is faster)', labelAnchor: 'center', labelArrow: 'none', grid: true, nice: true, domain: [0, Math.max(1, total, ...layers.map((l) => l.speedup)) * 1.1], tickFormat: (v: number) => `${v}×` },
    marks: [
      Plot.barY(layers, { x: 'name', y: 'speedup', fill: ACCENT, className: 'bar', title: (l) => `${l.name}: ${l.speedup.toFixed(3)}× (activations ${l.act_bits} bits, weights ${l.wgt_bits} bits)` }),
      Plot.ruleY([1], { stroke: MUTED, strokeDasharray: '6 4' }),
      Plot.ruleY([total], { stroke: TOTAL, strokeWidth: 1.5 }),
      Plot.text([total], { y: (d: number) => d, frameAnchor: 'right', dy: -8, fill: TOTAL, text: () => `model: ${total.toFixed(2)}×` }),
    ],
  });
}
