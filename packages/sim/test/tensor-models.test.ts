import { describe, expect, it } from 'vitest';
import { DPRED_HEADER_BITS, dpredStreamBits } from '@lowbit/formats';
import { LowbitError } from '../src/index.js';
import { seededRandom as rng } from '../src/random.js';
import { type GemmTensors, simulateDpred, simulateLaconic, simulateTactical } from '../src/tensor-models.js';
import { nafTerms } from '../src/terms.js';

function gemm(R: number, C: number, K: number, act: (r: number, c: number) => number, wgt: (k: number, c: number) => number, actBits = 16, wgtBits = 16): GemmTensors {
  return {
    layer: { type: 'gemm', name: 'g', inC: C, outC: K, rows: R },
    acts: Int32Array.from({ length: R * C }, (_, i) => act(Math.floor(i / C), i % C)),
    weights: Int32Array.from({ length: K * C }, (_, i) => wgt(Math.floor(i / C), i % C)),
    actBits, wgtBits,
  };
}

describe('DPRed / Dynamic Stripes', () => {
  it('16-bit activations everywhere: exactly the baseline cycles', () => {
    // a signed tensor (it holds -1) whose every group holds 16384: two's-complement width 16
    const t = gemm(32, 48, 300, (_r, c) => (c === 0 ? -1 : 16384), () => 1);
    const r = simulateDpred(t);
    expect(r.baseline_cycles).toBe(32 * 3 * 2);
    expect(r.cycles).toBe(2 * 3 * 2 * 16); // 2 window groups x 3 blocks x 2 filter sets x 16 bits
  });
  it('per-group precisions: the slowest column sets each step unless columns may run ahead', () => {
    // 16 tokens, 2 channel blocks; token 0 needs 8 bits in block 0 and 2 in block 1, token 1 the reverse,
    // the rest need 1 bit (value 1)
    const act = (r: number, c: number) => (r === 0 ? (c < 16 ? 200 : 2) : r === 1 ? (c < 16 ? 2 : 200) : 1);
    const t = gemm(16, 32, 16, act, () => 3);
    expect(simulateDpred(t, { group: 16 }).cycles).toBe(8 + 8);
    expect(simulateDpred(t, { group: 256 }).cycles).toBe(16);
    // one register: columns 0 and 1 each take 8 + 2 = 10 cycles, others 2
    expect(simulateDpred(t, { group: 16, columnRegisters: 1 }).cycles).toBe(10);
  });
  it('stores each group as @lowbit/formats DPRed does: two\'s-complement width of its widest value plus a 4-bit header', () => {
    const t = gemm(16, 16, 1, (r) => (r < 8 ? 3 : -1), (_k, c) => (c === 0 ? 100 : 0));
    const r = simulateDpred(t, { group: 16 });
    // two's complement by hand: 3 = 011 (3 bits), -1 = 1 (1 bit), 100 = 0110_0100 (8 bits), 0 = 0 bits
    const bits = 8 * (3 * 16 + 4) + 8 * (1 * 16 + 4) + (8 * 16 + 4);
    expect(r.offchip_bytes).toBe(Math.ceil(bits / 8) + 2 * 16);
    expect(r.baseline_offchip_bytes).toBe(2 * (16 + 256 + 16));
    // groups of 256 (16 tokens x 16 channels): one group, width 3 (3 and -1 share it)
    const r256 = simulateDpred(t, { group: 256 });
    expect(r256.offchip_bytes).toBe(Math.ceil((3 * 256 + 4 + (8 * 16 + 4)) / 8) + 2 * 16);
  });
  it('counts the same group stream size as @lowbit/formats serializes', () => {
    // a layer with one activation row: its activation groups are exactly a [1, C] DPRed tensor, group 16
    const rand = rng(5);
    const C = 40;
    const acts = Array.from({ length: C }, () => Math.round((rand() - 0.5) * 2 * 2 ** Math.floor(rand() * 12)));
    const t = gemm(1, C, 1, (_r, c) => acts[c], () => 0);
    const stream = dpredStreamBits({ kind: 'dpred', shape: [1, C], group: 16, scales: new Float32Array([1]), codes: Int16Array.from(acts) });
    // weights: three all-zero groups (0 bits each, 16 + 16 + 8 values) cost their headers only
    expect(simulateDpred(t, { group: 16 }).offchip_bytes).toBe(Math.ceil((stream.bits + 3 * DPRED_HEADER_BITS) / 8) + 2 * 1);
  });
});

