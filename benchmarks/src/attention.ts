// Attention spans and compressed KV caches (#18). Rows:
// - one decode token's attention at position 2047 (caches full) over every layer, full attention
//   (baseline) against per-head spans: stories260K's shape with spans calibrated on the calibration
//   text (ctx 256, ε 0.01), and a 1B-class shape (22 layers, 32 heads, 4 kv heads, headDim 64) with
//   every span 256; random states (the time does not depend on them);
// - decode of stories260K, 256 tokens one at a time through a fresh cache: the f32 cache (baseline)
//   against CompressedKvCache at 8 and 4 bits and 4 bits with MiniCache (encode, store, decode and
//   write back per token, on top of the same attention), and the int8-resident cache (Session
//   int8Cache: kernels.attentionQ8 reads the codes);
// - the int8 kernel's attention at position 2047 against the f32 kernel's (1B-class shape).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type Kernels, createKernels } from '@lowbit/kernels';
import { CompressedKvCache, Session, calibrateSpans, loadModel, tokenizeDocuments } from '@lowbit/runtime';
import { type Area, type Context, type Row, ratioRows } from './harness.js';

const POS = 2047;

function attentionPass(k: Kernels, shape: { nLayers: number; nHeads: number; nKvHeads: number; headDim: number }, spans?: Int32Array) {
  const { nLayers, nHeads, nKvHeads, headDim } = shape;
  const kvDim = nKvHeads * headDim;
  let s = 3;
  const next = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const rand = (n: number) => Float32Array.from({ length: n }, next);
  const keys = k.upload(rand(nLayers * (POS + 1) * kvDim));
  const values = k.upload(rand(nLayers * (POS + 1) * kvDim));
  const q = rand(nHeads * headDim);
  const kv = rand(kvDim);
  const out = new Float32Array(nHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const run = () => {
    for (let l = 0; l < nLayers; l++) {
      const off = l * (POS + 1) * kvDim;
      if (spans) k.attentionSpan(q, kv, kv, keys, values, off, POS, 1, nHeads, nKvHeads, headDim, scale, spans.subarray(l * nHeads, (l + 1) * nHeads), out);
      else k.attention(q, kv, kv, keys, values, off, POS, 1, nHeads, nKvHeads, headDim, scale, out);
    }
  };
  return { run, free: () => (keys.free(), values.free()) };
}

async function attentionRows(ctx: Context, k: Kernels, name: string, shape: { nLayers: number; nHeads: number; nKvHeads: number; headDim: number }, spans: Int32Array): Promise<Row[]> {
  const reads = (z?: Int32Array) => (z ? Array.from(z, (x) => Math.min(x, POS + 1)).reduce((a, b) => a + b, 0) : shape.nLayers * shape.nHeads * (POS + 1));
  const measured = [];
  for (const [variant, z] of [['full', undefined], ['spans', spans]] as const) {
    const p = attentionPass(k, shape, z);
    const ms = await ctx.measure(p.run);
    p.free();
    measured.push({ variant, ms, note: `${reads(z)} key reads per token` });
  }
  return ratioRows('attention', name, measured);
}

/** One decode token's attention at position POS over every layer: the f32 cache against int8 codes. */
async function q8Rows(ctx: Context, k: Kernels, name: string, shape: { nLayers: number; nHeads: number; nKvHeads: number; headDim: number }): Promise<Row[]> {
  const { nLayers, nHeads, nKvHeads, headDim } = shape;
  const kvDim = nKvHeads * headDim;
  const len = nLayers * (POS + 1) * kvDim;
  let s = 5;
  const next = () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
  const codes = () => k.upload(Int8Array.from({ length: len }, () => Math.round(next() * 254)));
  const scales = () => k.upload(Float32Array.from({ length: len / headDim }, () => 0.01 + Math.abs(next()) * 0.01));
  const [kc, vc, ks, vs] = [codes(), codes(), scales(), scales()];
  const f32 = attentionPass(k, shape);
  const q = Float32Array.from({ length: nHeads * headDim }, next);
  const kv = Float32Array.from({ length: kvDim }, next);
  const out = new Float32Array(nHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  const int8 = () => {
    for (let l = 0; l < nLayers; l++) k.attentionQ8(q, kv, kv, kc, ks, vc, vs, l * (POS + 1) * kvDim, POS, 1, nHeads, nKvHeads, headDim, scale, out);
  };
  const bytes = (perValue: number) => 2 * nLayers * (POS + 1) * kvDim * perValue + (perValue === 1 ? 2 * nLayers * (POS + 1) * nKvHeads * 4 : 0);
  const measured = [
    { variant: 'f32 cache', ms: await ctx.measure(f32.run), bytes: bytes(4) },
    { variant: 'int8 codes', ms: await ctx.measure(int8), bytes: bytes(1) },
  ];
  f32.free();
  for (const t of [kc, vc, ks, vs]) t.free();
  return ratioRows('attention', name, measured);
}

async function kvRows(ctx: Context): Promise<Row[]> {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  try {
    const ids = tokenizeDocuments(model, readFileSync(fileURLToPath(validTextUrl), 'utf8')).slice(0, 256);
    const c = model.config;
    const pass = (kvCache?: () => CompressedKvCache, int8Cache = false) => () => {
      const s = new Session(model, { ctx: 256, kvCache: kvCache?.(), int8Cache });
      for (const id of ids) s.forward([id]);
      s.free();
    };
    const variants: [string, (() => CompressedKvCache) | undefined][] = [
      ['f32 cache', undefined],
      ['8-bit', () => new CompressedKvCache(c, 256, { bits: 8 })],
      ['4-bit', () => new CompressedKvCache(c, 256, { bits: 4 })],
      ['4-bit + MiniCache [3,4]', () => new CompressedKvCache(c, 256, { bits: 4, minicache: {} })],
      ['int8 resident (attentionQ8)', undefined],
    ];
    const run = (variant: string, kv?: () => CompressedKvCache) => pass(kv, variant.startsWith('int8 resident'));
    for (const [variant, kv] of variants) run(variant, kv)(); // JIT warm-up for every path before timing any
    const measured = [];
    for (const [variant, kv] of variants) {
      const ms = (await ctx.timeRuns(run(variant, kv), 5)) / ids.length;
      measured.push({ variant, ms, note: `${(1000 / ms).toFixed(0)} tokens/s` });
    }
    return ratioRows('attention', 'decode stories260K, 256 tokens one by one, KV cache', measured).map((r) => ({ ...r, rate: { value: 1000 / r.ms, unit: 'tokens/s' } }));
  } finally {
    model.free();
  }
}

export const attentionArea: Area = {
  name: 'attention',
  async run(ctx) {
    const k = await createKernels();
    const model = await loadModel(fileURLToPath(defaultModelUrl), { kernels: k });
    const cal = calibrateSpans(model, readFileSync(fileURLToPath(calibrationTextUrl), 'utf8'), { ctx: 256, maxWindows: 16, eps: 0.01 });
    model.free();
    const oneB = { nLayers: 22, nHeads: 32, nKvHeads: 4, headDim: 64 };
    return [
      ...(await attentionRows(ctx, k, `attention of a decode token at position ${POS}, stories260K shape, spans (ctx 256, ε 0.01)`, model.config, cal.spans)),
      ...(await attentionRows(ctx, k, `attention of a decode token at position ${POS}, 1B-class shape, every span 256`, oneB, new Int32Array(oneB.nLayers * oneB.nHeads).fill(256))),
      ...(await q8Rows(ctx, k, `attention of a decode token at position ${POS}, 1B-class shape, f32 vs int8 cache`, oneB)),
      ...(await kvRows(ctx)),
    ];
  },
};
