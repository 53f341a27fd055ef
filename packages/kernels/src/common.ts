export { LowbitError, isLowbitError, type LowbitErrorCode } from './errors.js';
export { Kernels, WasmTensor, type KernelVariant, type ThreadedVariant, type KernelExports, type RowKernel } from './kernels.js';
export { WasmHeap } from './heap.js';
export { selectKernels, makeLoader, instantiate, relaxedAgrees, type LoadOptions, type ModuleSource, type VariantRequest } from './select.js';
export * as reference from './reference.js';
export type { GgmlBlockType } from './reference.js';
export { gemvLutGroups, gemvLutGroupsReference, dequantLutGroups, dequantBcq, gemvBitplanes, gemvBitplanesReference, type GemvLutGroupsArgs, type GemvBitplanesArgs } from './formats-gemv.js';
export { intGroupParams, encodeIntGroups, quantizeIntGroups, quantizeMxBlocks, quantizeAbsmaxLut, type MxEncodeFormat } from './formats-encode.js';
