// lowbit allocate over ggml block types (--formats q4_0,q8_0): the allocation is written as a GGUF of
// per-tensor Q4_0 / Q8_0 types that `lowbit eval` and llama.cpp both run. A small measurement (2 windows
// of 64 tokens) and a short validation text keep the forward passes few.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { readGguf } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFormats } from '../src/commands/allocate.js';
import { llamaCppPerplexity, run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-ggml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 4).join('\n'));
const SMALL = ['--calib-windows', '2', '--calib-ctx', '64', '--text', valid, '--ctx', '128'];
// ggml-common.h: block_q4_0 {f16 d; u8 qs[16]} and block_q8_0 {f16 d; i8 qs[32]} per 32 weights
const BLOCK_BYTES: Record<string, number> = { Q4_0: 18, Q8_0: 34 };

describe('lowbit allocate --formats q4_0,q8_0 --out', () => {
  const out = join(dir, 'mixed.gguf');

  it('mixes Q4_0 and Q8_0 under a budget between them; the file holds those types and eval of it prints the same perplexity', async () => {
    // uniform Q4_0 is 4.5 bits/weight, uniform Q8_0 8.5: 6 needs both
    const r = await run(['allocate', '--formats', 'q4_0,q8_0', '--budget', '6', ...SMALL, '--json', '--out', out]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.formats).toEqual(['q4_0', 'q8_0']);
    expect(j.bits_per_weight).toBeLessThanOrEqual(6);
    expect(j.bits_per_weight).toBeGreaterThan(4.5);
    const layers = j.layers as Record<string, string>;
    // 5 blocks × 6 linears of 64-wide rows; the 172-wide ffn_down fits no 32-block and stays F32
    expect(Object.keys(layers).length).toBe(30);
    expect(new Set(Object.values(layers))).toEqual(new Set(['q4_0 rtn', 'q8_0 rtn']));
    expect(j.kept_f32).toEqual([0, 1, 2, 3, 4].map((b) => `blk.${b}.ffn_down.weight`));
    expect(j.solver.status).toBe('Optimal');
    expect(j.predicted_delta_loss).toBeCloseTo(j.solver.objective, 9);

    const g = await readGguf(out);
    await g.source.close();
    let bytes = 0;
    let weights = 0;
    for (const [name, cfg] of Object.entries(layers)) {
      const t = g.tensors.get(name);
      expect(t?.type).toBe(cfg.slice(0, 4).toUpperCase());
      const n = (t?.shape ?? []).reduce((a, b) => a * b, 1);
      // the size the solver counted is the bytes of the blocks in the file
      expect(t?.byteLength).toBe((n / 32) * BLOCK_BYTES[t?.type as string]);
      bytes += t?.byteLength as number;
      weights += n;
    }
    expect(bytes).toBe(j.size_bytes);
    expect(j.bits_per_weight).toBeCloseTo((8 * bytes) / weights, 12);
    for (const name of j.kept_f32 as string[]) expect(g.tensors.get(name)?.type).toBe('F32');
    // ggml types only: nothing marks the file as needing lowbit
    expect(g.metadata.get('lowbit.tensor_types')).toBeUndefined();
    expect([...g.tensors.values()].every((t) => !t.type.startsWith('LB_'))).toBe(true);

    const e = await run(['eval', out, '--text', valid, '--ctx', '128', '--json']);
    expect(e.code).toBe(0);
    // the allocated layers ran as these blocks on the same kernels in allocate: the same number
    expect(JSON.parse(e.out).perplexity).toBe(j.perplexity);
  }, 600_000);

  it("llama.cpp's perplexity of the mixed file (same windows) agrees with lowbit's", async (ctx) => {
    const text = readFileSync(fileURLToPath(validTextUrl), 'utf8');
    const windows = 8;
    const r = await llamaCppPerplexity(out, text, windows);
    if ('reason' in r) return ctx.skip(r.reason);
    const { ours, theirs, tokens } = r;
    console.log(`q4_0/q8_0 allocation, ${tokens} tokens: lowbit ${ours.toFixed(5)}, llama.cpp ${theirs.toFixed(5)} (relative ${(theirs / ours - 1).toExponential(2)})`);
    expect(tokens).toBe(r.oursTokens);
    // the Q4_0 file test's bound (quantize-ggml-out.test.ts): both sides round activations to int8 per
    // 32 for the block dots, and 1-ulp differences upstream flip an occasional rounding
    expect(Math.abs(theirs / ours - 1)).toBeLessThan(1e-3);
  }, 600_000);

  it('a budget below uniform Q4_0 is an E_RANGE error naming the range; bad type lists are refused', async () => {
    const low = await run(['allocate', '--formats', 'q4_0,q8_0', '--budget', '4', ...SMALL]);
    expect(low.code).toBe(1);
    // 30 layers of 64-wide rows: Q4_0 18 bytes per 32 = 4.5 bits/weight, Q8_0 34 per 32 = 8.5
    expect(low.err).toContain('below the smallest size, 4.5000 bits/weight');
    expect(low.err).toContain('(every layer q4_0)');
    expect(low.err).toContain('reachable with --formats q4_0,q8_0: 4.5000..8.5000 bits/weight');
    const group = await run(['allocate', '--formats', 'q4_0,q8_0', '--group', '64', '--budget', '6', ...SMALL]);
    expect(group.code).toBe(2);
    expect(group.err).toContain('--group 64 does not apply to --formats');
    expect(parseFormats('q8_0,Q4_1')).toEqual(['q8_0', 'q4_1']);
    expect(() => parseFormats('q4_0,q4_k')).toThrow(/"q4_k" is not a candidate ggml type/);
    expect(() => parseFormats('q4_0,q4_0')).toThrow(/twice/);
  });
});
