import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-sim-'));
const embedded = fileURLToPath(defaultModelUrl);

describe('lowbit sim', () => {
  it('simulates a shipped network with a command-line profile and prints one JSON object', async () => {
    const r = await run(['sim', 'alexnet', '--accel', 'stripes', '--profile', '9,8,5,5,7', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.network).toBe('alexnet');
    expect(j.accel).toBe('stripes');
    expect(j.layers.length).toBe(8);
    for (const k of ['baseline_cycles', 'cycles', 'speedup']) for (const l of [j, ...j.layers]) expect(typeof l[k]).toBe('number');
    expect(j.speedup).toBeCloseTo(j.baseline_cycles / j.cycles, 12);
    expect(j.energy).toBeNull();
  });
  it('writes CSV and SVG files', async () => {
    const csv = join(dir, 'l.csv');
    const svg = join(dir, 'l.svg');
    const r = await run(['sim', 'vgg19', '--accel', 'loom', '--bits-per-cycle', '2', '--csv', csv, '--svg', svg]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/vgg19 on loom \(2 bits\/cycle\)/);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines.length).toBe(1 + 19 + 1); // header, 16 conv + 3 fc, total
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg [^>]*>[\s\S]*<rect[\s\S]*<\/svg>\n$/);
  });
  it('runs Loom against the 128-MAC engine: FC time 16/p_w of that baseline', async () => {
    const r = await run(['sim', 'alexnet', '--accel', 'loom', '--machine', 'mac128', '--profile', 'dnnsim-99', '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.machine).toBe('mac128');
    // fc7: 4096x4096 = 256 x 512 blocks of the 8-row baseline; 4-bit weights over 16 columns
    expect(j.layers[6]).toMatchObject({ name: 'fc7', wgt_bits: 4, baseline_cycles: 256 * 512, cycles: 256 * 512 / 16 * 4 });
  });
  it('reads a JSON profile file', async () => {
    const p = join(dir, 'p.json');
    writeFileSync(p, JSON.stringify({ convAct: [8, 8, 8, 8, 8], fcWgt: [8, 8, 8] }));
    const r = await run(['sim', 'alexnet', '--accel', 'tartan', '--profile', p, '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.layers.slice(5).map((l: { speedup: number }) => l.speedup)).toEqual([2, 2, 2]);
  });
  it('runs on the embedded model (f32 weights: Stripes works, Laconic says why not)', async () => {
    const r = await run(['sim', embedded, '--accel', 'stripes', '--seq', '32', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out).layers.length).toBe(35);
    const bad = await run(['sim', embedded, '--accel', 'laconic', '--seq', '32']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/f32 weights; laconic needs quantized weights/);
  });
  it('runs every design on a GGUF written by lowbit quantize', async () => {
    const out = join(dir, 'int4.gguf');
    const q = await run(['quantize', '--method', 'rtn', '--format', 'int4', '--group', '32', '--out', out]);
    expect(q.code, q.err).toBe(0);
    for (const accel of ['tartan', 'loom', 'dpred', 'laconic', 'tactical']) {
      const r = await run(['sim', out, '--accel', accel, '--seq', '32', '--json']);
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out);
      expect(j.layers.length).toBe(35);
      expect(j.layers.every((l: { wgt_bits: number }) => l.wgt_bits === 4)).toBe(true);
      expect(j.speedup).toBeGreaterThan(0);
    }
  });
  it('bad input: wrong profile length, precision out of range, unknown network, unknown accelerator', async () => {
    const a = await run(['sim', 'alexnet', '--profile', '9,8,5']);
    expect([a.code, a.err]).toEqual([1, expect.stringMatching(/3 activation precisions for 5 conv layers/)]);
    const b = await run(['sim', 'alexnet', '--profile', '9,8,5,5,20']);
    expect([b.code, b.err]).toEqual([1, expect.stringMatching(/1\.\.16, got 20/)]);
    const c = await run(['sim', 'resnet50']);
    expect([c.code, c.err]).toEqual([1, expect.stringMatching(/neither a shipped network/)]);
    const d = await run(['sim', 'alexnet', '--accel', 'eyeriss']);
    expect(d.code).toBe(2);
    const e = await run(['sim', 'alexnet', '--accel', 'tartan', '--bits-per-cycle', '4']);
    expect([e.code, e.err]).toEqual([1, expect.stringMatching(/not a tartan variant/)]);
    const f = await run(['sim', 'alexnet', '--accel', 'stripes', '--machine', 'mac128']);
    expect([f.code, f.err]).toEqual([1, expect.stringMatching(/mac128 is the Loom paper's comparison point/)]);
  });
});

describe('lowbit sim a3 | gradiveq | ginex', () => {
  it('a3: m = 0 is exact (0% skipped, error 0); a search skips dot products', async () => {
    const [csv, svg] = [join(dir, 'a3.csv'), join(dir, 'a3.svg')];
    const r = await run(['sim', 'a3', '--seq', '32', '--m', '0,8', '--json', '--csv', csv, '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.rows[0]).toMatchObject({ m: 0, skipped: 0, relError: 0 });
    expect(j.rows[1].skipped).toBeGreaterThan(0);
    // the CSV carries the same rows as the JSON (threshold none: an empty cell)
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('m,k,threshold,skipped,relError,searchProductsPerQuery');
    expect(lines.slice(1).map((l) => l.split(',').map((c) => (c === '' ? null : Number(c))))).toEqual(
      j.rows.map((x: Record<string, number | null>) => [x.m, x.k, x.threshold, x.skipped, x.relError, x.searchProductsPerQuery]));
    const chart = readFileSync(svg, 'utf8');
    expect(chart).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    expect(chart.match(/<circle /g)?.length).toBe(2); // one point per setting
  });
  it('gradiveq: real gradients (or Q4_0 residuals), compression ratio d/k, a ring that agrees with the plain sum', async () => {
    const [csv, svg] = [join(dir, 'gq.csv'), join(dir, 'gq.svg')];
    const r = await run(['sim', 'gradiveq', '--nodes', '3', '--components', '8', '--seq', '32', '--json', '--csv', csv, '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.tensors).toMatch(/^real gradients of all \d+ weight tensors/);
    const res = await run(['sim', 'gradiveq', '--nodes', '2', '--components', '8', '--grads', 'residuals', '--json']);
    expect(JSON.parse(res.out)).toMatchObject({ tensors: expect.stringMatching(/Q4_0 residuals/), rows: [{ compressionRatio: 4 }] });
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines.length).toBe(2);
    expect(Number(lines[1].split(',')[lines[0].split(',').indexOf('compressionRatio')])).toBe(4);
    expect(readFileSync(svg, 'utf8').match(/<circle /g)?.length).toBe(2); // uncompressed and compressed at k = 8
    expect(j.rows[0].compressionRatio).toBe(4);
    expect(j.rows[0].ringMaxDiff).toBeLessThan(1e-9);
  });
  it('ginex: Belady hits at least as often as LRU at every size', async () => {
    const [csv, svg] = [join(dir, 'gx.csv'), join(dir, 'gx.svg')];
    const r = await run(['sim', 'ginex', '--graph-nodes', '3000', '--batch', '64', '--batches', '20', '--json', '--csv', csv, '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    const rows = JSON.parse(r.out).rows;
    for (const row of rows) expect(row.beladyHitRate).toBeGreaterThanOrEqual(row.lruHitRate);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines.slice(1).map((l) => Number(l.split(',')[3]))).toEqual(rows.map((x: { beladyHitRate: number }) => x.beladyHitRate));
    const chart = readFileSync(svg, 'utf8');
    expect(chart.match(/<polyline /g)?.length).toBe(2); // LRU and Belady
    expect(chart).toContain('Belady (Ginex)');
  });
});
