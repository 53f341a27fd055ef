// K-quant GEMV (the kernels' gemvKQuant) against the Q4_0 prepared-tile GEMV (int8 activations) of the
// same run: one 2048×2048 layer, as the runtime multiplies a decode token, one thread. Per K type:
// the prepared tiles the runtime uses (Linear.apply: prepareKQuant at load, int8 activations), and for
// comparison the blocks as GGUF stores them with int8 and with f32 activations. GB/s counts the bytes
// of the weights AS STORED (the type's GGUF bytes; the prepared form holds 2-5% more), so the types
// compare as files do. Rounds interleave the variants; each row is the median over rounds.
// Then prefill: the batched K-quant GEMM (a prepared tile unpacked once per four tokens) against the
// same tiles multiplied one token at a time, on one layer; the load-time repack into prepared tiles
// (SIMD against the weight-by-weight reference); and whole-model prefill of the 1B-class
// random Llama (tools/make-throughput-model.mjs … Q4_K Q6_K) in lowbit against llama.cpp in the same
// run. Last, llama.cpp's own decode GB/s at Q2_K, Q3_K and Q4_0: what its kernels reach on this
// machine, the reference for lowbit's Q2_K/Q3_K GEMV ratio to Q4_0.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KQuantActivations, createKernels, gemvKQuant } from '@lowbit/kernels';
import { Linear, type LinearWeight, Session, fromF32, loadModel, readGguf } from '@lowbit/runtime';
import { type Area, type Context, type Row, ratioRows } from './harness.js';
import { PREFILL, type Speed, llamaCppEngine, promptFor } from './runtime.js';

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

const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1];

/** 16 distinct random rows of N in `type`, quantized once, repeated to [N, N] (as gemvRows). */
function repeatedRows(type: string): Uint8Array {
  let s = 11;
  const rows16 = Float32Array.from({ length: 16 * N }, () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5);
  const one = fromF32(type as 'Q4_0', rows16, N);
  const out = new Uint8Array(one.byteLength * (N / 16));
  for (let i = 0; i < N / 16; i++) out.set(one, i * one.byteLength);
  return out;
}

// One N×N layer against PREFILL tokens, one thread: the batched kernel (Linear.apply with the whole
// batch) vs the same prepared tiles one token at a time (batch 1 calls: the per-token GEMV, what a
// batch cost before the batched kernel); Q4_0's prefill GEMM as the reference.
async function gemmRows(ctx: Context): Promise<Row[]> {
  const k = await createKernels();
  const x = Float32Array.from({ length: PREFILL * N }, (_, i) => Math.sin(0.37 * i));
  const variants: { variant: string; run: () => unknown; free: () => void }[] = [];
  const flops = 2 * N * N * PREFILL;
  try {
    const q40 = new Linear(k, 'Q4_0', { format: 'q4_0', shape: [N, N], data: repeatedRows('Q4_0') });
    variants.push({ variant: 'Q4_0 prefill GEMM', run: () => q40.apply(x, PREFILL), free: () => q40.free() });
    for (const t of TYPES) {
      const l = new Linear(k, t, { format: 'kquant', type: t, shape: [N, N], data: repeatedRows(t) });
      variants.push({ variant: `${t} batched`, run: () => l.apply(x, PREFILL), free: () => {} });
      variants.push({
        variant: `${t} per token`,
        run: () => {
          for (let b = 0; b < PREFILL; b++) l.apply(x.subarray(b * N, (b + 1) * N), 1);
        },
        free: () => l.free(),
      });
    }
    const ms: number[][] = variants.map(() => []);
    for (let r = 0; r < ROUNDS; r++) for (let i = 0; i < variants.length; i++) ms[i].push(await ctx.measure(variants[i].run, 300));
    const m = ms.map(median);
    return variants.map((v, i) => {
      const perToken = v.variant.endsWith('batched') ? m[i + 1] : 0;
      return {
        area: 'kquants', name: `GEMM ${N}×${N} × ${PREFILL} tokens, 1 thread`, variant: v.variant, ms: m[i], gflops: flops / m[i] / 1e6,
        ratio: m[0] / m[i], baseline: variants[0].variant,
        note: perToken ? `${(perToken / m[i]).toFixed(2)}× the per-token row's speed` : undefined,
      };
    });
  } finally {
    for (const v of variants) v.free();
  }
}

