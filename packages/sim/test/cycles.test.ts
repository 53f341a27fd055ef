import { describe, expect, it } from 'vitest';
import {
  type ConvLayer, type FcLayer, LowbitError, NETWORKS, baselineCycles, convGeometry, fcMultiplexCycles, findNetwork, layerCycles, layerMacs,
  parseProfileList, resolvePrecisions, simulateLayer, simulateProfile, validateLayer,
} from '../src/index.js';

const conv = (inC: number, inH: number, inW: number, outC: number, k: number, stride = 1, pad = 0, groups = 1): ConvLayer =>
  ({ type: 'conv', name: 't', inC, inH, inW, outC, kH: k, kW: k, stride, pad, groups });
const fc = (inC: number, outC: number): FcLayer => ({ type: 'fc', name: 'f', inC, outC });
const p = (act: number, wgt = 16) => ({ act, wgt });

/** DNNsim's FC issue loop, step by step: one issue per cycle, a busy column stalls the issue. */
function multiplexBrute(blocks: number, columns: number, occ: number): number {
  const end = new Array<number>(columns).fill(0);
  let cursor = 0;
  for (let i = 0; i < blocks; i++) {
    const c = i % columns;
    if (cursor < end[c]) cursor = end[c];
    end[c] = cursor + occ;
    cursor++;
  }
  return Math.max(...end);
}

describe('baseline and Stripes conv cycles (hand-computed)', () => {
  it('rounds windows to 16 for Stripes and channels to 16 for both', () => {
    // 10x11 input, 3x3 kernel: 8x9 = 72 windows -> ceil(72/16) = 5 window groups; 17 channels -> 2 blocks;
    // 300 filters -> ceil(300/256) = 2 filter sets
    const l = conv(17, 10, 11, 300, 3);
    expect(baselineCycles(l)).toBe(72 * 2 * 9 * 2);
    expect(layerCycles('stripes', l, p(7)).cycles).toBe(5 * 9 * 2 * 2 * 7);
    expect(simulateLayer('stripes', l, p(7)).speedup).toBeCloseTo(2592 / 1260, 12);
  });
  it('counts filter sets as ceil(K/256/groups) (AlexNet conv2 and a 600-filter grouped layer)', () => {
    const alex2 = conv(96, 27, 27, 256, 5, 1, 2, 2);
    expect(baselineCycles(alex2)).toBe(729 * 6 * 25 * 1);
    expect(layerCycles('stripes', alex2, p(8)).cycles).toBe(46 * 25 * 6 * 1 * 8);
    expect(baselineCycles(conv(96, 27, 27, 600, 5, 1, 2, 2))).toBe(729 * 6 * 25 * 2);
  });
  it('folds a strided 3-channel first layer into channels as DNNsim does', () => {
    // AlexNet conv1: 227, k11 s4 -> C' = 48, N' = ceil(227/4) = 57, K' = 3, out 55 (same as the real layer)
    const g = convGeometry(conv(3, 227, 227, 96, 11, 4));
    expect(g).toEqual({ C: 48, K: 96, Kx: 3, Ky: 3, OX: 55, OY: 55, groups: 1, spaceToDepth: true });
    expect(baselineCycles(conv(3, 227, 227, 96, 11, 4))).toBe(3025 * 3 * 9);
    expect(layerCycles('stripes', conv(3, 227, 227, 96, 11, 4), p(9)).cycles).toBe(190 * 9 * 3 * 9);
    // GoogLeNet conv1: 224 padded by 3 = 230, s2 -> 115, k7 -> 4, out 112; 12 channels fit one block
    const g2 = convGeometry(conv(3, 224, 224, 64, 7, 2, 3));
    expect([g2.C, g2.Kx, g2.OX]).toEqual([12, 4, 112]);
    expect(baselineCycles(conv(3, 224, 224, 64, 7, 2, 3))).toBe(112 * 112 * 1 * 16 * 1);
    // stride 1 or 1 channel: untouched
    expect(convGeometry(conv(3, 32, 32, 16, 5, 1, 2)).spaceToDepth).toBe(false);
  });
  it('measures lane utilisation from the rounding (384 of 512 filter rows busy)', () => {
    const l = conv(256, 13, 13, 384, 3, 1, 1);
    const r = simulateLayer('baseline', l, p(16));
    expect(r.baseline_cycles).toBe(169 * 16 * 9 * 2);
    expect(r.mac_utilisation).toBeCloseTo(0.75, 12);
    // Stripes: 169 windows in 11 groups of 16 -> 169/176 of the columns busy, times 0.75
    expect(simulateLayer('stripes', l, p(5)).mac_utilisation).toBeCloseTo(0.75 * 169 / 176, 12);
  });
});

