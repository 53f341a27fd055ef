// lowbit allocate end to end on the embedded model, with a small measurement (2 windows of 64 tokens)
// and a short validation text so the forward passes stay few.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { rtnQuantize } from '@lowbit/quantizers';
import { loadModel, perplexity } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { parseBits, parseBudget } from '../src/commands/allocate.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-'));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 4).join('\n'));
const SMALL = ['--calib-windows', '2', '--calib-ctx', '64', '--text', valid, '--ctx', '128'];

describe('lowbit allocate', () => {
  it('--json: the allocation fits the budget, HiGHS proves it optimal, and the printed perplexity is the allocated model’s', async () => {
    const out = join(dir, 'mixed.gguf');
    const r = await run(['allocate', '--bits', '2,4', '--budget', '3', ...SMALL, '--json', '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.method).toBe('clado');
    expect(j.budget).toBe(3);
    // int2 g32 with f16 scales is 2.5 bits/weight, int4 g32 4.5: a 3-bit budget mixes them
    expect(j.bits_per_weight).toBeLessThanOrEqual(3);
    expect(j.bits_per_weight).toBeGreaterThan(2.5);
    const configs = Object.values(j.layers) as string[];
    expect(configs.length).toBe(35); // 5 blocks × 7 linears of stories260K
    expect(new Set(configs)).toEqual(new Set(['int2 g32 rtn', 'int4 g32 rtn']));
    expect(j.solver.status).toBe('Optimal');
    expect(j.solver.gap).toBeLessThanOrEqual(1e-6);
    expect(j.solver.bound).toBeLessThanOrEqual(j.solver.objective + 1e-9);
    expect(j.predicted_delta_loss).toBeCloseTo(j.solver.objective, 9);
    expect(j.measurement.pairs).toBe('block');
    // 35 layers × 2 configs, 5 blocks × 21 within-block pairs × 4 config pairs, the base loss
    expect(j.measurement.evaluations).toBe(70 + 420 + 1);

    // independent reference: RTN each layer at its printed width, perplexity by the runtime
    const model = await loadModel(fileURLToPath(defaultModelUrl));
    for (const [name, cfg] of Object.entries(j.layers as Record<string, string>)) {
      const lin = model.linear(name);
      const src = lin.source as { data: Float32Array };
      const q = rtnQuantize(src.data, [lin.rows, lin.cols], { bits: Number(cfg.slice(3, 4)), group: 32, symmetric: true });
      model.setLinear(name, { format: 'f32', shape: [lin.rows, lin.cols], data: q.weights });
    }
    const text = readFileSync(valid, 'utf8');
    expect(perplexity(model, text, { ctx: 128 }).perplexity).toBe(j.perplexity);
    // the written file holds the same codes; loaded, its int2 layers run on the formats' table GEMV (f32
    // activations) but its int4 g32 layers on the int4 kernel, which quantizes activations to int8:
    // measured 202.83 (file) vs 202.54 (in memory) on this damaged 3-bit model, 0.15% relative
    const saved = await loadModel(out);
    expect(Math.abs(perplexity(saved, text, { ctx: 128 }).perplexity / j.perplexity - 1)).toBeLessThan(0.01);
  }, 600_000);

  it('a budget outside the reachable sizes is an E_RANGE error naming the range, before any measurement', async () => {
    const low = await run(['allocate', '--bits', '2,3', '--budget', '2', ...SMALL]);
    expect(low.code).toBe(1);
    // per block 34304 weights in 64-column layers (int2 g32: 2 + 16/32 = 2.5 bits) and ffn_down's 64×172,
    // whose rows take 43 code bytes and 6 f16 scales: 440 bits per 172 weights; 5 blocks: 569600 bits = 71200 bytes
    // over 226560 weights = 2.5141 bits/weight (int3: 99680 bytes, 3.5198)
    expect(low.err).toContain('below the smallest size, 2.5141 bits/weight = 71200 bytes (every layer int2)');
    expect(low.err).toContain('reachable with --bits 2,3 --group 32: 2.5141..3.5198 bits/weight, 71200..99680 bytes');
    const high = await run(['allocate', '--bits', '2,3', '--budget', '100000000B', ...SMALL]);
    expect(high.code).toBe(1);
    expect(high.err).toMatch(/above the largest size, 3\.5198 bits\/weight/);
  });

  it('parses budgets and bit lists, refusing bad ones', () => {
    expect(parseBudget('3.25')).toEqual({ bits: 3.25 });
    expect(parseBudget('150000B')).toEqual({ bytes: 150000 });
    expect(parseBudget('150000bytes')).toEqual({ bytes: 150000 });
    expect(() => parseBudget('3x')).toThrow(/--budget/);
    expect(() => parseBudget('0')).toThrow(/--budget/);
    expect(parseBits('8,2,4')).toEqual([2, 4, 8]);
    expect(() => parseBits('2,9')).toThrow(/--bits must be an integer in 2\.\.8/);
    expect(() => parseBits('2,2')).toThrow(/twice/);
  });
});
