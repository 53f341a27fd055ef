// lowbit finetune: a short QAT run writes a file that lowbit eval reads at the printed perplexity,
// and bad input (empty text, out-of-range settings, a packed model) fails with a clear error.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl, validTextUrl } from '@lowbit/data';
import { quantizeGguf } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-finetune-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// a short validation text keeps the four perplexity passes of the command cheap
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(0, 3000));
const train = join(dir, 'train.txt');
writeFileSync(train, readFileSync(fileURLToPath(validTextUrl), 'utf8').slice(5000, 7000));

describe('lowbit finetune', () => {
  it('QAT int4 writes a file that lowbit eval reads at the perplexity the command printed', async () => {
    const out = join(dir, 'qat.gguf');
    const r = await run(['finetune', '--method', 'qat', '--format', 'int4', '--steps', '2', '--batch', '1', '--ctx', '64', '--train', train, '--text', valid, '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ method: 'qat', format: 'int4', group: 32, steps: 2, tokens: 128, stopped: false });
    for (const k of ['perplexity_before', 'perplexity_ptq', 'perplexity_after', 'perplexity_file', 'seconds']) expect(Number.isFinite(j[k]), k).toBe(true);
    // the progress events carry the loss and tokens/s
    expect(r.events.some((e) => e.type === 'progress' && /^qat loss \d+\.\d{3} \d+ tok\/s$/.test(e.label ?? ''))).toBe(true);
    const e = await run(['eval', out, '--text', valid, '--ctx', '64', '--json']);
    expect(e.code, e.err).toBe(0);
    // the same file, text and windows: the same computation, bit for bit
    expect(JSON.parse(e.out).perplexity).toBe(j.perplexity_file);
  });

  it('refuses empty training text, out-of-range settings and a packed model, saying what to do', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '\n  \n');
    const a = await run(['finetune', '--train', empty, '--text', valid]);
    expect(a.code).toBe(1);
    expect(a.err).toMatch(/empty\.txt: the training text is empty/);
    const b = await run(['finetune', '--lr', '2', '--text', valid]);
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/--lr must be a number in \(0, 1\]/);
    const c = await run(['finetune', '--steps', '0', '--text', valid]);
    expect(c.code).toBe(2);
    const d = await run(['finetune', '--method', 'inq', '--format', 'q4_0', '--text', valid]);
    expect(d.code).toBe(2);
    expect(d.err).toMatch(/--method inq takes an INT-k --format/);
    const lc = await run(['finetune', '--method', 'qat', '--learn-clip', '--format', 'q4_0', '--text', valid]);
    expect(lc.code).toBe(2);
    expect(lc.err).toMatch(/--learn-clip works with --method qat on an INT-k --format/);
    const packed = join(dir, 'q8.gguf');
    await quantizeGguf(fileURLToPath(defaultModelUrl), packed, 'Q8_0');
    const p = await run(['finetune', packed, '--text', valid, '--train', train]);
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/holds q8_0 weights; training needs f32 weights \(load an f32\/f16 model or dequantize it to f32 first\): `lowbit convert .*q8\.gguf --to f32 --out model\.f32\.gguf`/);
  });
});
