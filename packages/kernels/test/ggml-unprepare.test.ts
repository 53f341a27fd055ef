import { describe, expect, it } from 'vitest';
import { type KernelVariant, createKernels, isLowbitError, reference } from '../src/index-node.js';
import { randU8, rng } from './helpers.js';

// prepareGgml repacks blocks for the matmuls (f32 scales, rows in tiles, a lane layout for 4-bit
// codes in the relaxed build); unprepareGgml must give the blocks back bit for bit, whatever the
// scales hold: f16 subnormals, ±0, ±Inf and NaNs with payloads.
const SPECIAL_F16 = [0x0000, 0x8000, 0x0001, 0x03ff, 0x8200, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfd55];

describe.each(['relaxed', 'simd', 'scalar'] as KernelVariant[])('unprepareGgml (%s)', async (variant) => {
  const k = await createKernels({ variant });
  for (const type of ['q8_0', 'q4_0', 'q4_1'] as const) {
    it(`${type}: prepare then unprepare gives the blocks back, 7 rows (a partial tile) × 96 columns`, () => {
      const r = rng(type.length * 31 + variant.length);
      const [rows, cols] = [7, 96];
      const bsize = reference.GGML_BLOCK_BYTES[type];
      const blocks = randU8(r, (rows * cols * bsize) / 32);
      const view = new DataView(blocks.buffer);
      let i = 0;
      for (let o = 0; o < blocks.length; o += bsize, i++) {
        view.setUint16(o, SPECIAL_F16[i % SPECIAL_F16.length], true);
        if (type === 'q4_1') view.setUint16(o + 2, SPECIAL_F16[(i * 5 + 3) % SPECIAL_F16.length], true);
      }
      const p = k.prepareGgml(type, blocks, rows, cols);
      expect(k.unprepareGgml(type, p, rows, cols)).toEqual(blocks);
      p.free();
    });
  }

  it('refuses a tensor of another type or shape', () => {
    const p = k.prepareGgml('q4_0', new Uint8Array(4 * 18), 4, 32);
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isLowbitError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(code(() => k.unprepareGgml('q8_0', p, 4, 32))).toBe('E_ARG');
    expect(code(() => k.unprepareGgml('q4_0', p, 8, 32))).toBe('E_SHAPE');
    expect(code(() => k.unprepareGgml('q4_0', k.upload(new Uint8Array(72)), 4, 32))).toBe('E_ARG');
    p.free();
  });
});
