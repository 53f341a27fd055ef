// gemv_anyprec (eight columns per step, bit-transposed plane bytes) against the definition
// (gemvBitplanesReference), bit for bit, in the SIMD and scalar builds, batched and one vector at a
// time (gemvBitplanes).
import { describe, expect, it } from 'vitest';
import { createKernels, gemvAnyprec, gemvAnyprecReference, gemvBitplanes, isLowbitError } from '../src/index-node.js';
import { randF32, randU8, rng } from './helpers.js';

const same = (a: Float32Array, b: Float32Array) => expect(Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))).toEqual(Array.from(new Uint32Array(b.buffer, b.byteOffset, b.length)));

describe('gemvAnyprec (any-precision GEMV, top `bits` planes)', () => {
  for (const variant of ['simd', 'scalar'] as const) {
    it(`${variant}: equals gemvBitplanesReference bit for bit, batched and per vector (gemvBitplanes); lower planes never read`, async () => {
      const k = await createKernels({ variant });
      const r = rng(17);
      // cols around the 8- and 4-column steps and their tails; one batch of three vectors
      for (const [rows, cols] of [[1, 1], [3, 7], [2, 8], [5, 13], [4, 16], [3, 37], [6, 64], [2, 171]] as [number, number][]) {
        for (const maxBits of [1, 3, 8]) {
          const planes = randU8(r, maxBits * rows * Math.ceil(cols / 8));
          for (let bits = 1; bits <= maxBits; bits++) {
            const lut = randF32(r, rows * 2 ** bits, 2);
            const x = randF32(r, 3 * cols, 3);
            const a = { planes, rows, cols, maxBits, bits, lut, x };
            const ref = gemvAnyprecReference(a);
            same(gemvAnyprec(k, a), ref);
            for (let i = 0; i < 3; i++) same(gemvBitplanes(k, { ...a, x: x.subarray(i * cols, (i + 1) * cols) }), ref.subarray(i * rows, (i + 1) * rows));
            // scribbling over planes bits.. changes nothing
            const p2 = planes.slice();
            p2.fill(0x5a, bits * rows * Math.ceil(cols / 8));
            same(gemvAnyprec(k, { ...a, planes: p2 }), ref);
            // resident planes and table give the same
            const rp = k.upload(planes);
            const rl = k.upload(lut);
            same(gemvAnyprec(k, { ...a, planes: rp, lut: rl }), ref);
            rp.free();
            rl.free();
          }
        }
      }
    });
  }

  it('bad sizes and widths are LowbitErrors before any memory is touched', async () => {
    const k = await createKernels();
    const ok = { planes: new Uint8Array(3 * 2 * 2), rows: 2, cols: 9, maxBits: 3, bits: 2, lut: new Float32Array(8), x: new Float32Array(9) };
    for (const bad of [{ bits: 4 }, { bits: 0 }, { maxBits: 9 }, { planes: new Uint8Array(11) }, { lut: new Float32Array(7) }, { x: new Float32Array(10) }]) {
      try {
        gemvAnyprec(k, { ...ok, ...bad });
        expect.unreachable();
      } catch (e) {
        expect(isLowbitError(e)).toBe(true);
      }
    }
  });
});
