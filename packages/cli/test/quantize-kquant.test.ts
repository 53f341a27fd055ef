// `lowbit quantize --format q4_k_m` (and the other K formats): RTN with ggml's reference quantizers.
// stories260K's rows (64 and 172 wide) fit no 256-weight super-block, so every layer takes the
// fallback (Q8_0, F32 for 172); the K types themselves are checked on a 256-wide model in
// @lowbit/runtime's kquant-mix.test.ts (against llama.cpp).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGguf } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-quant-k-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lowbit quantize --format q4_k_m', () => {
  it('needs --method rtn (no GPTQ on the K grid yet) and a .gguf output', async () => {
    const g = await run(['quantize', '--format', 'q4_k']);
    expect(g.code).not.toBe(0);
    expect(g.err).toMatch(/round to nearest only .*add --method rtn/);
    const s = await run(['quantize', '--method', 'rtn', '--format', 'q4_k', '--out', join(dir, 'x.safetensors')]);
    expect(s.code).not.toBe(0);
    expect(s.err).toMatch(/written to a \.gguf file/);
  });

  it('on stories260K every layer falls back (Q8_0, F32 for 172-wide rows); eval of the file prints the same perplexity', async () => {
    const out = join(dir, 'q4_k_m.gguf');
    const q = await run(['quantize', '--method', 'rtn', '--format', 'q4_k_m', '--out', out, '--json']);
    expect(q.code).toBe(0);
    const r = JSON.parse(q.out) as { perplexity_after: number; layers: { name: string; type: string; cols: number }[] };
    for (const l of r.layers) expect(l.type, l.name).toBe(l.cols % 32 === 0 ? 'Q8_0' : 'F32');
    const e = await run(['eval', out, '--json']);
    expect(e.code).toBe(0);
    // the same Q8_0 blocks and F32 layers on the same kernels: the same number
    expect(JSON.parse(e.out).perplexity).toBe(r.perplexity_after);
    const g = await readGguf(out);
    await g.source.close();
    expect(g.tensors.get('blk.0.attn_v.weight')?.type).toBe('Q8_0');
  });
});
