// The options `quantize` and `quantize-layer` share, with the library's defaults (QUANTIZE_DEFAULTS of
// @lowbit/quantizers): the two commands and quantizeModel quantize the same way unless told otherwise.
import { QUANTIZE_DEFAULTS } from '@lowbit/quantizers';
import type { OptionSpec } from '../command.js';

export const quantizerOptions = {
  method: { type: 'string', choices: ['rtn', 'gptq'], default: QUANTIZE_DEFAULTS.method, description: 'round to nearest, or GPTQ (error feedback through the calibration Hessian)' },
  group: { type: 'integer', min: 0, default: QUANTIZE_DEFAULTS.group, description: 'INT-k: columns per scale group; 0 = one scale per output channel (ggml, MX: always 32)' },
  asym: { type: 'boolean', description: 'INT-k: asymmetric grid, a zero point per group (default symmetric)' },
  'act-order': { type: 'boolean', description: 'GPTQ: quantize columns by decreasing Hessian diagonal' },
  'static-groups': { type: 'boolean', description: 'with --act-order: groups fixed in the original column order (needed by q4_0/q4_1/q8_0)' },
  damp: { type: 'number', min: 0, max: 1, default: QUANTIZE_DEFAULTS.damp, description: "GPTQ dampening, a fraction of mean(diag H) added to H's diagonal" },
} as const satisfies OptionSpec;