describe('Tartan and Loom', () => {
  it('Tartan conv is Stripes at 1 bit/cycle; the 2-bit variant has 8 windows and ceil(p/2) steps', () => {
    const l = conv(64, 20, 20, 128, 3);
    expect(layerCycles('tartan', l, p(7)).cycles).toBe(layerCycles('stripes', l, p(7)).cycles);
    expect(layerCycles('tartan', l, p(7), 2).cycles).toBe(Math.ceil(324 / 8) * 9 * 4 * 1 * 4);
  });
  it('Tartan and Loom FC time scales with the weight precision (16/b columns fed per cycle)', () => {
    const l = fc(9216, 4096); // 576 blocks x 16 filter sets
    expect(layerCycles('tartan', l, p(16, 6)).cycles).toBe(9216 / 16 * 6);
    expect(layerCycles('tartan', l, p(16, 6), 2).cycles).toBe(9216 / 8 * 3);
    expect(layerCycles('loom', l, p(16, 5), 4).cycles).toBe(9216 / 4 * 2);
    expect(simulateLayer('tartan', l, p(16, 8)).speedup).toBe(2);
  });
  it('Loom conv: 256/b^2 windows, ceil(pa/b) * ceil(pw/b) cycles per step', () => {
    const l = conv(256, 13, 13, 384, 3, 1, 1);
    expect(layerCycles('loom', l, p(5, 8), 1).cycles).toBe(1 * 9 * 16 * 2 * 40);
    expect(layerCycles('loom', l, p(5, 8), 2).cycles).toBe(Math.ceil(169 / 64) * 9 * 16 * 2 * 3 * 4);
    expect(layerCycles('loom', l, p(5, 8), 4).cycles).toBe(11 * 9 * 16 * 2 * 2 * 2);
  });
});

