import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ESM scripts without type declarations
import { report, runFuzz } from '../fuzz/run.mjs';

interface ReaderResult { tried: number; ok: number; codes: Record<string, number>; failures: { i: number; kind: string; msg: string }[] }

// A bounded run of the fuzz harness (tools/fuzz/README.md) with a fixed seed: every reader gets
// PER_READER mutated inputs of its seed files: 2,000 per reader (18,000 inputs) take about 75 s on a
// quiet 2-core machine; the long mode (`npm run fuzz -- --count 100000`) runs more. The inputs depend only on (seed, reader, index).
const PER_READER = Number(process.env.LOWBIT_FUZZ_COUNT ?? 2000);
const SEED = 20261203;

describe('fuzz harness', () => {
  it(`every reader, ${PER_READER} inputs each: a valid result or a LowbitError with a code; never another exception, > 2 s, > 512 MB or a changed prototype`, async () => {
    const res = await runFuzz({ count: PER_READER, seed: SEED, batch: PER_READER });
    console.log(report(res));
    for (const [name, r] of Object.entries(res.readers as Record<string, ReaderResult>)) {
      expect(r.tried, name).toBe(PER_READER);
      expect(r.failures.map((f) => `#${f.i} ${f.kind}: ${f.msg}`), name).toEqual([]);
      // the mutations must reach past the first check: some inputs load, some fail in more than one way
      expect(r.ok, `${name}: no input was valid`).toBeGreaterThan(0);
      expect(Object.keys(r.codes).length, `${name}: every failure had the same code`).toBeGreaterThan(1);
    }
  }, 240_000);

  it('catches each kind of failure: another exception, a changed prototype, over the time limit, over the memory limit, a hang', async () => {
    // the self-test reader breaks the property one way per input (readers.mjs SELF_TEST); the memory
    // limit is lowered to 100 MB (the child itself takes ~60) so its 64 MB allocation crosses it quickly
    const res = await runFuzz({ count: 5, seed: 1, readers: ['self-test'], batch: 5, stallMs: 20000, limits: { ms: 2000, mb: 100 } });
    const r = res.readers['self-test'] as ReaderResult;
    expect(r.failures.map((f) => [f.i, f.kind])).toEqual([[0, 'exception'], [1, 'prototype'], [2, 'slow'], [3, 'memory'], [4, 'timeout']]);
  }, 120_000);
});
