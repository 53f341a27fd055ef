// llama.cpp's legacy block types (ggml-common.h), the one table of their geometry for every lowbit
// package: 32 weights per block, {f16 d; i8 qs[32]} = 34 bytes (Q8_0), {f16 d; u8 qs[16]} = 18 (Q4_0),
// {f16 d; f16 m; u8 qs[16]} = 20 (Q4_1). The AssemblyScript kernels hold their own copy (assembly/),
// checked against this one by the kernels' tests through every block kernel.

export type GgmlBlockType = 'q8_0' | 'q4_0' | 'q4_1';

/** Weights per block. */
export const GGML_BLOCK_SIZE = 32;

/** Bytes per block. */
export const GGML_BLOCK_BYTES: Readonly<Record<GgmlBlockType, number>> = { q8_0: 34, q4_0: 18, q4_1: 20 };

/**
 * llama.cpp's K-quant super-blocks (ggml-common.h): 256 weights each. Q2_K {u8 scales[16]; u8 qs[64];
 * f16 d, dmin} = 84; Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d} = 110; Q4_K {f16 d, dmin;
 * u8 scales[12]; u8 qs[128]} = 144; Q5_K (Q4_K + u8 qh[32]) = 176; Q6_K {u8 ql[128]; u8 qh[64];
 * i8 scales[16]; f16 d} = 210; Q8_K {f32 d; i8 qs[256]; i16 bsums[16]} = 292.
 */
export type GgmlKBlockType = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K';

/** Weights per K-quant super-block (QK_K). */
export const GGML_K_BLOCK_SIZE = 256;

/** Bytes per K-quant super-block. */
export const GGML_K_BLOCK_BYTES: Readonly<Record<GgmlKBlockType, number>> = { Q2_K: 84, Q3_K: 110, Q4_K: 144, Q5_K: 176, Q6_K: 210, Q8_K: 292 };

/** The 6-bit scale and min of Q4_K/Q5_K sub-block j: the 12 scale bytes at `o` hold 8 pairs (ggml's get_scale_min_k4). */
export function kScaleMinQ4K(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
  return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
}

/** Q3_K sub-block j's 6-bit scale (stored +32) from the 12 scale bytes at `o`: low 4 bits in bytes 0..7, high 2 bits in bytes 8..11. */
export function kScaleQ3K(j: number, s: Uint8Array, o: number): number {
  const lo = j < 8 ? s[o + j] & 0xf : s[o + j - 8] >> 4;
  return (lo | (((s[o + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** ggml's MXFP4 block (type 39): {u8 e (E8M0); u8 qs[16]} for 32 weights = 17 bytes. */
export const GGML_MXFP4_BLOCK_BYTES = 17;

/**
 * ggml's other 32-weight block types lowbit reads (ggml-common.h): block_q5_0 {f16 d; u8 qh[4]; u8 qs[16]}
 * = 22, block_q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]} = 24, block_iq4_nl {f16 d; u8 qs[16]} = 18.
 */
export const GGML_Q5_BLOCK_BYTES = Object.freeze({ q5_0: 22, q5_1: 24, iq4_nl: 18 } as const);

/**
 * lowbit's NF4 staging block for the kernels' NF4 tiles (no ggml type): {f32 absmax; u8 qs[16]} for
 * 32 weights = 20 bytes, w = absmax·nf4(u) with QLoRA's 16 levels, nibbles as in ggml's 4-bit blocks.
 */
export const NF4_STAGING_BLOCK_BYTES = 20;

/**
 * The integers the NF4 tiles multiply for codes 0..15: round(63·v + 64) of QLoRA's levels v, so a
 * weight is taken as absmax·(level − 64)/63. The kernels hold the same table (scripts/gen-ggml-gemm.mjs);
 * the tests check the two agree through the matmul.
 */
export const NF4_TILE_LEVELS: readonly number[] = Object.freeze([1, 20, 31, 39, 46, 52, 58, 64, 69, 74, 80, 85, 92, 99, 110, 127]);
