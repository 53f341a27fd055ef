// K-quant GEMV (the kernels' gemvKQuant) against the Q4_0 prepared-tile GEMV (int8 activations) of the
// same run: one 2048×2048 layer, as the runtime multiplies a decode token, one thread. Per K type:
// the prepared tiles the runtime uses (Linear.apply: prepareKQuant at load, int8 activations), and for
// comparison the blocks as GGUF stores them with int8 and with f32 activations. GB/s counts the bytes
// of the weights AS STORED (the type's GGUF bytes; the prepared form holds 2-5% more), so the types
// compare as files do. Rounds interleave the variants; each row is the median over rounds.
import { type KQuantActivations, createKernels, gemvKQuant } from '@lowbit/kernels';
import { Linear, type LinearWeight, fromF32 } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const N = 2048;
const TYPES = ['Q4_K', 'Q6_K', 'Q5_K', 'Q3_K', 'Q2_K'] as const;
const ROUNDS = 3;

async function gemvRows(ctx: Context): Promise<Row[]> {
  let s = 11;
  // 16 distinct rows quantized once and repeated: the GEMV's cost does not depend on the values,
  // and ggml's reference K quantizers take seconds for a whole 2048×2048 matrix in JS
  const rows16 = Float32Array.from({ length: 16 * N }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
  const tile = (type: 'Q4_0' | (typeof TYPES)[number]) => {
    const one = fromF32(type, rows16, N);
    const out = new Uint8Array(one.byteLength * (N / 16));
    for (let i = 0; i < N / 16; i++) out.set(one, i * one.byteLength);
    return out;
  };
  const k = await createKernels();
  const x = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
  const variants: { variant: string; bytes: number; run: () => unknown; free: () => void }[] = [];
  const layer = (variant: string, w: LinearWeight) => {
    const l = new Linear(k, variant, w);
    variants.push({ variant, bytes: l.bytes, run: () => l.apply(x, 1), free: () => l.free() });
  };
  try {
    layer('Q4_0 prepared tiles', { format: 'q4_0', shape: [N, N], data: tile('Q4_0') });
    const blocks = new Map(TYPES.map((t) => [t, tile(t)]));
    for (const t of TYPES) layer(`${t} prepared tiles, int8 activations`, { format: 'kquant', type: t, shape: [N, N], data: blocks.get(t) as Uint8Array });
    // the kernels on the blocks as stored (resident, not repacked): the path before prepared tiles
    for (const act of ['int8', 'f32'] as KQuantActivations[]) {
      for (const t of TYPES) {
        const w = k.upload(blocks.get(t) as Uint8Array);
        variants.push({ variant: `${t} blocks as stored, ${act} activations`, bytes: w.byteLength, run: () => gemvKQuant(k, t, w, N, N, x, 1, undefined, act), free: () => w.free() });
      }
    }
    const ms: number[][] = variants.map(() => []);
    for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < variants.length; i++) ms[i].push(await ctx.measure(variants[i].run, 250));
    const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];
    const measured = variants.map((v, i) => ({ variant: v.variant, bytes: v.bytes, ms: median(ms[i]) }));
    const base = measured[0];
    const baseGbps = base.bytes / base.ms / 1e6;
    return measured.map((m) => {
      const gbps = m.bytes / m.ms / 1e6;
      return {
        area: 'kquants', name: `GEMV ${N}×${N}, 1 thread`, variant: m.variant, ms: m.ms, gbps,
        ratio: base.ms / m.ms, baseline: base.variant, note: `${m.bytes} weight bytes as stored; ${(gbps / baseGbps).toFixed(2)}× the Q4_0 row's GB/s`,
      };
    });
  } finally {
    for (const v of variants) v.free();
  }
}

export const kquantsArea: Area = {
  name: 'kquants',
  async run(ctx: Context) {
    ctx.log('kquants: GEMV per K type (prepared tiles and blocks as stored) vs Q4_0 prepared tiles');
    return gemvRows(ctx);
  },
};
