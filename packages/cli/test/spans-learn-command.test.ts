import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

// Two stories and a few steps on short windows keep this to seconds (the figures are in the runtime README).
const text = join(mkdtempSync(join(tmpdir(), 'lowbit-spans-learn-')), 'few.txt');
writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 2).join('\n'));

describe('lowbit spans --learn', () => {
  it('learns spans ⌈z + R⌉ and reports both kinds at --ctx and at the model\'s context length', async () => {
    const r = await run(['spans', '--learn', '--steps', '3', '--ramp', '8', '--penalty', '0.01', '--ctx', '32', '--calibration-windows', '1', '--text', text, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    const l = j.learned;
    expect(l.spans).toHaveLength(5 * 8);
    expect(l.z).toHaveLength(5 * 8);
    for (const [i, z] of l.z.entries()) {
      expect(z).toBeGreaterThanOrEqual(0);
      expect(z).toBeLessThanOrEqual(32);
      expect(l.spans[i]).toBe(Math.ceil(z + 8));
    }
    expect(l.losses).toHaveLength(3);
    expect(l.perplexity.tokens).toBe(j.full.tokens);
    // stories260K's GGUF context is 2048: the same text again in windows of 2048, full / calibrated / learned
    expect(l.longest.ctx).toBe(2048);
    expect(l.longest.full.tokens).toBe(l.longest.learned.tokens);
    expect(l.longest.skippedLearned).toBeGreaterThan(0);
  });

  it('a ramp, penalty, step count or joint learning rate out of range is E_RANGE', async () => {
    for (const args of [['--ramp', '0'], ['--ramp', '4096'], ['--penalty', '-1'], ['--steps', '0'], ['--joint-lr', '2']]) {
      const r = await run(['spans', '--learn', ...args, '--ctx', '16', '--text', text]);
      expect(r.code).not.toBe(0);
      expect(r.err).toContain('E_RANGE');
    }
  });
});
