// lowbit allocate's hardware-aware recipes (--cost latency, --budget-ms, --max-dppl) on the embedded
// model with a small measurement. Decode times are machine-dependent: only their consistency is checked.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-cost-'));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 2).join('\n'));
// diagonal: no pairs measured, so each run is 70 short passes
const SMALL = ['--bits', '2,4', '--method', 'diagonal', '--calib-windows', '1', '--calib-ctx', '64', '--text', valid, '--ctx', '64'];

describe('lowbit allocate --cost latency', () => {
  it('--budget-ms with bench rates: each layer costs its weights over its format\'s rate; the choice fits the budget', async () => {
    const rates = join(dir, 'latest.json');
    const variant = (await loadKernels()).variant;
    const row = (type: string, gflops: number) => ({ area: 'kernels', name: `${type} GEMV 4096×4096`, variant: `wasm ${variant}, prepared tiles`, gflops });
    // 2 flops per weight: Q4_0 at 2e6 weights/ms, Q8_0 at 1e6
    writeFileSync(rates, JSON.stringify({ rows: [row('q4_0', 4), row('q8_0', 2)] }));
    // the 30 allocatable linears of stories260K hold 171520 weights (96480 bytes of Q4_0 at 4.5 bits/weight)
    const [cheapest, dearest] = [171520 / 2e6, 171520 / 1e6];
    const budget = (cheapest + dearest) / 2;
    const r = await run(['allocate', '--formats', 'q4_0,q8_0', '--cost', 'latency', '--budget-ms', String(budget), '--rates', rates, ...SMALL.slice(2), '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(j.cost).toBe('latency');
    expect(j.budget_ms).toBe(budget);
    expect(j.latency.source).toEqual({ q4_0: 'bench', q8_0: 'bench' });
    expect(j.latency.runtime_formats).toEqual({ q4_0: 'q4_0', q8_0: 'q8_0' });
    // 64×64 = 4096 weights in attn_q
    expect(j.latency.ms['blk.0.attn_q.weight'][0]).toBeCloseTo(4096 / 2e6, 12);
    expect(j.latency.ms['blk.0.attn_q.weight'][1]).toBeCloseTo(4096 / 1e6, 12);
    expect(j.solver.status).toBe('Optimal');
    const ms = j.latency.ms as Record<string, number[]>;
    const sum = Object.entries(j.layers as Record<string, string>).reduce((s, [name, cfg]) => s + ms[name][cfg.startsWith('q4_0') ? 0 : 1], 0);
    expect(sum).toBeCloseTo(j.cost_total, 12);
    expect(j.cost_total).toBeLessThanOrEqual(budget * (1 + 1e-9));
    // a budget between the extremes buys some Q8_0 layers (Q8_0 lowers ΔL on the measured layers)
    expect(Object.values(j.layers as Record<string, string>).some((c) => c.startsWith('q8_0'))).toBe(true);
  }, 120_000);

  it('--max-dppl with --cost size: the smallest model whose predicted ΔL stays under ln(1 + x/ppl)', async () => {
    const r = await run(['allocate', '--max-dppl', '2', ...SMALL, '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(j.cost).toBe('size');
    expect(j.max_delta_loss).toBeCloseTo(Math.log1p(2 / j.perplexity_fp), 12);
    // diagonal bounds the additive ΔL; HiGHS's row tolerance is 1e-6
    expect(j.additive_delta_loss).toBeLessThanOrEqual(j.max_delta_loss + 1e-6);
    expect(j.cost_total).toBeCloseTo(j.size_bytes, 0);
  }, 120_000);

  it('refuses contradictory or incomplete budgets before loading anything', async () => {
    const both = await run(['allocate', '--budget', '3', '--max-dppl', '1']);
    expect(both.code).toBe(2);
    expect(both.err).toMatch(/not --budget and --max-dppl/);
    const none = await run(['allocate']);
    expect(none.err).toMatch(/give one of --budget/);
    const ms = await run(['allocate', '--budget-ms', '1']);
    expect(ms.err).toMatch(/--budget-ms needs --cost latency/);
    const size = await run(['allocate', '--cost', 'latency', '--budget', '3']);
    expect(size.err).toMatch(/--budget is a size budget/);
  });
});
