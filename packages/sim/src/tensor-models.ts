// Designs whose speed depends on the values, not only on a per-layer precision: DPRed / Dynamic Stripes
// (precision detected per group of activations), Laconic (effectual terms of both operands) and
// Bit-Tactical (zero weights scheduled away, then a precision or term back end). Each runs on one GEMM
// layer with real integer codes: weights W [K, C] and activations X [R, C] (R tokens play the part of
// a convolution's windows). Tile geometry is the baseline's: 256 filter rows x 16 lanes, 16 windows.
import { DPRED_HEADER_BITS, dpredGroupBits, twosBits } from '@lowbit/formats';
import { LowbitError } from '@lowbit/core';
import { BASELINE_MACS, LANES, type LayerResult, ROWS, layerResult } from './cycles.js';
import type { GemmLayer } from './layers.js';
import { DEFAULT_TACTICAL, type TacticalOptions, scheduleTile } from './tactical.js';
import { NAF_TERMS, detectedBits, isSignedTensor } from './terms.js';

/** Windows (tokens) a tile processes at once: the 16 columns of Stripes-like tiles. */
export const WINDOWS = 16;
/**
 * Bits a group's width header takes in memory: @lowbit/formats' DPRed header, so the traffic sim reports
 * is what that format stores. Our choice; DPRed's own header size is unverified.
 */
export const GROUP_HEADER_BITS = DPRED_HEADER_BITS;

export interface GemmTensors {
  layer: GemmLayer;
  /** Weight codes, [outC, inC] row-major, signed integers with |v| < 2^15. */
  weights: Int16Array | Int32Array;
  wgtBits: number;
  /** Activation codes, [rows, inC] row-major. */
  acts: Int16Array | Int32Array;
  actBits: number;
}

export function checkTensors(t: GemmTensors): void {
  const { inC: C, outC: K, rows: R, name } = t.layer;
  if (t.weights.length !== K * C) throw new LowbitError('E_SHAPE', `layer ${name}: ${t.weights.length} weight codes for [${K}, ${C}]`);
  if (t.acts.length !== R * C) throw new LowbitError('E_SHAPE', `layer ${name}: ${t.acts.length} activation codes for [${R}, ${C}]`);
  for (const [what, b] of [['weights', t.wgtBits], ['activations', t.actBits]] as const) {
    if (!Number.isInteger(b) || b < 1 || b > 16) throw new LowbitError('E_ARG', `layer ${name} ${what}: precision must be an integer in 1..16, got ${b}`);
  }
}

function result(t: GemmTensors, cycles: number, usefulLaneCycles: number, lanes: number, offchip: number, actBitsShown: number): LayerResult {
  return layerResult(t.layer, { act: actBitsShown, wgt: t.wgtBits }, cycles, usefulLaneCycles, lanes, offchip);
}

/** Dynamic precision of each (token, channel block): detectedBits of its widest value. */
function tokenBlockPrecision(t: GemmTensors, signed: boolean): Uint8Array {
  const { inC: C, rows: R } = t.layer;
  const B = Math.ceil(C / LANES);
  const p = new Uint8Array(R * B);
  for (let r = 0; r < R; r++) {
    for (let b = 0; b < B; b++) {
      let m = 1;
      for (let c = b * LANES; c < Math.min(C, (b + 1) * LANES); c++) m = Math.max(m, detectedBits(t.acts[r * C + c], signed));
      p[r * B + b] = m;
    }
  }
  return p;
}

export interface DpredOptions {
  /** Activations per precision group: 16 (one window's lanes) or 256 (the whole tile). */
  group?: 16 | 256;
  /** Steps a column may run ahead of the slowest one (0: every column waits for the slowest group). */
  columnRegisters?: number;
}

/**
 * DPRed / Dynamic Stripes: activations bit-serial at the precision detected on each group (DNNsim
 * DynamicStripes). Off-chip, each group of 16 weights or 16 (or 256) activations is stored at its own
 * precision plus a header; outputs at 16 bits.
 */
