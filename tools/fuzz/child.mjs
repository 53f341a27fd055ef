// One fuzz worker process: runs inputs [from, to) of one reader and writes one JSON line per input
// to stdout ("start" before it, the outcome after), so the parent knows which input a crash or a
// hang belongs to. Started with --max-old-space-size; the parent kills it on a stall.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLowbitError, loadKernels } from '@lowbit/kernels';
import { hashSeed, prng } from './mutate.mjs';
import { READERS, SELF_TEST } from './readers.mjs';

const [reader, manifestPath, seedText, fromText, toText, limitMsText, limitMbText] = process.argv.slice(2);
const seed = Number(seedText);
const from = Number(fromText);
const to = Number(toText);
const limitMs = Number(limitMsText);
const limitMb = Number(limitMbText);
const seeds = JSON.parse(readFileSync(manifestPath, 'utf8'))[reader] ?? ['-'];
const r = READERS[reader] ?? SELF_TEST[reader];
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** Every own property of the built-in prototypes and constructors, and the global names: any change is pollution. */
const WATCHED = [
  Object.prototype, Array.prototype, Function.prototype, String.prototype, Number.prototype, Boolean.prototype, Symbol.prototype, BigInt.prototype,
  Map.prototype, Set.prototype, Promise.prototype, Error.prototype, RegExp.prototype, Date.prototype, Uint8Array.prototype,
  Object.getPrototypeOf(Uint8Array.prototype), Object, Array, Function, JSON, Math, Reflect,
];
function snapshot() {
  const s = WATCHED.map((o) => {
    const d = Object.getOwnPropertyDescriptors(o);
    return [Object.getPrototypeOf(o), Object.isExtensible(o), Reflect.ownKeys(d).map((k) => [k, d[k].value, d[k].get, d[k].set])];
  });
  return { s, globals: Reflect.ownKeys(globalThis).map(String).sort().join() };
}
function changed(a, b) {
  if (a.globals !== b.globals) return 'a global name was added or removed';
  for (let i = 0; i < a.s.length; i++) {
    const [pa, ea, ka] = a.s[i];
    const [pb, eb, kb] = b.s[i];
    if (pa !== pb || ea !== eb || ka.length !== kb.length) return `built-in #${i} changed (${ka.length} → ${kb.length} properties)`;
    for (let j = 0; j < ka.length; j++) for (let q = 0; q < 4; q++) if (ka[j][q] !== kb[j][q]) return `built-in #${i} property ${String(ka[j][0])} changed`;
  }
  return null;
}

const scratch = mkdtempSync(join(tmpdir(), 'lowbit-fuzz-'));
const ctx = { scratch, kernels: await loadKernels() };
const seedBytes = seeds.map((p) => (r.seedBytes ? r.seedBytes(p) : new Uint8Array(readFileSync(p))));
const before = snapshot();
out({ ready: true });
// readers run for real only from here: the first snapshot includes whatever lazy setup they did
try {
  for (let i = from; i < to; i++) {
    const rng = prng(hashSeed(seed, reader, i));
    const k = rng.int(seeds.length);
    let input;
    try {
      input = await r.mutate(seeds[k], seedBytes[k], rng, ctx);
    } catch (e) {
      // a bug of the harness, not of the reader: reported apart, never silently skipped
      out({ i, o: 'fail', kind: 'harness', msg: `mutator: ${String(e?.stack ?? e).slice(0, 400)}`, seed: k });
      continue;
    }
    ctx.index = i;
    out({ i, start: true });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    let o;
    try {
      await r.run(input, ctx);
      o = { i, o: 'ok' };
    } catch (e) {
      if (isLowbitError(e)) o = { i, o: e.code };
      else o = { i, o: 'fail', kind: 'exception', msg: `${e?.name ?? typeof e}: ${String(e?.message ?? e).slice(0, 300)}`, stack: String(e?.stack ?? '').split('\n').slice(1, 4).join(' | ') };
    }
    const ms = performance.now() - t0;
    // the time limit is on CPU time: on a loaded machine wall time also counts the other processes
    const c = process.cpuUsage(cpu0);
    const cpuMs = (c.user + c.system) / 1000;
    const rss = process.memoryUsage().rss / 2 ** 20;
    const poll = changed(before, snapshot());
    if (poll) o = { i, o: 'fail', kind: 'prototype', msg: poll, was: o.o };
    else if (rss > limitMb) o = { i, o: 'fail', kind: 'memory', msg: `RSS ${rss.toFixed(0)} MB > ${limitMb} MB`, was: o.o };
    else if (cpuMs > limitMs) o = { i, o: 'fail', kind: 'slow', msg: `${cpuMs.toFixed(0)} ms of CPU > ${limitMs} ms (${ms.toFixed(0)} ms wall)`, was: o.o };
    o.ms = Math.round(cpuMs);
    o.wallMs = Math.round(ms);
    o.mb = Math.round(rss);
    o.seed = k;
    out(o);
    // a polluted or bloated process would taint the inputs after it: the parent starts a fresh one
    if (o.o === 'fail' && o.kind !== 'exception' && o.kind !== 'slow') break;
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
