// Engines area: the same integer kernels in the JavaScript engines lowbit runs in (Node's V8,
// Chromium's V8, workerd's V8), one thread, with the prefill ceiling beside them:
//   - peak rows: a register-resident loop of one SIMD integer dot (no memory traffic), so the GOP/s
//     an engine's lowering of that instruction allows at most;
//   - the prefill GEMM (assembly/ggml-gemm.ts) on prepared 5632x2048 Q4_0 / Q8_0 tiles, 64 tokens;
//   - the decode GEMV (one token) over ~70 MB of prepared tiles, past the L3 slice;
//   - llama.cpp's prefill on the 1B-class models (tools/make-throughput-model.mjs), as GOP/s of its
//     linear layers, and lowbit's through the runtime, in Node.
// GOP = 2 operations (multiply, add) per multiply-accumulate. Each engine row's ratio is against
// Node's row of the same kernel in this run; every figure is the engine's CPU time (all its processes
// and threads, from /proc; wall time where there is no /proc), best of 4 interleaved rounds: the
// machine may be shared. An engine that is not installed is skipped with a reason.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { createKernels } from '@lowbit/kernels';
import { Session, loadModel, readGguf } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';
import { PREFILL, llamaCppEngine, promptFor } from './runtime.js';

// ---------------------------------------------------------------------------------------------
// The peak module, assembled here so that every engine runs the same bytes. Each export loops n
// times over 10 independent accumulator chains (enough to cover the instruction's latency) and
// returns a lane of their sum (so nothing is dead code). The dot's operand is the chain's own
// accumulator: with loop-invariant operands V8 could compute the dot once.

const uleb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const simd = (code: number) => [0xfd, ...uleb(code)];
const CHAINS = 10; // Node 20 spills at 12 (peak relaxed i16 dot 186 -> 100 GOP/s, CPU time)
const ROUNDS = 4;

/** Multiply-accumulates per loop iteration of each export. */
const PEAK_MACS: Record<string, number> = { relaxed_add: CHAINS * 16, relaxed_i16: CHAINS * 16, dot_i16: CHAINS * 8 };

export function peakModule(): Uint8Array<ArrayBuffer> {
  const B = 1; // local 1: the second operand; locals 2..13: the accumulators
  const step: Record<string, (acc: number) => number[]> = {
    // i32x4.relaxed_dot_i8x16_i7x16_add_s: vpdpbusd where V8 uses VNNI, else pmaddubsw + pmaddwd + paddd
    relaxed_add: (a) => [0x20, a, 0x20, B, 0x20, a, ...simd(0x113), 0x21, a],
    // i16x8.relaxed_dot_i8x16_i7x16_s + i16x8.add: what the Q4_0 kernels run (pmaddubsw + paddw)
    relaxed_i16: (a) => [0x20, a, 0x20, a, 0x20, B, ...simd(0x112), ...simd(0x8e), 0x21, a],
    // i32x4.dot_i16x8_s + i32x4.add: plain SIMD's only integer multiply-add (pmaddwd + paddd)
    dot_i16: (a) => [0x20, a, 0x20, a, 0x20, B, ...simd(0xba), ...simd(0xae), 0x21, a],
  };
  const names = Object.keys(step);
  const bodies = names.map((name) => {
    const c: number[] = [1, CHAINS + 1, 0x7b]; // locals: CHAINS + 1 v128
    c.push(0x20, 0, 0x41, 3, 0x6a, ...simd(0x0f), 0x21, B); // b = i8x16.splat(n + 3)
    for (let i = 0; i < CHAINS; i++) c.push(0x20, 0, 0x41, i, 0x6a, ...simd(0x11), 0x21, 2 + i); // acc_i = splat(n + i)
    c.push(0x03, 0x40); // loop
    for (let i = 0; i < CHAINS; i++) c.push(...step[name](2 + i));
    c.push(0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, 0x0b); // n -= 1; br_if n; end
    c.push(0x20, 2);
    for (let i = 1; i < CHAINS; i++) c.push(0x20, 2 + i, ...simd(0xae));
    c.push(...simd(0x1b), 0, 0x0b); // i32x4.extract_lane 0; end
    return [...uleb(c.length), ...c];
  });
  const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
  const enc = new TextEncoder();
  const exports = names.flatMap((n, i) => [...uleb(n.length), ...enc.encode(n), 0x00, i]);
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 1, 0x7f, 1, 0x7f]),
    ...section(3, [names.length, ...names.map(() => 0)]),
    ...section(7, [names.length, ...exports]),
    ...section(10, [names.length, ...bodies.flat()]),
  ]);
}

