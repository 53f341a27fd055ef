import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserializeFcq, deserializeFlexor, fcqStats } from '@lowbit/formats';
import { writeNpy } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

describe('lowbit encode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-encode-'));
  const w = Float32Array.from({ length: 24 * 40 }, (_, i) => Math.sin(i * 0.37) * 0.2 + (i % 97 === 0 ? 1 : 0));

  it('fcq on a .npy: coded bits/weight ≥ the entropy bound, and the file it writes reads back', async () => {
    const src = join(dir, 'W.npy');
    await writeNpy(src, w, [24, 40]);
    const out = join(dir, 'W.fcq');
    const r = await run(['encode', 'fcq', '--weights', src, '--bits', '3', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.method).toBe('fcq');
    expect(j.elements).toBe(960);
    expect(j.lossless).toBe(true);
    expect(j.bits_per_weight).toBeGreaterThanOrEqual(j.entropy_bound_bits_per_weight);
    const bytes = new Uint8Array(readFileSync(out));
    expect(j.bits_per_weight).toBe((bytes.length * 8) / 960); // everything stored, headers included
    const t = deserializeFcq(bytes);
    expect(t.shape).toEqual([24, 40]);
    expect(fcqStats(t).entropyBitsPerWeight).toBeCloseTo(j.entropy_bound_bits_per_weight, 12);
  });

  it('flexor on one tensor of the embedded model: fractional bits, WASM equal, baselines reported', async () => {
    const out = join(dir, 'q.flexor');
    const r = await run(['encode', 'flexor', '--tensor', 'blk.0.attn_q.weight', '--n-in', '6', '--n-out', '8', '--out', out, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.elements).toBe(64 * 64);
    expect(j.payload_bits_per_weight).toBe(0.75);
    expect(j.wasm_equal).toBe(true);
    expect(j.bits_per_weight).toBeLessThan(j.bcq1.bits_per_weight);
    expect(j.mse).toBeGreaterThan(0);
    expect(deserializeFlexor(new Uint8Array(readFileSync(out))).shape).toEqual([64, 64]);
  });

  it('rejects an unknown method and --out without one tensor (usage errors, exit 2)', async () => {
    expect((await run(['encode', 'zip'])).code).toBe(2);
    expect((await run(['encode', 'fcq', '--out', join(dir, 'x')])).code).toBe(2);
    expect((await run(['encode', 'flexor', '--n-in', '9', '--n-out', '8'])).code).toBe(2);
  });
});
