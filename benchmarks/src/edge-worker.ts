// Edge-worker area: greedy generation of the embedded model (stories260K) by apps/edge-worker in
// workerd against @lowbit/runtime in this Node process, same prompt, same token count, interleaved
// rounds in the same run. Timed from outside (the HTTP request as a client sees it; Node's generate
// call): workerd advances performance.now() only at I/O, so the worker cannot time itself. Both
// timings include tokenizing and the prompt's prefill; the request adds ~1 ms of local HTTP.
// Skipped with the reason when the worker is not built or workerd cannot start.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { generate, loadModel } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const PROMPT = 'Once upon a time';
const STEPS = 128;
const ROUNDS = 5;
const app = new URL('../../apps/edge-worker/', import.meta.url);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** workerd serving the app's workerd.capnp on a free port, or the reason it could not start. */
async function startWorkerd(): Promise<{ proc: ChildProcess; base: string } | string> {
  if (!existsSync(new URL('dist/worker.js', app))) return 'apps/edge-worker is not built (npm run build -w @lowbit/edge-worker)';
  let mod: { layOutModules(): string; workerdBin: string };
  try {
    mod = await import(new URL('scripts/workerd-modules.mjs', app).href);
    mod.layOutModules();
  } catch (e) {
    return `cannot lay out the worker's modules (${(e as Error).message})`;
  }
  const port = await freePort();
  let proc: ChildProcess;
  try {
    proc = spawn(mod.workerdBin, ['serve', fileURLToPath(new URL('workerd.capnp', app)), '--socket-addr', `http=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    return `workerd did not start (${(e as Error).message})`;
  }
  let stderr = '';
  proc.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  proc.on('error', (e) => {
    stderr += String(e);
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) return `workerd exited (${proc.exitCode}): ${stderr.trim().slice(0, 300)}`;
    try {
      await fetch(`${base}/`);
      return { proc, base };
    } catch {
      if (Date.now() > deadline) {
        proc.kill('SIGTERM');
        return `workerd did not listen within 20 s: ${stderr.trim().slice(0, 300)}`;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1];

export const edgeWorkerArea: Area = {
  name: 'edge-worker',
  async run(ctx: Context): Promise<Row[]> {
    const started = await startWorkerd();
    if (typeof started === 'string') {
      ctx.log(`edge-worker: skipped: ${started}`);
      return [];
    }
    const { proc, base } = started;
    try {
      const model = await loadModel(fileURLToPath(defaultModelUrl));
      const want = generate(model, PROMPT, { steps: STEPS, temperature: 0 }).tokens;
      const request = async () => {
        const r = await fetch(`${base}/generate`, { method: 'POST', body: JSON.stringify({ prompt: PROMPT, n: STEPS }) });
        const json = (await r.json()) as { tokens?: number[]; error?: string };
        if (r.status !== 200 || !json.tokens) throw new Error(`edge worker answered ${r.status}: ${json.error}`);
        return json.tokens;
      };
      // the first request loads the model into the isolate: a warm-up, and the check that both generate the same tokens
      const got = await request();
      if (got.join() !== want.join()) throw new Error('edge worker: workerd generated other tokens than Node');
      const tw: number[] = [];
      const tn: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        let t0 = performance.now();
        await request();
        tw.push(performance.now() - t0);
        t0 = performance.now();
        generate(model, PROMPT, { steps: STEPS, temperature: 0 });
        tn.push(performance.now() - t0);
      }
      model.free();
      const [w, n] = [median(tw), median(tn)];
      ctx.log(`edge-worker: ms per ${want.length}-token generation: workerd ${tw.map((x) => x.toFixed(0)).join(' ')}, Node ${tn.map((x) => x.toFixed(0)).join(' ')}`);
      const name = `stories260K greedy, ${want.length} tokens`;
      const tps = (ms: number) => ({ value: (want.length * 1000) / ms, unit: 'tokens/s' });
      return [
        { area: 'edge-worker', name, variant: 'Node', ms: n, rate: tps(n), ratio: 1, baseline: 'Node' },
        { area: 'edge-worker', name, variant: 'workerd', ms: w, rate: tps(w), ratio: n / w, baseline: 'Node', note: 'one HTTP request per generation (incl. ~1 ms local HTTP); tokens equal Node\'s' },
      ];
    } finally {
      proc.kill('SIGTERM');
    }
  },
};
