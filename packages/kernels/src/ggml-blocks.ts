// llama.cpp's legacy block types (ggml-common.h), the one table of their geometry for every lowbit
// package: 32 weights per block, {f16 d; i8 qs[32]} = 34 bytes (Q8_0), {f16 d; u8 qs[16]} = 18 (Q4_0),
// {f16 d; f16 m; u8 qs[16]} = 20 (Q4_1). The AssemblyScript kernels hold their own copy (assembly/),
// checked against this one by the kernels' tests through every block kernel.

export type GgmlBlockType = 'q8_0' | 'q4_0' | 'q4_1';

/** Weights per block. */
export const GGML_BLOCK_SIZE = 32;

/** Bytes per block. */
export const GGML_BLOCK_BYTES: Readonly<Record<GgmlBlockType, number>> = { q8_0: 34, q4_0: 18, q4_1: 20 };
