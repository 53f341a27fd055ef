// lowbit qdec: builds the residual store of a quantized base, measures perplexity per k, writes the
// store; the written store serves the same perplexities and refuses another base.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl, validTextUrl } from '@lowbit/data';
import { type PackedIntTensor, quantizeInt } from '@lowbit/formats';
import { loadModel, saveModel } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { parseKs } from '../src/commands/qdec.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-qdec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// short texts keep the per-k evaluations quick; the README table uses the full text
const text = join(dir, 'valid.txt');
writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 1).join('\n'));
const calib = join(dir, 'calib.txt');
writeFileSync(calib, readFileSync(fileURLToPath(calibrationTextUrl), 'utf8').split('\n').slice(0, 10).join('\n'));

describe('lowbit qdec', () => {
  it('parses --k lists; anything else is a usage error', () => {
    expect(parseKs('0,4,16')).toEqual([0, 4, 16]);
    expect(parseKs('8')).toEqual([8]);
    for (const bad of ['-1', 'x', '1,,2', '1.5', '']) expect(() => parseKs(bad)).toThrow(/--k must be/);
  });

  it('compensation lowers an int3 base’s perplexity as k grows; the written store serves the same figures and refuses another base', { timeout: 60_000 }, async () => {
    // the RTN int3 g32 file lowbit quantize writes, made through the library (no evaluations)
    const int3 = join(dir, 'int3.gguf');
    const m = await loadModel(fileURLToPath(defaultModelUrl));
    const packed = new Map<string, PackedIntTensor>();
    for (const l of m.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      packed.set(l.name, quantizeInt(src.data, src.shape, { bits: 3, granularity: 'group-cols', group: 32 }));
    }
    await saveModel(m, int3, { target: 'F32', packed });
    m.free();
    const store = join(dir, 'r.safetensors');
    const a = await run(['qdec', int3, '--calib', calib, '--calib-windows', '2', '--channels', '0.5', '--k', '0,4,64', '--ctx', '64', '--text', text, '--out', store, '--json']);
    expect(a.err).toBe('');
    expect(a.code).toBe(0);
    const made = JSON.parse(a.out) as { rows: { k: number; perplexity: number; residualBytesPerToken: number }[]; layers: number };
    expect(made.layers).toBe(35); // 5 blocks × 7 linears; the F32 LM head has nothing to compensate
    const [k0, k4, kAll] = made.rows;
    expect(k0.residualBytesPerToken).toBe(0);
    expect(k4.perplexity).toBeLessThan(k0.perplexity);
    expect(kAll.perplexity).toBeLessThan(k4.perplexity);
    // every layer fetches 4 int8 columns (rows + f32 scale + i32 index) per token
    expect(k4.residualBytesPerToken).toBe(4 * 5 * (64 + 32 + 32 + 64 + 172 + 172 + 64 + 7 * 8));
    const b = await run(['qdec', int3, '--store', store, '--k', '0,4,64', '--ctx', '64', '--text', text, '--json']);
    expect(b.code).toBe(0);
    // same store, same base, same protocol: equal to the last bit
    expect((JSON.parse(b.out) as { rows: { perplexity: number }[] }).rows.map((r) => r.perplexity)).toEqual(made.rows.map((r) => r.perplexity));
    // the embedded f32 model is not the base the store was built for
    const bad = await run(['qdec', fileURLToPath(defaultModelUrl), '--store', store, '--k', '4', '--ctx', '64', '--text', text]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/was built for other base weights .*\[E_BAD_FILE\]/);
  });
});
