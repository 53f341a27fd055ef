// K-quant GEMV (the kernels' gemvKQuant on GGUF super-blocks, int8 activations as the runtime runs
// it, and f32 activations) against the Q4_0 prepared-tile GEMV (int8 activations) of the same run: one 2048×2048 layer through Linear.apply,
// as the runtime multiplies a decode token. GB/s counts the bytes of the weights as stored.
import { type KQuantActivations, createKernels, gemvKQuant } from '@lowbit/kernels';
import { Linear, type LinearWeight, fromF32 } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const N = 2048;
const TYPES = ['Q4_K', 'Q6_K', 'Q5_K', 'Q3_K', 'Q2_K'] as const;

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
  const measured: { variant: string; ms: number; bytes: number }[] = [];
  const time = async (variant: string, w: LinearWeight) => {
    const l = new Linear(k, variant, w);
    try {
      measured.push({ variant, ms: await ctx.measure(() => l.apply(x, 1)), bytes: l.bytes });
    } finally {
      l.free();
    }
  };
  await time('Q4_0 prepared tiles', { format: 'q4_0', shape: [N, N], data: tile('Q4_0') });
  for (const t of TYPES) await time(`${t} int8 activations`, { format: 'kquant', type: t, shape: [N, N], data: tile(t) });
  // the f32-activation path (exact dequantize-then-dot; the scalar build's arithmetic) on resident weights
  for (const t of TYPES) {
    const w = k.upload(tile(t));
    const act: KQuantActivations = 'f32';
    try {
      measured.push({ variant: `${t} f32 activations`, ms: await ctx.measure(() => gemvKQuant(k, t, w, N, N, x, 1, undefined, act)), bytes: w.byteLength });
    } finally {
      w.free();
    }
  }
  const base = measured[0];
  const baseGbps = base.bytes / base.ms / 1e6;
  return measured.map((m) => {
    const gbps = m.bytes / m.ms / 1e6;
    return {
      area: 'kquants', name: `GEMV ${N}×${N}, 1 thread`, variant: m.variant, ms: m.ms, gbps,
      ratio: base.ms / m.ms, baseline: base.variant, note: `${m.bytes} weight bytes; ${(gbps / baseGbps).toFixed(2)}× the Q4_0 row's GB/s`,
    };
  });
}

export const kquantsArea: Area = {
  name: 'kquants',
  async run(ctx: Context) {
    ctx.log('kquants: GEMV per K type vs Q4_0');
    return gemvRows(ctx);
  },
};
