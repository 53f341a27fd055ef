#!/usr/bin/env node
// Fuzz harness driver: makes the seed files, then for each reader runs `count` mutated inputs in
// batches, each batch in a child process (heap capped by --max-old-space-size, RSS checked after
// every input, killed when it stalls) and prints outcome counts per reader: ok, LowbitError by code,
// failures (another exception, over the time or memory limit, a changed prototype, a crash).
//
//   npm run fuzz -- --count 100000 [--seed 1] [--readers lbpt,npy] [--batch 200] [--jobs 2] [--json out.json]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { READERS, SELF_TEST, makeSeeds } from './readers.mjs';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** Limits of the property: an input may take at most 2 s and 512 MB. */
export const LIMITS = { ms: 2000, mb: 512 };

function runBatch({ reader, manifest, seed, from, to, heapMb, stallMs, limits, onLine }) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, CHILD, reader, manifest, String(seed), String(from), String(to), String(limits.ms), String(limits.mb)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    let stderr = '';
    let current = from;
    let last = from - 1;
    let killed = false;
    let ready = false;
    let timer;
    const arm = (ms = stallMs) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, ms);
    };
    // start-up (kernels, seed files) is not an input's time: on a loaded machine it can take long
    arm(Math.max(60000, stallMs));
    child.stdout.on('data', (d) => {
      buf += d;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let o;
        try {
          o = JSON.parse(line);
        } catch {
          continue; // a stray print from a reader
        }
        arm();
        if (o.ready) {
          ready = true;
          continue;
        }
        if (o.start) current = o.i;
        else {
          last = o.i;
          onLine(o);
        }
      }
    });
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-8000);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // died before its first input (the packages' dist rebuilt under it, say): not an input's failure
      if (!ready) {
        resolve({ next: from, startFailed: stderr.trim().split('\n').find((l) => /Error/.test(l)) ?? `exit ${code ?? signal}` });
        return;
      }
      // an input that started and never reported: it hung (killed) or took the process down
      if (current > last) {
        const kind = killed ? 'timeout' : 'crash';
        const lines = stderr.trim().split('\n');
        const why = lines.find((l) => /\b(\w*Error|FATAL|heap limit|out of memory)\b/i.test(l)) ?? lines.slice(-3).join(' | ');
        onLine({ i: current, o: 'fail', kind, msg: killed ? `no result within the watchdog's ${stallMs} ms` : `exit ${code ?? signal}: ${why.slice(0, 300)}` });
        last = current;
      }
      resolve({ next: last + 1 });
    });
  });
}

/**
 * Runs the harness. Returns { readers: { name: { tried, ok, codes: {E_*: n}, failures: [...] } }, ms }.
 * Inputs are numbered per reader; input i depends only on (seed, reader, i).
 */
export async function runFuzz({ count = 2000, seed = 1, readers = Object.keys(READERS), batch = 200, jobs = Math.max(1, Math.min(2, availableParallelism())), heapMb = 512, stallMs = 30000, limits = LIMITS, log = () => {} } = {}) {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-fuzz-seeds-'));
  try {
    const seeds = await makeSeeds(dir);
    const manifest = join(dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify(seeds));
    const result = {};
    const queue = [];
    for (const reader of readers) {
      if (!READERS[reader] && !SELF_TEST[reader]) throw new Error(`unknown reader ${reader} (known: ${Object.keys(READERS).join(', ')})`);
      result[reader] = { tried: 0, ok: 0, codes: {}, failures: [], ms: 0, maxMs: 0, maxMb: 0 };
      for (let from = 0; from < count; from += batch) queue.push({ reader, from, to: Math.min(count, from + batch) });
    }
    const worker = async () => {
      for (;;) {
        const job = queue.shift();
        if (!job) return;
        const res = result[job.reader];
        let from = job.from;
        let startFailures = 0;
        // a crash, a hang or a polluted process ends the child: the rest of the batch goes to a new one
        while (from < job.to) {
          const { next, startFailed } = await runBatch({
            reader: job.reader, manifest, seed, from, to: job.to, heapMb, stallMs, limits,
            onLine: (o) => {
              res.tried++;
              res.ms += o.ms ?? 0;
              res.maxMs = Math.max(res.maxMs, o.ms ?? 0);
              res.maxMb = Math.max(res.maxMb, o.mb ?? 0);
              if (o.o === 'ok') res.ok++;
              else if (o.o === 'fail') {
                res.failures.push(o);
                log(`  FAIL ${job.reader} #${o.i}: ${o.kind}: ${o.msg}`);
              } else res.codes[o.o] = (res.codes[o.o] ?? 0) + 1;
            },
          });
          if (startFailed) {
            if (++startFailures > 5) throw new Error(`fuzz: a ${job.reader} child failed to start 6 times: ${startFailed}`);
            log(`  ${job.reader}: child did not start (${startFailed}); retrying`);
            await new Promise((r) => setTimeout(r, 5000 * startFailures));
          }
          from = next;
        }
        log(`  ${job.reader} ${job.to}/${count}`);
      }
    };
    await Promise.all(Array.from({ length: jobs }, worker));
    return { readers: result, ms: performance.now() - t0, seed, count };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A plain-text table of a runFuzz result. */
export function report(res) {
  const lines = [`fuzz: seed ${res.seed}, ${res.count} inputs per reader, ${(res.ms / 1000).toFixed(1)} s`];
  lines.push(`${'reader'.padEnd(24)}${'tried'.padStart(8)}${'ok'.padStart(8)}${'failures'.padStart(10)}${'max ms'.padStart(8)}${'max MB'.padStart(8)}  LowbitError by code`);
  let total = 0;
  for (const [name, r] of Object.entries(res.readers)) {
    total += r.tried;
    const codes = Object.entries(r.codes).sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${n}`).join(', ');
    lines.push(`${name.padEnd(24)}${String(r.tried).padStart(8)}${String(r.ok).padStart(8)}${String(r.failures.length).padStart(10)}${String(r.maxMs).padStart(8)}${String(r.maxMb).padStart(8)}  ${codes}`);
  }
  lines.push(`total inputs: ${total}`);
  for (const [name, r] of Object.entries(res.readers)) {
    for (const f of r.failures.slice(0, 10)) lines.push(`  ${name} #${f.i} (seed file ${f.seed ?? '?'}): ${f.kind}: ${f.msg}${f.stack ? ` at ${f.stack}` : ''}`);
    if (r.failures.length > 10) lines.push(`  ${name}: ${r.failures.length - 10} more failures`);
  }
  return lines.join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : fallback;
  };
  const res = await runFuzz({
    count: Number(opt('count', 2000)),
    seed: Number(opt('seed', 1)),
    readers: opt('readers') ? opt('readers').split(',') : undefined,
    batch: Number(opt('batch', 200)),
    jobs: Number(opt('jobs', Math.max(1, Math.min(2, availableParallelism())))),
    log: args.includes('--quiet') ? () => {} : (l) => process.stderr.write(`${l}\n`),
  });
  const out = opt('json');
  if (out) writeFileSync(out, JSON.stringify(res, null, 2));
  console.log(report(res));
  process.exitCode = Object.values(res.readers).some((r) => r.failures.length) ? 1 : 0;
}