/** The load-time repack's exports (assembly/kquants.ts), raw: the reference is not part of the typed API. */
interface PrepareExports {
  prepare_kquant(t: number, src: number, rows: number, cols: number, dst: number): number;
  prepare_kquant_ref(t: number, src: number, rows: number, cols: number, dst: number): number;
  kquant_tiles_bytes(t: number, rows: number, cols: number): number;
}
const TYPE_ID = { Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14 } as const;

// The load-time repack of one N×N matrix of blocks into prepared tiles (what loadModel runs per
// K-quant matrix), per type: the SIMD prepare_kquant against prepare_kquant_ref, the weight-by-weight
// definition it replaced, on the same blocks. GB/s of source blocks.
async function prepareRows(ctx: Context): Promise<Row[]> {
  const k = await createKernels();
  const ex = k.exports as unknown as PrepareExports;
  const rows: Row[] = [];
  for (const t of TYPES) {
    const blocks = repeatedRows(t);
    const src = k.upload(blocks);
    const size = ex.kquant_tiles_bytes(TYPE_ID[t], N, N) >>> 0;
    const dst = k.heap.alloc(size);
    try {
      const measured = [];
      for (const [variant, fn] of [['weight by weight (prepare_kquant_ref)', ex.prepare_kquant_ref], ['SIMD records (prepare_kquant)', ex.prepare_kquant]] as const) {
        measured.push({ variant: `${t} ${variant}`, ms: await ctx.measure(() => fn(TYPE_ID[t], src.ptr, N, N, dst), 250), bytes: blocks.byteLength });
      }
      rows.push(...ratioRows('kquants', `prepare ${t} ${N}×${N} (load-time repack), 1 thread`, measured));
    } finally {
      k.heap.free(dst);
      src.free();
    }
  }
  return rows;
}

const MODELS_DIR = () => process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models');

/** Weight bytes a decode step streams in a GGUF: every matrix but the embedding, plus one embedding row. */
async function decodeBytes(path: string): Promise<number> {
  const g = await readGguf(path);
  await g.source.close();
  let bytes = 0;
  for (const t of g.tensors.values()) {
    if (t.name === 'token_embd.weight') bytes += t.byteLength / t.shape[1];
    else if (t.shape.length === 2 && t.shape[1] > 1) bytes += t.byteLength;
  }
  return bytes;
}

