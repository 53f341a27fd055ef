// Big-model area: a 7B-class Llama at Q8_0 (~7.2 GB of weights, more than one 4 GiB WebAssembly
// memory holds) loaded by lowbit over several kernel instances (LoadOptions.maxInstanceBytes), and at
// Q4_K_M (~4.1 GB, the type most downloaded GGUFs have: one instance, K-quant tiles), each against
// llama.cpp (node-llama-cpp, CPU) on the same file at the same thread count (one; a sharded model
// also runs on thread pools, one per instance, not measured here so that the area loads the 7 GB
// file once). The files are made by `node tools/make-7b-model.mjs [dir] Q8_0` and `... Q4_K_M` (random
// weights, written to $LOWBIT_MODELS, default <os tmpdir>/lowbit-models); a file not there, or a machine
// with less than 16 GiB of memory, skips its rows with a message. LOWBIT_BIG_MODEL=Q4_K_M (a
// comma-separated list; default Q4_K_M,Q8_0,F16; Q8_0@2 adds 2-thread decode) picks the rows; F16: the load of the 1B-class
// F16 file (loadF16).
// lowbit loads first and runs one round, and its peak RSS (process.resourceUsage().maxRSS, a
// high-water mark) is read then, before llama.cpp maps the file; both stay loaded (~14 GB together)
// and run alternating rounds. Load times are with the file in the page cache (it was just written or
// read): they measure parsing and copying, not the disk.
import { existsSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createKernelPool, createKernels } from '@lowbit/kernels';
import { Session, loadModel } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const PROMPT = 8;
const DECODE = 8;
const ROUNDS = 3;
const TYPES = (process.env.LOWBIT_BIG_MODEL ?? 'Q4_K_M,Q8_0,F16').split(',');

const prompt = Array.from({ length: PROMPT }, (_, i) => 3 + ((i * 7919) % 31997));
const gib = (bytes: number) => bytes / 2 ** 30;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

interface Speed {
  prefillMs: number; // per token
  decodeMs: number; // per token
  decodeCpuMs?: number; // process CPU time per decoded token (all threads; llama.cpp's run in this process too)
}

const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e3;
};

interface Engine {
  loadMs: number;
  /** Resident bytes the engine added: lowbit's peak RSS, llama.cpp's RSS growth (mapped pages). */
  rssBytes: number;
  note: string;
  run(): Promise<Speed>;
  close(): Promise<void>;
}

async function lowbit(path: string, ctx: Context, threads = 1): Promise<Engine & { bytesPerToken: number }> {
  const k = threads > 1 ? await createKernelPool({ threads }) : await createKernels();
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const model = await loadModel(path, { kernels: k });
  const loadMs = performance.now() - t;
  // CPU time as well as wall time: on a shared machine the wall time of a minute-long load is mostly waiting
  const cpu = process.cpuUsage(cpu0);
  const wasm = model.instances.map((i) => gib(i.memory.buffer.byteLength).toFixed(2));
  const note = `${wasm.length} kernel instances, ${wasm.join(' + ')} GiB of WASM memory; load CPU ${(cpu.user / 1e6).toFixed(0)} s user + ${(cpu.system / 1e6).toFixed(0)} s system`;
  ctx.log(`big-model: lowbit loaded in ${(loadMs / 1000).toFixed(1)} s on ${note}`);
  const run = async (): Promise<Speed> => {
    const s = new Session(model, { ctx: PROMPT + DECODE + 8 });
    let t0 = performance.now();
    s.forward(prompt);
    const prefillMs = (performance.now() - t0) / PROMPT;
    t0 = performance.now();
    const c0 = cpuMs();
    for (let i = 0; i < DECODE; i++) s.forward([prompt[i]]);
    const decodeMs = (performance.now() - t0) / DECODE;
    const decodeCpuMs = (cpuMs() - c0) / DECODE;
    s.free();
    return { prefillMs, decodeMs, decodeCpuMs };
  };
  return { loadMs, rssBytes: 0, note, bytesPerToken: model.bytesPerToken, run, close: async () => model.free() };
}

