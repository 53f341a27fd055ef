import { describe } from 'vitest';
// The kernels' tile types run the built package (dist/), as tile-checks.ts does.
import { createKernels } from '../dist/index-node.js';
import { randU8 } from './helpers.js';
import { equalsQ8Check, relaxedTileChecks } from './tile-checks.js';

// ggml's Q5_0 blocks ({f16 d; u8 qh[4]; u8 qs[16]}: w = d·(u − 16), bit 4 of u[j] in bit j of qh)
// prepared as tiles (kind 7, relaxed builds): Q4_0's lane records plus 16 bytes of high bits. The same
// weights as Q8_0 blocks hold u − 16 as int8 codes with the same d: the integer dots are the same
// numbers and the scales the same products, so the two must agree bit for bit, one token or many.

function q5Blocks(r: () => number, rows: number, cols: number): Uint8Array {
  const b = randU8(r, (rows * cols * 22) / 32);
  // f16 scales around 2^-4 (exponent 11 ± 3), positive and negative
  for (let o = 0; o < b.length; o += 22) {
    b[o] = Math.floor(r() * 256);
    b[o + 1] = ((8 + Math.floor(r() * 6)) << 2) | (r() < 0.5 ? 0x80 : 0);
  }
  return b;
}

function asQ8(q5: Uint8Array): Uint8Array {
  const n = q5.length / 22;
  const q = new Uint8Array(n * 34);
  for (let i = 0; i < n; i++) {
    q[i * 34] = q5[i * 22];
    q[i * 34 + 1] = q5[i * 22 + 1];
    const qh = (q5[i * 22 + 2] | (q5[i * 22 + 3] << 8) | (q5[i * 22 + 4] << 16) | (q5[i * 22 + 5] << 24)) >>> 0;
    for (let j = 0; j < 32; j++) {
      const byte = q5[i * 22 + 6 + (j & 15)];
      const u = (j < 16 ? byte & 15 : byte >> 4) | (((qh >>> j) & 1) << 4);
      q[i * 34 + 2 + j] = (u - 16) & 0xff;
    }
  }
  return q;
}

describe('Q5_0 tiles (relaxed build)', async () => {
  const k = await createKernels({ variant: 'relaxed' });
  equalsQ8Check(k, 'q5_0', q5Blocks, asQ8, (rows, cols, batch) => rows * 11 + cols + batch);

  relaxedTileChecks(k, 'q5_0', q5Blocks);
});
