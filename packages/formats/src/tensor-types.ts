// The packed tensor types of this package, in one leaf module: the encoders, decoders, GEMVs,
// validation and serialization all import them from here, so no two of those modules import each
// other for a type (formats had import cycles through validate.ts).

/**
 * INT-k quantization of a [rows, cols] matrix (rows = output channels, cols = input channels), as
 * RTN and GPTQ use it: value = scale·(u − zero), u ∈ [0, 2^k − 1] unsigned.
 *  - symmetric: zero = 2^(k−1), scale = clip·amax / ((2^k − 1)/2) (GPTQ's convention);
 *  - asymmetric: scale = clip·(max − min)/(2^k − 1), zero = round(−clip·min / scale) (an integer).
 * Granularity picks which elements share a scale: the whole tensor, an output channel (row), an
 * input channel (column, AdaDim's per-IC), or groups of `group` consecutive elements along cols
 * (each row) or along rows (each column). A last partial group is allowed.
 */
export type Granularity = 'tensor' | 'per-oc' | 'per-ic' | 'group-cols' | 'group-rows';

/** Self-describing packed INT-k tensor: everything needed to decode it. */
export interface PackedIntTensor {
  kind: 'int';
  bits: number;
  symmetric: boolean;
  shape: [number, number];
  granularity: Granularity;
  group: number;
  /**
   * Group scales. Every one is an IEEE binary16 value (`isF16`): storage (LBPT, the LB_INT* GGUF
   * types, GPTQ checkpoints) keeps them as fp16, and memory holds them widened to f32 (exactly) for
   * the kernels, so what runs is what is stored.
   */
  scales: Float32Array;
  /**
   * Per-scale zero points (asymmetric): integers in [0, 2^bits − 1], stored packed at `bits` bits
   * each; null means the symmetric zero 2^(bits−1), which is not stored.
   */
  zeros: Float32Array | null;
  /** Codes packed per row (int-k convention, each row starting on a byte boundary). */
  codes: Uint8Array;
  /**
   * Column → group map [cols] for 'group-cols' when groups are not runs of consecutive columns
   * (GPTQ act-order without static groups: the q-th column quantized belongs to group ⌊q/group⌋,
   * the `g_idx` of GPTQ checkpoints). Element (r, c) uses scale r·⌈cols/group⌉ + gIdx[c]. Group g
   * holds exactly min(group, cols − g·group) columns, so sorting columns by group (`groupOrder`)
   * gives ordinary contiguous groups. Absent or null: group ⌊c/group⌋.
   */
  gIdx?: Int32Array | null;
}

/** Layout of the scale index for element (r, c). */
export interface ScaleLayout {
  count: number;
  index(r: number, c: number): number;
}

export type MxFormatName = 'mxfp8_e4m3' | 'mxfp8_e5m2' | 'mxfp6_e3m2' | 'mxfp6_e2m3' | 'mxfp4' | 'mxint8';

export interface MxTensor {
  format: MxFormatName;
  /** Number of elements (the last block may be partial). */
  length: number;
  /** One E8M0 code per block of 32; 0xFF = NaN. */
  scales: Uint8Array;
  /** One element code per value (low `bits` bits used). */
  codes: Uint8Array;
}

/**
 * Non-uniform codebooks (nuQmm, SqueezeLLM-style): each output channel (row) has its own table of
 * 2^bits values, fitted by exact 1-D k-means (optionally weighted, e.g. by a Hessian diagonal), and
 * k-bit indices into it. Bits per weight = bits + 2^bits·32 / cols.
 */
export interface CodebookTensor {
  kind: 'codebook';
  bits: number;
  shape: [number, number];
  /** [rows, 2^bits] ascending per row */
  lut: Float32Array;
  /** k-bit indices, packed per row (int-k bit order) */
  codes: Uint8Array;
}

/**
 * NF4 with one absmax scale per group of `group` along cols (QLoRA uses 64): value = scale·NF4[code].
 */
export interface Nf4Tensor {
  kind: 'nf4';
  shape: [number, number];
  group: number;
  scales: Float32Array;
  codes: Uint8Array;
}

/**
 * Binary-coding quantization (Xu et al. 2018; used by BiQGEMM, nuQmm, AlphaTuning):
 * each group of `group` weights along cols is w ≈ Σ_{i<k} α_i·b_i with b_i ∈ {−1, +1}.
 * Fitting: greedy residual init (α_i = mean|r|, b_i = sign r), then alternating refinement: α by
 * least squares given the signs, the signs by exhaustive search over the 2^k sums given α.
 * Storage: k bit-planes (bit 1 = +1) and k scales per group.
 */
export interface BcqTensor {
  kind: 'bcq';
  bits: number;
  shape: [number, number];
  group: number;
  /** [rows, ngroups, bits] */
  alphas: Float32Array;
  /** [bits][rows, ceil(cols/8)] sign bits, plane-major */
  planes: Uint8Array;
}

/**
 * Any-precision nested codes (Park et al., "Any-Precision LLM", 2024): one stored model from which
 * every bit-width from `seedBits` to `maxBits` is read without re-quantizing. Per row, a seed
 * codebook of 2^seedBits centroids comes from exact 1-D k-means; each upscaling step splits every
 * cluster in two by 2-means, so the m-bit code of a weight is the top m bits of its maxBits code.
 * Storage: maxBits bit-planes (plane 0 = most significant bit) and, per row, one table per width.
 * Reading m bits touches only planes 0..m−1 — the layout that lets a kernel serve any width.
 */
export interface AnyPrecisionTensor {
  kind: 'any-precision';
  seedBits: number;
  maxBits: number;
  shape: [number, number];
  /** luts[m − seedBits]: [rows, 2^m] centroids of the m-bit model */
  luts: Float32Array[];
  /** [maxBits][rows, ceil(cols/8)] */
  planes: Uint8Array;
}

/** Every packed tensor of this package; `kind` (or `format` for MX) says which. */
export type PackedTensor = PackedIntTensor | CodebookTensor | Nf4Tensor | BcqTensor | AnyPrecisionTensor | (MxTensor & { kind?: 'mx' });
