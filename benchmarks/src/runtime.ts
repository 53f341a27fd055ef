// Runtime area: decode and prefill tokens/s of lowbit against llama.cpp (node-llama-cpp, CPU) at equal
// threads and weight type, on the embedded model and on the 1B-class random-weight models made by
// `node tools/make-throughput-model.mjs` (written to $LOWBIT_MODELS, default <os tmpdir>/lowbit-models).
// Each row group's baseline is llama.cpp in the same run. The lowbit row's GB/s is weights streamed
// per decoded token (every linear layer + one embedding row) × tokens/s.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { type Kernels, createKernelPool, createKernels } from '@lowbit/kernels';
import { Session, llamaConfig, loadModel, readGguf } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

export const PREFILL = 64;
const DECODE = 32;
const ROUNDS = 5;

export interface Speed {
  prefillMs: number; // per token
  decodeMs: number; // per token
  // CPU time of this process per token (both engines run in it, one at a time): on a shared
  // machine a one-thread engine's CPU time moves far less with the load than its wall time.
  prefillCpuMs: number;
  decodeCpuMs: number;
}

/** CPU milliseconds (user + system, all threads of this process) since `from`. */
function cpuSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}

/** The same prompt for both engines: PREFILL ids spread over the vocabulary (no specials). */
export async function promptFor(path: string): Promise<number[]> {
  const g = await readGguf(path);
  await g.source.close();
  const vocab = llamaConfig(g).vocabSize;
  return Array.from({ length: PREFILL }, (_, i) => 3 + ((i * 7919) % (vocab - 3)));
}

/** One engine under test: a fresh sequence, then timed prefill and decode (ms per token). */
export interface Engine {
  run(prompt: number[]): Promise<Speed>;
  close(): Promise<void>;
}

async function lowbitEngine(path: string, threads: number): Promise<Engine & { bytesPerToken: number }> {
  const k: Kernels = threads > 1 ? await createKernelPool({ threads }) : await createKernels();
  const model = await loadModel(path, { kernels: k });
  return {
    bytesPerToken: model.bytesPerToken,
    async run(prompt) {
      const s = new Session(model, { ctx: PREFILL + DECODE + 8 });
      let t = performance.now();
      let c = process.cpuUsage();
      s.forward(prompt);
      const prefillMs = (performance.now() - t) / PREFILL;
      const prefillCpuMs = cpuSince(c) / PREFILL;
      t = performance.now();
      c = process.cpuUsage();
      for (let i = 0; i < DECODE; i++) s.forward([prompt[i]]);
      const decodeMs = (performance.now() - t) / DECODE;
      const decodeCpuMs = cpuSince(c) / DECODE;
      s.free(); // its KV caches live in the kernels' WASM memory
      return { prefillMs, decodeMs, prefillCpuMs, decodeCpuMs };
    },
    async close() {
      model.free();
      if ('close' in k) await (k as unknown as { close(): Promise<void> }).close();
    },
  };
}

