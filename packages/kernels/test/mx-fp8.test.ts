import { describe, expect, it } from 'vitest';
import { gemvLutGroupsReference, gemvMxFp8, loadKernels } from '../src/index-node.js';

// E4M3 (bias 7, NaN at S.1111.111, no infinities) and E5M2 (bias 15, exponent 31: Inf / NaN),
// decoded here from their definitions, independently of the kernel's bit moves
function fp8(code: number, e5m2: boolean): number {
  const [eb, mb, bias] = e5m2 ? [5, 2, 15] : [4, 3, 7];
  const s = code & 0x80 ? -1 : 1;
  const e = (code >> mb) & ((1 << eb) - 1);
  const m = code & ((1 << mb) - 1);
  if (e5m2 && e === 31) return m === 0 ? s * Number.POSITIVE_INFINITY : Number.NaN;
  if (!e5m2 && e === 15 && m === 7) return Number.NaN;
  return e === 0 ? s * m * 2 ** (1 - bias - mb) : s * (1 + m / 2 ** mb) * 2 ** (e - bias);
}

describe('gemvMxFp8', () => {
  it('equals the table GEMV bit for bit on every code, specials included (E4M3 and E5M2)', async () => {
    const k = await loadKernels();
    const rows = 9;
    const cols = 256;
    let s = 3;
    const rnd = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 32;
    };
    for (const e5m2 of [false, true]) {
      const lut = Float32Array.from({ length: 256 }, (_, c) => fp8(c, e5m2));
      // finite codes only in rows 0..7 so sums are comparable numbers; row 8 holds every code, specials too
      const finite = [...Array(256).keys()].filter((c) => Number.isFinite(lut[c]));
      const codes = Uint8Array.from({ length: rows * cols }, (_, i) => (i < 8 * cols ? finite[Math.floor(rnd() * finite.length)] : (i - 8 * cols) & 255));
      const scales = Uint8Array.from({ length: (rows * cols) / 32 }, () => 110 + Math.floor(rnd() * 30));
      scales[3] = 0; // E8M0 0: 2^-127, a subnormal f32
      const x = Float32Array.from({ length: cols }, () => rnd() - 0.5);
      const got = gemvMxFp8(k, { codes, rows, cols, e5m2, scales, x });
      if (k.variant === 'scalar') {
        expect(got).toBeNull(); // the scalar build leaves it to the table GEMV
        continue;
      }
      const want = gemvLutGroupsReference({ codes, rows, cols, bits: 8, lut, scales, zeros: null, group: 32, x });
      expect(got).toEqual(want);
      expect(Number.isNaN(got![8])).toBe(true); // the row holding NaN codes
    }
  });

  it('declines rows that are not whole 32-blocks and checks its arguments', async () => {
    const k = await loadKernels();
    expect(gemvMxFp8(k, { codes: new Uint8Array(40), rows: 1, cols: 40, e5m2: false, scales: new Uint8Array(2), x: new Float32Array(40) })).toBeNull();
    expect(() => gemvMxFp8(k, { codes: new Uint8Array(31), rows: 1, cols: 32, e5m2: false, scales: new Uint8Array(1), x: new Float32Array(32) })).toThrow(/codes hold 31 bytes/);
    expect(() => gemvMxFp8(k, { codes: new Uint8Array(32), rows: 1, cols: 32, e5m2: false, scales: new Uint8Array(2), x: new Float32Array(32) })).toThrow(/scales/);
  });
});