// ---------------------------------------------------------------------------------------------
// The probe: plain JavaScript that every engine runs (its source text is sent to Chromium and to
// workerd, so it refers to nothing outside itself). kmod: the kernels' relaxed build; pmod: the
// peak module. run(task, reps) does the task reps times and returns its own timing (wall ms, where
// the engine's clock advances during a call: workerd's does not, so that engine is timed from
// outside) and a checksum.

interface ProbeResult {
  ms: number;
  check: number;
}
type Probe = { run(task: string, reps: number): ProbeResult };

/** The probe's sizes (handed to it: its text may not refer to this module). */
const SIZES = {
  rows: 5632,
  cols: 2048,
  batch: 64,
  iters: 1_000_000, // loop iterations per rep of a peak task
  mats: { q4_0: 10, q8_0: 6 } as Record<string, number>, // decode: ~70 MB of prepared tiles each
};
type Sizes = typeof SIZES;
const { rows: G_ROWS, cols: G_COLS, batch: G_BATCH, iters: PEAK_ITERS, mats: GEMV_MATS } = SIZES;

function probe(kmod: WebAssembly.Module, pmod: WebAssembly.Module, z: Sizes): Probe {
  const { rows: G_ROWS, cols: G_COLS, batch: G_BATCH, iters: PEAK_ITERS, mats: GEMV_MATS } = z;
  const peak = new WebAssembly.Instance(pmod, {}).exports as Record<string, (n: number) => number>;
  const k = new WebAssembly.Instance(kmod, {}).exports as Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory };
  let top = (k.heap_base() + 63) & ~63;
  const alloc = (n: number) => {
    const p = top;
    top = (top + n + 63) & ~63;
    const have = k.memory.buffer.byteLength;
    if (top > have) k.memory.grow(Math.ceil((top - have) / 65536));
    return p;
  };
  let seed = 12345;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const KIND: Record<string, number> = { q8_0: 0, q4_0: 1 };
  /** A random prepared matrix (f16 scales around 2^-7; Q8_0 codes in ±127 as ggml writes them). */
  const matrix = (type: string, rows: number, cols: number) => {
    const per = type === 'q8_0' ? 34 : 18;
    const nb = (rows * cols) / 32;
    const src = alloc(nb * per);
    const b = new Uint8Array(k.memory.buffer, src, nb * per);
    for (let j = 0; j < b.length; j++) b[j] = rnd() & 0xff;
    for (let j = 0; j < nb; j++) {
      if (type === 'q8_0') for (let i = 2; i < 34; i++) if (b[j * per + i] === 0x80) b[j * per + i] = 0x81;
      b[j * per + 1] = 0x20 + (rnd() & 7);
    }
    const dst = alloc(k.ggml_tiled_bytes(KIND[type], rows, cols) >>> 0);
    k.prepare_ggml(KIND[type], src, rows, cols, dst);
    return dst;
  };
  /** Activations of `batch` tokens as matmulGgml lays them out on the relaxed build. */
  const acts = (type: string, cols: number, batch: number) => {
    const n = batch * (cols / 32);
    const xp = alloc(cols * batch * 4);
    const x = new Float32Array(k.memory.buffer, xp, cols * batch);
    for (let i = 0; i < x.length; i++) x[i] = rnd() / 2 ** 32 - 0.5;
    const a = { xq: alloc(n * 32), xq16: type === 'q4_0' ? alloc(n * 160) : 0, xs: alloc(n * 4), xsum: alloc(n * 4), pairs: 0 };
    k.quantize_act_q8(xp, cols, batch, a.xq, 0, a.xs, a.xsum);
    if (type === 'q4_0') {
      k.act_splats(a.xs, a.xsum, n, a.xq16, a.xq);
      a.pairs = a.xq16; // the relaxed Q4_0 GEMM reads the act_splats records
    } else {
      a.pairs = alloc(n * 64);
      k.gemm_act_pairs(0, a.xq, n, a.pairs);
    }
    return a;
  };
  const tasks = new Map<string, () => number>();
  const setup = (task: string): (() => number) => {
    const [what, type] = task.split(':');
    if (what === 'peak') {
      const f = peak[type];
      return () => f(PEAK_ITERS);
    }
    if (what === 'gemm' || what === 'same') {
      // q4_0v: Q4_0 by the accumulating relaxed dot (matmul_ggml_gemm kind 4)
      const base = type === 'q4_0v' ? 'q4_0' : type;
      const kind = type === 'q4_0v' ? 4 : KIND[type];
      const w = matrix(base, G_ROWS, G_COLS);
      const a = acts(base, G_COLS, G_BATCH);
      const o = alloc(G_BATCH * G_ROWS * 4);
      const gemm = (kd: number) => k.matmul_ggml_gemm(kd, w, G_ROWS, G_COLS, a.xq, a.xq16, a.xs, a.xsum, a.pairs, G_BATCH, o, 0, G_ROWS);
      if (what === 'same') {
        // 1 when this kind's outputs equal kind 1's bit for bit (run after the timed reps: Node 20's
        // baseline tier has computed the accumulating dot wrongly on first calls)
        return () => {
          gemm(KIND[base]);
          const want = new Uint32Array(k.memory.buffer, o, G_BATCH * G_ROWS).slice();
          gemm(kind);
          const got = new Uint32Array(k.memory.buffer, o, G_BATCH * G_ROWS);
          for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return 0;
          return 1;
        };
      }
      return () => {
        gemm(kind);
        return new Float32Array(k.memory.buffer, o, 1)[0];
      };
    }
    // gemv: one token, as matmulGgml runs it on the relaxed build (Q4_0 by the lane GEMM, Q8_0 by
    // the kind-0 tiled GEMV)
    const ws = Array.from({ length: GEMV_MATS[type] }, () => matrix(type, G_ROWS, G_COLS));
    const a = acts(type, G_COLS, 1);
    const o = alloc(G_ROWS * 4);
    return () => {
      for (const w of ws) {
        if (type === 'q4_0') k.matmul_ggml_gemm(1, w, G_ROWS, G_COLS, a.xq, a.xq16, a.xs, a.xsum, a.pairs, 1, o, 0, G_ROWS);
        else k.matmul_ggml_tiled(0, w, G_ROWS, G_COLS, a.xq, a.xq16, a.xs, a.xsum, 1, o, 0, G_ROWS);
      }
      return new Float32Array(k.memory.buffer, o, 1)[0];
    };
  };
  return {
    run(task, reps) {
      let f = tasks.get(task);
      if (!f) {
        f = setup(task);
        tasks.set(task, f);
      }
      let check = 0;
      const t = performance.now();
      for (let r = 0; r < reps; r++) check += f();
      return { ms: performance.now() - t, check };
    },
  };
}

