// lowbit allocate --granularity block --embed-buckets: the written model keeps one type per block,
// and the bucket file decodes to the embedding rows the GGUF holds.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { readGguf, readSafetensors, readSafetensorsBytes, readSafetensorsF32, readTensorBytes } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-allocate-units-'));
const valid = join(dir, 'valid.txt');
writeFileSync(valid, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 2).join('\n'));
const SMALL = ['--bits', '2,4', '--method', 'diagonal', '--calib-windows', '1', '--calib-ctx', '64', '--text', valid, '--ctx', '64'];

describe('lowbit allocate --granularity block --embed-buckets', () => {
  it('one type per block in the GGUF; the bucket file decodes to its token_embd rows', async () => {
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
    expect(f.tensors.get('token_embd.weight')?.type).toBe('F32');
    const table = new Float32Array((await readTensorBytes(f, 'token_embd.weight')).slice().buffer);
    const st = await readSafetensors(j.embedding_file);
    const meta = JSON.parse(st.metadata['lowbit.embedding_buckets']);
    const dim = meta.dim as number;
    let seen = 0;
    for (let b = 0; b < 2; b++) {
      const bits = meta.bits[b] as number;
      expect(bits).toBe(j.embedding_buckets[b].bits);
      const rows = new Int32Array((await readSafetensorsBytes(st, `token_embd.bucket${b}.rows`)).buffer);
      const codes = await readSafetensorsBytes(st, `token_embd.bucket${b}.codes`);
      const scales = await readSafetensorsF32(st, `token_embd.bucket${b}.scales`);
      const rowBytes = codes.length / rows.length;
      const groups = scales.length / rows.length;
      rows.forEach((id, r) => {
        for (let c = 0; c < dim; c++) {
          // int-k convention: element c at bit c·bits of the row, little-endian
          const bit = c * bits;
          const u = ((codes[r * rowBytes + (bit >> 3)] | (codes[r * rowBytes + (bit >> 3) + 1] << 8)) >> (bit & 7)) & ((1 << bits) - 1);
          const v = scales[r * groups + Math.floor(c / meta.group)] * (u - 2 ** (bits - 1));
          // both are f32 products of the same f16 scale and integer code
          expect(table[id * dim + c]).toBe(Math.fround(v));
        }
      });
      seen += rows.length;
    }
    expect(seen).toBe(512);
  }, 180_000);

  it('refuses buckets with ggml types, latency costs with blocks, and K types (not candidates)', async () => {
    const g = await run(['allocate', '--formats', 'q4_0,q8_0', '--embed-buckets', '2', '--budget', '6']);
    expect(g.err).toMatch(/--embed-buckets allocates INT-k rows/);
    const l = await run(['allocate', '--cost', 'latency', '--granularity', 'block', '--max-dppl', '1']);
    expect(l.err).toMatch(/--cost latency times linear layers/);
    const k = await run(['allocate', '--formats', 'q4_k,q8_0', '--budget', '6']);
    expect(k.err).toMatch(/K types hold 256-weight super-blocks per row/);
  });
});
