// Profile-driven cycle models of the bit-parallel DaDianNao baseline and the bit-serial designs that
// replace it (Stripes, Tartan, Loom). Formulas follow DNNsim (isakedo/DNNsim @50240e9, core/src/Stripes.cpp
// and Loom.cpp): 16 tiles x 16 filters = 256 filter rows, 16 lanes per row, windows processed in groups of
// 16 columns, first-layer space-to-depth. Where DNNsim and the papers leave a choice, the comment says
// which one is ours.
import { LowbitError } from '@lowbit/core';
import { type Layer, type LayerPrecision, checkPrecision, convGeometry, layerMacs, layerSizes } from './layers.js';

/** Filter rows of the baseline: 16 tiles x 16 filters. */
export const ROWS = 256;
/** Weights (and activations) per row per cycle. */
export const LANES = 16;
/** 16-bit MACs per cycle of the baseline. */
export const BASELINE_MACS = ROWS * LANES;

export type ProfileAccel = 'baseline' | 'stripes' | 'tartan' | 'loom';
export type AccelName = ProfileAccel | 'dpred' | 'laconic' | 'tactical';
export const ACCELERATORS: readonly AccelName[] = ['baseline', 'stripes', 'tartan', 'loom', 'dpred', 'laconic', 'tactical'];

export interface AccelOptions {
  /** Bits each serial lane takes per cycle: Stripes 1; Tartan 1 or 2; Loom 1, 2 or 4. */
  bitsPerCycle?: number;
  /** Machine size; see MachineScale. */
  machine?: MachineScale;
}

/**
 * 'dadn': the 16-tile DaDianNao-style baseline, 256 filter rows x 16 lanes of 16-bit MACs, and designs of
 * the same peak. 'mac128': the comparison point of the Loom DAC'18 paper (4.38x, abstract [V]): a
 * bit-parallel engine of "the equivalent of 128 16b x 16b MACs per cycle", here 8 filter rows x 16 lanes,
 * against a Loom with the same peak of bit products (128 x 256 per cycle). How that Loom's SIPs are laid
 * out per variant is not sourced; ours is 128/b filter rows x 16/b windows x 16 lanes of b x b bits.
 */
export type MachineScale = 'dadn' | 'mac128';
export const MACHINES: readonly MachineScale[] = ['dadn', 'mac128'];

/** Filter rows of the bit-parallel baseline of a machine size. */
export function baselineRows(machine: MachineScale = 'dadn'): number {
  return machine === 'mac128' ? 8 : ROWS;
}

export function checkMachine(accel: AccelName, machine: string): MachineScale {
  if (!(MACHINES as readonly string[]).includes(machine)) throw new LowbitError('E_ARG', `unknown machine size "${machine}" (one of ${MACHINES.join(', ')})`);
  if (machine === 'mac128' && accel !== 'baseline' && accel !== 'loom') throw new LowbitError('E_ARG', `machine mac128 is the Loom paper's comparison point; ${accel} is modelled at dadn size only`);
  return machine as MachineScale;
}

export interface LayerResult {
  name: string;
  type: Layer['type'];
  act_bits: number;
  wgt_bits: number;
  macs: number;
  baseline_cycles: number;
  cycles: number;
  speedup: number;
  /** Lane-cycles doing real MACs over lane-cycles available (rounding and idle columns lower it). */
  mac_utilisation: number;
  baseline_offchip_bytes: number;
  offchip_bytes: number;
}

const ceil = Math.ceil;

export function checkAccel(name: string): AccelName {
  if (!(ACCELERATORS as readonly string[]).includes(name)) throw new LowbitError('E_ARG', `unknown accelerator "${name}" (one of ${ACCELERATORS.join(', ')})`);
  return name as AccelName;
}

export function checkBitsPerCycle(accel: AccelName, b: number): void {
  const allowed = accel === 'loom' ? [1, 2, 4] : accel === 'tartan' ? [1, 2] : [1];
  if (!allowed.includes(b)) throw new LowbitError('E_ARG', `--bits-per-cycle ${b} is not a ${accel} variant (allowed: ${allowed.join(', ')})`);
}

/** Baseline cycles (DNNsim base_cycles): one window, `rows` filters (256 for DaDN) x 16 channels per cycle. */
export function baselineCycles(l: Layer, rows = ROWS): number {
  if (l.type === 'fc') return ceil(l.inC / LANES) * ceil(l.outC / rows);
  const g = convGeometry(l);
  return g.OX * g.OY * ceil(g.C / LANES) * g.Kx * g.Ky * ceil(g.K / rows / g.groups);
}

/** Tile steps of a conv/gemm layer when `windows` windows are processed together (each step: `rows` filters x 16 channels). */
export function convSteps(l: Exclude<Layer, { type: 'fc' }>, windows: number, rows = ROWS): number {
  const g = convGeometry(l);
  return ceil((g.OX * g.OY) / windows) * g.Kx * g.Ky * ceil(g.C / LANES) * ceil(g.K / rows / g.groups);
}

/**
 * FC column multiplexing (DNNsim FC_MULTIPLEX_COLUMNS, on by default): one 16-input block is issued per
 * cycle to the next of `columns` columns round-robin; a block holds its column `occupancy` cycles and an
 * issue waits for a busy column. Returns the cycle the last block finishes. DNNsim adds the last column's
 * end once more than it means to (it subtracts a counter that is still 0); we count the makespan.
 */
