import { describe, expect, it } from 'vitest';
import { dequantizeMx, E8M0_NAN, MX_FORMATS, quantizeMx } from '../src/index.js';
import { errorCode, rng } from './helpers.js';

// An independent MX encoder from the OCP Microscaling Formats v1.0 spec (sections 5 and 6.3), sharing
// nothing with src/: per block of 32, shared exponent X = floor(log2(max|v|)) − emax_elem, clamped to
// the E8M0 range [−127, 127]; each element v/2^X rounded to the element format (round to nearest,
// ties to even) and saturated at its largest normal. MXINT8 elements are k·2^−6 with k kept in
// [−127, 127] (the symmetric range lowbit documents).
const ELEMENT = {
  mxfp8_e4m3: { mbits: 3, emin: -6, max: 448, emaxElem: 8 },
  mxfp8_e5m2: { mbits: 2, emin: -14, max: 57344, emaxElem: 15 },
  mxfp6_e3m2: { mbits: 2, emin: -2, max: 28, emaxElem: 4 },
  mxfp6_e2m3: { mbits: 3, emin: 0, max: 7.5, emaxElem: 2 },
  mxfp4: { mbits: 1, emin: 0, max: 6, emaxElem: 2 },
  mxint8: { mbits: 0, emin: 0, max: 127 / 64, emaxElem: 0 },
} as const;

/** floor(log2 |x|) read from the binary64 exponent field (x finite, non-zero; f32 inputs are f64 normals). */
function ilog2(x: number): number {
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, Math.abs(x));
  return (dv.getUint32(0) >>> 20) - 1023;
}

