// @lowbit/runtime: load GGUF models, tokenize, run Llama-family inference on packed weights, measure perplexity.
export { LowbitError, isLowbitError, type LowbitErrorCode } from '@lowbit/kernels';
export { type ByteSource, bytesSource, fileSource } from './byte-source.js';
export { GGML_TYPE_NAMES, TENSOR_TYPES, type TensorType, bitsPerWeight, tensorBytes } from './ggml-types.js';
export { f16ToF32, f32ToF16, bf16ToF32, f32ToBf16 } from './half.js';
export { quantizeRowQ8_0, quantizeRowQ4_0, quantizeRowQ4_1, dequantize, toF32, fromF32 } from './ggml-quants.js';
export { readGguf, readTensorBytes, metaValue, GgufValueType, type GgufFile, type GgufTensorInfo, type GgufValue, type GgufScalar } from './gguf-reader.js';
export { writeGguf, encodeGgufHeader, gguf, type GgufTensorToWrite } from './gguf-writer.js';
export { SpmTokenizer, TokenType, type Tokenizer } from './tokenizer-spm.js';
export { Linear, linearBytes, type LinearWeight, type LinearFormat } from './linear.js';
export { LlamaModel, loadModel, loadLinearWeight, llamaConfig, spmTokenizerFromGguf, LAYER_LINEARS, SUPPORTED_ARCHITECTURES, type LlamaConfig, type LlamaWeights, type LayerWeights } from './model.js';
export { Session, type SessionOptions, type LinearInputHook } from './forward.js';
export { perplexity, tokenizeDocuments, negLogLikelihood, type PerplexityOptions, type PerplexityResult } from './perplexity.js';
export { generate, sample, argmax, rng, type GenerateOptions, type GenerateResult } from './generate.js';
export { quantizeGguf, saveModel, storageType } from './gguf-convert.js';
export { createRuntimeApi, exposeRuntime, wrapRuntime, nodeEndpoint, callback, type RuntimeApi } from './worker-api.js';
export { readSafetensors, readSafetensorsF32, writeSafetensors, type SafetensorsDtype, type SafetensorsFile, type SafetensorsTensorInfo, type SafetensorsTensorToWrite } from './safetensors.js';
export { ByteLevelBpeTokenizer, GPT2_PATTERN, toJsRegex } from './tokenizer-bpe.js';
export { loadHfModel, exportHfModel, hfToGgufName, ggufToHfName, permuteRope, HF_LLAMA_TYPES, type HfLoadOptions } from './hf-model.js';
