import { NF4_TABLE, dequantizeNf4, quantizeNf4 } from '@lowbit/formats';
import { NF4_TILE_LEVELS, isLowbitError, loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { Linear, type LinearWeight } from '../src/linear.js';
import { dequantizeNf4Tiles } from '../src/lut-fast.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { dequantizeLinear } from '../src/qdec.js';
import { permuteLinearRows } from '../src/rope-order.js';
import { spikyWeights } from './helpers.js';

// NF4 with groups of whole 32-column blocks and rows in fours runs on the kernels' NF4 tiles
// (relaxed builds); other builds take its lut4Gemv form.
describe('NF4 on the kernels\' NF4 tiles', () => {
  const rows = 40;
  const cols = 256;
  const shape: [number, number] = [rows, cols];
  const data = spikyWeights(rows, cols, 7);

  it.each([32, 64, 128, 256])('g%i: the tile levels are within absmax/126 of NF4, and a matmul within the written bound of the exact product', async (group) => {
    const nf = quantizeNf4(data, shape, { group });
    const w = linearWeightFromPacked(nf) as Extract<LinearWeight, { fallback: LinearWeight }>;
    expect(w.format).toBe('nf4');
    expect(w.fallback.format).toBe('lut4');
    const exact = dequantizeNf4(nf);
    const tiles = dequantizeNf4Tiles(w.data, rows, cols);
    const ng = cols / group;
    const absmax = (i: number) => Math.abs(nf.scales[Math.floor(i / cols) * ng + Math.floor((i % cols) / group)]);
    for (let i = 0; i < exact.length; i++) expect(Math.abs(tiles[i] - exact[i])).toBeLessThanOrEqual(absmax(i) / 126 + 1e-7);
    expect(dequantizeLinear('nf4', w)).toEqual(tiles);
    const lin = new Linear(await loadKernels({ variant: 'relaxed' }), 'nf4', w);
    expect(lin.format).toBe('nf4');
    const batch = 3;
    const x = Float32Array.from({ length: batch * cols }, (_, i) => Math.sin(i * 0.7) * (i % 11 === 0 ? 3 : 1));
    const y = lin.apply(x, batch);
    for (let b = 0; b < batch; b++) {
      const xb = x.subarray(b * cols, (b + 1) * cols);
      const amax = Array.from({ length: cols / 32 }, (_, j) => Math.max(...Array.from(xb.subarray(j * 32, j * 32 + 32), Math.abs)));
      for (let r = 0; r < rows; r++) {
        let ref = 0;
        let bound = 1e-5;
        for (let c = 0; c < cols; c++) {
          const i = r * cols + c;
          ref += exact[i] * xb[c];
          // weight moved by ≤ absmax/126 (7-bit level), activation by ≤ amax/254 of its 32 (int8)
          bound += (absmax(i) / 126) * Math.abs(xb[c]) + (Math.abs(exact[i]) + absmax(i) / 126) * (amax[c >> 5] / 254);
        }
        expect(Math.abs(y[b * rows + r] - ref)).toBeLessThanOrEqual(bound);
      }
    }
    // the layer remembers the NF4 tensor it came from, for re-saving
    expect(lin.source).toEqual({ format: 'packed', shape, tensor: nf });
    lin.free();
  });

  it('the tiles\' levels are QLoRA\'s table as 7-bit integers', () => {
    expect(NF4_TILE_LEVELS).toEqual(Array.from(NF4_TABLE, (v) => Math.round(63 * v + 64)));
  });

  it('a build without relaxed SIMD runs the lut4Gemv form, within the same bound of the tiles', async () => {
    const nf = quantizeNf4(data, shape, { group: 64 });
    const w = linearWeightFromPacked(nf);
    const plain = new Linear(await loadKernels({ variant: 'simd' }), 'plain', w);
    expect(plain.format).toBe('lut4');
    const tiled = new Linear(await loadKernels({ variant: 'relaxed' }), 'tiled', w);
    const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.3));
    const a = plain.apply(x, 1);
    const b = tiled.apply(x, 1);
    const scale = Math.max(...Array.from(b, Math.abs));
    for (let r = 0; r < rows; r++) expect(Math.abs(a[r] - b[r])).toBeLessThan(0.05 * scale);
    expect(plain.source).toEqual(tiled.source);
  });

  it('rows reordered or picked keep the tiles in fours, else the lut4Gemv form', () => {
    const nf = quantizeNf4(data, shape, { group: 64 });
    const w = linearWeightFromPacked(nf);
    const d = dequantizeLinear('nf4', w);
    const rev = Int32Array.from({ length: rows }, (_, r) => rows - 1 - r);
    const p = permuteLinearRows('nf4', w, rev);
    expect(p.format).toBe('nf4');
    const pd = dequantizeLinear('nf4', p);
    rev.forEach((s, r) => expect(Array.from(pd.subarray(r * cols, (r + 1) * cols))).toEqual(Array.from(d.subarray(s * cols, (s + 1) * cols))));
    // and the NF4 tensor it came from moves with them (a re-saved model keeps the new order)
    const po = (p as { origin?: { tensor: Parameters<typeof dequantizeNf4>[0] } }).origin;
    const od = dequantizeNf4(po?.tensor as Parameters<typeof dequantizeNf4>[0]);
    const nd = dequantizeNf4(nf);
    rev.forEach((s, r) => expect(Array.from(od.subarray(r * cols, (r + 1) * cols))).toEqual(Array.from(nd.subarray(s * cols, (s + 1) * cols))));
    expect(permuteLinearRows('nf4', w, Int32Array.from([3, 1])).format).toBe('lut4');
  });

  it('keeps other paths where the tiles do not fit, and refuses malformed tiles by layer name', async () => {
    expect(linearWeightFromPacked(quantizeNf4(data.subarray(0, 6 * cols), [6, cols], { group: 64 })).format).toBe('lut4');
    expect(linearWeightFromPacked(quantizeNf4(data, shape, { group: 64 }), { tableGemv: true }).format).toBe('packed');
    const nf = quantizeNf4(data, shape, { group: 64 });
    const bad = { ...nf, scales: nf.scales.slice() };
    bad.scales[5] = Number.NaN;
    expect(linearWeightFromPacked(bad).format).toBe('packed'); // the loaders' finite checks see it there
    const k = await loadKernels({ variant: 'relaxed' });
    const w = linearWeightFromPacked(nf) as Extract<LinearWeight, { fallback: LinearWeight }>;
    const errors: string[] = [];
    for (const broken of [{ ...w, data: w.data.subarray(1) }, { ...w, shape: [rows - 2, cols] as [number, number] }]) {
      try {
        new Linear(k, 'blk.3.ffn_up.weight', broken);
      } catch (e) {
        if (isLowbitError(e)) errors.push(e.message);
      }
    }
    expect(errors).toHaveLength(2);
    for (const m of errors) expect(m).toContain('blk.3.ffn_up.weight');
  });
});