function roundHalfEven(t: number): number {
  const f = Math.floor(t);
  const d = t - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

function mxReference(v: Float32Array, format: keyof typeof ELEMENT): { scales: number[]; values: number[] } {
  const el = ELEMENT[format];
  const scales: number[] = [];
  const values: number[] = [];
  for (let b = 0; b < v.length; b += 32) {
    const block = Array.from(v.subarray(b, b + 32));
    const amax = Math.max(...block.map(Math.abs));
    const x = amax === 0 ? -127 : Math.min(127, Math.max(-127, ilog2(amax) - el.emaxElem));
    scales.push(x + 127);
    for (const value of block) {
      const a = Math.abs(value) / 2 ** x;
      // element quantum: 2^-6 for MXINT8, else one mantissa step at the value's binade (subnormal below emin)
      const q = format === 'mxint8' ? 2 ** -6 : 2 ** (Math.max(a === 0 ? el.emin : ilog2(a), el.emin) - el.mbits);
      const e = Math.min(el.max, roundHalfEven(a / q) * q);
      values.push(Math.sign(value) * e * 2 ** x);
    }
  }
  return { scales, values };
}

describe('OCP MX block quantization', () => {
  it('chooses the shared scale floor(log2(amax)) − emax_elem (spec 6.3)', () => {
    const v = new Float32Array(32).fill(0.1);
    v[5] = 5; // log2(5) = 2.32 → floor 2
    // emax_elem: E2M1 2, E3M2 4, E2M3 2, E4M3 8, E5M2 15, INT8 0.
    const want = { mxfp4: 0, mxfp6_e3m2: -2, mxfp6_e2m3: 0, mxfp8_e4m3: -6, mxfp8_e5m2: -13, mxint8: 2 } as const;
    for (const [f, e] of Object.entries(want)) expect(quantizeMx(v, { format: f as never }).scales[0]).toBe(127 + e);
  });

  it('round-trips exactly what the element grid holds, and the largest value within one step', () => {
    const r = rng(1);
    for (const format of MX_FORMATS) {
      const v = Float32Array.from({ length: 100 }, () => (r() * 2 - 1) * 10 ** (r() * 6 - 3));
      const t = quantizeMx(v, { format });
      expect(t.scales.length).toBe(4); // 100 values: 3 full blocks and a partial one of 4
      const d = dequantizeMx(t);
      // Dequantized values re-quantize to themselves (idempotence on the grid).
      expect(Array.from(dequantizeMx(quantizeMx(d, { format })))).toEqual(Array.from(d));
      // Relative error of each block's largest element is at most half a mantissa step of the
      // element format (E2M1: 1 bit → 25%), the maximum being inside the normal range.
      const mbits = { mxfp4: 1, mxfp6_e3m2: 2, mxfp6_e2m3: 3, mxfp8_e4m3: 3, mxfp8_e5m2: 2, mxint8: 6 }[format];
      for (let b = 0; b < 4; b++) {
        let iMax = b * 32;
        for (let i = b * 32; i < Math.min(100, b * 32 + 32); i++) if (Math.abs(v[i]) > Math.abs(v[iMax])) iMax = i;
        expect(Math.abs(d[iMax] - v[iMax]) / Math.abs(v[iMax])).toBeLessThanOrEqual(2 ** -(mbits + 1) * 1.0001 + (format === 'mxfp4' ? 0.25 : 0));
      }
    }
  });

  it('equals an independent reference written from the OCP MX v1.0 rules on values full of rounding ties', () => {
    const r = rng(7);
    for (const format of MX_FORMATS) {
      // small integers times powers of two: after scaling, many values sit exactly on a midpoint
      // between two element values (the round-to-nearest-even cases), others beyond the element max
      const v = Float32Array.from({ length: 32 * 40 }, (_, i) => {
        const k = Math.floor(r() * 129) - 64;
        const block = Math.floor(i / 32);
        return (k / 16) * 2 ** ((block % 20) - 10 + Math.floor(r() * 3));
      });
      v[5] = 3e38; // a block near the top of f32 (shared exponent clamped to the E8M0 range)
      v[40] = 1e-40; // f32 subnormals in a block of their own size
      for (let i = 64; i < 96; i++) v[i] = v[i] * 1e-38;
      const t = quantizeMx(v, { format });
      const d = dequantizeMx(t);
      const want = mxReference(v, format);
      expect(Array.from(t.scales), format).toEqual(want.scales);
      for (let i = 0; i < v.length; i++) if (d[i] !== want.values[i]) expect(`${format}[${i}] = ${v[i]}: ${d[i]}`).toBe(`${format}[${i}] = ${v[i]}: ${want.values[i]}`);
    }
  });

  it('all-zero block: zero codes and a finite scale', () => {
    const t = quantizeMx(new Float32Array(40), { format: 'mxfp4' });
    expect(Array.from(dequantizeMx(t))).toEqual(new Array(40).fill(0));
    expect(t.scales[0]).not.toBe(E8M0_NAN);
  });

  it('a block with NaN or Inf gets the NaN scale and decodes to NaN; other blocks are untouched', () => {
    const v = new Float32Array(64).fill(1);
    v[3] = Number.NaN;
    v[40] = Number.POSITIVE_INFINITY;
    const v2 = new Float32Array(64).fill(1);
    v2[3] = Number.NaN;
    for (const vv of [v, v2]) {
      const t = quantizeMx(vv, { format: 'mxfp6_e2m3' });
      const d = dequantizeMx(t);
      expect(t.scales[0]).toBe(E8M0_NAN);
      expect(d.slice(0, 32).every(Number.isNaN)).toBe(true);
      if (vv === v2) expect(Array.from(d.slice(32))).toEqual(new Array(32).fill(1));
    }
  });

  it('tiny values use the element subnormals and the scale floor', () => {
    const v = Float32Array.of(1e-40, -3e-39, 0, 2e-38);
    const d = dequantizeMx(quantizeMx(v, { format: 'mxfp8_e4m3' }));
    for (let i = 0; i < 4; i++) expect(Math.abs(d[i] - v[i])).toBeLessThanOrEqual(Math.abs(v[i]) * 0.07 + 1e-45);
  });

  it('rejects unknown formats, wrong scales length and wrong types', () => {
    const err = errorCode;
    expect(err(() => quantizeMx(new Float32Array(4), { format: 'mxfp3' as never }))).toBe('E_FORMAT');
    const t = quantizeMx(new Float32Array(64), { format: 'mxfp4' });
    expect(err(() => dequantizeMx({ ...t, scales: new Uint8Array(1) }))).toBe('E_SHAPE');
    expect(err(() => quantizeMx([1, 2] as never, { format: 'mxfp4' }))).toBe('E_DTYPE');
  });
});
