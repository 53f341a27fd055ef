import { GGML_K_BLOCK_BYTES, type KQuantWeightType } from '@lowbit/kernels';
// Deterministic random data for property tests (a test that fails must fail the same way twice).
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    s ^= s >>> 13;
    return (s >>> 0) / 2 ** 32;
  };
}

export function randF32(r: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

export function randU8(r: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

/** |a − b| <= rtol·max|b| + atol for every element; reports the worst index on failure. */
export function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol = 0): void {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let mag = 0;
  for (let i = 0; i < b.length; i++) if (Number.isFinite(b[i])) mag = Math.max(mag, Math.abs(b[i]));
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(b[i])) {
      if (!Number.isNaN(a[i])) throw new Error(`[${i}] expected NaN, got ${a[i]}`);
      continue;
    }
    if (!Number.isFinite(b[i])) {
      if (a[i] !== b[i]) throw new Error(`[${i}] expected ${b[i]}, got ${a[i]}`);
      continue;
    }
    const err = Math.abs(a[i] - b[i]);
    if (!(err <= rtol * mag + atol)) throw new Error(`[${i}] ${a[i]} vs ${b[i]}: error ${err} > ${rtol * mag + atol}`);
  }
}

/** Random f16 bits of a finite value in roughly [2^-8, 2^2): ggml block scales of a sane model. */
export function randF16Scale(r: () => number): number {
  const e = 7 + Math.floor(r() * 10); // exponent field 7..16
  return (r() < 0.5 ? 0x8000 : 0) | (e << 10) | Math.floor(r() * 1024);
}

// byte offsets of the f16 scales (d, and dmin where the type has one) in each block
const F16_AT: Record<KQuantWeightType, number[]> = { Q2_K: [80, 82], Q3_K: [108], Q4_K: [0, 2], Q5_K: [0, 2], Q6_K: [208] };

/** K-quant super-blocks of random bytes (every code, scale, min and high bit reached) with finite f16 scales. */
export function randomKBlocks(type: KQuantWeightType, rows: number, cols: number, seed: number): Uint8Array {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  const bb = GGML_K_BLOCK_BYTES[type];
  const out = Uint8Array.from({ length: (rows * cols * bb) / 256 }, rnd);
  // finite f16 scales of either sign in [2^-8, 2^-1): exponent field 7..14
  for (let o = 0; o < out.length; o += bb) for (const at of F16_AT[type]) out[o + at + 1] = (out[o + at + 1] & 0x83) | ((7 + (rnd() & 7)) << 2);
  return out;
}
