import { describe, expect, it } from 'vitest';
// The pool starts worker_threads from its compiled file, so this test runs the built package (dist/).
import { createKernels } from '../dist/index-node.js';
import { randU8, rng } from './helpers.js';
import { equalsQ8Check, errorCode, relaxedTileChecks } from './tile-checks.js';

// ggml's MXFP4 blocks ({u8 e; u8 qs[16]}, OCP MXFP4: 2^(e − 127)·fp4) prepared as tiles (kind 5,
// relaxed builds) run the Q4_0 lane GEMM with each nibble looked up as 2·fp4 + 16. The same weights as
// Q8_0 blocks hold 2·fp4 as int8 codes with d = 2^(e − 128): the integer dots are the same numbers and
// the scales the same products, so the two must agree bit for bit, one token or many.
const FP4 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];

function mxfp4Blocks(r: () => number, rows: number, cols: number): Uint8Array {
  const b = randU8(r, (rows * cols * 17) / 32);
  // scales around 2^0 with a few far ones: e = 127 ± 8, and the subnormal halves 0 and 1 once each
  for (let o = 0; o < b.length; o += 17) b[o] = 119 + Math.floor(r() * 17);
  b[0] = 0;
  if (b.length > 17) b[17] = 1;
  return b;
}

/** The same weights as Q8_0 blocks: 2·fp4 codes, d = 2^(e − 128) as f16 (null where it is no f16). */
function asQ8(mx: Uint8Array): Uint8Array | null {
  const n = mx.length / 17;
  const q = new Uint8Array(n * 34);
  const view = new DataView(q.buffer);
  for (let i = 0; i < n; i++) {
    const x = mx[i * 17] - 128;
    if (x < -24 || x > 15) return null;
    view.setUint16(i * 34, x >= -14 ? (x + 15) << 10 : 1 << (x + 24), true);
    for (let j = 0; j < 32; j++) {
      const byte = mx[i * 17 + 1 + (j & 15)];
      const u = j < 16 ? byte & 15 : byte >> 4;
      view.setInt8(i * 34 + 2 + j, (u & 8 ? -2 : 2) * FP4[u & 7]);
    }
  }
  return q;
}

describe('MXFP4 tiles (relaxed build)', async () => {
  const k = await createKernels({ variant: 'relaxed' });
  // every scale an f16 for the Q8_0 twin: blocks 0 and 1 lose mxfp4Blocks' subnormal halves
  const withF16Scales = (r: () => number, rows: number, cols: number) => {
    const mx = mxfp4Blocks(r, rows, cols);
    mx[0] = 120;
    if (mx.length > 17) mx[17] = 121;
    return mx;
  };
  equalsQ8Check(k, 'mxfp4', withF16Scales, (mx) => asQ8(mx) as Uint8Array, (rows, cols, batch) => rows * 7 + cols + batch);

  // mxfp4Blocks holds the subnormal scale halves (e = 0, 1): unprepare gives them back too
  relaxedTileChecks(k, 'mxfp4', mxfp4Blocks);

  it('refuses a NaN scale (0xFF)', () => {
    const mx = mxfp4Blocks(rng(3), 4, 64);
    mx[17] = 255;
    expect(errorCode(() => k.prepareGgml('mxfp4', mx, 4, 64))).toBe('E_NAN');
  });
});