export function fcMultiplexCycles(blocks: number, columns: number, occupancy: number): number {
  if (blocks === 0) return 0;
  if (occupancy <= columns) return blocks - 1 + occupancy; // a column is always free again when its turn comes
  // steady state: column j's k-th block starts at k*occupancy + j
  const last = blocks - 1;
  return Math.floor(last / columns) * occupancy + (last % columns) + occupancy;
}

/** Cycles of one layer on a profile-driven design. */
export function layerCycles(accel: ProfileAccel, l: Layer, p: LayerPrecision, bitsPerCycle = 1, machine: MachineScale = 'dadn'): { cycles: number; laneCycles: number; lanes: number } {
  checkPrecision(p.act, `layer ${l.name} activations`);
  checkPrecision(p.wgt, `layer ${l.name} weights`);
  checkMachine(accel, machine);
  const b = bitsPerCycle;
  const macs = layerMacs(l);
  const baseRows = baselineRows(machine);
  if (accel === 'baseline') return { cycles: baselineCycles(l, baseRows), laneCycles: macs, lanes: baseRows * LANES };
  if (l.type === 'fc') {
    const blocks = ceil(l.inC / LANES) * ceil(l.outC / baseRows);
    if (accel === 'stripes') {
      // activations bit-serial, but each block is used once: the issue rate caps FC at baseline speed
      return { cycles: fcMultiplexCycles(blocks, LANES, p.act), laneCycles: macs * p.act, lanes: LANES * BASELINE_MACS };
    }
    // Tartan and Loom: FC weights go bit-serially. FC has no weight reuse, so the weight memory (the
    // baseline's 4096 x 16 bits per cycle) feeds 16/b serial columns each cycle; each column takes
    // ceil(p_w/b) cycles per block. Our reading of "time proportional to p_w" (Tartan, Loom abstracts).
    const columns = LANES / b;
    const step = ceil(p.wgt / b);
    return { cycles: ceil(blocks / columns) * step, laneCycles: macs * step, lanes: columns * baseRows * LANES };
  }
  if (accel === 'stripes' || accel === 'tartan') {
    // 16 windows per tile at 1 bit/cycle; the 2-bit Tartan keeps the same lane width and halves the windows
    const windows = LANES / b;
    const step = ceil(p.act / b);
    return { cycles: convSteps(l, windows) * step, laneCycles: macs * step, lanes: windows * BASELINE_MACS };
  }
  // Loom: both operands serial, b bits of each per cycle. At dadn size the windows are set so Loom has the
  // baseline's peak of 4096 x 16 x 16 bit products per cycle: 256/b^2 windows of 256 filter rows (DNNsim's
  // 16 columns is the b = 4 case). At mac128 size: 128/b filter rows x 16/b windows (see MachineScale).
  const [windows, rows] = machine === 'mac128' ? [LANES / b, 128 / b] : [(LANES * LANES) / (b * b), ROWS];
  const step = ceil(p.act / b) * ceil(p.wgt / b);
  return { cycles: convSteps(l, windows, rows) * step, laneCycles: macs * step, lanes: windows * rows * LANES };
}

/**
 * Off-chip bytes, each tensor moved once. Baseline, Stripes and Tartan keep DaDN's 16-bit memory layout;
 * Loom stores weights and input activations at their profiled precision (its target is bandwidth-bound
 * SoCs); outputs are written at 16 bits before the next layer's precision is applied.
 */
export function layerOffchipBytes(accel: ProfileAccel, l: Layer, p: LayerPrecision): { baseline: number; accel: number } {
  const s = layerSizes(l);
  const baseline = 2 * (s.weights + s.inputs + s.outputs);
  if (accel !== 'loom') return { baseline, accel: baseline };
  return { baseline, accel: ceil((s.weights * p.wgt + s.inputs * p.act) / 8) + 2 * s.outputs };
}

/**
 * One layer's row of a result from the cycles a design takes and its lane use; baseline cycles and the
 * baseline's 16-bit traffic come from the layer itself. Shared by the profile- and tensor-driven models.
 */
export function layerResult(l: Layer, p: LayerPrecision, cycles: number, laneCycles: number, lanes: number, offchipBytes: number, baseRows = ROWS): LayerResult {
  const base = baselineCycles(l, baseRows);
  const s = layerSizes(l);
  return {
    name: l.name, type: l.type, act_bits: p.act, wgt_bits: p.wgt, macs: layerMacs(l),
    baseline_cycles: base, cycles, speedup: base / cycles, mac_utilisation: laneCycles / (cycles * lanes),
    baseline_offchip_bytes: 2 * (s.weights + s.inputs + s.outputs), offchip_bytes: offchipBytes,
  };
}

export function simulateLayer(accel: ProfileAccel, l: Layer, p: LayerPrecision, bitsPerCycle = 1, machine: MachineScale = 'dadn'): LayerResult {
  const r = layerCycles(accel, l, p, bitsPerCycle, machine);
  return layerResult(l, p, r.cycles, r.laneCycles, r.lanes, layerOffchipBytes(accel, l, p).accel, baselineRows(machine));
}