async function llamaCpp(path: string, ctx: Context, useMmap = true, threads = 1): Promise<Engine> {
  const { getLlama } = await import('node-llama-cpp');
  const rss0 = process.memoryUsage().rss;
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never, progressLogs: false });
  const t = performance.now();
  const model = await llama.loadModel({ modelPath: path, useMmap });
  const c = await model.createContext({ contextSize: 256, threads, batchSize: PROMPT });
  const loadMs = performance.now() - t;
  const seq = c.getSequence();
  ctx.log(`big-model: llama.cpp${useMmap ? '' : ' (no mmap)'} loaded in ${(loadMs / 1000).toFixed(1)} s`);
  const engine: Engine = {
    loadMs,
    rssBytes: 0,
    note: '',
    async run() {
      await seq.clearHistory();
      let t0 = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt as never[]);
      const prefillMs = (performance.now() - t0) / PROMPT;
      let n = 0;
      t0 = performance.now();
      const c0 = cpuMs();
      for await (const _ of seq.evaluate([prompt[0]] as never[], { temperature: 0 })) {
        if (++n === DECODE) break;
      }
      // llama.cpp maps the file: its pages count in RSS once touched (the page cache's copy, not a second one)
      engine.rssBytes = Math.max(engine.rssBytes, process.memoryUsage().rss - rss0);
      engine.note = `${useMmap ? 'mmap' : 'read into memory'}; RSS grew ${gib(engine.rssBytes).toFixed(2)} GiB${useMmap ? ' (mapped file pages)' : ''}`;
      return { prefillMs, decodeMs: (performance.now() - t0) / DECODE, decodeCpuMs: (cpuMs() - c0) / DECODE };
    },
    async close() {
      await c.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
  return engine;
}

export const bigModelArea: Area = {
  name: 'big-model',
  async run(ctx: Context) {
    const dir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models');
    if (totalmem() < 16 * 2 ** 30) {
      ctx.log(`big-model: ${gib(totalmem()).toFixed(1)} GiB of memory; the 7B-class rows need 16 GiB; skipped`);
      return [];
    }
    const rows: Row[] = [];
    for (const type of TYPES) {
      if (type === 'Q8_0@2') {
        rows.push(...(await twoThreads(join(dir, 'random-7b-Q8_0.gguf'), ctx)));
        continue;
      }
      if (type === 'F16') {
        rows.push(...(await loadF16(dir, ctx)));
        continue;
      }
      const path = join(dir, `random-7b-${type}.gguf`);
      if (!existsSync(path)) ctx.log(`big-model: ${path} not found (node tools/make-7b-model.mjs ${dir} ${type}); skipped`);
      // peak RSS is a process high-water mark: exact for the first type only (LOWBIT_BIG_MODEL=Q8_0 alone for its own)
      else rows.push(...(await measure(path, `7B-class ${type}, 1 thread`, ctx)));
    }
    return rows;
  },
};

async function measure(path: string, label: string, ctx: Context): Promise<Row[]> {
  // lowbit first, one round, and its peak RSS read then: a high-water mark, read before llama.cpp maps the file
  const ours = await lowbit(path, ctx);
  const rb = [await ours.run()];
  ours.rssBytes = process.resourceUsage().maxRSS * 1024;
  ours.note += `; peak RSS ${gib(ours.rssBytes).toFixed(2)} GiB (process high-water mark, before llama.cpp loads)`;
  const theirs = await llamaCpp(path, ctx);
  const ra: Speed[] = [];
  try {
    // alternating rounds, medians: on a shared machine the load changes by the minute
    for (let r = 0; r < ROUNDS; r++) {
      ra.push(await theirs.run());
      if (r < ROUNDS - 1) rb.push(await ours.run());
    }
  } finally {
    await ours.close();
    await theirs.close();
  }
  // llama.cpp's default maps the file (4 KiB page-cache pages); read into its own memory it may stream
  // faster (anonymous memory can get transparent huge pages). Alone, after the others are closed.
  const plain = await llamaCpp(path, ctx, false);
  const rc: Speed[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) rc.push(await plain.run());
  } finally {
    await plain.close();
  }
  const med = (v: Speed[]): Speed => ({ prefillMs: median(v.map((x) => x.prefillMs)), decodeMs: median(v.map((x) => x.decodeMs)) });
  const [a, b, c] = [med(ra), med(rb), med(rc)];
  ctx.log(`big-model: decode ms/token llama.cpp ${ra.map((x) => x.decodeMs.toFixed(0)).join(' ')}, lowbit ${rb.map((x) => x.decodeMs.toFixed(0)).join(' ')}, llama.cpp no mmap ${rc.map((x) => x.decodeMs.toFixed(0)).join(' ')}`);
  const tps = (ms: number) => ({ value: 1000 / ms, unit: 'tokens/s' });
  const row = (name: string, variant: string, ms: number, ratio: number, extra: Partial<Row> = {}): Row => ({ area: 'big-model', name, variant, ms, ratio, baseline: 'llama.cpp', ...extra });
  return [
    row(`load ${label}`, 'llama.cpp', theirs.loadMs, 1, { rate: { value: gib(theirs.rssBytes), unit: 'GiB RSS' }, note: theirs.note }),
    row(`load ${label}`, 'llama.cpp, no mmap', plain.loadMs, theirs.loadMs / plain.loadMs, { rate: { value: gib(plain.rssBytes), unit: 'GiB RSS' }, note: plain.note }),
    row(`load ${label}`, 'lowbit', ours.loadMs, theirs.loadMs / ours.loadMs, { rate: { value: gib(ours.rssBytes), unit: 'GiB peak RSS' }, note: ours.note }),
    row(`decode ${label}`, 'llama.cpp', a.decodeMs, 1, { rate: tps(a.decodeMs) }),
    row(`decode ${label}`, 'llama.cpp, no mmap', c.decodeMs, a.decodeMs / c.decodeMs, { rate: tps(c.decodeMs) }),
    row(`decode ${label}`, 'lowbit', b.decodeMs, a.decodeMs / b.decodeMs, { rate: tps(b.decodeMs), gbps: ours.bytesPerToken / b.decodeMs / 1e6 }),
    row(`prefill ${PROMPT} ${label}`, 'llama.cpp', a.prefillMs, 1, { rate: tps(a.prefillMs) }),
    row(`prefill ${PROMPT} ${label}`, 'llama.cpp, no mmap', c.prefillMs, a.prefillMs / c.prefillMs, { rate: tps(c.prefillMs) }),
    row(`prefill ${PROMPT} ${label}`, 'lowbit', b.prefillMs, a.prefillMs / b.prefillMs, { rate: tps(b.prefillMs) }),
  ];
}

