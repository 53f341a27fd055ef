// lowbit train-lstm: a tiny run trains, writes a file, quantizes with QAT and reports JSON; --from
// reads the file back at the same perplexity; bad input fails with a clear error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-train-lstm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const text = readFileSync(fileURLToPath(validTextUrl), 'utf8');
const valid = join(dir, 'valid.txt');
writeFileSync(valid, text.slice(0, 1500));
const train = join(dir, 'train.txt');
writeFileSync(train, text.slice(5000, 8000));

describe('lowbit train-lstm', () => {
  it('trains, writes, quantizes (PTQ and QAT) and reads its file back', async () => {
    const out = join(dir, 'lstm.safetensors');
    const args = ['--train', train, '--text', valid, '--hidden', '32', '--ctx', '16', '--batch', '2', '--json'];
    const r = await run(['train-lstm', ...args, '--steps', '3', '--layer-norm', '--out', out, '--quantize', '4', '--qat-steps', '1']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ hidden: 32, layers: 1, layer_norm: true, weight_norm: false, steps: 3, tokens: 3 * 2 * 16, out });
    for (const k of ['perplexity', 'seconds']) expect(Number.isFinite(j[k]), k).toBe(true);
    expect(j.quantized).toHaveLength(1);
    expect(Number.isFinite(j.quantized[0].perplexity_ptq) && Number.isFinite(j.quantized[0].perplexity_qat)).toBe(true);
    const back = await run(['train-lstm', '--from', out, '--steps', '0', '--text', valid, '--json']);
    expect(back.code, back.err).toBe(0);
    // the same weights, text and computation
    expect(JSON.parse(back.out).perplexity).toBe(j.perplexity);
  });

  it('refuses empty text and out-of-range settings', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '\n \n');
    const a = await run(['train-lstm', '--train', empty, '--text', valid, '--steps', '1']);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/empty\.txt: the training text gives 0 token\(s\); it is empty/);
    for (const [opt, val] of [['--hidden', '1'], ['--layers', '9'], ['--steps', '-1'], ['--lr', '0']]) {
      const b = await run(['train-lstm', opt, val, '--text', valid]);
      expect(b.code, `${opt} ${val}`).toBe(2);
    }
    const c = await run(['train-lstm', '--steps', '0', '--text', valid]);
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--steps 0 needs --from/);
    const d = await run(['train-lstm', '--from', valid, '--steps', '0', '--text', valid]);
    expect(d.code).toBe(1);
  });
});
