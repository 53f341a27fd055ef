// Serving methods that change what a decode step reads. QDEC (decode-time error compensation): a
// quantized model plus the top-k residual columns per layer and token from a JS-heap store; rows per
// k, baseline k = 0 (the plain quantized model, same run). Two shapes: the embedded model's decode
// (RTN int3 g32 and int4 g32 as the runtime runs them, all channels stored as int8;
// 64-wide layers, so the per-token selection is large next to the GEMV) and one 2048×2048 int3 layer, where k columns are a small
// fraction of the weight bytes. Speed only: the residuals are real (W − Ŵ of the model), but
// perplexity lives in `lowbit qdec`.
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { quantizeInt } from '@lowbit/formats';
import { createKernels } from '@lowbit/kernels';
import {
  type DecoderModel, Linear, Session, attachQdec, baseWeightHash, buildQdecStore, dequantizeLinear, encodeColumns, linearWeightFromPacked, loadModel, qdecBytesPerToken,
} from '@lowbit/runtime';
import { type Area, type Context, type Row, ratioRows } from './harness.js';

const PROMPT = 32;
const DECODE = 32;

async function quantizedModel(bits: 3 | 4): Promise<DecoderModel> {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  for (const l of model.linears()) {
    if (l.name === 'output.weight') continue;
    const src = l.source as { data: Float32Array; shape: [number, number] };
    model.setLinear(l.name, linearWeightFromPacked(quantizeInt(src.data, src.shape, { bits, granularity: 'group-cols', group: 32 })));
  }
  return model;
}

async function decodeRows(ctx: Context, bits: 3 | 4): Promise<Row[]> {
  const [reference, base] = [await loadModel(fileURLToPath(defaultModelUrl)), await quantizedModel(bits)];
  try {
    // every channel stored; the per-token choice is among all of them (the speed does not depend on which)
    const saliency = new Map(base.linears().map((l) => [l.name, new Float32Array(l.cols).fill(1)]));
    const store = buildQdecStore(base, reference, saliency, { bits: 8 });
    const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % (base.config.vocabSize - 3)));
    const pass = () => {
      const s = new Session(base, { ctx: PROMPT + DECODE + 1 });
      s.forward(prompt);
      for (let i = 0; i < DECODE; i++) s.forward([prompt[i]]);
      s.free();
    };
    const ks = [0, 4, 16, 64];
    const timed = async (k: number, runs: number) => {
      const h = attachQdec(base, store, { k });
      try {
        return await ctx.timeRuns(pass, runs);
      } finally {
        h.detach();
      }
    };
    // every k's path once untimed first (else the first k timed pays the JIT warm-up), then rounds
    // that alternate the ks, so a slow moment of the machine falls on all of them
    for (const k of ks) await timed(k, 1);
    const runs = new Map<number, number[]>(ks.map((k) => [k, []]));
    for (let round = 0; round < 3; round++) for (const k of ks) runs.get(k)?.push(await timed(k, 3));
    const measured = ks.map((k) => {
      const ms = median(runs.get(k) ?? []) / (PROMPT + DECODE);
      return { variant: `k=${k}`, ms, note: `${(1000 / ms).toFixed(0)} tokens/s; ${qdecBytesPerToken(store, k)} residual bytes/token` };
    });
    return ratioRows('serving', `QDEC decode stories260K RTN int${bits} g32, int8 residuals, 1 thread`, measured);
  } finally {
    reference.free();
    base.free();
  }
}

async function layerRows(ctx: Context): Promise<Row[]> {
  const n = 2048;
  let s = 11;
  const w = Float32Array.from({ length: n * n }, () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) - 0.5);
  const k = await createKernels();
  const layer = new Linear(k, 'int3 2048', linearWeightFromPacked(quantizeInt(w, [n, n], { bits: 3, granularity: 'group-cols', group: 32 })));
  const wq = dequantizeLinear('int3 2048', layer.source);
  const channels = Int32Array.from({ length: n }, (_, c) => c);
  const stored = encodeColumns('int3 2048', n, n, channels, 8, (c, r) => w[r * n + c] - wq[r * n + c], baseWeightHash(wq));
  const model = { name: 'layer', linears: () => [layer], linear: () => layer } as unknown as DecoderModel;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  try {
    const ks = [0, 16, 64, 256];
    const timed = async (kk: number) => {
      const h = attachQdec(model, { layers: new Map([['int3 2048', stored]]) }, { k: kk });
      try {
        return await ctx.measure(() => layer.apply(x, 1), 300);
      } finally {
        h.detach();
      }
    };
    for (const kk of ks) await timed(kk); // warm-up, as above
    const runs = new Map<number, number[]>(ks.map((kk) => [kk, []]));
    for (let round = 0; round < 3; round++) for (const kk of ks) runs.get(kk)?.push(await timed(kk));
    const measured = ks.map((kk) => ({ variant: `k=${kk}`, ms: median(runs.get(kk) ?? []), note: `${kk * (n + 8)} residual bytes/call` }));
    return ratioRows('serving', 'QDEC GEMV 2048×2048 int3 g32 + top-k int8 residual columns', measured);
  } finally {
    layer.free();
  }
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export const servingArea: Area = {
  name: 'serving',
  async run(ctx) {
    return [...(await decodeRows(ctx, 3)), ...(await decodeRows(ctx, 4)), ...(await layerRows(ctx))];
  },
};