// ---------------------------------------------------------------------------------------------

interface Task {
  id: string;
  name: string;
  reps: number;
  /** Per rep. */
  macs: number;
  bytes?: number;
}

/** Bytes of a prepared 5632x2048 matrix (ggml-tiled.ts: 80 B per 4 rows × 32 columns for Q4_0, 144 for Q8_0). */
const tiled = (type: string) => (G_ROWS / 4) * (G_COLS / 32) * (type === 'q4_0' ? 80 : 144);

function tasksFor(): Task[] {
  const t: Task[] = [
    { id: 'peak:relaxed_add', name: 'peak i32x4.relaxed_dot_i8x16_i7x16_add_s (registers only)', reps: 30, macs: PEAK_ITERS * PEAK_MACS.relaxed_add },
    { id: 'peak:relaxed_i16', name: 'peak i16x8.relaxed_dot_i8x16_i7x16_s + i16x8.add (registers only)', reps: 30, macs: PEAK_ITERS * PEAK_MACS.relaxed_i16 },
    { id: 'peak:dot_i16', name: 'peak i32x4.dot_i16x8_s + i32x4.add (registers only)', reps: 30, macs: PEAK_ITERS * PEAK_MACS.dot_i16 },
  ];
  for (const type of ['q4_0', 'q4_0v', 'q8_0']) {
    const name = type === 'q4_0v' ? 'q4_0 by the accumulating relaxed dot' : type;
    t.push({ id: `gemm:${type}`, name: `prefill GEMM ${name} ${G_ROWS}×${G_COLS} batch ${G_BATCH}`, reps: 4, macs: G_ROWS * G_COLS * G_BATCH });
  }
  for (const type of ['q4_0', 'q8_0']) {
    const n = GEMV_MATS[type];
    t.push({ id: `gemv:${type}`, name: `decode GEMV ${type} ${n} × ${G_ROWS}×${G_COLS}`, reps: 8, macs: n * G_ROWS * G_COLS, bytes: n * tiled(type) });
  }
  return t;
}