/**
 * Load only, of the 1B-class F16 file (node tools/make-throughput-model.mjs <dir> F16, 2.2 GB): lowbit
 * decodes every matrix to f32 (4.4 GiB resident, two instances) against llama.cpp reading the file
 * into its own memory (no mmap; it keeps F16). CPU time in the note: wall time follows the machine's other jobs.
 */
async function loadF16(dir: string, ctx: Context): Promise<Row[]> {
  const path = join(dir, 'throughput-1b-F16.gguf');
  if (!existsSync(path)) {
    ctx.log(`big-model: ${path} not found (node tools/make-throughput-model.mjs ${dir} F16); skipped`);
    return [];
  }
  const name = 'load 1B-class F16';
  const t = performance.now();
  const cpu0 = process.cpuUsage();
  const model = await loadModel(path, { kernels: await createKernels() });
  const ms = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  model.free();
  const theirs = await llamaCpp(path, ctx, false);
  await theirs.close();
  const note = `lowbit CPU ${(cpu.user / 1e6).toFixed(1)} s user + ${(cpu.system / 1e6).toFixed(1)} s system`;
  return [
    { area: 'big-model', name, variant: 'llama.cpp, no mmap', ms: theirs.loadMs, ratio: 1, baseline: 'llama.cpp, no mmap' },
    { area: 'big-model', name, variant: 'lowbit', ms, ratio: theirs.loadMs / ms, baseline: 'llama.cpp, no mmap', note },
  ];
}

/**
 * Decode of the sharded 7B-class Q8_0 at 2 threads (each instance a 2-thread pool) against llama.cpp
 * at 2 threads, one after the other (never both loaded), 3 rounds each: on a machine whose cores other
 * jobs share, the CPU time per token (process-wide, all threads) is the fairer ratio; the note has it.
 * Not in the default list (LOWBIT_BIG_MODEL=Q8_0@2): it loads the 7 GB file twice more.
 */
async function twoThreads(path: string, ctx: Context): Promise<Row[]> {
  if (!existsSync(path)) {
    ctx.log(`big-model: ${path} not found; skipped`);
    return [];
  }
  const name = 'decode 7B-class Q8_0, 2 threads';
  const rounds = async (e: Engine) => {
    const r: Speed[] = [];
    try {
      for (let i = 0; i < ROUNDS; i++) r.push(await e.run());
    } finally {
      await e.close();
    }
    return { ms: median(r.map((x) => x.decodeMs)), cpu: median(r.map((x) => x.decodeCpuMs ?? 0)) };
  };
  const a = await rounds(await lowbit(path, ctx, 2));
  const b = await rounds(await llamaCpp(path, ctx, true, 2));
  ctx.log(`big-model: 2 threads, decode ms/token wall and CPU: lowbit ${a.ms.toFixed(0)}, ${a.cpu.toFixed(0)}; llama.cpp ${b.ms.toFixed(0)}, ${b.cpu.toFixed(0)}`);
  const note = (x: { cpu: number }) => `CPU ${x.cpu.toFixed(0)} ms per token (all threads)`;
  return [
    { area: 'big-model', name, variant: 'llama.cpp', ms: b.ms, ratio: 1, baseline: 'llama.cpp', rate: { value: 1000 / b.ms, unit: 'tokens/s' }, note: note(b) },
    { area: 'big-model', name, variant: 'lowbit', ms: a.ms, ratio: b.ms / a.ms, baseline: 'llama.cpp', rate: { value: 1000 / a.ms, unit: 'tokens/s' }, note: `${note(a)}; CPU ratio ${(b.cpu / a.cpu).toFixed(2)}x` },
  ];
}
