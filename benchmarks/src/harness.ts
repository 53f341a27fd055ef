import { Bench } from 'tinybench';

/** One line of the results table. `ratio` = baseline ms / this row's ms (higher is faster). */
export interface Row {
  area: string;
  name: string;
  variant: string;
  ms: number;
  gbps?: number;
  gflops?: number;
  /** Any other rate, named (tokens/s, elements/s). */
  rate?: { value: number; unit: string };
  ratio: number;
  baseline: string;
  note?: string;
}

export interface Area {
  name: string;
  /** Measures and returns the rows of this area; `only` filters by row name substring. */
  run(ctx: Context): Promise<Row[]>;
}

export interface Context {
  /** Median milliseconds per call of `fn` (tinybench: warm-up, then samples for `timeMs`). */
  measure(fn: () => unknown, timeMs?: number): Promise<number>;
  /** Median milliseconds of `runs` single calls: for work too slow for tinybench's warm-up (seconds per call). */
  timeRuns(fn: () => unknown, runs?: number): Promise<number>;
  log(line: string): void;
}

export function createContext(quick: boolean): Context {
  return {
    async measure(fn, timeMs = 600) {
      const bench = new Bench({ time: quick ? 150 : timeMs, warmupTime: quick ? 30 : 100, iterations: 3 });
      bench.add('x', fn);
      await bench.run();
      const r = bench.tasks[0].result;
      if (r.state !== 'completed') throw new Error(`benchmark did not complete: ${r.state}${'error' in r ? `: ${r.error}` : ''}`);
      return r.latency.p50;
    },
    async timeRuns(fn, runs = 3) {
      const t: number[] = [];
      for (let i = 0; i < (quick ? 1 : runs); i++) {
        const t0 = performance.now();
        fn();
        t.push(performance.now() - t0);
      }
      t.sort((a, b) => a - b);
      return t[t.length >> 1];
    },
    log(line) {
      process.stderr.write(`${line}\n`);
    },
  };
}

/** Rows measured against the first one, which is the baseline. */
export function ratioRows(area: string, name: string, measured: { variant: string; ms: number; bytes?: number; flops?: number; note?: string }[]): Row[] {
  const base = measured[0];
  return measured.map((m) => ({
    area,
    name,
    variant: m.variant,
    ms: m.ms,
    ...(m.bytes !== undefined ? { gbps: m.bytes / m.ms / 1e6 } : {}),
    ...(m.flops !== undefined ? { gflops: m.flops / m.ms / 1e6 } : {}),
    ratio: base.ms / m.ms,
    baseline: base.variant,
    ...(m.note ? { note: m.note } : {}),
  }));
}
