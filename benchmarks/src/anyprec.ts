// Any-precision serving: one nested 3..8-bit model resident once, the width chosen per call. Rows per
// width: decode ms/token of the embedded model (every block linear nested; the LM head stays f32),
// and the GEMV of one 2048×2048 nested layer, where the bytes a call reads (top b planes + that
// width's table) grow with b. Baseline: the 3-bit row of the same group. The nested models come from
// @lowbit/formats' plain k-means upscaling (speed does not depend on how the levels were fitted).
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { quantizeAnyPrecision } from '@lowbit/formats';
import { createKernels } from '@lowbit/kernels';
import { Linear, Session, linearWeightFromPacked, loadModel } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const WIDTHS = [3, 4, 5, 6, 7, 8];
const PROMPT = 32;
const DECODE = 32;

function rowsFor(name: string, measured: { bits: number; ms: number; bytes: number; rate?: { value: number; unit: string } }[]): Row[] {
  const base = measured[0];
  return measured.map((m) => ({
    area: 'anyprec', name, variant: `${m.bits}-bit`, ms: m.ms, gbps: m.bytes / m.ms / 1e6, ...(m.rate ? { rate: m.rate } : {}),
    ratio: base.ms / m.ms, baseline: `${base.bits}-bit`, note: `${m.bytes} weight bytes read per call`,
  }));
}

async function decodeRows(ctx: Context): Promise<Row[]> {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  try {
    for (const l of model.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      model.setLinear(l.name, linearWeightFromPacked(quantizeAnyPrecision(src.data, src.shape, { seedBits: 3, maxBits: 8 })));
    }
    const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % (model.config.vocabSize - 3)));
    const pass = (bits: number) => {
      const s = new Session(model, { ctx: PROMPT + DECODE + 1, bits });
      s.forward(prompt);
      for (let i = 0; i < DECODE; i++) s.forward([prompt[i]]);
      s.free();
    };
    // one untimed pass per width first: otherwise the first width timed also pays the JIT warm-up
    for (const bits of WIDTHS) pass(bits);
    const measured = [];
    for (const bits of WIDTHS) {
      const ms = await ctx.timeRuns(() => pass(bits), 5);
      // the prompt's batch runs the same GEMV per token, so the run is PROMPT + DECODE token steps
      const perToken = ms / (PROMPT + DECODE);
      const bytes = model.linears().reduce((s, l) => s + l.bytesAt(l.bitRange ? bits : undefined), 0);
      measured.push({ bits, ms: perToken, bytes, rate: { value: 1000 / perToken, unit: 'tokens/s' } });
    }
    return rowsFor('decode stories260K, nested 3..8 (block linears), 1 thread', measured);
  } finally {
    model.free();
  }
}

async function gemvRows(ctx: Context): Promise<Row[]> {
  const n = 2048;
  let s = 7;
  const w = Float32Array.from({ length: n * n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
  // a 2048-column row clusters slowly with 256 levels: one row's codebook is cloned to every row
  // (the GEMV's cost does not depend on the values)
  const one = quantizeAnyPrecision(w.subarray(0, n), [1, n], { seedBits: 3, maxBits: 8 });
  const rpb = n / 8;
  const planes = new Uint8Array(8 * n * rpb);
  for (let b = 0; b < 8; b++) for (let r = 0; r < n; r++) planes.set(one.planes.subarray(b * rpb, (b + 1) * rpb), (b * n + r) * rpb);
  const luts = one.luts.map((l) => {
    const out = new Float32Array(n * l.length);
    for (let r = 0; r < n; r++) out.set(l, r * l.length);
    return out;
  });
  const k = await createKernels();
  const layer = new Linear(k, 'nested 2048', { format: 'any-precision', shape: [n, n], tensor: { kind: 'any-precision', seedBits: 3, maxBits: 8, shape: [n, n], luts, planes } });
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  try {
    const measured = [];
    for (const bits of WIDTHS) measured.push({ bits, ms: await ctx.measure(() => layer.apply(x, 1, undefined, bits)), bytes: layer.bytesAt(bits) });
    return rowsFor('GEMV 2048×2048 nested 3..8, top b planes', measured);
  } finally {
    layer.free();
  }
}

export const anyprecArea: Area = {
  name: 'anyprec',
  async run(ctx: Context) {
    ctx.log('anyprec: decode per width');
    const out = await decodeRows(ctx);
    ctx.log('anyprec: GEMV per width');
    out.push(...(await gemvRows(ctx)));
    return out;
  },
};
