export { LowbitError, isLowbitError } from '@lowbit/kernels';
export { getFormat, ELEMENT_FORMATS, type ElementCodec, type ElementFormatName } from './element.js';
export { MINIFLOATS, minifloatLimits, encodeMinifloat, decodeMinifloat, type MinifloatSpec, type MinifloatName, type EncodeOptions } from './minifloat.js';
export { intRange, encodeInt, decodeInt } from './integer.js';
export { NF4_TABLE, nearestIndex } from './nf4.js';
export { quantizeMx, dequantizeMx, e8m0ToScale, MX_FORMATS, MX_BLOCK, E8M0_NAN, type MxFormatName, type MxTensor } from './mx.js';
export {
  quantizeInt, quantizeIntClipSearch, dequantizeInt, encodeIntWith, findIntParams, scaleLayout, tensorLayout, groupOrder, contiguousInt, actOrderInt, rowBytes, writeBits, readBits,
  type Granularity, type IntQuantOptions, type PackedIntTensor, type ScaleLayout,
} from './int-quant.js';
export { serializeTensor, deserializeTensor } from './serialize.js';
export type { PackedTensor } from './tensor-types.js';
export { roundEven } from './round.js';
export { decodePackedWasm, dequantizeBcqWasm, dequantizeCodebookWasm, dequantizeIntWasm, dequantizeMxWasm, dequantizeNf4Wasm } from './wasm.js';
export { quantizeCodebook, dequantizeCodebook, quantizeNf4, dequantizeNf4, type CodebookTensor, type Nf4Tensor } from './codebook.js';
export { quantizeBcq, dequantizeBcq, type BcqTensor } from './bcq.js';
export { quantizeAnyPrecision, readAnyPrecision, type AnyPrecisionTensor, type AnyPrecisionOptions } from './any-precision.js';
export { gemvAnyPrecision, gemvAnyPrecisionWasm, gemvPacked, gemvPackedWasm, packMxCodes, uploadGemv, type GemvTensor, type MxRowsGemv, type ResidentGemv } from './gemv.js';
export { validatePacked } from './validate.js';
export { F16_MAX, F16_MIN, f16Scale, isF16, f16Bits, f16Value } from './half.js';
export {
  checkIntParams, intBitsPerWeight, intStorageBytes, intSections, encodeIntStorage, decodeIntStorage, gIdxBits, packZeros, unpackZeros, packedZeroBytes, scalesToF16, scalesFromF16,
  type IntSections,
} from './int-storage.js';
export { quantizeIntWasm, encodeIntWithWasm, quantizeMxWasm, quantizeNf4Wasm } from './encode-wasm.js';
export { ransEncode, ransDecode, normalizeFrequencies, entropyBits, crossEntropyBits, RANS_PRECISION } from './entropy-coder.js';
export { crc32 } from './checksum.js';
export { quantizeFcq, dequantizeFcq, serializeFcq, deserializeFcq, decodeFcqWasm, fcqStats, fibbinaryCodes, packFcqCodes, type FcqTensor, type FcqStats, type FcqLevels } from './fcq.js';
export { quantizeFlexor, dequantizeFlexor, dequantizeFlexorWasm, serializeFlexor, deserializeFlexor, flexorNetwork, flexorSearch, flexorStoredEntropy, flexorSlices, FLEXOR_EXACT_MAX_IN, type FlexorTensor } from './flexor.js';
export { quantizeDpred, dequantizeDpred, serializeDpred, deserializeDpred, dpredStreamBits, dpredGroupBits, dpredEntropyBits, decodeDpredWasm, twosBits, DPRED_HEADER_BITS, type DpredTensor } from './dpred.js';
export { encodeSeqencBits, decodeSeqencBits, quantizeSeqenc, dequantizeSeqenc, serializeSeqenc, deserializeSeqenc, seqencNetwork, seqencSteps, seqencPlaneBits, seqencStats, decodeSeqencWasm, type SeqencStats, SEQENC_MAX_STATE_BITS, type SeqencPlane, type SeqencTensor, type SeqencOptions } from './seqenc.js';