export function simulateDpred(t: GemmTensors, options: DpredOptions = {}): LayerResult & { act_groups_mean_bits: number } {
  checkTensors(t);
  const group = options.group ?? 16;
  const regs = options.columnRegisters ?? 0;
  if (group !== 16 && group !== 256) throw new LowbitError('E_ARG', `DPRed group size must be 16 or 256, got ${String(group)}`);
  if (!Number.isInteger(regs) || regs < 0) throw new LowbitError('E_ARG', `DPRed column registers must be an integer >= 0, got ${regs}`);
  const { inC: C, outC: K, rows: R } = t.layer;
  const B = Math.ceil(C / LANES);
  const sets = Math.ceil(K / ROWS);
  const signed = isSignedTensor(t.acts);
  const p = tokenBlockPrecision(t, signed);
  let cycles = 0;
  let useful = 0;
  for (let w0 = 0; w0 < R; w0 += WINDOWS) {
    const cols = Math.min(WINDOWS, R - w0);
    // f[c]: when column c finishes its current step; done[s]: when the slowest column finished step s
    const f = new Float64Array(cols);
    const done = new Float64Array(B);
    for (let b = 0; b < B; b++) {
      let tileP = 0;
      if (group === 256) for (let c = 0; c < cols; c++) tileP = Math.max(tileP, p[(w0 + c) * B + b]);
      const gate = b - regs - 1 >= 0 ? done[b - regs - 1] : 0;
      let slowest = 0;
      for (let c = 0; c < cols; c++) {
        const step = group === 256 ? tileP : p[(w0 + c) * B + b];
        f[c] = Math.max(f[c], gate) + step;
        slowest = Math.max(slowest, f[c]);
      }
      done[b] = slowest;
    }
    cycles += done[B - 1];
  }
  cycles *= sets;
  for (let i = 0; i < R * C; i++) useful += detectedBits(t.acts[i], signed);
  useful *= K;
  // traffic: activation groups of 16 channels of one token, or 16 tokens x 16 channels, each stored as
  // @lowbit/formats' DPRed stores a group (two's-complement width of its widest value, 0 for an
  // all-zero group, plus the width header). On a signed tensor that is the detected width above (up to
  // DNNsim's 2-bit floor); on an unsigned one (post-ReLU) it is one bit more, a sign bit the stream
  // carries and the detector does not need.
  const A = t.acts;
  let actBits = 0;
  let groups = 0;
  let groupBitsSum = 0;
  for (let i = 0; i < R * B; i++) groupBitsSum += p[i];
  if (group === 16) {
    for (let r = 0; r < R; r++) {
      for (let b = 0; b < B; b++) {
        const end = Math.min(C, (b + 1) * LANES);
        let w = 0;
        for (let c = b * LANES; c < end; c++) w = Math.max(w, twosBits(A[r * C + c]));
        actBits += dpredGroupBits(w, end - b * LANES);
        groups++;
      }
    }
  } else {
    groupBitsSum = 0;
    for (let w0 = 0; w0 < R; w0 += WINDOWS) {
      const rEnd = Math.min(R, w0 + WINDOWS);
      for (let b = 0; b < B; b++) {
        const end = Math.min(C, (b + 1) * LANES);
        let m = 0;
        let w = 0;
        for (let r = w0; r < rEnd; r++) {
          m = Math.max(m, p[r * B + b]);
          for (let c = b * LANES; c < end; c++) w = Math.max(w, twosBits(A[r * C + c]));
        }
        actBits += dpredGroupBits(w, (rEnd - w0) * (end - b * LANES));
        groupBitsSum += m;
        groups++;
      }
    }
  }
  let wgtBits = 0;
  for (let k = 0; k < K; k++) {
    for (let b = 0; b < B; b++) {
      let w = 0;
      const end = Math.min(C, (b + 1) * LANES);
      for (let c = b * LANES; c < end; c++) w = Math.max(w, twosBits(t.weights[k * C + c]));
      wgtBits += dpredGroupBits(w, end - b * LANES);
    }
  }
  const offchip = Math.ceil((actBits + wgtBits) / 8) + 2 * K * R;
  return { ...result(t, cycles, useful, WINDOWS * BASELINE_MACS, offchip, t.actBits), act_groups_mean_bits: groupBitsSum / groups };
}

/** Per (group of 16 rows, channel): the most terms any of those rows' values has (Booth/NAF-recoded magnitude). */
function maxTermsPerChannel(codes: Int16Array | Int32Array, rows: number, C: number, rowsPerGroup: number): Uint8Array {
  const G = Math.ceil(rows / rowsPerGroup);
  const out = new Uint8Array(G * C);
  for (let r = 0; r < rows; r++) {
    const g = Math.floor(r / rowsPerGroup);
    for (let c = 0; c < C; c++) {
      const v = NAF_TERMS[Math.abs(codes[r * C + c]) & 0xffff];
      if (v > out[g * C + c]) out[g * C + c] = v;
    }
  }
  return out;
}

/**
 * Laconic: each PE pair (a, w) takes terms(a) x terms(w) cycles, 0 terms = 1 cycle; a tile step
 * (16 windows x 256 filters x 16 lanes) lasts as long as its slowest pair. Since terms are >= 0, that
 * slowest pair is, per lane, the widest activation of the 16 windows times the widest weight of the
 * 256 filters, so a step costs max(1, max over lanes of A_lane * B_lane) without visiting all pairs.
 */