export async function llamaCppEngine(path: string, threads: number): Promise<Engine> {
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  const model = await llama.loadModel({ modelPath: path });
  const ctx = await model.createContext({ contextSize: 256, threads, batchSize: PREFILL });
  const seq = ctx.getSequence();
  return {
    async run(ids) {
      const prompt = ids as never[];
      await seq.clearHistory();
      let t = performance.now();
      let c = process.cpuUsage();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      const prefillMs = (performance.now() - t) / PREFILL;
      const prefillCpuMs = cpuSince(c) / PREFILL;
      let n = 0;
      t = performance.now();
      c = process.cpuUsage();
      for await (const _ of seq.evaluate([prompt[0]], { temperature: 0 })) {
        if (++n === DECODE) break;
      }
      return { prefillMs, decodeMs: (performance.now() - t) / DECODE, prefillCpuMs, decodeCpuMs: cpuSince(c) / DECODE };
    },
    async close() {
      await ctx.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/**
 * Both engines loaded at once and run in alternating rounds, medians taken: on a shared machine the
 * load changes by the minute, and alternating gives both engines the same conditions.
 */
async function compare(path: string, threads: number, prompt: number[]): Promise<{ theirs: Speed; ours: Speed & { bytesPerToken: number } }> {
  const a = await llamaCppEngine(path, threads);
  const b = await lowbitEngine(path, threads);
  const ra: Speed[] = [];
  const rb: Speed[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      ra.push(await a.run(prompt));
      rb.push(await b.run(prompt));
    }
  } finally {
    await a.close();
    await b.close();
  }
  const med = (r: Speed[]): Speed => ({
    prefillMs: median(r.map((x) => x.prefillMs)),
    decodeMs: median(r.map((x) => x.decodeMs)),
    prefillCpuMs: median(r.map((x) => x.prefillCpuMs)),
    decodeCpuMs: median(r.map((x) => x.decodeCpuMs)),
  });
  return { theirs: med(ra), ours: { ...med(rb), bytesPerToken: b.bytesPerToken } };
}

function rows(name: string, theirs: Speed, ours: Speed & { bytesPerToken: number }): Row[] {
  const tps = (ms: number) => ({ value: 1000 / ms, unit: 'tokens/s' });
  // The CPU-time ratio too. At two threads it counts each engine's waits as its pool spends them
  // (llama.cpp's threads spin, lowbit's workers sleep in Atomics.wait): on a quiet machine wall time
  // is the fair figure there, on a busy one (the spinning threads then lose whole time slices and the
  // wall times mean little) CPU time is the steadier one.
  const cpu = (a: number, b: number) => ({ note: `CPU time ${b.toFixed(1)} ms/token, ratio ${(a / b).toFixed(2)}x in CPU time` });
  const r: Row[] = [
    { area: 'runtime', name: `decode ${name}`, variant: 'llama.cpp', ms: theirs.decodeMs, rate: tps(theirs.decodeMs), ratio: 1, baseline: 'llama.cpp' },
    { area: 'runtime', name: `decode ${name}`, variant: 'lowbit', ms: ours.decodeMs, rate: tps(ours.decodeMs), gbps: ours.bytesPerToken / ours.decodeMs / 1e6, ratio: theirs.decodeMs / ours.decodeMs, baseline: 'llama.cpp' },
    { area: 'runtime', name: `prefill ${PREFILL} ${name}`, variant: 'llama.cpp', ms: theirs.prefillMs, rate: tps(theirs.prefillMs), ratio: 1, baseline: 'llama.cpp' },
    { area: 'runtime', name: `prefill ${PREFILL} ${name}`, variant: 'lowbit', ms: ours.prefillMs, rate: tps(ours.prefillMs), ratio: theirs.prefillMs / ours.prefillMs, baseline: 'llama.cpp', ...cpu(theirs.prefillCpuMs, ours.prefillCpuMs) },
  ];
  r[0].note = `CPU time ${theirs.decodeCpuMs.toFixed(1)} ms/token`;
  r[2].note = `CPU time ${theirs.prefillCpuMs.toFixed(1)} ms/token`;
  return r;
}

/**
 * Where one-thread prefill time goes: wall time of one PREFILL-token forward split by wrapping the
 * Session's linear-layer calls (ggml GEMM incl. activation quantization; the LM head runs for the
 * last token only), the final norm + head, and the kernels' attention and SwiGLU; the rest is JS
 * (RMSNorm, RoPE, residual adds, embedding). Says which costs are worth attacking before the GEMM.
 */
async function prefillShares(path: string, prompt: number[]): Promise<string> {
  const k = await createKernels();
  const model = await loadModel(path, { kernels: k });
  const spent: Record<string, number> = {};
  const undo: (() => void)[] = [];
  const wrap = (obj: Record<string, unknown>, key: string, label: string) => {
    const f = obj[key] as (...a: unknown[]) => unknown;
    obj[key] = function (this: unknown, ...a: unknown[]) {
      const t = performance.now();
      try {
        return f.apply(this, a);
      } finally {
        spent[label] = (spent[label] ?? 0) + performance.now() - t;
      }
    };
    undo.push(() => {
      obj[key] = f;
    });
  };
  const proto = Session.prototype as unknown as Record<string, unknown>;
  wrap(proto, 'linear', 'GEMM');
  wrap(proto, 'linears', 'GEMM');
  const kk = k as unknown as Record<string, unknown>;
  for (const key of ['attention', 'attentionQ8', 'attentionSpan']) wrap(kk, key, 'attention');
  wrap(kk, 'siluMul', 'SwiGLU');
  try {
    const totals: number[] = [];
    const runs: Record<string, number>[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const key of Object.keys(spent)) delete spent[key];
      const s = new Session(model, { ctx: PREFILL + 8 });
      const t = performance.now();
      s.forward(prompt);
      totals.push(performance.now() - t);
      s.free();
      runs.push({ ...spent });
    }
    const i = totals.indexOf(median(totals));
    const total = totals[i];
    const parts = runs[i];
    const other = total - Object.values(parts).reduce((a, b) => a + b, 0);
    const pct = (v: number) => `${((100 * v) / total).toFixed(1)}%`;
    return `one-thread prefill ${PREFILL}: ${Object.entries(parts).map(([a, v]) => `${a} ${pct(v)}`).join(', ')}, JS norms/RoPE/residual/embedding ${pct(other)}`;
  } finally {
    for (const u of undo) u();
    model.free();
  }
}

/**
 * Memory bandwidth of this machine as a decode step uses it: bytes per second of one thread reading
 * 256 MiB of WASM memory (the kernels' read_bytes), each byte read once as a decode step reads each
 * weight once. A copy (the kernels area's memory.copy row) also writes every byte, and reads slower.
 */
async function readGbps(ctx: Context): Promise<number> {
  const k = await createKernels();
  const bytes = 256 * 2 ** 20;
  const p = k.heap.alloc(bytes);
  new Uint8Array(k.memory.buffer, p, bytes).fill(1); // the pages exist before the reads are timed
  const ms = await ctx.measure(() => k.exports.read_bytes(p, bytes), 400);
  k.heap.free(p);
  return bytes / ms / 1e6;
}

export const runtimeArea: Area = {
  name: 'runtime',
  async run(ctx: Context) {
    const dir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models');
    const models: [string, string][] = [['stories260K F32', fileURLToPath(defaultModelUrl)]];
    for (const type of ['Q4_0', 'Q8_0']) {
      const p = join(dir, `throughput-1b-${type}.gguf`);
      if (existsSync(p)) models.push([`1B-class ${type}`, p]);
      else ctx.log(`runtime: ${p} not found (node tools/make-throughput-model.mjs ${dir}); 1B rows skipped`);
    }
    const out: Row[] = [];
    const ceiling = await readGbps(ctx);
    for (const [label, path] of models) {
      for (const threads of [1, 2]) {
        const name = `${label}, ${threads} thread${threads > 1 ? 's' : ''}`;
        ctx.log(`runtime: ${name}`);
        const prompt = await promptFor(path);
        const { theirs, ours } = await compare(path, threads, prompt);
        const r = rows(name, theirs, ours);
        const lowbitDecode = r[1];
        const cpuNote = `; CPU time ${ours.decodeCpuMs.toFixed(1)} ms/token, ratio ${(theirs.decodeCpuMs / ours.decodeCpuMs).toFixed(2)}x in CPU time`;
        lowbitDecode.note = `${(((lowbitDecode.gbps ?? 0) / ceiling) * 100).toFixed(0)}% of the ${ceiling.toFixed(1)} GB/s read bandwidth${cpuNote}`;
        if (threads === 1 && label.startsWith('1B')) r[3].note = `${r[3].note}; ${await prefillShares(path, prompt)}`;
        out.push(...r);
      }
    }
    return out;
  },
};
