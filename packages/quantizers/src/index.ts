// @lowbit/quantizers: post-training quantizers (RTN, GPTQ, ...), each a small object with the paper's verbs.
export { LowbitError, isLowbitError } from '@lowbit/kernels';
export { IntGrid, type Grid, type GridParams, type IntGridOptions } from './grid.js';
export { Gptq, gptqQuantize, KERNEL_MIN_COLS, type GptqOptions, type GptqResult, type GptqStatsOptions, type GptqTiming } from './gptq.js';
export { rtnQuantize, type RtnOptions, type RtnResult } from './rtn.js';
export { weightError, outputError, gramMatrix, type OutputErrorOptions } from './layer-error.js';
export { BlockCalibration, calibrationWindows, collectHessians, type CalibrationOptions, type CalibrationWindows } from './calibrate.js';
export { calibrationLoss, type CalibrationLossOptions } from './clip-loss.js';
export { createQuantizer, type Quantizer, type QuantizerOptions, type LayerInput, type QuantizedLayer } from './quantizer.js';
export { QUANTIZE_DEFAULTS } from './defaults.js';
export { quantizeModel, type ModelQuantizeOptions, type IntQuantizeOptions, type GgmlQuantizeOptions, type MxQuantizeOptions, type QuantizeCommonOptions, type ModelQuantizeResult, type LayerReport } from './model-quantize.js';
export { quantizeLayer, type QuantizeLayerOptions, type QuantizeLayerResult } from './layer.js';
export { layerData, type LayerData } from './layer-data.js';
export { f32Weights } from './source-weights.js';
export { GgmlGrid, ggmlBlocks, type GgmlType } from './ggml-grid.js';
export { selectiveRtn, type SelectiveRtnOptions, type SelectiveRtnResult, type SelectiveRtnLayer } from './selective-rtn.js';
export { runStudy, studyMarkdown, studySvg, DEFAULT_STUDY, type StudyConfig, type StudyRow } from './study.js';
export { MxGrid, mxTensor } from './mx-grid.js';
