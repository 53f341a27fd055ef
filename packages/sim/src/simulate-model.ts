// A model's linear layers on one design: profile-driven designs use the measured activation precision
// and the stored weight precision of each layer; tensor-driven designs run on the codes themselves.
import { LowbitError } from '@lowbit/core';
import { type AccelName, type LayerResult, checkAccel, checkBitsPerCycle, checkMachine, simulateLayer } from './cycles.js';
import { type ModelWorkload, measuredPrecision, quantizeActivations } from './model-workload.js';
import { type SimResult, totals } from './simulate.js';
import type { TacticalOptions } from './tactical.js';
import { type DpredOptions, simulateDpred, simulateLaconic, simulateTactical } from './tensor-models.js';

export interface ModelSimOptions {
  bitsPerCycle?: number;
  /** Machine size (baseline and Loom only: 'mac128'); default 'dadn'. */
  machine?: string;
  /** Bits the captured activations are quantized to before precisions and terms are measured (default 8). */
  actBits?: number;
  dpred?: DpredOptions;
  tactical?: Partial<TacticalOptions> & { variant?: 'p' | 'e' };
  onLayer?: (done: number, total: number, name: string) => void;
}

export function simulateWorkload(w: ModelWorkload, accelName: string, options: ModelSimOptions = {}): SimResult {
  const accel: AccelName = checkAccel(accelName);
  const b = options.bitsPerCycle ?? 1;
  checkBitsPerCycle(accel, b);
  const machine = checkMachine(accel, options.machine ?? 'dadn');
  const actBits = options.actBits ?? 8;
  const needsWeightBits = accel !== 'baseline' && accel !== 'stripes';
  const results: LayerResult[] = [];
  w.layers.forEach((l, i) => {
    const wb = w.weightBits(i);
    if (wb === null && needsWeightBits) {
      throw new LowbitError('E_UNSUPPORTED', `${w.model}: layer ${l.name} holds f32 weights; ${accel} needs quantized weights (quantize the model first, e.g. lowbit quantize)`);
    }
    if (accel === 'baseline' || accel === 'stripes' || accel === 'tartan' || accel === 'loom') {
      const acts = quantizeActivations(w.inputs.get(l.name)!, actBits);
      results.push(simulateLayer(accel, l, { act: measuredPrecision(acts), wgt: wb ?? 16 }, b, machine));
    } else {
      const t = w.tensors(i, actBits);
      results.push(accel === 'dpred' ? simulateDpred(t, options.dpred) : accel === 'laconic' ? simulateLaconic(t) : simulateTactical(t, options.tactical));
    }
    options.onLayer?.(i + 1, w.layers.length, l.name);
  });
  return totals(w.model, accel, b, `measured on ${w.seq} tokens, activations at ${actBits} bits`, results, machine);
}
