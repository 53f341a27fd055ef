import { createKernels, type KernelVariant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import {
  dequantizeCodebook, dequantizeInt, gemvAnyPrecision, gemvAnyPrecisionWasm, quantizeAnyPrecision, readAnyPrecision, dequantizeMx, dequantizeNf4, gemvPacked, gemvPackedWasm, type GemvTensor, MX_FORMATS, packMxCodes, uploadGemv, quantizeCodebook, readBits, quantizeInt, quantizeMx, quantizeNf4, type Granularity,
} from '../src/index.js';
import { errorCode, rng, sameBits } from './helpers.js';

function matrix(r: () => number, rows: number, cols: number, scale = 1): Float32Array {
  return Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * scale);
}

/** Float64 dot of the dequantized matrix with x: what the GEMV approximates. */
function dense(w: Float32Array, rows: number, cols: number, x: Float32Array): Float64Array {
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) for (let c = 0; c < cols; c++) y[i] += w[i * cols + c] * x[c];
  return y;
}

function close(y: Float32Array, want: Float64Array, x: Float32Array, w: Float32Array, cols: number): void {
  // f32 accumulation over `cols` terms: error below cols·2^-23·Σ|w||x| (a loose forward bound).
  for (let i = 0; i < y.length; i++) {
    let mag = 0;
    for (let c = 0; c < cols; c++) mag += Math.abs(w[i * cols + c] * x[c]);
    expect(Math.abs(y[i] - want[i])).toBeLessThanOrEqual(cols * 2 ** -23 * mag + 1e-30);
  }
}

const SHAPES: [number, number][] = [[5, 64], [3, 70], [1, 7], [4, 128], [0, 32]];

describe.each(['simd', 'scalar', 'relaxed'] as KernelVariant[])('decode-into-GEMV (%s): WASM equals the TypeScript reference bit for bit', async (variant) => {
  const k = await createKernels({ variant });
  const cases: [string, (w: Float32Array, s: [number, number]) => { t: GemvTensor; d: Float32Array } | null][] = [];
  for (const bits of [2, 3, 4, 5, 8]) {
    for (const [g, group] of [['group-cols', 32], ['group-cols', 7], ['per-oc', 0], ['tensor', 0], ['per-ic', 0], ['group-rows', 2]] as [Granularity, number][]) {
      for (const symmetric of [true, false]) {
        if (!symmetric && (g === 'per-ic' || g === 'group-rows')) continue;
        cases.push([`int${bits} ${g}${group ? ` g${group}` : ''} ${symmetric ? 'sym' : 'asym'}`, (w, s) => {
          const t = quantizeInt(w, s, { bits, granularity: g, group: group || undefined, symmetric });
          return { t, d: dequantizeInt(t) };
        }]);
      }
    }
  }
  cases.push(['nf4 g64', (w, s) => { const t = quantizeNf4(w, s, { group: 64 }); return { t, d: dequantizeNf4(t) }; }]);
  cases.push(['nf4 g5', (w, s) => { const t = quantizeNf4(w, s, { group: 5 }); return { t, d: dequantizeNf4(t) }; }]);
  cases.push(['codebook 3-bit', (w, s) => { const t = quantizeCodebook(w, s, { bits: 3 }); return { t, d: dequantizeCodebook(t) }; }]);
  for (const format of MX_FORMATS) {
    cases.push([format, (w, s) => {
      if (s[1] % 32 !== 0) return null;
      const m = quantizeMx(w, { format });
      return { t: { ...m, shape: s }, d: dequantizeMx(m) };
    }]);
  }

  it.each(cases)('%s', (_name, make) => {
    const r = rng(7);
    for (const [rows, cols] of SHAPES) {
      const w = matrix(r, rows, cols, 0.3);
      const made = make(w, [rows, cols]);
      if (!made) continue;
      const x = matrix(r, 1, cols, 2);
      const ref = gemvPacked(made.t, x);
      sameBits(gemvPackedWasm(k, made.t, x), ref, true);
      const resident = uploadGemv(k, made.t);
      sameBits(resident.gemv(x), ref, true);
      sameBits(resident.gemv(x), ref, true); // codes stay intact in WASM memory between calls
      resident.free();
      close(ref, dense(made.d, rows, cols, x), x, made.d, cols);
    }
  });

  it('any-precision: every width 3..6 read from one layout, only its top planes', () => {
    const r = rng(13);
    for (const [rows, cols] of [[3, 37], [2, 64], [1, 5]] as [number, number][]) {
      const w = matrix(r, rows, cols, 0.2);
      const t = quantizeAnyPrecision(w, [rows, cols], { seedBits: 3, maxBits: 6 });
      const x = matrix(r, 1, cols, 2);
      for (let bits = 3; bits <= 6; bits++) {
        const ref = gemvAnyPrecision(t, bits, x);
        sameBits(gemvAnyPrecisionWasm(k, t, bits, x), ref, true);
        const d = readAnyPrecision(t, bits);
        close(ref, dense(d, rows, cols, x), x, d, cols);
        // Scribbling over the planes below `bits` changes nothing: they are never read.
        const planes = t.planes.slice();
        planes.fill(0xa5, bits * rows * Math.ceil(cols / 8));
        sameBits(gemvAnyPrecisionWasm(k, { ...t, planes }, bits, x), ref, true);
      }
    }
  });

  it('edge cases: zero rows, NaN/Inf in x, MX blocks with NaN scale, tiny scales (denormals), x = 0', () => {
    const w = matrix(rng(3), 4, 64, 1e-3);
    w[70] = Number.NaN; // block 2 (row 1, second half) gets the NaN scale
    for (let i = 128; i < 160; i++) w[i] = 1e-39 * (i - 140); // f32 subnormals: smallest E8M0 scale
    const m = { ...quantizeMx(w, { format: 'mxfp4' }), shape: [4, 64] as [number, number] };
    const t = quantizeInt(Float32Array.from(w, (v) => (Number.isNaN(v) ? 0 : v)), [4, 64], { bits: 4, granularity: 'group-cols', group: 32 });
    for (const x of [matrix(rng(4), 1, 64), new Float32Array(64), Float32Array.from({ length: 64 }, (_, i) => (i === 5 ? Number.POSITIVE_INFINITY : i === 9 ? Number.NaN : 1))]) {
      for (const tt of [m, t] as GemvTensor[]) sameBits(gemvPackedWasm(k, tt, x), gemvPacked(tt, x), true);
    }
    expect(Number.isNaN(gemvPacked(m, matrix(rng(5), 1, 64))[1])).toBe(true);
  });
});

