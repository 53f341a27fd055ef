import { createKernels, type KernelVariant, quantizeAbsmaxLut } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import {
  decodeMinifloat, encodeIntWith, encodeIntWithWasm, MINIFLOATS, MX_FORMATS, minifloatLimits, NF4_TABLE, quantizeInt, quantizeIntWasm, quantizeMx, quantizeMxWasm,
  nearestIndex, quantizeNf4, quantizeNf4Wasm, writeBits, type Granularity, type MxFormatName, F16_MAX, F16_MIN, f16Scale, isF16,
} from '../src/index.js';
import { errorCode, rng } from './helpers.js';

/** Byte-for-byte equality (f32 scales compared by bits: -0 and NaN patterns count). */
function sameBytes(a: ArrayBufferView | null, b: ArrayBufferView | null, what: string): void {
  if (a === null || b === null) {
    expect(a, what).toBe(b);
    return;
  }
  expect(a.constructor, what).toBe(b.constructor);
  expect(a.byteLength, what).toBe(b.byteLength);
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) throw new Error(`${what}: byte ${i}: 0x${ua[i].toString(16)} vs 0x${ub[i].toString(16)}`);
}

const f32 = Math.fround;
const nextUp = (v: number) => {
  const b = new Float32Array([v]);
  const u = new Uint32Array(b.buffer);
  u[0] += v >= 0 ? 1 : -1;
  return b[0];
};
const nextDown = (v: number) => {
  const b = new Float32Array([v]);
  const u = new Uint32Array(b.buffer);
  if (v === 0) u[0] = 0x80000001;
  else u[0] += v > 0 ? -1 : 1;
  return b[0];
};

/** Random weights: gaussian-ish bulk, a few outliers, some zeros and f32 subnormals. */
function weights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => {
    const u = r();
    if (u < 0.02) return 0;
    if (u < 0.03) return (r() - 0.5) * 1e-40; // subnormal
    if (u < 0.04) return (r() - 0.5) * 40; // outlier
    return (r() + r() + r() - 1.5) * 0.1;
  });
}

/** Values of every shape the encoders branch on: zeros, -0, subnormals, powers of two and their neighbours. */
function edgeValues(): Float32Array {
  const v: number[] = [0, -0, 1e-45, -1e-45, 1e-40, 2 ** -126, 3.4028234663852886e38, -3.4028234663852886e38];
  for (let e = -149; e <= 127; e += 3) {
    const p = f32(2 ** e);
    v.push(p, nextUp(p), nextDown(p), -p, f32(p * 1.5), f32(-p * 1.25));
  }
  return Float32Array.from(v);
}