// Prefill of PREFILL tokens, one thread, on the 1B-class model per K type: llama.cpp, lowbit in one
// batch (the batched kernel), and lowbit token by token (the per-token GEMV and attention per step;
// one round). Rounds alternate the engines; medians.
async function prefillRows(ctx: Context): Promise<Row[]> {
  const out: Row[] = [];
  for (const type of ['Q4_K', 'Q6_K']) {
    const path = join(MODELS_DIR(), `throughput-1b-${type}.gguf`);
    if (!existsSync(path)) {
      ctx.log(`kquants: ${path} not found (node tools/make-throughput-model.mjs ${MODELS_DIR()} ${type}); prefill rows skipped`);
      continue;
    }
    ctx.log(`kquants: prefill ${PREFILL} tokens, 1B-class ${type}, 1 thread`);
    const prompt = await promptFor(path);
    const theirs = await llamaCppEngine(path, 1);
    const model = await loadModel(path, { kernels: await createKernels() });
    const ms: number[][] = [[], [], []];
    try {
      for (let r = 0; r < ROUNDS; r++) {
        const sp: Speed = await theirs.run(prompt);
        ms[0].push(sp.prefillMs * PREFILL);
        let s = new Session(model, { ctx: PREFILL + 8 });
        let t = performance.now();
        s.forward(prompt);
        ms[1].push(performance.now() - t);
        s.free();
        if (r > 0) continue;
        // token by token once: the reference for what the batch saves, not a target
        s = new Session(model, { ctx: PREFILL + 8 });
        t = performance.now();
        for (const id of prompt) s.forward([id]);
        ms[2].push(performance.now() - t);
        s.free();
      }
    } finally {
      await theirs.close();
      model.free();
    }
    const m = ms.map(median);
    const names = ['llama.cpp', 'lowbit, one batch', 'lowbit, token by token'];
    m.forEach((v, i) =>
      out.push({
        area: 'kquants', name: `prefill ${PREFILL} tokens, 1B-class ${type}, 1 thread`, variant: names[i], ms: v,
        rate: { value: (PREFILL * 1000) / v, unit: 'tokens/s' }, ratio: m[0] / v, baseline: 'llama.cpp',
        note: i === 1 ? `${(m[2] / v).toFixed(2)}× lowbit token by token` : undefined,
      }),
    );
  }
  return out;
}

// llama.cpp's decode tokens/s at Q2_K, Q3_K, Q4_0 (1 thread) as GB/s of weights streamed per token:
// the ratio its own K kernels reach against Q4_0 on this machine.
async function llamaDecodeRows(ctx: Context): Promise<Row[]> {
  const measured: { variant: string; ms: number; bytes: number }[] = [];
  for (const type of ['Q4_0', 'Q2_K', 'Q3_K']) {
    const path = join(MODELS_DIR(), `throughput-1b-${type}.gguf`);
    if (!existsSync(path)) {
      ctx.log(`kquants: ${path} not found (node tools/make-throughput-model.mjs ${MODELS_DIR()} ${type}); llama.cpp decode row skipped`);
      continue;
    }
    ctx.log(`kquants: llama.cpp decode, 1B-class ${type}, 1 thread`);
    const prompt = (await promptFor(path)).slice(0, 8);
    const e = await llamaCppEngine(path, 1);
    const ms: number[] = [];
    try {
      for (let r = 0; r < ROUNDS; r++) ms.push((await e.run(prompt)).decodeMs);
    } finally {
      await e.close();
    }
    measured.push({ variant: `llama.cpp ${type}`, ms: median(ms), bytes: await decodeBytes(path) });
  }
  if (measured.length === 0 || !measured[0].variant.endsWith('Q4_0')) return [];
  const baseGbps = measured[0].bytes / measured[0].ms / 1e6;
  return measured.map((m) => {
    const gbps = m.bytes / m.ms / 1e6;
    return {
      area: 'kquants', name: 'llama.cpp decode, 1B-class, 1 thread', variant: m.variant, ms: m.ms, gbps, rate: { value: 1000 / m.ms, unit: 'tokens/s' },
      ratio: measured[0].ms / m.ms, baseline: measured[0].variant, note: `${(m.bytes / 1e6).toFixed(0)} MB per token; ${(gbps / baseGbps).toFixed(2)}× the Q4_0 row's GB/s`,
    };
  });
}

export const kquantsArea: Area = {
  name: 'kquants',
  async run(ctx: Context) {
    ctx.log('kquants: GEMV per K type (prepared tiles and blocks as stored) vs Q4_0 prepared tiles');
    const rows = await gemvRows(ctx);
    ctx.log(`kquants: GEMM ${N}×${N} × ${PREFILL} tokens per K type, batched vs per token`);
    rows.push(...(await gemmRows(ctx)));
    ctx.log(`kquants: prepare ${N}×${N} per K type, SIMD vs weight by weight`);
    rows.push(...(await prepareRows(ctx)));
    rows.push(...(await prefillRows(ctx)));
    rows.push(...(await llamaDecodeRows(ctx)));
    return rows;
  },
};