describe('GEMV bad input', () => {
  const code = errorCode;
  it('rejects wrong x length, MX rows that split blocks, asymmetric per-IC, wrong scales length', () => {
    const w = new Float32Array(4 * 48).fill(0.5);
    const t = quantizeInt(w, [4, 48], { bits: 4, granularity: 'group-cols', group: 16 });
    expect(code(() => gemvPacked(t, new Float32Array(47)))).toBe('E_SHAPE');
    expect(code(() => gemvPacked({ ...t, scales: new Float32Array(3) }, new Float32Array(48)))).toBe('E_SHAPE');
    expect(code(() => gemvPacked({ ...quantizeMx(w, { format: 'mxfp4' }), shape: [4, 48] }, new Float32Array(48)))).toBe('E_SHAPE');
    expect(code(() => gemvPacked(quantizeInt(w, [4, 48], { bits: 4, granularity: 'per-ic', symmetric: false }), new Float32Array(48)))).toBe('E_UNSUPPORTED');
    expect(code(() => gemvPacked({ ...t, group: 0 }, new Float32Array(48)))).toBe('E_ARG');
  });
});

describe('packMxCodes', () => {
  it.each(MX_FORMATS)('%s: codes at their element width, int-k bit order, odd lengths', (format) => {
    const r = rng(9);
    for (const n of [0, 1, 31, 33, 64]) {
      const t = quantizeMx(Float32Array.from({ length: n }, () => r() * 2 - 1), { format });
      const bits = format === 'mxfp4' ? 4 : format.startsWith('mxfp6') ? 6 : 8;
      const packed = packMxCodes(t);
      expect(packed.length).toBe(Math.ceil((n * bits) / 8));
      for (let i = 0; i < n; i++) expect(readBits(packed, i * bits, bits)).toBe(t.codes[i]);
    }
  });
});
