// @lowbit/runtime, universal entry (browsers, workers, edge runtimes): load models from bytes or a
// ByteSource, tokenize, run Llama-family inference on packed weights, measure perplexity. It imports
// no Node built-in; under Node `@lowbit/runtime` resolves to index-node.ts, which adds the file-path
// functions (and makes path arguments work: file-system.ts).
export { LowbitError, isLowbitError, type LowbitErrorCode } from '@lowbit/kernels';
export { type ByteSource, bytesSource } from './byte-source.js';
export { GGML_TYPE_NAMES, KQUANT_FALLBACK, TENSOR_TYPES, LOWBIT_TYPES, isKQuantType, type KQuantFallback, type KQuantTensorType, type Q5TensorType, type TensorType, type GgmlTensorType, type LowbitTensorType, type LowbitIntParams, type LowbitTypeInfo, bitsPerWeight, isLowbitType, tensorBytes, tensorTypeId } from './ggml-types.js';
export { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from './half.js';
export { quantizeRowQ8_0, quantizeRowQ4_0, quantizeRowQ4_1, quantizeRowQ5_0, quantizeRowQ5_1, quantizeRowIq4Nl, IQ4_NL_LEVELS, q5Codes, storeQ5Codes, dequantize, toF32, fromF32 } from './ggml-quants.js';
export { quantizeRowK, dequantizeK, quantizeRowMxfp4, dequantizeMxfp4, packMxfp4, unpackMxfp4, type KQuantType, type KQuantWritable } from './ggml-kquants.js';
export { readGguf, readTensorBytes, readTensorInto, metaValue, lowbitParamsKey, GgufValueType, type GgufFile, type GgufTensorInfo, type GgufValue, type GgufScalar } from './gguf-reader.js';
export { writeGguf, encodeGgufHeader, gguf, type GgufTensorToWrite } from './gguf-writer.js';
export type { ByteSink } from './atomic-file.js';
export { parseNpy, formatNpy, npyMatrix, type NpyArray, type NpyDtype, type NpyData } from './npy.js';
export { SpmTokenizer, TokenType, type Tokenizer } from './tokenizer-spm.js';
export { Linear, linearBytes, type LinearWeight, type LinearFormat, type IntForm } from './linear.js';
export { DecoderModel, LlamaModel, loadModel, loadLinearWeight, llamaConfig, spmTokenizerFromGguf, tokenizerFromGguf, LAYER_LINEARS, SUPPORTED_ARCHITECTURES, type LlamaConfig, type LlamaWeights, type LayerWeights } from './model.js';
export { DEFAULT_MAX_INSTANCE_BYTES, planShards, type ShardItem } from './shards.js';
export { Session, type SessionOptions, type LinearInputHook, type KvCacheHook, type LayerCache } from './forward.js';
export { perplexity, tokenizeDocuments, negLogLikelihood, type PerplexityOptions, type PerplexityResult } from './perplexity.js';
export { generate, sample, argmax, rng, type GenerateOptions, type GenerateResult } from './generate.js';
export { modelMetadata, quantizeGguf, saveModel, storageType, LOWBIT_FORMAT_VERSION, type SaveModelOptions } from './gguf-convert.js';
export { encodeLowbit, decodeLowbit, lowbitTypeOf, dequantizeMxRows, mxRowsAsFlat, type MxRowsTensor, type StoredLayer } from './lowbit-tensors.js';
export { createRuntimeApi, exposeRuntime, runtimeModel, wrapRuntime, nodeEndpoint, callback, transferBytes, type RuntimeApi, type WorkerAttentionOptions, type WorkerGenerateOptions, type WorkerPerplexityOptions, type WithKvStats } from './worker-api.js';
export { readSafetensors, readSafetensorsF32, readSafetensorsBytes, writeSafetensors, type SafetensorsDtype, type SafetensorsFile, type SafetensorsTensorInfo, type SafetensorsTensorToWrite } from './safetensors.js';
export { ByteLevelBpeTokenizer, GPT2_PATTERN, byteLevelTokenizerJson, toJsRegex } from './tokenizer-bpe.js';
export { isSpmTokenizerJson, spmTokenizerFromJson, spmTokenizerJson, type SpmTokenizerJson } from './tokenizer-spm-json.js';
export { loadHfModel, exportHfModel, hfToGgufName, ggufToHfName, permuteRope, HF_LLAMA_TYPES, type HfLoadOptions } from './hf-model.js';
export { linearWeightFromPacked, lowbitLinearWeight, type FromPackedOptions } from './packed-linear.js';
export { saveModelSafetensors, loadQuantizedSafetensors, type GptqQuantizeConfig, type SafetensorsSaveOptions } from './quantized-safetensors.js';
export { trainForward, trainParams, checkTrainParams, f64Math, wasmMath, TrainArena, ropeTables, type TrainMath, type TrainParams, type TrainActivations, type Vec } from './train-forward.js';
export { lossAndGrad, lossAndGradF64, trainBackward, type LossAndGrad } from './backward.js';
export { AdamW, finetune, applyTrainParams, type AdamWOptions, type FinetuneOptions, type FinetuneResult, type TrainHooks } from './train.js';
export { QDEC_RESIDUAL_BITS, attachQdec, baseWeightHash, buildQdecStore, channelSaliency, dequantizeLinear, encodeColumns, qdecBytesPerToken, qdecColumnBytes, qdecStoreBytes, readQdecStore, selectChannels, writeQdecStore, type QdecBuildOptions, type QdecHandle, type QdecLayer, type QdecResidualBits, type QdecStats, type QdecStore } from './qdec.js';
export { CompressedKvCache, KvRows, KV_BITS, checkKvBits, type KvBits, type KvCacheStats, type KvCompressionOptions } from './kv-cache.js';
export { RetentionRule, checkMiniCache, miniCacheDistances, miniCachePairs, slerp, type MiniCacheOptions, type PairDistances } from './minicache.js';
export { attentionDecodeSeconds, calibrateSpans, checkSpanOptions, spanSkippedFraction, type SpanCalibration, type SpanCalibrationOptions } from './attention-span.js';
export { checkSoftMask, learnSpans, maskedAttentionForward, maskedAttentionSpanGrad, softMask, softMaskLossAndGrad, softMaskMath, spanOf, type LearnSpansOptions, type LearnedSpans, type SoftMaskLoss } from './attention-span-learn.js';
export type { LowbitAnyPrecisionParams, LowbitParams } from './ggml-types.js';
export { LSTM_LIMITS, f64Matmul, lstmWasmMatmul, type LstmMatmul, checkLstmConfig, checkLstmParams, initLstmParams, lstmGateMatrices, lstmLossAndGrad, lstmParamShapes, lstmPerplexity, lstmQuantizedNames, lstmZeroState, type LstmConfig, type LstmLossAndGrad, type LstmState, type LstmStepOptions, type LstmVec } from './lstm.js';
export { loadLstm, saveLstm, trainLstm, type LstmTrainOptions, type LstmTrainResult } from './lstm-train.js';
export { PackedLstm } from './lstm-packed.js';
export { fallbackWeight, isKQuantFallback, kquantLayerType, quantizeModelK, useMoreBits, type KQuantizedLayer, type KQuantLayerType, type KQuantScheme } from './kquant-mix.js';
export { type BucketedEmbedding, bucketedBytes, bucketedEmbedding, bucketedRow, embeddingFromBuckets } from './bucketed-embedding.js';
export { keepExactAnyPrecision } from './any-precision-linear.js';
