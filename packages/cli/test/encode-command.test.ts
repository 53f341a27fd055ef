import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deserializeFcq, deserializeFlexor, fcqStats } from '@lowbit/formats';
import { readNpy, writeNpy } from '@lowbit/runtime';
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

describe('lowbit decode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lowbit-decode-'));

  it('dpred on an already-integer .npy gives the input back bit for bit through encode --out / decode', async () => {
    const w = Float32Array.from({ length: 10 * 33 }, (_, i) => (i % 7 === 0 ? 0 : ((i * 37) % 201) - 100));
    const src = join(dir, 'I.npy');
    await writeNpy(src, w, [10, 33]);
    const enc = join(dir, 'I.dpred');
    const r = await run(['encode', 'dpred', '--weights', src, '--out', enc, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.mse).toBe(0);
    expect(j.integer_input).toBe(true);
    expect(j.wasm_equal).toBe(true);
    expect(j.bits_per_weight).toBeGreaterThan(j.entropy_bound_bits_per_weight);
    const back = join(dir, 'back.npy');
    const d = await run(['decode', enc, '--out', back, '--json']);
    expect(d.code, d.err).toBe(0);
    const a = await readNpy(back);
    expect(a.shape).toEqual([10, 33]);
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(w));
  });

  it('seqenc on an already-sparse .npy keeps every value bit for bit through encode --out / decode; pruned input reports the bounds', async () => {
    const w = Float32Array.from({ length: 12 * 30 }, (_, i) => (i % 4 === 0 ? Math.sin(i + 1) : 0));
    const src = join(dir, 'S.npy');
    await writeNpy(src, w, [12, 30]);
    const enc = join(dir, 'S.seqenc');
    const r = await run(['encode', 'seqenc', '--weights', src, '--out', enc, '--json']);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.exact_values).toBe(true);
    expect(j.mse).toBe(0);
    expect(j.density).toBe(0.25);
    expect(j.bits_per_weight).toBe((readFileSync(enc).length * 8) / w.length);
    const back = join(dir, 'S-back.npy');
    const d = await run(['decode', enc, '--out', back, '--json']);
    expect(d.code, d.err).toBe(0);
    const a = (await readNpy(back)).data as Float32Array;
    expect(Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))).toEqual(Array.from(new Uint32Array(w.buffer)));
    const pruned = join(dir, 'q.seqenc');
    const p = JSON.parse((await run(['encode', 'seqenc', '--tensor', 'blk.0.attn_q.weight', '--sparsity', '0.8', '--out', pruned, '--json'])).out);
    // the rANS-coded mask reads back through lowbit decode: 20% kept (a kept weight whose INT4 code is 0 decodes to 0)
    const qBack = join(dir, 'q-back.npy');
    expect((await run(['decode', pruned, '--out', qBack])).code).toBe(0);
    const q = (await readNpy(qBack)).data as Float32Array;
    const nonzero = q.filter((v) => v !== 0).length;
    expect(nonzero).toBeLessThanOrEqual(Math.round(0.2 * 4096));
    expect(nonzero).toBeGreaterThan(0.15 * 4096);
    expect(p.density).toBeCloseTo(0.2, 3); // round(0.8·n) pruned
    // the value planes cannot beat their care-bit fraction, and the whole cannot beat its bound
    expect(p.plane_bits_per_position).toBeGreaterThan(p.plane_bound_bits_per_position);
    expect(p.bits_per_weight).toBeGreaterThan(p.entropy_bound_bits_per_weight);
    expect(p.mask_bits_per_weight).toBeGreaterThanOrEqual(p.mask_order1_bits_per_weight);
    // 80% pruned: the rANS mask (≈ H(0.2) = 0.72 bits per position) replaces the 1-bit bitmap
    expect(p.mask_rans_tensors).toBe(1);
    expect(p.mask_bits_per_weight).toBeLessThan(0.8);
    expect(p.wasm_equal).toBe(true);
    expect((await run(['encode', 'seqenc', '--n-in', '9'])).code).toBe(2);
  });

  it('decodes FCQ to the values encode measured, and rejects a corrupted file (exit 1, names the checksum)', async () => {
    const enc = join(dir, 'q.fcq');
    const r = await run(['encode', 'fcq', '--tensor', 'blk.1.attn_v.weight', '--bits', '3', '--out', enc, '--json']);
    expect(r.code, r.err).toBe(0);
    const back = join(dir, 'q.npy');
    expect((await run(['decode', enc, '--out', back])).code).toBe(0);
    const bytes = new Uint8Array(readFileSync(enc));
    bytes[bytes.length - 9] ^= 1;
    const bad = join(dir, 'bad.fcq');
    writeFileSync(bad, bytes);
    const e = await run(['decode', bad, '--out', join(dir, 'x.npy')]);
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/checksum|state/);
  });
});
