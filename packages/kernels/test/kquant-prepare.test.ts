// prepare_kquant (the SIMD repack of K-quant super-blocks into prepared tiles, run at every load)
// against prepare_kquant_ref, the weight-by-weight definition it replaces: the tiles must be the same
// bytes. Random block bytes reach every code, scale, min and high-bit position; all-ones blocks set
// every bit at once (so a mask that lets a neighbour's bit through shows); row counts leave partial
// last tiles, whose missing rows must come out zero although the destination starts as garbage.
import { type KQuantWeightType, type KernelVariant, createKernels, prepareKQuant, unprepareKQuant } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { randomKBlocks } from './helpers.js';

const TYPES: KQuantWeightType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];
const TYPE_ID: Record<KQuantWeightType, number> = { Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14 };

interface PrepareExports {
  prepare_kquant(t: number, src: number, rows: number, cols: number, dst: number): number;
  prepare_kquant_ref(t: number, src: number, rows: number, cols: number, dst: number): number;
  kquant_tiles_bytes(t: number, rows: number, cols: number): number;
}

describe.for(['relaxed', 'simd'] as KernelVariant[])('prepare_kquant (%s build)', (variant) => {
  it.for(TYPES)('%s: the SIMD repack writes prepare_kquant_ref bytes, every byte of the tiles', async (type) => {
    const k = await createKernels({ variant });
    const ex = k.exports as unknown as PrepareExports;
    const id = TYPE_ID[type];
    for (const rows of [1, 2, 3, 4, 5, 7, 13]) {
      for (const cols of [256, 768]) {
        const random = randomKBlocks(type, rows, cols, 11 * rows + cols + id);
        for (const blocks of [random, random.map(() => 0xff)]) {
          const size = ex.kquant_tiles_bytes(id, rows, cols) >>> 0;
          const src = k.heap.alloc(blocks.byteLength);
          const dst = k.heap.alloc(size);
          const ref = k.heap.alloc(size);
          new Uint8Array(k.memory.buffer, src, blocks.byteLength).set(blocks);
          // garbage where the tiles go: the repack must write every byte (no fill first)
          new Uint8Array(k.memory.buffer, dst, size).fill(0xa5);
          expect(ex.prepare_kquant(id, src, rows, cols, dst)).toBe(1);
          expect(ex.prepare_kquant_ref(id, src, rows, cols, ref)).toBe(1);
          const got = Buffer.from(k.memory.buffer, dst, size);
          const want = Buffer.from(k.memory.buffer, ref, size);
          const first = got.findIndex((v, i) => v !== want[i]);
          expect(first, `${type} [${rows}, ${cols}] ${blocks === random ? 'random' : 'all ones'}: first differing byte`).toBe(-1);
          k.heap.free(ref);
          k.heap.free(dst);
          k.heap.free(src);
        }
      }
    }
  });

  it.for(TYPES)('%s: prepareKQuant then unprepareKQuant gives the blocks back (several blocks per row, partial tiles)', async (type) => {
    const k = await createKernels({ variant });
    for (const rows of [3, 6, 9]) {
      const cols = 1024;
      const blocks = randomKBlocks(type, rows, cols, 3 * rows + TYPE_ID[type]);
      const t = prepareKQuant(k, type, blocks, rows, cols);
      if (t === null) throw new Error('prepareKQuant gave no tiles on a SIMD build');
      expect(Buffer.from(unprepareKQuant(k, type, t, rows, cols)).equals(Buffer.from(blocks)), `${type} rows ${rows}`).toBe(true);
      t.free();
    }
  });
});
