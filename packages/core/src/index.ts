export { LowbitError, isLowbitError, type LowbitErrorCode } from './errors.js';
export type { Matrix, Tensor, TypedArray } from './tensor.js';
