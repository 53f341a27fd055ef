// INT-k tensors with a column → group map (gIdx): GPTQ act-order without static groups, where the
// q-th column quantized belongs to group ⌊q/group⌋ and groups are not runs of consecutive columns.
import { createKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import {
  type PackedIntTensor, actOrderInt, contiguousInt, dequantizeInt, dequantizeIntWasm, deserializeTensor, encodeIntWith, gemvPacked, gemvPackedWasm, groupOrder, readBits,
  rowBytes, serializeTensor, uploadGemv, validatePacked, f16Scale,
} from '../src/index.js';
import { errorCode } from './helpers.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** An act-order-like permutation of [0, cols) and the gIdx it implies. */
function actOrderGIdx(r: () => number, cols: number, group: number): Int32Array {
  const perm = Int32Array.from({ length: cols }, (_, i) => i);
  for (let i = cols - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  const g = new Int32Array(cols);
  perm.forEach((c, q) => (g[c] = Math.floor(q / group)));
  return g;
}

function tensor(seed: number, rows: number, cols: number, bits: number, group: number, symmetric: boolean): PackedIntTensor {
  const r = rng(seed);
  const gIdx = actOrderGIdx(r, cols, group);
  const ng = Math.ceil(cols / group);
  const scales = Float32Array.from({ length: rows * ng }, () => f16Scale(0.01 + r()));
  const zeros = symmetric ? null : Float32Array.from({ length: rows * ng }, () => Math.floor(r() * 2 ** bits));
  const w = Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 2);
  return encodeIntWith(w, [rows, cols], { bits, symmetric, granularity: 'group-cols', group, scales, zeros, gIdx });
}

describe('INT-k with a column → group map (gIdx)', () => {
  const cases = [
    { rows: 5, cols: 172, bits: 3, group: 32, symmetric: true },
    { rows: 4, cols: 64, bits: 4, group: 32, symmetric: false },
    { rows: 3, cols: 70, bits: 2, group: 16, symmetric: false },
    { rows: 2, cols: 96, bits: 8, group: 32, symmetric: true },
  ];
  for (const c of cases) {
    const name = `${c.bits}-bit g${c.group} ${c.symmetric ? 'sym' : 'asym'} [${c.rows}, ${c.cols}]`;
    it(`${name}: element (r, c) decodes with the scale of group gIdx[c]`, () => {
      const t = tensor(c.cols * 7 + c.bits, c.rows, c.cols, c.bits, c.group, c.symmetric);
      const ng = Math.ceil(c.cols / c.group);
      const d = dequantizeInt(t);
      const rb = rowBytes(c.cols, c.bits);
      for (let r = 0; r < c.rows; r++) {
        for (let col = 0; col < c.cols; col++) {
          const i = r * ng + (t.gIdx as Int32Array)[col];
          const u = readBits(t.codes, r * rb * 8 + col * c.bits, c.bits);
          // exact: the same single f32 product the definition states
          expect(d[r * c.cols + col]).toBe(Math.fround(t.scales[i] * (u - (t.zeros ? t.zeros[i] : 2 ** (c.bits - 1)))));
        }
      }
      // the same values with gIdx ignored would differ (the map matters)
      expect(dequantizeInt({ ...t, gIdx: null })).not.toEqual(d);
    });

    it(`${name}: contiguous re-packing, GEMV (TypeScript and WASM), WASM decode and serializer agree`, async () => {
      const t = tensor(c.cols * 13 + c.bits, c.rows, c.cols, c.bits, c.group, c.symmetric);
      const d = dequantizeInt(t);
      const { tensor: ct, order } = contiguousInt(t);
      expect(ct.gIdx).toBeNull();
      expect(Array.from(order)).toEqual(Array.from(groupOrder(t.gIdx as Int32Array)));
      const dc = dequantizeInt(ct);
      for (let r = 0; r < c.rows; r++) for (let j = 0; j < c.cols; j++) expect(dc[r * c.cols + j]).toBe(d[r * c.cols + order[j]]);

      const r = rng(5);
      const x = Float32Array.from({ length: c.cols }, () => r() * 2 - 1);
      const y = gemvPacked(t, x);
      for (let row = 0; row < c.rows; row++) {
        let ref = 0;
        for (let col = 0; col < c.cols; col++) ref += d[row * c.cols + col] * x[col];
        // f32 accumulation in another order than this f64 sum: relative 1e-5 of the row's magnitude
        let mag = 0;
        for (let col = 0; col < c.cols; col++) mag += Math.abs(d[row * c.cols + col] * x[col]);
        expect(Math.abs(y[row] - ref)).toBeLessThanOrEqual(1e-5 * mag + 1e-7);
      }
      const k = await createKernels();
      expect(gemvPackedWasm(k, t, x)).toEqual(y);
      const res = uploadGemv(k, t);
      expect(res.gemv(x)).toEqual(y);
      res.free();
      expect(dequantizeIntWasm(k, t)).toEqual(d);

      const back = deserializeTensor(serializeTensor(t)) as PackedIntTensor;
      expect(back.gIdx).toEqual(t.gIdx);
      expect(dequantizeInt(back)).toEqual(d);
    });
  }

  it('rejects maps that do not describe groups of `group` columns', () => {
    const t = tensor(1, 3, 64, 4, 32, true);
    const g = t.gIdx as Int32Array;
    expect(errorCode(() => validatePacked('t', { ...t, gIdx: g.subarray(0, 63) }))).toBe('E_SHAPE');
    const uneven = g.slice();
    uneven[uneven.indexOf(0)] = 1; // group 0 now has 31 columns, group 1 has 33
    expect(errorCode(() => validatePacked('t', { ...t, gIdx: uneven }))).toBe('E_SHAPE');
    const out = g.slice();
    out[0] = 2;
    expect(errorCode(() => validatePacked('t', { ...t, gIdx: out }))).toBe('E_ARG');
    expect(errorCode(() => validatePacked('t', { ...t, gIdx: Array.from(g) as unknown as Int32Array }))).toBe('E_DTYPE');
    expect(errorCode(() => validatePacked('t', { ...t, granularity: 'per-oc' as const, scales: new Float32Array(3) }))).toBe('E_ARG');
    expect(errorCode(() => dequantizeInt({ ...t, gIdx: uneven }))).toBe('E_SHAPE');
  });
});

describe('actOrderInt: an ordinary group-cols tensor stored in act-order', () => {
  it('moves column j to order[j] with its group, the inverse of contiguousInt', () => {
    const [rows, cols, group] = [3, 80, 32];
    const r = rng(21);
    const w = Float32Array.from({ length: rows * cols }, () => r() * 2 - 1);
    const t = encodeIntWith(w, [rows, cols], { bits: 4, symmetric: false, granularity: 'group-cols', group, scales: Float32Array.from({ length: rows * 3 }, () => f16Scale(0.1 + r() / 10)), zeros: Float32Array.from({ length: rows * 3 }, () => Math.floor(r() * 16)) });
    const order = Int32Array.from({ length: cols }, (_, j) => (j * 37) % cols);
    const a = actOrderInt(t, order);
    const d = dequantizeInt(t);
    const da = dequantizeInt(a);
    for (let row = 0; row < rows; row++) for (let j = 0; j < cols; j++) expect(da[row * cols + order[j]]).toBe(d[row * cols + j]);
    for (let j = 0; j < cols; j++) expect((a.gIdx as Int32Array)[order[j]]).toBe(Math.floor(j / group));
    // back to contiguous groups: within a group the columns come in increasing index, the group's
    // columns of t in the order their targets sort
    const { tensor: back, order: o } = contiguousInt(a);
    const db = dequantizeInt(back);
    for (let row = 0; row < rows; row++) for (let j = 0; j < cols; j++) expect(db[row * cols + j]).toBe(da[row * cols + o[j]]);
    expect(errorCode(() => actOrderInt(t, order.map((c) => (c === 5 ? 6 : c))))).toBe('E_ARG');
    expect(errorCode(() => actOrderInt(t, order.subarray(1)))).toBe('E_SHAPE');
    expect(errorCode(() => actOrderInt(a, order))).toBe('E_ARG');
  });
});
