// lowbit allocate --granularity block --embed-buckets: the written model keeps one type per block,
// and its token embedding in per-row INT-k buckets that lowbit loads back.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { rtnQuantize } from '@lowbit/quantizers';
import { loadModel, readGguf, readSafetensors } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-units-'));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 2).join('\n'));
const SMALL = ['--bits', '2,4', '--method', 'diagonal', '--calib-windows', '1', '--calib-ctx', '64', '--text', valid, '--ctx', '64'];

describe('lowbit allocate --granularity block --embed-buckets', () => {
  it('one type per block; token_embd stored as per-row INT-k buckets in the one file, which lowbit eval reads to the perplexity allocate printed', async () => {
    const out = join(dir, 'units.gguf');
    const r = await run(['allocate', '--granularity', 'block', '--embed-buckets', '2', '--budget', '3.5', ...SMALL, '--json', '--out', out]);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(Object.keys(j.layers).slice(0, 5)).toEqual(['blk.0', 'blk.1', 'blk.2', 'blk.3', 'blk.4']);
    expect(j.embedding_buckets.length).toBe(2);
    expect(j.bits_per_weight).toBeLessThanOrEqual(3.5);
    const f = await readGguf(out);
    for (let b = 0; b < 5; b++) {
      const types = new Set([...f.tensors.values()].filter((t) => t.name.startsWith(`blk.${b}.`) && t.name.endsWith('.weight') && !t.name.includes('norm')).map((t) => t.type));
      expect(types.size).toBe(1);
    }
    expect(f.tensors.has('token_embd.weight')).toBe(false);
    expect([0, 1].map((b) => f.tensors.get(`token_embd.bucket${b}.weight`)?.type)).toEqual(j.embedding_buckets.map((e: { bits: number }) => `LB_INT${e.bits}`));
    await f.source.close();
    // same file, same text, same ctx: the same forward passes, bit for bit
    const e = await run(['eval', out, '--text', valid, '--ctx', '64', '--json']);
    expect(e.err).toBe('');
    expect(JSON.parse(e.out).perplexity).toBe(j.perplexity_written);

    // independent reference: each token's row is RTN (g32, symmetric) of the original row at its bucket's width
    const [orig, saved] = [await loadModel(fileURLToPath(defaultModelUrl)), await loadModel(out)];
    const tokenEmbd = saved.weights.tokenEmbd;
    if (tokenEmbd.type !== 'buckets') throw new Error('token_embd is not bucketed');
    const dim = orig.config.dim;
    const [row, got] = [new Float32Array(dim), new Float32Array(dim)];
    const seen = [0, 0];
    for (let id = 0; id < orig.config.vocabSize; id++) {
      const b = tokenEmbd.buckets.bucketOf[id];
      seen[b]++;
      orig.embed(id, row);
      saved.embed(id, got);
      expect(got).toEqual(rtnQuantize(row, [1, dim], { bits: j.embedding_buckets[b].bits, group: 32, symmetric: true }).weights);
    }
    expect(seen).toEqual(j.embedding_buckets.map((x: { tokens: number }) => x.tokens));
    orig.free();
    saved.free();
  }, 180_000);

  it('--out .safetensors: layers of mixed widths and the bucketed embedding in lowbit layout; lowbit eval gives the printed perplexity', async () => {
    const out = join(dir, 'units.safetensors');
    const r = await run(['allocate', '--embed-buckets', '2', '--budget', '3.5', ...SMALL, '--json', '--out', out]);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    expect(new Set(Object.values(j.layers))).toEqual(new Set(['int2 g32 rtn', 'int4 g32 rtn']));
    const st = await readSafetensors(out);
    expect(st.tensors.has('model.embed_tokens.weight')).toBe(false);
    expect(JSON.parse(st.metadata['lowbit.embedding_buckets']).map((b: { type: string }) => b.type)).toEqual(j.embedding_buckets.map((e: { bits: number }) => `LB_INT${e.bits}`));
    await st.source.close();
    const e = await run(['eval', out, '--text', valid, '--ctx', '64', '--json']);
    expect(e.err).toBe('');
    expect(JSON.parse(e.out).perplexity).toBe(j.perplexity_written);
  }, 120_000);

  it('--cost latency per block: a block costs its layers\' GEMV times added, embedding buckets (no GEMV) next to nothing', async () => {
    const r = await run(['allocate', '--cost', 'latency', '--granularity', 'block', '--embed-buckets', '2', '--max-dppl', '3', ...SMALL, '--json']);
    expect(r.err).toBe('');
    const j = JSON.parse(r.out);
    const config: Record<string, number> = { 'int2 g32 rtn': 0, 'int4 g32 rtn': 1 };
    const ms = j.latency.ms as Record<string, number[]>;
    expect(Object.keys(ms).length).toBe(35);
    // independent sum over the layers, each at its block's printed configuration
    const sum = Object.entries(ms).reduce((s, [name, t]) => s + t[config[j.layers[name.split('.').slice(0, 2).join('.')]]], 0);
    // buckets add 1e-9 ms per stored byte (tie-break): under 1e-4 ms for 512 rows of 64 at <= 8 bits
    expect(j.cost_total).toBeGreaterThanOrEqual(sum - 1e-12);
    expect(j.cost_total - sum).toBeLessThan(1e-4);
    expect(j.embedding_buckets.length).toBe(2);
  }, 120_000);

  it('refuses buckets with ggml types, and K types (not candidates)', async () => {
    const g = await run(['allocate', '--formats', 'q4_0,q8_0', '--embed-buckets', '2', '--budget', '6']);
    expect(g.err).toMatch(/--embed-buckets allocates INT-k rows/);
    const k = await run(['allocate', '--formats', 'q4_k,q8_0', '--budget', '6']);
    expect(k.err).toMatch(/K types hold 256-weight super-blocks per row/);
  });
});
