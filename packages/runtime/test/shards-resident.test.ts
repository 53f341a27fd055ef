// The shard planner's residentBytes against what a loaded layer really holds in WASM memory: a plan
// that undercounts puts more into an instance than its memory holds.
import { quantizeInt } from '@lowbit/formats';
import { type Kernels, loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Linear } from '../src/linear.js';
import { type StoredLayer, encodeLowbit } from '../src/lowbit-tensors.js';
import { lowbitLinearWeight } from '../src/packed-linear.js';
import { residentBytes } from '../src/shards.js';
import { mxRows } from './helpers.js';

describe('residentBytes of lowbit tensor types', () => {
  it('is never below, and at most 10% + 2 kB above, the bytes a loaded layer holds in WASM memory', async () => {
    const k = await loadKernels();
    // whole 32-blocks, and rows of 80 columns (MX rows of a partial last block take a gather)
    for (const [rows, cols] of [[96, 256], [40, 80]]) checkShape(k, rows, cols);
  });
});

function checkShape(k: Kernels, rows: number, cols: number): void {
    const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
    const shape: [number, number] = [rows, cols];
    const layers: [string, StoredLayer][] = [];
    for (const bits of [2, 3, 4, 5, 6, 7, 8]) {
      layers.push([`int${bits} g32`, quantizeInt(w, shape, { bits, granularity: 'group-cols', group: 32 })]);
      layers.push([`int${bits} g128 asym`, quantizeInt(w, shape, { bits, symmetric: false, granularity: 'group-cols', group: 128 })]);
      layers.push([`int${bits} per-oc`, quantizeInt(w, shape, { bits, granularity: 'per-oc' })]);
    }
    layers.push(['int4 per-ic asym', quantizeInt(w, shape, { bits: 4, symmetric: false, granularity: 'per-ic' })]);
    // act-order: a g_idx puts the columns in group order (x gathered)
    const gIdx = Int32Array.from({ length: cols }, (_, c) => (c * 5) % (cols / 32 | 0 || 1));
    for (const bits of [3, 4, 6]) if (cols % 32 === 0) layers.push([`int${bits} g32 g_idx`, { ...quantizeInt(w, shape, { bits, granularity: 'group-cols', group: 32 }), gIdx }]);
    for (const f of ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as const) layers.push([f, mxRows(f, w, rows, cols)]);
    for (const [label, t] of layers) {
      const e = encodeLowbit(t);
      const info = { name: 'x', type: e.type, shape: [cols, rows], params: e.params, byteLength: e.bytes.byteLength, offset: 0 };
      const before = k.heap.liveBytes;
      const l = new Linear(k, 'x', lowbitLinearWeight(info as never, e.bytes));
      const live = k.heap.liveBytes - before;
      const plan = residentBytes(e.type, rows * cols, e.bytes.byteLength, 'packed', { shape: info.shape, params: e.params, mxfp4Tiles: k.supportsMxfp4Tiles });
      // never under (a plan that undercounts overfills an instance); over by at most 10% + 2 kB where
      // the layer is resident (one left packed in JS holds nothing in WASM memory)
      expect(plan, label).toBeGreaterThanOrEqual(live);
      if (live > 0) expect(plan, label).toBeLessThanOrEqual(live * 1.1 + 2048);
      l.free();
    }
}
