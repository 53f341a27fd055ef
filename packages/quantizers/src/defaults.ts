// One set of defaults for every quantizing entry point (a leaf module: layer.ts and model-quantize.ts both read it).
/**
 * The defaults of `quantizeModel`, `quantizeLayer`, `lowbit quantize` and `lowbit quantize-layer`, in one place so the
 * library and the command line quantize the same way unless told otherwise. INT-4, groups of 32
 * columns with symmetric (zero-point-free) scales: the grouping of the ggml block types and of the
 * study's g32 rows; GPTQ with 1% dampening (the paper's); 32 calibration windows of 256 tokens
 * (8192 tokens, the study's setting). Measured on the embedded model (GPTQ int4 g32 sym): 32 windows
 * took 25.7 s and gave perplexity 6.0965 ± 0.1678, all 387 windows of the calibration excerpt 214.6 s
 * and 6.0239 ± 0.1653 (one loaded 2-core machine, the same run): a difference inside one standard error.
 */
export const QUANTIZE_DEFAULTS = {
  method: 'gptq',
  format: 'int',
  bits: 4,
  group: 32,
  symmetric: true,
  damp: 0.01,
  ctx: 256,
  maxWindows: 32,
  lossWindows: 4,
} as const;