/** One engine. run(task, 0): the task's set-up and one rep; run(task, 1): wall ms per rep of task.reps reps. */
interface EngineRunner {
  label: string;
  run(task: Task, runs: 0 | 1): Promise<number>;
  /** The checksum of one rep of a task (the `same:` tasks: 1 when outputs agree). */
  check(id: string): Promise<number>;
  close(): Promise<void>;
}


/**
 * CPU nanoseconds of a process and all its descendants, every thread (Linux /proc schedstat): on a
 * shared machine an engine's CPU time moves far less with other work than its wall time. null where
 * /proc cannot say.
 */
function treeCpuNs(root: number): number | null {
  try {
    const children = new Map<number, number[]>();
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
      } catch {
        // the process ended meanwhile
      }
    }
    let ns = 0;
    for (const queue = [root]; queue.length > 0; ) {
      const pid = queue.pop() as number;
      queue.push(...(children.get(pid) ?? []));
      try {
        for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the process or thread ended meanwhile
      }
    }
    return ns;
  } catch {
    return null;
  }
}

/** CPU time in ms of `f` in the engine whose CPU nanoseconds `cpuNs` reads; wall ms where it cannot. */
async function timed(cpuNs: () => number | null, f: () => Promise<unknown>): Promise<number> {
  const c = cpuNs();
  const t = performance.now();
  await f();
  const w = performance.now() - t;
  const c1 = cpuNs();
  return c === null || c1 === null ? w : (c1 - c) / 1e6;
}

async function inProcess(label: string, probeOf: () => Promise<{ run(task: string, reps: number): Promise<ProbeResult> }>, cpuNs: () => number | null, close: () => Promise<void>): Promise<EngineRunner> {
  const p = await probeOf();
  return {
    label,
    async run(task, runs) {
      if (runs === 0) return (await p.run(task.id, 1)).ms;
      return (await timed(cpuNs, () => p.run(task.id, task.reps))) / task.reps;
    },
    async check(id) {
      return (await p.run(id, 1)).check;
    },
    close,
  };
}

async function nodeEngine(kbytes: Uint8Array<ArrayBuffer>, pbytes: Uint8Array<ArrayBuffer>): Promise<EngineRunner> {
  setFlagsFromString('--experimental-wasm-relaxed-simd'); // Node 20 ships relaxed SIMD behind a flag
  const p = probe(new WebAssembly.Module(kbytes), new WebAssembly.Module(pbytes), SIZES);
  const cpuNs = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) * 1000;
  };
  return inProcess(`Node ${process.versions.node} (V8 ${process.versions.v8.split('-')[0]})`, async () => ({ run: async (t, r) => p.run(t, r) }), cpuNs, async () => {});
}

