export { LowbitError, isLowbitError, type LowbitErrorCode } from './errors.js';
export { Kernels, WasmTensor, type KernelVariant, type ThreadedVariant, type KernelExports, type RowKernel } from './kernels.js';
export { WasmHeap } from './heap.js';
export { selectKernels, makeLoader, instantiate, relaxedAgrees, type LoadOptions, type ModuleSource, type VariantRequest } from './select.js';
export * as reference from './reference.js';
export { GGML_BLOCK_BYTES, GGML_BLOCK_SIZE, type GgmlBlockType } from './ggml-blocks.js';
export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, roundToF16 } from './half.js';
export { gemvLutGroups, gemvLutGroupsReference, dequantLutGroups, dequantBcq, gemvBitplanes, gemvBitplanesReference, type GemvLutGroupsArgs, type GemvBitplanesArgs } from './formats-gemv.js';
export { intGroupParams, encodeIntGroups, quantizeIntGroups, quantizeMxBlocks, quantizeAbsmaxLut, type MxEncodeFormat } from './formats-encode.js';
