// @lowbit/sim: accelerator and system models driven by precision profiles of real layers.
export { LowbitError, isLowbitError } from '@lowbit/core';
export {
  type ConvLayer, type FcLayer, type GemmLayer, type Layer, type LayerPrecision, type ConvGeometry,
  validateLayer, validateNetwork, checkPrecision, convGeometry, outputSize, layerMacs, layerSizes,
} from './layers.js';
export { type Network, type NetworkProfile, type SourceTag, NETWORKS, networkNames, findNetwork } from './networks.js';
export { resolvePrecisions, parseProfileList, parseProfileJson, convUnits, unitCount } from './profile.js';
export {
  type AccelName, type ProfileAccel, type AccelOptions, type LayerResult, type MachineScale, ACCELERATORS, MACHINES, ROWS, LANES, BASELINE_MACS,
  checkAccel, checkBitsPerCycle, checkMachine, baselineRows, baselineCycles, convSteps, fcMultiplexCycles, layerCycles, layerOffchipBytes, layerResult, simulateLayer,
} from './cycles.js';
export { type SimResult, type ResultTotals, ENERGY_NOTE, simulateProfile, totals } from './simulate.js';
export { signMagnitudeBits, detectedBits, isSignedTensor, nafTerms, popcountTerms, NAF_TERMS } from './terms.js';
export { type TacticalOptions, type TileSchedule, DEFAULT_TACTICAL, searchOffsets, scheduleTile } from './tactical.js';
export {
  type GemmTensors, type DpredOptions, type TacticalSimOptions, WINDOWS, GROUP_HEADER_BITS,
  checkTensors, simulateDpred, simulateLaconic, simulateTactical,
} from './tensor-models.js';
export { type WeightCodes, type ModelWorkload, weightCodes, quantizeActivations, measuredPrecision, modelWorkload } from './model-workload.js';
export { type ModelSimOptions, simulateWorkload } from './simulate-model.js';
export { type ChartPoint, type ChartSeries, resultTable, resultCsv, speedupSvg, rowsCsv, lineChartSvg } from './report.js';
export { type A3Options, type A3Result, type A3StudyRow, a3Attention, a3Study } from './a3.js';
export { type Graph, type SamplingOptions, type GinexRow, powerLawGraph, samplingTrace, cacheMisses, ginexStudy } from './ginex.js';
export { seededRandom } from './random.js';
export { type GradiveqResult, learnBasis, compress as gradiveqCompress, decompress as gradiveqDecompress, ringAllReduce, ringTime, gradiveqStudy, quantizationResiduals, trainingGradients } from './gradiveq.js';
