// Sim area: layers simulated per second. AlexNet (8 layers) through the profile-driven models, and the
// seven linear layers of one block of a 1B-class transformer (Llama-3.2-1B shapes: dim 2048, FFN 8192,
// 8 KV heads of 64) at seq 256 through the tensor-driven models, on synthetic codes (int4 weights with
// their zero code, int8 activations from a heavy-tailed draw): speed does not depend on where the
// codes came from, only on their count and, for Bit-Tactical, on how many zeros the scheduler meets.
import { type GemmTensors, NETWORKS, resolvePrecisions, seededRandom, simulateDpred, simulateLaconic, simulateProfile, simulateTactical } from '@lowbit/sim';
import type { Area, Context, Row } from './harness.js';

const BLOCK_1B: [string, number, number][] = [
  ['attn_q', 2048, 2048], ['attn_k', 2048, 512], ['attn_v', 2048, 512], ['attn_output', 2048, 2048],
  ['ffn_gate', 2048, 8192], ['ffn_up', 2048, 8192], ['ffn_down', 8192, 2048],
];

function block1B(seq: number): GemmTensors[] {
  const rand = seededRandom(9);
  return BLOCK_1B.map(([name, inC, outC]) => ({
    layer: { type: 'gemm', name, inC, outC, rows: seq },
    weights: Int16Array.from({ length: inC * outC }, () => Math.floor(rand() * 16) - 8),
    wgtBits: 4,
    // |x| ~ 127 * u^4: most activations small, a few large (the shape the dynamic-precision designs exploit)
    acts: Int16Array.from({ length: seq * inC }, () => Math.round((rand() < 0.5 ? -1 : 1) * 127 * rand() ** 4)),
    actBits: 8,
  }));
}

export const simArea: Area = {
  name: 'sim',
  async run(ctx: Context): Promise<Row[]> {
    const rows: Row[] = [];
    const alex = NETWORKS.find((n) => n.name === 'alexnet')!;
    const prec = resolvePrecisions(alex, alex.profiles[0]);
    for (const accel of ['stripes', 'tartan', 'loom']) {
      const ms = await ctx.measure(() => simulateProfile('alexnet', accel, alex.layers, prec));
      rows.push({ area: 'sim', name: 'AlexNet, profile models', variant: accel, ms, rate: { value: (alex.layers.length / ms) * 1000, unit: 'layers/s' }, ratio: 1, baseline: accel });
    }
    const layers = block1B(256);
    const models: [string, (t: GemmTensors) => unknown][] = [
      ['dpred', (t) => simulateDpred(t)], ['laconic', (t) => simulateLaconic(t)], ['tactical (TCLp, T shape)', (t) => simulateTactical(t)],
    ];
    for (const [variant, fn] of models) {
      const ms = await ctx.timeRuns(() => {
        for (const t of layers) fn(t);
      }, 1);
      rows.push({ area: 'sim', name: '1B-class block (7 linear layers), seq 256', variant, ms, rate: { value: (layers.length / ms) * 1000, unit: 'layers/s' }, ratio: 1, baseline: variant, note: 'synthetic int4/int8 codes, one core' });
    }
    return rows;
  },
};
