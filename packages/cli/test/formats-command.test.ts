import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

describe('lowbit formats', () => {
  it('prints every code of FP4 E2M1 with its value (JSON has no -0: code 0x8 reads 0)', async () => {
    const r = await run(['formats', 'fp4_e2m1', '--table', '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out);
    expect(t.codes.map((c: { value: number }) => c.value)).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]);
  });

  it('writes NaN codes of E4M3 as the string "NaN" in JSON', async () => {
    const t = JSON.parse((await run(['formats', 'fp8_e4m3', '--table', '--json'])).out);
    expect(t.codes[0x7f].value).toBe('NaN');
    expect(t.codes[0x7e].value).toBe(448);
  });

  it('quantizes values to MXFP4 from a JSON file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-fmt-'));
    const f = join(dir, 'v.json');
    writeFileSync(f, JSON.stringify([0.5, -1, 3, 6, 12, 0.1]));
    const r = await run(['formats', 'mxfp4', '--quantize', '--input', f, '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out);
    // amax 12: floor(log2 12) = 3, emax(E2M1) = 2 → scale 2^1 (E8M0 code 128); 0.1/2 → 0 (below 0.25).
    expect(t.scales).toEqual([128]);
    expect(t.values).toEqual([0, -1, 3, 6, 12, 0]);
  });

  it('names an unknown format and exits 1', async () => {
    const r = await run(['formats', 'fp7', '--table']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown element format "fp7"/);
  });
});