describe.each(['relaxed', 'simd', 'scalar'] as KernelVariant[])('WASM encoders (%s) equal the TypeScript encoders byte for byte', async (variant) => {
  const k = await createKernels({ variant });

  describe('INT-k', () => {
    const shapes: [number, number][] = [[7, 75], [3, 300], [1, 1], [2, 128], [4, 33]];
    const cases: { granularity: Granularity; group?: number }[] = [
      { granularity: 'group-cols', group: 128 }, { granularity: 'group-cols', group: 32 }, { granularity: 'group-cols', group: 7 },
      { granularity: 'group-cols', group: 1 }, { granularity: 'group-cols', group: 1000 }, { granularity: 'per-oc' },
    ];
    it.each([2, 3, 4, 5, 8])('INT%i: random weights, sym and asym, clip 1 and 0.85, partial groups', (bits) => {
      let seed = bits * 1000;
      for (const shape of shapes) {
        const w = weights(shape[0] * shape[1], seed++);
        for (const c of cases) {
          for (const symmetric of [true, false]) {
            for (const clip of [1, 0.85]) {
              const o = { bits, symmetric, clip, ...c };
              const want = quantizeInt(w, shape, o);
              const got = quantizeIntWasm(k, w, shape, o);
              const what = `${JSON.stringify(o)} [${shape}]`;
              expect({ ...got, scales: 0, zeros: 0, codes: 0 }, what).toEqual({ ...want, scales: 0, zeros: 0, codes: 0 });
              sameBytes(got.scales, want.scales, `${what} scales`);
              sameBytes(got.zeros, want.zeros, `${what} zeros`);
              sameBytes(got.codes, want.codes, `${what} codes`);
            }
          }
        }
      }
    });

    it('all-zero rows, -0, subnormal-only groups, f32 extremes', () => {
      const e = edgeValues();
      const cols = 40;
      const rows = Math.ceil(e.length / cols) + 2;
      const w = new Float32Array(rows * cols);
      w.set(e, 2 * cols); // rows 0, 1 stay zero
      w[cols + 3] = -0;
      for (const bits of [2, 4, 8]) {
        for (const symmetric of [true, false]) {
          for (const o of [{ granularity: 'group-cols' as const, group: 8 }, { granularity: 'per-oc' as const }]) {
            const opt = { bits, symmetric, ...o };
            const want = quantizeInt(w, [rows, cols], opt);
            const got = quantizeIntWasm(k, w, [rows, cols], opt);
            sameBytes(got.scales, want.scales, 'scales');
            sameBytes(got.zeros, want.zeros, 'zeros');
            sameBytes(got.codes, want.codes, 'codes');
          }
        }
      }
    });

    it('values at the rounding midpoints (ties to even) and beyond the clamp', () => {
      // Symmetric INT4 of a row with max 7.5 has scale 1: every k + 0.5 is an exact tie.
      const cols = 40;
      const row = Float32Array.from({ length: cols }, (_, c) => (c === 0 ? 7.5 : (c % 16) - 8 + 0.5));
      const want = quantizeInt(row, [1, cols], { bits: 4, granularity: 'per-oc' });
      expect(want.scales[0]).toBe(1);
      const got = quantizeIntWasm(k, row, [1, cols], { bits: 4, granularity: 'per-oc' });
      sameBytes(got.codes, want.codes, 'codes');
      // Given parameters, including ones no search produces: a zero scale, fp16's extremes (the
      // smallest subnormal and 65504), the zero points' ends.
      const scales = Float32Array.of(1, 0.5, 0, F16_MIN, F16_MAX, f16Scale(0.1), 3);
      const zeros = Float32Array.of(8, 2, 0, 7, 15, 3, 0);
      const group = 6;
      const data = Float32Array.from({ length: 1 * 40 }, (_, i) => ((i % 13) - 6) * 0.75 + (i % 3 === 0 ? 0 : 0.25));
      for (const z of [zeros, null]) {
        const p = { bits: 4, symmetric: z === null, granularity: 'group-cols' as const, group, scales, zeros: z };
        sameBytes(encodeIntWithWasm(k, data, [1, 40], p).codes, encodeIntWith(data, [1, 40], p).codes, 'given params');
      }
      // Parameters fp16 scales and 4-bit zeros cannot hold are refused by both, before any code is chosen.
      const bad = [
        { scales: Float32Array.of(1, 0.5, Number.NaN, 1, 1, 1, 1), zeros: null },
        { scales: Float32Array.of(1, 0.5, Number.POSITIVE_INFINITY, 1, 1, 1, 1), zeros: null },
        { scales: Float32Array.of(1, 0.1, 1, 1, 1, 1, 1), zeros: null }, // 0.1 is not an fp16 value
        { scales: Float32Array.of(1, 1, 1, 1, 1, 1, 1), zeros: Float32Array.of(8, 2.5, 0, 7, 15, 3, 0) },
        { scales: Float32Array.of(1, 1, 1, 1, 1, 1, 1), zeros: Float32Array.of(8, 2, 0, 7, 16, 3, 0) },
        { scales: Float32Array.of(1, 1, 1, 1, 1, 1, 1), zeros: Float32Array.of(8, 2, 0, 7, -1, 3, 0) },
      ];
      for (const b of bad) {
        const p = { bits: 4, symmetric: b.zeros === null, granularity: 'group-cols' as const, group, ...b };
        expect(errorCode(() => encodeIntWith(data, [1, 40], p))).toBe('E_ARG');
        expect(errorCode(() => encodeIntWithWasm(k, data, [1, 40], p))).toBe('E_ARG');
      }
    });

    it('scales are fp16 values chosen alike in WASM across fp16\'s range (subnormal scales, the 2^-24 floor, the 65504 cap)', () => {
      // groups of 8 whose largest magnitude sweeps 2^-40 .. 2^24: scales from below fp16's smallest
      // subnormal, through its subnormals and normals, to past its largest value
      const cols = 8;
      const rows = 129;
      const r = rng(77);
      const w = new Float32Array(rows * cols);
      for (let i = 0; i < rows; i++) {
        const m = 2 ** (-40 + (64 * i) / (rows - 1));
        for (let c = 0; c < cols; c++) w[i * cols + c] = f32(m * (c === 0 ? 1 : r() * 2 - 1));
      }
      for (const bits of [2, 3, 4, 8]) {
        for (const symmetric of [true, false]) {
          const o = { bits, symmetric, granularity: 'group-cols' as const, group: cols };
          const want = quantizeInt(w, [rows, cols], o);
          const got = quantizeIntWasm(k, w, [rows, cols], o);
          sameBytes(got.scales, want.scales, `int${bits} ${symmetric} scales`);
          sameBytes(got.zeros, want.zeros, `int${bits} ${symmetric} zeros`);
          sameBytes(got.codes, want.codes, `int${bits} ${symmetric} codes`);
          for (const s of want.scales) expect(isF16(s) && s >= F16_MIN && s <= F16_MAX).toBe(true);
        }
      }
    });

    it('empty matrices, and the same errors as the TypeScript encoder', () => {
      for (const shape of [[0, 5], [5, 0]] as [number, number][]) {
        const o = { bits: 4, granularity: 'per-oc' as const };
        expect(quantizeIntWasm(k, new Float32Array(0), shape, o)).toEqual(quantizeInt(new Float32Array(0), shape, o));
      }
      const w = weights(64, 1);
      w[37] = Number.NaN;
      expect(() => quantizeIntWasm(k, w, [2, 32], { bits: 4, granularity: 'group-cols', group: 16 })).toThrow(expect.objectContaining({ code: 'E_NAN' }));
      expect(() => quantizeIntWasm(k, w, [2, 32], { bits: 4, granularity: 'group-cols', group: 16 })).toThrow(/\[1, 5\]/);
      expect(() => quantizeIntWasm(k, weights(64, 2), [2, 32], { bits: 4, granularity: 'group-rows', group: 2 })).toThrow(expect.objectContaining({ code: 'E_UNSUPPORTED' }));
      expect(() => quantizeIntWasm(k, weights(64, 2), [2, 32], { bits: 9 })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
      expect(() => quantizeIntWasm(k, weights(64, 2), [2, 32], { bits: 4, granularity: 'group-cols', group: 0 })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    });
  });

  describe('MX', () => {
    const check = (values: Float32Array, format: MxFormatName, what: string) => {
      const want = quantizeMx(values, { format });
      const got = quantizeMxWasm(k, values, { format });
      expect(got.format).toBe(want.format);
      expect(got.length).toBe(want.length);
      sameBytes(got.scales, want.scales, `${format} ${what} scales`);
      sameBytes(got.codes, want.codes, `${format} ${what} codes`);
    };

    it.each(MX_FORMATS)('%s: random blocks over the whole f32 exponent range, lengths not a multiple of 32', (format) => {
      const r = rng(format.length * 7);
      for (const n of [0, 1, 31, 32, 33, 95, 1000]) {
        const v = Float32Array.from({ length: n }, () => f32((r() - 0.5) * 2 ** Math.floor(r() * 270 - 145)));
        // one magnitude per block, so most elements land in the normal range of the element format
        const blocky = Float32Array.from({ length: n }, (_, i) => f32((r() - 0.5) * 2 ** (((i >> 5) * 37) % 250 - 125)));
        check(v, format, `random n=${n}`);
        check(blocky, format, `blocky n=${n}`);
        check(weights(n, n + 3), format, `weights n=${n}`);
      }
    });

    it.each(MX_FORMATS)('%s: zeros, -0, NaN/±Inf blocks, subnormals, powers of two and neighbours', (format) => {
      const e = edgeValues();
      check(e, format, 'edge values');
      const v = weights(32 * 7 + 5, 11);
      v.fill(0, 0, 32); // all-zero block
      v.fill(-0, 32, 64); // all -0 block
      v[70] = Number.NaN;
      v[100] = Number.POSITIVE_INFINITY;
      v[140] = Number.NEGATIVE_INFINITY;
      for (let i = 160; i < 192; i++) v[i] = (i - 176) * 1e-45; // f32 subnormals only
      v[32 * 7 + 2] = Number.NaN; // in the partial last block
      check(v, format, 'special blocks');
      for (let x = 0; x < e.length; x += 32) check(e.subarray(x, x + 32), format, `edge block ${x}`);
    });

    it.each(MX_FORMATS)('%s: element rounding midpoints (ties to even), saturation', (format) => {
      // A block holding 2^emax_elem has scale 2^0, so its elements meet the element grid as given.
      let emax = 0;
      let grid: number[];
      if (format === 'mxint8') grid = Array.from({ length: 128 }, (_, i) => i / 64);
      else {
        const s = MINIFLOATS[({ mxfp8_e4m3: 'fp8_e4m3', mxfp8_e5m2: 'fp8_e5m2', mxfp6_e3m2: 'fp6_e3m2', mxfp6_e2m3: 'fp6_e2m3', mxfp4: 'fp4_e2m1' } as const)[format]];
        const lim = minifloatLimits(s);
        emax = lim.emax;
        grid = [];
        for (let c = 0; c < 2 ** (lim.bits - 1); c++) {
          const d = decodeMinifloat(s, c);
          if (Number.isFinite(d)) grid.push(d);
        }
      }
      grid.sort((a, b) => a - b);
      const vals: number[] = [];
      for (let i = 0; i + 1 < grid.length; i++) {
        const m = (grid[i] + grid[i + 1]) / 2;
        vals.push(m, -m, nextUp(m), nextDown(m), grid[i]);
      }
      const top = grid[grid.length - 1];
      vals.push(top, top * 1.01, top * 1.5, -top * 3, top + (top - grid[grid.length - 2]) / 2);
      const out: number[] = [];
      for (let i = 0; i < vals.length; i += 31) out.push(2 ** emax, ...vals.slice(i, i + 31));
      for (const scale of [1, 2 ** -100, 2 ** 60]) {
        check(Float32Array.from(out, (x, i) => (i % 32 === 0 ? x : x * scale)), format, `midpoints ×${scale}`);
      }
    });
  });

  describe('NF4', () => {
    it.each([[7, 75, 64], [3, 200, 64], [2, 33, 7], [4, 128, 128], [1, 1, 64], [5, 64, 1], [3, 130, 1000]])('[%i, %i] group %i: random weights', (rows, cols, group) => {
      const w = weights(rows * cols, rows * 31 + cols);
      const want = quantizeNf4(w, [rows, cols], { group });
      const got = quantizeNf4Wasm(k, w, [rows, cols], { group });
      expect({ ...got, scales: 0, codes: 0 }).toEqual({ ...want, scales: 0, codes: 0 });
      sameBytes(got.scales, want.scales, 'scales');
      sameBytes(got.codes, want.codes, 'codes');
    });

    it('table values, near-midpoints between them, zero groups, subnormals, edge values', () => {
      const vals: number[] = [];
      for (let i = 0; i < 16; i++) {
        vals.push(NF4_TABLE[i], nextUp(NF4_TABLE[i]), nextDown(NF4_TABLE[i]));
        if (i < 15) {
          const m = f32((NF4_TABLE[i] + NF4_TABLE[i + 1]) / 2);
          vals.push(m, nextUp(m), nextDown(m));
        }
      }
      const group = 32;
      const rows: number[] = [];
      // group 0 of each row holds 1.0 (scale 1), so the values meet the table as given
      for (let i = 0; i < vals.length; i += group - 1) rows.push(1, ...vals.slice(i, i + group - 1), ...new Array(Math.max(0, group - 1 - vals.slice(i, i + group - 1).length)).fill(0));
      const cols = group * 3;
      const data = new Float32Array(Math.ceil(rows.length / group) * cols);
      for (let g = 0; g * group < rows.length; g++) data.set(rows.slice(g * group, (g + 1) * group), g * cols);
      // second group of each row: scaled copy (scale 2^-130, subnormal-heavy); third: zeros and -0
      for (let r = 0; r < data.length / cols; r++) {
        for (let c = 0; c < group; c++) data[r * cols + group + c] = f32(data[r * cols + c] * 2 ** -130);
        data[r * cols + 2 * group + 1] = -0;
      }
      const shape: [number, number] = [data.length / cols, cols];
      for (const g of [group, 7, 64]) {
        const want = quantizeNf4(data, shape, { group: g });
        const got = quantizeNf4Wasm(k, data, shape, { group: g });
        sameBytes(got.scales, want.scales, `group ${g} scales`);
        sameBytes(got.codes, want.codes, `group ${g} codes`);
      }
      const e = edgeValues();
      const n = Math.floor(e.length / 8) * 8;
      const want = quantizeNf4(e.subarray(0, n), [8, n / 8], { group: 5 });
      const got = quantizeNf4Wasm(k, e.subarray(0, n), [8, n / 8], { group: 5 });
      sameBytes(got.scales, want.scales, 'edge scales');
      sameBytes(got.codes, want.codes, 'edge codes');
    });

    it('other ascending tables (2 to 8 bits, with and without repeated entries) equal nearestIndex; a table out of order is refused', () => {
      const r = rng(77);
      // strictly ascending tables of up to 16 values take the tie-threshold path; the others bisect
      for (const [bits, repeat] of [[2, false], [3, false], [4, false], [2, true], [3, true], [4, true], [5, true], [8, false]] as const) {
        const raw = Array.from({ length: 2 ** bits }, () => f32(r() * 2 - 1));
        if (repeat) raw[1] = raw[2];
        else if (new Set(raw).size !== raw.length) throw new Error('test table has a repeated value');
        const table = Float32Array.from(raw).sort();
        const [rows, cols, group] = [5, 37, 9];
        const w = weights(rows * cols, bits);
        const ng = Math.ceil(cols / group);
        const rb = Math.ceil((cols * bits) / 8);
        const scales = new Float32Array(rows * ng);
        const codes = new Uint8Array(rows * rb);
        for (let i = 0; i < rows; i++) {
          for (let g = 0; g < ng; g++) {
            let amax = 0;
            for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) amax = Math.max(amax, Math.abs(w[i * cols + c]));
            const s = amax > 0 ? amax : 1;
            scales[i * ng + g] = s;
            for (let c = g * group; c < Math.min(cols, (g + 1) * group); c++) writeBits(codes, i * rb * 8 + c * bits, bits, nearestIndex(table, w[i * cols + c] / s));
          }
        }
        const got = quantizeAbsmaxLut(k, w, rows, cols, group, table);
        sameBytes(got.scales, scales, `${bits}-bit table scales`);
        sameBytes(got.codes, codes, `${bits}-bit table codes`);
      }
      expect(() => quantizeAbsmaxLut(k, weights(8, 1), 2, 4, 4, Float32Array.of(0, 1, 0.5, 2))).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    });

    it('empty matrices and non-finite values', () => {
      for (const shape of [[0, 5], [5, 0]] as [number, number][]) {
        expect(quantizeNf4Wasm(k, new Float32Array(0), shape)).toEqual(quantizeNf4(new Float32Array(0), shape));
      }
      const w = weights(128, 5);
      w[99] = Number.POSITIVE_INFINITY;
      expect(() => quantizeNf4(w, [2, 64])).toThrow(expect.objectContaining({ code: 'E_NAN' }));
      expect(() => quantizeNf4Wasm(k, w, [2, 64])).toThrow(expect.objectContaining({ code: 'E_NAN' }));
      expect(() => quantizeNf4Wasm(k, w, [2, 64])).toThrow(/\[1, 35\]/);
      expect(() => quantizeNf4Wasm(k, weights(8, 1), [2, 4], { group: 0 })).toThrow(expect.objectContaining({ code: 'E_ARG' }));
    });
  });
});
