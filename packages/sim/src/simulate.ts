// A whole network on one design: per-layer results and their totals, in the shape `lowbit sim --json` prints.
import { LowbitError } from '@lowbit/core';
import { type AccelName, type LayerResult, type MachineScale, type ProfileAccel, checkAccel, checkBitsPerCycle, checkMachine, simulateLayer } from './cycles.js';
import { type Layer, type LayerPrecision, validateNetwork } from './layers.js';

export const ENERGY_NOTE = 'no energy model: none of the papers\' per-operation energy tables could be sourced, so no pJ figures are given';

/** The whole-run figures: a layer row's cycle, utilisation and traffic fields, summed over the layers. */
export type ResultTotals = Pick<LayerResult, 'baseline_cycles' | 'cycles' | 'speedup' | 'mac_utilisation' | 'baseline_offchip_bytes' | 'offchip_bytes'>;

export interface SimResult extends ResultTotals {
  network: string;
  accel: AccelName;
  bits_per_cycle: number;
  /** Machine size the design and its baseline were modelled at (see MachineScale). */
  machine: MachineScale;
  profile: string;
  energy: null;
  energy_note: string;
  layers: LayerResult[];
}

export function totals(network: string, accel: AccelName, bitsPerCycle: number, profile: string, layers: LayerResult[], machine: MachineScale = 'dadn'): SimResult {
  const baseline_cycles = layers.reduce((s, l) => s + l.baseline_cycles, 0);
  const cycles = layers.reduce((s, l) => s + l.cycles, 0);
  // cycle-weighted mean of the layers' utilisations: the fraction of the run's lane-cycles doing real work
  const mac_utilisation = layers.reduce((s, l) => s + l.mac_utilisation * l.cycles, 0) / cycles;
  return {
    network, accel, bits_per_cycle: bitsPerCycle, machine, profile, baseline_cycles, cycles, speedup: baseline_cycles / cycles, mac_utilisation,
    baseline_offchip_bytes: layers.reduce((s, l) => s + l.baseline_offchip_bytes, 0),
    offchip_bytes: layers.reduce((s, l) => s + l.offchip_bytes, 0),
    energy: null, energy_note: ENERGY_NOTE, layers,
  };
}

/** Runs baseline, Stripes, Tartan or Loom on layers with per-layer precisions. */
export function simulateProfile(network: string, accelName: string, layers: Layer[], precisions: LayerPrecision[], options: { bitsPerCycle?: number; machine?: string; profile?: string } = {}): SimResult {
  const accel = checkAccel(accelName);
  if (accel !== 'baseline' && accel !== 'stripes' && accel !== 'tartan' && accel !== 'loom') {
    throw new LowbitError('E_UNSUPPORTED', `accelerator ${accel} needs real tensors (weights and activations), not a precision profile`);
  }
  const b = options.bitsPerCycle ?? 1;
  checkBitsPerCycle(accel, b);
  const machine = checkMachine(accel, options.machine ?? 'dadn');
  if (precisions.length !== layers.length) throw new LowbitError('E_SHAPE', `network ${network}: ${precisions.length} precisions for ${layers.length} layers`);
  const checked = validateNetwork(network, layers);
  const results = checked.map((l, i) => simulateLayer(accel as ProfileAccel, l, precisions[i], b, machine));
  return totals(network, accel, b, options.profile ?? 'user', results, machine);
}
