import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

// A few stories keep these runs to a second or two (the figures are in the runtime README).
const text = join(mkdtempSync(join(tmpdir(), 'lowbit-kv-')), 'few.txt');
writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 2).join('\n'));

describe('lowbit kv', () => {
  it('reports perplexity, bytes per token and the compression ratio of an int8 cache with MiniCache', async () => {
    const r = await run(['kv', '--kv-bits', '8', '--minicache', '--ctx', '64', '--text', text, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.kvBits).toBe(8);
    expect(j.minicache.pairs).toEqual([[3, 4]]);
    expect(j.distances).toHaveLength(4);
    expect(j.compressed.tokens).toBe(j.baseline.tokens);
    // below 8 bits × 3 unmerged layers + the pair's 1–2 rows: under the int8 cache's 400 B/token
    expect(j.cache.bytesPerToken).toBeLessThan(400 + 2 * 20);
    expect(j.cache.ratio).toBeCloseTo(j.cache.fp16BytesPerToken / j.cache.bytesPerToken, 12);
  });

  it('--int8-kernel adds the int8-resident evaluation (same predictions, its own perplexity)', async () => {
    const r = await run(['kv', '--kv-bits', '8', '--int8-kernel', '--ctx', '64', '--text', text, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.int8Resident.tokens).toBe(j.baseline.tokens);
    // int8 states: within 5% of the f32 cache on two stories (the whole text: +0.0098 at ctx 256)
    expect(Math.abs(j.int8Resident.perplexity / j.baseline.perplexity - 1)).toBeLessThan(0.05);
  });

  it('bad settings are LowbitErrors with their codes', async () => {
    for (const [args, code] of [
      [['--kv-bits', '5'], 'E_RANGE'],
      [['--minicache', '--retain-gamma', '2'], 'E_RANGE'],
      [['--minicache', '--slerp-t', '-1'], 'E_RANGE'],
      [['--minicache', '--merge-from', '4'], 'E_RANGE'],
    ] as const) {
      const r = await run(['kv', ...args, '--ctx', '16', '--max-windows', '1']);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain(code);
    }
  });
});

describe('lowbit spans', () => {
  it('calibrates spans, and reports the reads skipped, both perplexities and attention times', async () => {
    const r = await run(['spans', '--ctx', '64', '--calibration-windows', '2', '--eps', '0.05', '--text', text, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.spans).toHaveLength(5 * 8);
    expect(j.spans.every((s: number) => s >= 1 && s <= 64)).toBe(true);
    expect(j.skipped).toBeGreaterThan(0);
    expect(j.full.tokens).toBe(j.spanned.tokens);
    expect(j.attentionSeconds.full).toBeGreaterThan(0);
  });

  it('eps or quantile out of range is E_RANGE; generate refuses a bad --kv-bits', async () => {
    for (const args of [['spans', '--eps', '1'], ['spans', '--quantile', '0'], ['generate', '--kv-bits', '3', '-n', '2']]) {
      const r = await run(args);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('E_RANGE');
    }
  });
});