export function simulateLaconic(t: GemmTensors): LayerResult & { mean_pair_terms: number } {
  checkTensors(t);
  const { inC: C, outC: K, rows: R } = t.layer;
  const A = maxTermsPerChannel(t.acts, R, C, WINDOWS);
  const Bw = maxTermsPerChannel(t.weights, K, C, ROWS);
  const WG = Math.ceil(R / WINDOWS);
  const S = Math.ceil(K / ROWS);
  let cycles = 0;
  for (let w = 0; w < WG; w++) {
    for (let s = 0; s < S; s++) {
      for (let c0 = 0; c0 < C; c0 += LANES) {
        let m = 1;
        for (let c = c0; c < Math.min(C, c0 + LANES); c++) m = Math.max(m, A[w * C + c] * Bw[s * C + c]);
        cycles += m;
      }
    }
  }
  // useful work: sum over all pairs of max(1, ta*tw), from per-channel term histograms
  let useful = 0;
  let termSum = 0;
  const ha = new Float64Array(17);
  const hw = new Float64Array(17);
  for (let c = 0; c < C; c++) {
    ha.fill(0);
    hw.fill(0);
    for (let r = 0; r < R; r++) ha[NAF_TERMS[Math.abs(t.acts[r * C + c]) & 0xffff]]++;
    for (let k = 0; k < K; k++) hw[NAF_TERMS[Math.abs(t.weights[k * C + c]) & 0xffff]]++;
    for (let i = 0; i < 17; i++) {
      if (!ha[i]) continue;
      for (let j = 0; j < 17; j++) {
        if (!hw[j]) continue;
        useful += ha[i] * hw[j] * Math.max(1, i * j);
        termSum += ha[i] * hw[j] * i * j;
      }
    }
  }
  const base = 2 * (C * K + C * R + K * R);
  return { ...result(t, cycles, useful, WINDOWS * BASELINE_MACS, base, t.actBits), mean_pair_terms: termSum / (R * C * K) };
}

export interface TacticalSimOptions extends Partial<TacticalOptions> {
  /** p: TCLp, dynamic activation precision back end; e: TCLe, effectual activation terms back end. */
  variant?: 'p' | 'e';
}

/**
 * Bit-Tactical: weights of each 256-filter set scheduled with scheduleTile over the C/16 lines of the
 * stream; each kept line then costs, per group of 16 windows, the precision (TCLp) or the most
 * effectual terms (TCLe) of the activations it draws from, at least 1 cycle.
 */
export function simulateTactical(t: GemmTensors, options: TacticalSimOptions = {}): LayerResult & { weight_sparsity: number; lines_kept: number } {
  checkTensors(t);
  const variant = options.variant ?? 'p';
  if (variant !== 'p' && variant !== 'e') throw new LowbitError('E_ARG', `Bit-Tactical variant must be p or e, got ${String(variant)}`);
  const sched: TacticalOptions = { ...DEFAULT_TACTICAL, ...options, shape: options.shape ?? DEFAULT_TACTICAL.shape };
  const { inC: C, outC: K, rows: R } = t.layer;
  const B = Math.ceil(C / LANES);
  const S = Math.ceil(K / ROWS);
  const WG = Math.ceil(R / WINDOWS);
  const width = ROWS * LANES;
  // per (window group, line): the back end's cost of those activations
  const cost = new Uint8Array(WG * B);
  const signed = isSignedTensor(t.acts);
  for (let r = 0; r < R; r++) {
    const w = Math.floor(r / WINDOWS);
    for (let c = 0; c < C; c++) {
      const v = t.acts[r * C + c];
      const x = variant === 'p' ? detectedBits(v, signed) : NAF_TERMS[Math.abs(v) & 0xffff];
      const i = w * B + Math.floor(c / LANES);
      if (x > cost[i]) cost[i] = x;
    }
  }
  let cycles = 0;
  let kept = 0;
  let zeros = 0;
  // non-zero weights per input channel, counted in the same pass that marks the tiles' non-zeros
  const nnzPerChannel = new Float64Array(C);
  const nz = new Uint8Array(B * width);
  for (let s = 0; s < S; s++) {
    nz.fill(0);
    for (let f = 0; f < ROWS; f++) {
      const k = s * ROWS + f;
      if (k >= K) break;
      for (let c = 0; c < C; c++) {
        if (t.weights[k * C + c] !== 0) {
          nz[(c >> 4) * width + f * LANES + (c & 15)] = 1;
          nnzPerChannel[c]++;
        } else zeros++;
      }
    }
    const plan = scheduleTile(nz, B, ROWS, LANES, sched);
    kept += plan.lines;
    for (const src of plan.sources) {
      for (let w = 0; w < WG; w++) {
        let m = 1;
        for (const b of src) m = Math.max(m, cost[w * B + b]);
        cycles += m;
      }
    }
  }
  // useful: each non-zero weight's MACs, each costing its activation's own precision or terms (>= 1)

  let useful = 0;
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const v = t.acts[r * C + c];
      useful += nnzPerChannel[c] * (variant === 'p' ? detectedBits(v, signed) : Math.max(1, NAF_TERMS[Math.abs(v) & 0xffff]));
    }
  }
  const base = 2 * (C * K + C * R + K * R);
  return { ...result(t, cycles, useful, WINDOWS * BASELINE_MACS, base, t.actBits), weight_sparsity: zeros / (K * C), lines_kept: kept };
}
