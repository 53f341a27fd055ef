import { describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { NF4_STAGING_BLOCK_BYTES, NF4_TILE_LEVELS, createKernels, reference } from '../dist/index-node.js';
import { expectClose, randF32, randU8, rng } from './helpers.js';
import { TILE_SHAPES, errorCode, relaxedTileChecks } from './tile-checks.js';

// lowbit's NF4 staging blocks ({f32 absmax; u8 qs[16]}) prepared as tiles (kind 6, relaxed builds)
// run the Q4_0 lane records with each nibble looked up as a 7-bit level L (NF4_TILE_LEVELS) and the
// offset 64 taken out through the activation sums: w = absmax·(L − 64)/63. With absmax = 63·h for an
// f16 h, the same weights are Q8_0 blocks with codes L − 64 and d = h, whose integer dots are the same
// numbers; only where 1/63 is applied differs, so the reference GEMV must agree to float rounding.

/** Staging blocks with absmax = 63·h, h an f16 of moderate exponent (so 63·h is exact in f32). */
function nf4Blocks(r: () => number, rows: number, cols: number): Uint8Array {
  const n = (rows * cols) / 32;
  const b = randU8(r, n * NF4_STAGING_BLOCK_BYTES);
  const v = new DataView(b.buffer);
  for (let i = 0; i < n; i++) v.setFloat32(i * NF4_STAGING_BLOCK_BYTES, 63 * (1 + Math.floor(r() * 1024) / 1024) * 2 ** (Math.floor(r() * 8) - 6), true);
  return b;
}

function asQ8(nf: Uint8Array): Uint8Array {
  const n = nf.length / NF4_STAGING_BLOCK_BYTES;
  const q = new Uint8Array(n * 34);
  const src = new DataView(nf.buffer, nf.byteOffset, nf.byteLength);
  const view = new DataView(q.buffer);
  for (let i = 0; i < n; i++) {
    const h = src.getFloat32(i * NF4_STAGING_BLOCK_BYTES, true) / 63;
    // h = m·2^e with an 11-bit m: its binary16 bits
    const e = Math.floor(Math.log2(h));
    view.setUint16(i * 34, ((e + 15) << 10) | Math.round((h / 2 ** e - 1) * 1024), true);
    for (let j = 0; j < 32; j++) {
      const byte = nf[i * NF4_STAGING_BLOCK_BYTES + 4 + (j & 15)];
      view.setInt8(i * 34 + 2 + j, NF4_TILE_LEVELS[j < 16 ? byte & 15 : byte >> 4] - 64);
    }
  }
  return q;
}

describe('NF4 tiles (relaxed build)', async () => {
  const k = await createKernels({ variant: 'relaxed' });
  it('levels are QLoRA\'s NF4 table as round(63·v + 64)', () => {
    // QLoRA's published NF4 levels (Dettmers et al. 2023, appendix E)
    const nf4 = [-1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1];
    expect(NF4_TILE_LEVELS).toEqual(nf4.map((v) => Math.round(63 * v + 64)));
    for (let u = 0; u < 16; u++) expect(Math.abs((NF4_TILE_LEVELS[u] - 64) / 63 - nf4[u])).toBeLessThanOrEqual(1 / 126);
  });

  it.each(TILE_SHAPES)('[%i, %i] × %i tokens: the same weights as Q8_0 blocks through the reference GEMV, to float rounding', (rows, cols, batch) => {
    const r = rng(rows * 7 + cols + batch);
    const nf = nf4Blocks(r, rows, cols);
    const x = randF32(r, batch * cols, 2);
    const t = k.prepareGgml('nf4', nf, rows, cols);
    const y = k.matmulGgml('nf4', t, rows, cols, x, batch);
    const ref = reference.matmulGgml('q8_0', asQ8(nf), rows, cols, x, batch);
    expectClose(y, ref, 1e-5);
    expect(y.some((v) => v !== 0)).toBe(true);
    // one token at a time (the decode kernel) gives the batch kernels' bits
    for (let b = 0; b < batch; b++) expect(Array.from(k.matmulGgml('nf4', t, rows, cols, x.subarray(b * cols, (b + 1) * cols), 1))).toEqual(Array.from(y.subarray(b * rows, (b + 1) * rows)));
    t.free();
  });

  relaxedTileChecks(k, 'nf4', nf4Blocks);

  it('refuses a non-finite absmax and blocks of the wrong size', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const nf = nf4Blocks(rng(3), 4, 64);
      new DataView(nf.buffer).setFloat32(NF4_STAGING_BLOCK_BYTES * 3, bad, true);
      expect(errorCode(() => k.prepareGgml('nf4', nf, 4, 64))).toBe('E_NAN');
    }
    expect(errorCode(() => k.prepareGgml('nf4', new Uint8Array(10), 4, 64))).toBe('E_SHAPE');
  });
});
