// @lowbit/sim: accelerator and system models driven by precision profiles of real layers.
export { isLowbitError, LowbitError } from '@lowbit/kernels';
export { type A3Options, type A3Result, type A3StudyRow, a3Attention, a3Study } from './a3.js';
export {ACCELERATORS, 
  type AccelName, type AccelOptions, BASELINE_MACS,baselineCycles, 
  checkAccel, checkBitsPerCycle, convSteps, fcMultiplexCycles, LANES, type LayerResult, layerCycles, layerOffchipBytes, type ProfileAccel, ROWS, simulateLayer,
} from './cycles.js';
export { cacheMisses, type GinexRow, type Graph, ginexStudy, powerLawGraph, type SamplingOptions, samplingTrace } from './ginex.js';
export { compress as gradiveqCompress, decompress as gradiveqDecompress, type GradiveqResult, gradiveqStudy, learnBasis, quantizationResiduals, ringAllReduce, ringTime } from './gradiveq.js';
export {type ConvGeometry,
  type ConvLayer, checkPrecision, convGeometry, type FcLayer, type GemmLayer, type Layer, type LayerPrecision, layerMacs, layerSizes,outputSize, 
  validateLayer, validateNetwork, 
} from './layers.js';
export { type ModelWorkload, measuredPrecision, modelWorkload, quantizeActivations, type WeightCodes, weightCodes } from './model-workload.js';
export { findNetwork, NETWORKS, type Network, type NetworkProfile, networkNames, type SourceTag } from './networks.js';
export { convUnits, parseProfileJson, parseProfileList, resolvePrecisions, unitCount } from './profile.js';
export { seededRandom } from './random.js';
export { resultCsv, resultTable, speedupSvg } from './report.js';
export { ENERGY_NOTE, type SimResult, simulateProfile, totals } from './simulate.js';
export { type ModelSimOptions, simulateWorkload } from './simulate-model.js';
export { DEFAULT_TACTICAL, scheduleTile, searchOffsets, type TacticalOptions, type TileSchedule } from './tactical.js';
export {
  checkTensors, type DpredOptions, 
  type GemmTensors, GROUP_HEADER_BITS,simulateDpred, simulateLaconic, simulateTactical,type TacticalSimOptions, WINDOWS, 
} from './tensor-models.js';
export { NAF_TERMS, nafTerms, popcountTerms, signMagnitudeBits } from './terms.js';