describe('Laconic', () => {
  it('equals the pair-by-pair maximum on small random tensors', () => {
    const rand = rng(7);
    const R = 20;
    const C = 40;
    const K = 300;
    const t = gemm(R, C, K, () => Math.floor(rand() * 512) - 256, () => (rand() < 0.3 ? 0 : Math.floor(rand() * 64) - 32));
    let brute = 0;
    for (let w0 = 0; w0 < R; w0 += 16) {
      for (let s0 = 0; s0 < K; s0 += 256) {
        for (let c0 = 0; c0 < C; c0 += 16) {
          let m = 0;
          for (let r = w0; r < Math.min(R, w0 + 16); r++) {
            for (let k = s0; k < Math.min(K, s0 + 256); k++) {
              for (let c = c0; c < Math.min(C, c0 + 16); c++) {
                m = Math.max(m, Math.max(1, nafTerms(t.acts[r * C + c]) * nafTerms(t.weights[k * C + c])));
              }
            }
          }
          brute += m;
        }
      }
    }
    const r = simulateLaconic(t);
    expect(r.cycles).toBe(brute);
    let pairs = 0;
    for (let r2 = 0; r2 < R; r2++) for (let k = 0; k < K; k++) for (let c = 0; c < C; c++) pairs += nafTerms(t.acts[r2 * C + c]) * nafTerms(t.weights[k * C + c]);
    expect(r.mean_pair_terms).toBeCloseTo(pairs / (R * C * K), 12);
  });
  it('all-zero operands take one cycle per step', () => {
    expect(simulateLaconic(gemm(16, 32, 256, () => 0, () => 0)).cycles).toBe(2);
  });
});

describe('Bit-Tactical (TCLp / TCLe)', () => {
  it('dense weights: TCLp equals Dynamic Stripes with per-tile groups', () => {
    const rand = rng(3);
    const t = gemm(40, 64, 260, () => Math.floor(rand() * 2000) - 1000, () => 1 + Math.floor(rand() * 7));
    expect(simulateTactical(t, { variant: 'p' }).cycles).toBe(simulateDpred(t, { group: 256 }).cycles);
  });
  it('half the weight lines zero: lookahead halves the lines', () => {
    // every odd channel block of every filter is zero -> promotion from t+1 fills nothing (zeros there),
    // but the all-zero odd lines are skipped (H = 2): 4 lines -> 2 kept
    const t = gemm(16, 64, 256, () => 5, (_k, c) => (Math.floor(c / 16) % 2 === 0 ? 1 : 0));
    const r = simulateTactical(t, { variant: 'p', lookahead: 2, lookaside: 5, shape: 'T' });
    expect(r.lines_kept).toBe(2);
    expect(r.cycles).toBe(2 * 3); // 5 = 101b in an unsigned tensor: 3 bits
    expect(r.weight_sparsity).toBe(0.5);
  });
  it('TCLe costs each line the most terms of its activations', () => {
    const t = gemm(16, 16, 16, (r) => (r === 3 ? 0b1010101 : 1), () => 1);
    expect(simulateTactical(t, { variant: 'e' }).cycles).toBe(4);
  });
  it('bad input is a LowbitError', () => {
    const t = gemm(16, 16, 16, () => 1, () => 1);
    expect(() => simulateDpred({ ...t, acts: new Int32Array(3) })).toThrow(LowbitError);
    expect(() => simulateDpred(t, { group: 32 as 16 })).toThrow(/16 or 256/);
    expect(() => simulateTactical(t, { variant: 'x' as 'p' })).toThrow(/p or e/);
    expect(() => simulateLaconic({ ...t, actBits: 17 })).toThrow(/1\.\.16, got 17/);
  });
});
