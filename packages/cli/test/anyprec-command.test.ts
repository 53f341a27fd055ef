// lowbit anyprec → one nested file; lowbit eval / generate --bits serve its widths. The file must give
// the perplexities the command measured in memory, width by width.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { afterAll, describe, expect, it } from 'vitest';
import { parseBits } from '../src/commands/anyprec.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-anyprec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// a short text keeps the per-width evaluations quick; the README table uses the full text
const text = join(dir, 'valid.txt');
writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 3).join('\n'));
const calib = join(dir, 'calib.txt');
writeFileSync(calib, readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').split('\n').slice(0, 20).join('\n'));

describe('lowbit anyprec / eval --bits / generate --bits', () => {
  it('parses widths: one, a range, a list; anything else is a usage error', () => {
    expect(parseBits('3')).toEqual([3]);
    expect(parseBits('3..8')).toEqual([3, 4, 5, 6, 7, 8]);
    expect(parseBits('3,5,8')).toEqual([3, 5, 8]);
    for (const bad of ['9', '0', '3..9', '8..3', 'x', '3,,4', '']) expect(() => parseBits(bad)).toThrow(/--bits must be/);
  });

  it('one nested file serves every width with the perplexity measured in memory; widths it does not hold are E_ARG', async () => {
    const out = join(dir, 'ap.safetensors');
    const a = await run(['anyprec', '--seed-bits', '3', '--max-bits', '4', '--calib', calib, '--calib-windows', '1', '--ctx', '64', '--text', text, '--out', out, '--json']);
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    const made = JSON.parse(a.out) as { widths: { bits: number; perplexity: number }[] };
    expect(made.widths.map((w) => w.bits)).toEqual([3, 4]);
    // the upscaled width is better than its seed
    expect(made.widths[1].perplexity).toBeLessThan(made.widths[0].perplexity);
    const e = await run(['eval', out, '--bits', '3..4', '--ctx', '64', '--text', text, '--json']);
    expect(e.code).toBe(0);
    const served = JSON.parse(e.out) as { widths: { bits: number; perplexity: number }[] };
    // same weights, same kernel, same protocol: equal to the last bit
    expect(served.widths.map((w) => w.perplexity)).toEqual(made.widths.map((w) => w.perplexity));
    const g = await run(['generate', out, '--bits', '3', '-n', '8', '--json']);
    expect(g.code).toBe(0);
    expect(JSON.parse(g.out).bits).toBe(3);
    const bad = await run(['eval', out, '--bits', '5', '--text', text]);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/holds 3 to 4 bits, asked for 5 \[E_ARG\]/);
    const plain = await run(['generate', '--bits', '3', '-n', '2']);
    expect(plain.code).not.toBe(0);
    expect(plain.err).toMatch(/no any-precision layers/);
  });
});