const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? '/usr/bin/chromium';

async function chromiumEngine(kbytes: Uint8Array<ArrayBuffer>, pbytes: Uint8Array<ArrayBuffer>): Promise<EngineRunner | string> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install chromium, or set LOWBIT_CHROMIUM)`;
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    return 'playwright-core is not installed';
  }
  const files: Record<string, [string, Uint8Array | string]> = {
    '/': ['text/html', '<!doctype html><title>lowbit engines</title>'],
    '/k.wasm': ['application/wasm', kbytes],
    '/p.wasm': ['application/wasm', pbytes],
  };
  const server = createServer((req, res) => {
    const f = files[req.url ?? '/'];
    if (!f) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  // launched as a server, whose process id gives the browser's CPU time
  const bs = await chromium.launchServer({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const browser = await chromium.connect(bs.wsEndpoint());
  const pid = bs.process().pid;
  const close = async () => {
    await browser.close();
    await bs.close();
    server.close();
  };
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
    await page.evaluate(
      async ([src, z]) => {
        const g = globalThis as unknown as { probe: Probe };
        const [km, pm] = await Promise.all([WebAssembly.compileStreaming(fetch('/k.wasm')), WebAssembly.compileStreaming(fetch('/p.wasm'))]);
        g.probe = new Function(`return (${src})`)()(km, pm, z);
      },
      [probe.toString(), SIZES] as const,
    );
    const label = `Chromium ${browser.version()}`;
    const run = (t: string, r: number) => page.evaluate(([t, r]) => (globalThis as unknown as { probe: Probe }).probe.run(t as string, r as number), [t, r] as const);
    return inProcess(label, async () => ({ run }), () => (pid === undefined ? null : treeCpuNs(pid)), close);
  } catch (e) {
    await close();
    return `Chromium could not run the probe: ${(e as Error).message.split('\n')[0]}`;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/**
 * workerd (the npm package's binary) serving the probe as a worker; the wasm modules are CompiledWasm
 * modules (workerd refuses to compile wasm from bytes at run time). Inside a request workerd's clock
 * stands still, so a task is timed from here: the round trip of `reps` reps less that of none.
 */
async function workerdEngine(kbytes: Uint8Array<ArrayBuffer>, pbytes: Uint8Array<ArrayBuffer>): Promise<EngineRunner | string> {
  let bin: string;
  try {
    bin = join(dirname(createRequire(import.meta.url).resolve('workerd/package.json')), 'bin', 'workerd');
  } catch {
    return 'the workerd package is not installed';
  }
  if (!existsSync(bin)) return `no workerd binary at ${bin}`;
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-engines-'));
  writeFileSync(join(dir, 'k.wasm'), kbytes);
  writeFileSync(join(dir, 'p.wasm'), pbytes);
  writeFileSync(
    join(dir, 'worker.js'),
    `import km from './k.wasm';\nimport pm from './p.wasm';\nconst probe = ${probe.toString()};\nlet p;\nexport default { async fetch(req) {\n  const u = new URL(req.url);\n  p ??= probe(km, pm, ${JSON.stringify(SIZES)});\n  return Response.json(p.run(u.searchParams.get('task'), Number(u.searchParams.get('reps'))));\n} };\n`,
  );
  writeFileSync(
    join(dir, 'config.capnp'),
    `using Workerd = import "/workerd/workerd.capnp";\nconst config :Workerd.Config = (\n  services = [(name = "main", worker = .worker)],\n  sockets = [(name = "http", address = "127.0.0.1:0", http = (), service = "main")],\n);\nconst worker :Workerd.Worker = (\n  modules = [(name = "worker.js", esModule = embed "worker.js"), (name = "k.wasm", wasm = embed "k.wasm"), (name = "p.wasm", wasm = embed "p.wasm")],\n  compatibilityDate = "2025-05-05",\n);\n`,
  );
  const port = await freePort();
  const child = spawn(bin, ['serve', join(dir, 'config.capnp'), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const close = async () => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  const base = `http://127.0.0.1:${port}`;
  let last: ProbeResult | undefined;
  const call = async (task: string, reps: number) => {
    const t = performance.now();
    const r = await fetch(`${base}/?task=${encodeURIComponent(task)}&reps=${reps}`);
    if (!r.ok) throw new Error(`workerd answered ${r.status}: ${(await r.text()).slice(0, 200)}`);
    last = (await r.json()) as ProbeResult;
    return performance.now() - t;
  };
  for (const deadline = Date.now() + 20_000; ; ) {
    if (child.exitCode !== null) {
      await close();
      return `workerd exited (${child.exitCode}): ${stderr.slice(0, 300)}`;
    }
    try {
      await call('peak:dot_i16', 0);
      break;
    } catch (e) {
      if (Date.now() > deadline || /answered/.test(String(e))) {
        await close();
        return `workerd did not run the probe: ${String(e).slice(0, 300)} ${stderr.slice(0, 300)}`;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const version = readFileSync(join(dirname(bin), '..', 'package.json'), 'utf8').match(/"version":\s*"([^"]+)"/)?.[1] ?? '?';
  return {
    label: `workerd ${version}`,
    async run(task, runs) {
      if (runs === 0) return call(task.id, 1);
      const cpuNs = () => (child.pid === undefined ? null : treeCpuNs(child.pid));
      const empty = await timed(cpuNs, () => call(task.id, 0));
      return ((await timed(cpuNs, () => call(task.id, task.reps))) - empty) / task.reps;
    },
    async check(id) {
      await call(id, 1);
      return last?.check ?? Number.NaN;
    },
    close,
  };
}

/** Multiply-accumulates per token of a model's linear layers (every 2-D weight but the embedding). */
async function macsPerToken(path: string): Promise<number> {
  const g = await readGguf(path);
  await g.source.close();
  let macs = 0;
  for (const t of g.tensors.values()) if (t.shape.length === 2 && t.name !== 'token_embd.weight') macs += t.shape[0] * t.shape[1];
  if (!g.tensors.has('output.weight')) {
    const e = g.tensors.get('token_embd.weight');
    if (e) macs += e.shape[0] * e.shape[1]; // tied output projection
  }
  return macs;
}

/** Prefill GOP/s of llama.cpp and of lowbit (runtime, one thread) on the 1B-class models, alternating rounds. */
async function prefillRows(ctx: Context): Promise<Row[]> {
  const dir = process.env.LOWBIT_MODELS ?? join(tmpdir(), 'lowbit-models');
  const out: Row[] = [];
  for (const type of ['Q4_0', 'Q8_0']) {
    const path = join(dir, `throughput-1b-${type}.gguf`);
    if (!existsSync(path)) {
      ctx.log(`engines: ${path} not found (node tools/make-throughput-model.mjs ${dir}); prefill rows skipped`);
      continue;
    }
    const macs = (await macsPerToken(path)) * PREFILL;
    const prompt = await promptFor(path);
    const theirs = await llamaCppEngine(path, 1);
    // the relaxed build named: under load the automatic choice can miss V8's tier-up check and fall
    // back to plain SIMD, which would make this row measure another build
    const k = await createKernels({ variant: 'relaxed' });
    const model = await loadModel(path, { kernels: k });
    const a: number[] = [];
    const b: number[] = [];
    try {
      for (let round = 0; round < 3; round++) {
        a.push((await theirs.run(prompt)).prefillMs * PREFILL);
        const s = new Session(model, { ctx: PREFILL + 8 });
        const t = performance.now();
        s.forward(prompt);
        b.push(performance.now() - t);
        s.free();
      }
    } finally {
      await theirs.close();
      model.free();
    }
    const [ta, tb] = [Math.min(...a), Math.min(...b)]; // best round, as the engine rows
    const name = `prefill ${PREFILL} tokens, 1B-class ${type}, linear layers`;
    out.push({ area: 'engines', name, variant: 'llama.cpp', ms: ta, rate: { value: (2 * macs) / ta / 1e6, unit: 'GOP/s' }, ratio: 1, baseline: 'llama.cpp' });
    out.push({ area: 'engines', name, variant: `lowbit, Node (${k.variant})`, ms: tb, rate: { value: (2 * macs) / tb / 1e6, unit: 'GOP/s' }, ratio: ta / tb, baseline: 'llama.cpp', note: 'whole prefill (attention, norms included) counted as linear-layer operations' });
  }
  return out;
}

export const enginesArea: Area = {
  name: 'engines',
  async run(ctx: Context): Promise<Row[]> {
    // LOWBIT_ENGINES_KERNELS: another relaxed build of the kernels (A/B of a kernel change)
    const kpath = process.env.LOWBIT_ENGINES_KERNELS ?? createRequire(import.meta.url).resolve('@lowbit/kernels/build/lowbit-relaxed.wasm');
    const kbytes = new Uint8Array(readFileSync(kpath));
    const pbytes = peakModule();
    // LOWBIT_ENGINES_ONLY=gemm (a substring of task ids: peak, gemm, gemv, q4_0...) runs those rows
    // only, and the llama.cpp prefill rows only when it contains "prefill"
    const only = process.env.LOWBIT_ENGINES_ONLY;
    const tasks = tasksFor().filter((t) => !only || only.split(',').some((o) => t.id.includes(o)));
    const makers: [string, () => Promise<EngineRunner | string>][] = [
      ['Node', () => nodeEngine(kbytes, pbytes)],
      ['Chromium', () => chromiumEngine(kbytes, pbytes)],
      ['workerd', () => workerdEngine(kbytes, pbytes)],
    ];
    const engines: EngineRunner[] = [];
    for (const [what, make] of makers) {
      const e = await make();
      if (typeof e === 'string') ctx.log(`engines: ${what} skipped: ${e}`);
      else {
        ctx.log(`engines: ${e.label}`);
        engines.push(e);
      }
    }
    // On a shared machine the load changes by the second: every task runs on each engine in turn,
    // ROUNDS times, and each engine's best round counts (the one least disturbed by other work).
    const best = new Map<string, number>();
    const same = new Map<string, number>();
    try {
      for (const t of tasks) for (const e of engines) await e.run(t, 0); // set-up and warm-up
      for (let round = 0; round < ROUNDS; round++) {
        for (const t of tasks) {
          for (const e of engines) {
            const key = `${t.id}\u0000${e.label}`;
            best.set(key, Math.min(best.get(key) ?? Number.POSITIVE_INFINITY, await e.run(t, 1)));
          }
        }
      }
      if (tasks.some((t) => t.id === 'gemm:q4_0v')) for (const e of engines) same.set(e.label, await e.check('same:q4_0v'));
    } finally {
      for (const e of engines) await e.close();
    }
    const out: Row[] = [];
    for (const t of tasks) {
      const base = best.get(`${t.id}\u0000${engines[0]?.label}`) ?? 1;
      for (const e of engines) {
        const ms = best.get(`${t.id}\u0000${e.label}`) ?? Number.NaN;
        out.push({
          area: 'engines',
          name: t.name,
          variant: e.label,
          ms,
          ...(t.bytes ? { gbps: t.bytes / ms / 1e6 } : {}),
          rate: { value: (2 * t.macs) / ms / 1e6, unit: 'GOP/s' },
          ratio: base / ms,
          baseline: engines[0].label,
          ...(t.id === 'gemm:q4_0v' ? { note: same.get(e.label) === 1 ? 'outputs equal the q4_0 GEMM row bit for bit' : 'OUTPUTS DIFFER from the q4_0 GEMM row' } : {}),
        });
      }
    }
    if (!only || only.includes('prefill')) out.push(...(await prefillRows(ctx)));
    return out;
  },
};
