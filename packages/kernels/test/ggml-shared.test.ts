import { describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernelPool, createKernels, type Kernels } from '../dist/index-node.js';
import { randF16Scale, randF32, randU8, rng } from './helpers.js';

/** Random blocks of a ggml type with sane f16 scales (Q4_1's minimum stays random bits). */
function ggmlBlocks(r: () => number, type: 'q4_0' | 'q4_1' | 'q8_0', rows: number, cols: number): Uint8Array {
  const size = { q4_0: 18, q4_1: 20, q8_0: 34 }[type];
  const blocks = randU8(r, rows * (cols / 32) * size);
  const view = new DataView(blocks.buffer);
  for (let o = 0; o < blocks.length; o += size) view.setUint16(o, randF16Scale(r), true);
  return blocks;
}
const q40 = (r: () => number, rows: number, cols: number) => ggmlBlocks(r, 'q4_0', rows, cols);

/** quantize_act_q8's codes, scales and code sums (rc first) for x ([batch, cols]). */
function actCodes(k: Kernels, x: Float32Array, cols: number, batch: number): number[] {
  const nblk = Math.ceil(cols / 32);
  const h = k.heap;
  const ptrs = [h.alloc(x.byteLength), h.alloc(batch * nblk * 32), h.alloc(batch * nblk * 4), h.alloc(batch * nblk * 4)];
  new Float32Array(k.memory.buffer, ptrs[0], x.length).set(x);
  const rc = k.exports.quantize_act_q8(ptrs[0], cols, batch, ptrs[1], 0, ptrs[2], ptrs[3]);
  const m = k.memory.buffer;
  const out = [rc, ...new Int8Array(m, ptrs[1], batch * nblk * 32), ...new Uint32Array(m, ptrs[2], batch * nblk), ...new Int32Array(m, ptrs[3], batch * nblk)];
  for (const p of ptrs) h.free(p);
  return out;
}

describe('ggml activations and shared matmuls', () => {
  it('SIMD activation quantization equals the scalar build bit for bit', async () => {
    const ks = await Promise.all((['scalar', 'simd', 'relaxed'] as const).map((variant) => createKernels({ variant })));
    const r = rng(7);
    for (const [cols, batch] of [[32, 1], [256, 3], [96, 2], [40, 2]]) {
      const x = Float32Array.from({ length: cols * batch }, () => {
        const u = r();
        // zeros, exact halves of codes (ties to even) and a spread of magnitudes
        return u < 0.1 ? 0 : u < 0.25 ? Math.round(r() * 20 - 10) * 0.5 : (r() * 2 - 1) * 10 ** (r() * 8 - 4);
      });
      x.fill(0, 0, Math.min(32, x.length)); // an all-zero block (scale 0)
      const want = actCodes(ks[0], x, cols, batch);
      for (const k of ks.slice(1)) expect(actCodes(k, x, cols, batch)).toEqual(want);
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const y = x.slice();
        y[cols - 1] = bad;
        for (const k of ks) expect(actCodes(k, y, cols, batch)[0]).toBe(1);
      }
    }
  });

  it('matmulGgmlShared equals one matmulGgml per matrix (prepared or not)', async () => {
    for (const variant of ['relaxed', 'simd', 'scalar'] as const) {
      const k = await createKernels({ variant });
      const r = rng(11);
      const cols = 96;
      const shapes = [37, 8, 64];
      const blocks = shapes.map((rows) => q40(r, rows, cols));
      const ws = blocks.map((b, i) => (i === 1 ? b : k.prepareGgml('q4_0', b, shapes[i], cols)));
      for (const batch of [1, 3]) {
        const x = randF32(r, batch * cols);
        const got = k.matmulGgmlShared('q4_0', ws, shapes, cols, x, batch);
        for (const [i, w] of ws.entries()) expect(Array.from(got[i])).toEqual(Array.from(k.matmulGgml('q4_0', w, shapes[i], cols, x, batch)));
      }
      expect(() => k.matmulGgmlShared('q4_0', ws, [37, 8], cols, new Float32Array(cols), 1)).toThrow(/3 matrices, 2 row counts/);
    }
  });

  it('runs two or three prepared matrices as one row range, in one thread and in a pool', async () => {
    const pool = await createKernelPool({ threads: 2 });
    try {
      for (const k of [await createKernels({ variant: 'relaxed' }), await createKernels({ variant: 'simd' }), pool]) {
        const r = rng(13);
        const cols = 64;
        // whole tiles before the last matrix (one job), and not (one job per matrix)
        for (const [type, shapes] of [['q4_0', [36, 8, 13]], ['q8_0', [64, 4]], ['q4_1', [12, 40, 8]], ['q4_0', [37, 8]], ['q8_0', [8, 0, 4]]] as const) {
          const ws = shapes.map((rows) => k.prepareGgml(type, ggmlBlocks(r, type, rows, cols), rows, cols));
          for (const batch of [1, 2]) {
            const x = randF32(r, batch * cols);
            const got = k.matmulGgmlShared(type, ws, [...shapes], cols, x, batch);
            for (const [i, w] of ws.entries()) expect(Array.from(got[i])).toEqual(Array.from(k.matmulGgml(type, w, shapes[i], cols, x, batch)));
          }
          for (const w of ws) w.free();
        }
      }
    } finally {
      await pool.close();
    }
  });
});