describe('Loom against the 128-MAC bit-parallel engine (machine mac128)', () => {
  it('baseline: 8 filter rows x 16 lanes; Loom b bits: 128/b rows x 16/b windows, ceil(pa/b) * ceil(pw/b) per step', () => {
    const l = conv(256, 13, 13, 384, 3, 1, 1); // 169 windows, 16 channel blocks, 9 taps
    expect(layerCycles('baseline', l, p(16), 1, 'mac128').cycles).toBe(169 * 16 * 9 * 48);
    expect(layerCycles('loom', l, p(5, 8), 1, 'mac128').cycles).toBe(11 * 9 * 16 * 3 * 40);
    expect(layerCycles('loom', l, p(5, 8), 2, 'mac128').cycles).toBe(22 * 9 * 16 * 6 * 12);
    expect(layerCycles('loom', l, p(5, 8), 4, 'mac128').cycles).toBe(43 * 9 * 16 * 12 * 4);
  });
  it('has the baseline peak: 16-bit operands on a layer without rounding loss give speedup 1 for every b', () => {
    const l = conv(128, 8, 8, 128, 1); // 64 windows, 8 channel blocks, 128 filters
    for (const b of [1, 2, 4]) expect(simulateLayer('loom', l, p(16, 16), b, 'mac128')).toMatchObject({ speedup: 1, mac_utilisation: 1 });
  });
  it('FC time is 16/p_w of the baseline; Stripes and Tartan stay at dadn size', () => {
    const r = simulateLayer('loom', fc(9216, 4096), p(16, 5), 1, 'mac128');
    expect([r.baseline_cycles, r.cycles]).toEqual([576 * 512, (576 * 512 / 16) * 5]);
    expect(() => layerCycles('stripes', fc(16, 16), p(8), 1, 'mac128')).toThrow(/mac128 is the Loom paper's comparison point/);
  });
});

describe('FC column multiplexing (Stripes)', () => {
  it('equals the step-by-step issue loop, stalls included', () => {
    for (const [blocks, cols, occ] of [[9216, 16, 5], [5, 2, 3], [37, 4, 9], [1, 16, 16], [100, 3, 3], [64, 16, 16]]) {
      expect(fcMultiplexCycles(blocks, cols, occ)).toBe(multiplexBrute(blocks, cols, occ));
    }
  });
  it('leaves Stripes FC at baseline speed plus the pipeline drain', () => {
    const r = simulateLayer('stripes', fc(9216, 4096), p(5));
    expect(r.baseline_cycles).toBe(9216);
    expect(r.cycles).toBe(9216 + 4);
  });
});

describe('networks and profiles', () => {
  it('each 100% profile gives, on the shipped shapes, the ideal speedup its recalled table lists (within 3.5%)', () => {
    // sim-targets.md §2.4, "ideal" column (as recalled, like the profiles): a check that the recalled
    // profiles, the recalled ideals and the read shapes agree, not a verification against the paper
    const ideal: Record<string, number> = { alexnet: 2.38, nin: 1.91, googlenet: 1.76, vgg_m: 2.23, vgg_s: 2.04, vgg19: 1.35, lenet: 5.33 };
    for (const net of NETWORKS) {
      const prec = resolvePrecisions(net, net.profiles.find((x) => x.name === '100')!);
      let macs = 0;
      let bits = 0;
      net.layers.forEach((l, i) => {
        if (l.type === 'fc') return;
        macs += layerMacs(l);
        bits += layerMacs(l) * prec[i].act;
      });
      expect(Math.abs((16 * macs) / bits / ideal[net.name] - 1), net.name).toBeLessThan(0.035); // googlenet +3.2%, vgg_s -2.8%: the rest within 2.1%
    }
  });
  it('ships AlexNet with two-tower layers and resolves the published profile', () => {
    const net = findNetwork('alexnet')!;
    expect(net.layers.filter((l) => l.type === 'conv' && l.groups === 2).map((l) => l.name)).toEqual(['conv2', 'conv4', 'conv5']);
    const prec = resolvePrecisions(net, net.profiles[0]);
    expect(prec.map((x) => x.act)).toEqual([9, 8, 5, 5, 7, 16, 16, 16]);
    // GoogLeNet: 57 conv layers map onto 11 profile entries
    const g = findNetwork('googlenet')!;
    expect(g.layers.filter((l) => l.type === 'conv').length).toBe(57);
    expect(resolvePrecisions(g, g.profiles[0]).length).toBe(58);
  });
  it('every shipped network validates and runs on every profile design', () => {
    for (const net of NETWORKS) {
      for (const prof of net.profiles) {
        const prec = resolvePrecisions(net, prof);
        for (const accel of ['baseline', 'stripes', 'tartan', 'loom']) {
          const r = simulateProfile(net.name, accel, net.layers, prec);
          expect(r.cycles).toBeGreaterThan(0);
          expect(r.mac_utilisation).toBeLessThanOrEqual(1);
        }
      }
    }
  });
  it('AlexNet total on Stripes with the 100% profile, from the per-layer formulas', () => {
    const net = findNetwork('alexnet')!;
    const r = simulateProfile('alexnet', 'stripes', net.layers, resolvePrecisions(net, net.profiles[0]));
    const base = 3025 * 3 * 9 + 729 * 6 * 25 + 169 * 16 * 9 * 2 + 169 * 24 * 9 * 1 + 169 * 24 * 9 * 1 + 576 * 16 + 256 * 16 + 256 * 4;
    const cyc = 190 * 27 * 9 + 46 * 25 * 6 * 8 + 11 * 9 * 16 * 2 * 5 + 11 * 9 * 24 * 5 + 11 * 9 * 24 * 7 + (9216 + 15) + (4096 + 15) + (1024 + 15);
    expect(r.baseline_cycles).toBe(base);
    expect(r.cycles).toBe(cyc);
    expect(r.layers.length).toBe(8);
    expect(r.energy).toBeNull();
  });
});

describe('bad input', () => {
  const net = findNetwork('alexnet')!;
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(LowbitError);
      return (e as LowbitError).code + ': ' + (e as Error).message;
    }
    throw new Error('no error thrown');
  };
  it('names the problem', () => {
    expect(code(() => validateLayer({ type: 'pool', name: 'p1' }))).toMatch(/E_UNSUPPORTED.*p1.*unknown type "pool"/);
    expect(code(() => simulateProfile('x', 'eyeriss', [], []))).toMatch(/E_ARG.*unknown accelerator "eyeriss"/);
    expect(code(() => parseProfileList(net, '9,8,5,5'))).toMatch(/E_SHAPE.*4 activation precisions for 5 conv layers/);
    expect(code(() => parseProfileList(net, '9,8,5,5,17'))).toMatch(/E_ARG.*1\.\.16, got 17/);
    expect(code(() => parseProfileList(net, '0,8,5,5,7'))).toMatch(/E_ARG.*got 0/);
    expect(code(() => validateLayer(conv(96, 27, 27, 255, 5, 1, 2, 2)))).toMatch(/E_SHAPE.*groups.*255/);
    expect(code(() => validateLayer(conv(8, 4, 4, 8, 7)))).toMatch(/E_SHAPE.*kernel 7x7 is larger/);
    expect(code(() => simulateProfile('alexnet', 'loom', net.layers, resolvePrecisions(net, net.profiles[0]), { bitsPerCycle: 3 }))).toMatch(/E_ARG.*bits-per-cycle 3/);
    expect(code(() => simulateProfile('alexnet', 'laconic', net.layers, []))).toMatch(/E_UNSUPPORTED.*real tensors/);
    expect(code(() => simulateProfile('x', 'stripes', [{ type: 'fc', name: 'a', inC: 10, outC: 20 }, { type: 'fc', name: 'b', inC: 30, outC: 5 }], [{ act: 8, wgt: 8 }, { act: 8, wgt: 8 }]))).toMatch(/E_SHAPE.*"b" takes 30 inputs but "a" produces 20/);
  });
});
