import { describe, expect, it } from 'vitest';
import { createKernels, loadKernels, reference, relaxedAgrees } from '../src/index-node.js';
import { expectClose, randF32, randU8, rng } from './helpers.js';

describe('relaxed SIMD selection', () => {
  it('the relaxed build is right on the very first call of a fresh instance', async () => {
    const k = await createKernels({ variant: 'relaxed' });
    const r = rng(3);
    const rows = 8;
    const cols = 256;
    const packed = randU8(r, rows * cols / 2);
    const scales = Float32Array.from({ length: rows * 2 }, () => r() * 0.1 + 0.01);
    const x = randF32(r, cols, 2);
    // First call of this instance: the baseline-tier failure would show here.
    expectClose(k.gemvQ4(packed, scales, null, rows, cols, 128, x), reference.gemvQ4(packed, scales, null, rows, cols, 128, x), 1e-5, 1e-6);
  });

  it('auto picks relaxed only when it agrees with the plain build before and after warm-up', async () => {
    const auto = await loadKernels();
    const relaxed = await createKernels({ variant: 'relaxed' });
    const simd = await createKernels({ variant: 'simd' });
    const agrees = relaxedAgrees(relaxed, simd);
    expect(auto.variant).toBe(agrees ? 'relaxed' : 'simd');
    // On this project's Node (20 and later) relaxed SIMD is available and, compiled without the
    // baseline tier, correct: auto must pick it.
    expect(agrees).toBe(true);
  });
});
