// `lowbit quantize --format q4_k_m` (and the other K formats): RTN with ggml's reference quantizers,
// or GPTQ on their grid. stories260K's rows (64 and 172 wide) fit no 256-weight super-block, so every
// layer takes llama.cpp's fallback for its type (Q5_0 for Q4_K, Q8_0 for Q6_K, F32 for 172); the K types themselves are checked on a 256-wide model
// in @lowbit/runtime's kquant-mix.test.ts and @lowbit/quantizers' model-quantize-k.test.ts (against llama.cpp).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validTextUrl } from '@lowbit/data';
import { readGguf } from '@lowbit/runtime';
import { afterAll, describe, expect, it } from 'vitest';
// the tiny-model writer is runtime source, whose file access is installed by its Node entry
import '../../runtime/src/file-system-node.js';
import { writeTinyGguf } from '../../runtime/test/tiny-models.js';
import { run } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-quant-k-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lowbit quantize --format q4_k_m', () => {
  it('needs a .gguf output', async () => {
    const s = await run(['quantize', '--method', 'rtn', '--format', 'q4_k', '--out', join(dir, 'x.safetensors')]);
    expect(s.code).not.toBe(0);
    expect(s.err).toMatch(/written to a \.gguf file/);
  });

  it("on stories260K every layer takes llama.cpp's fallback (Q4_K's Q5_0, Q6_K's Q8_0, F32 for 172-wide rows); eval of the file prints the same perplexity", async () => {
    const out = join(dir, 'q4_k_m.gguf');
    const q = await run(['quantize', '--method', 'rtn', '--format', 'q4_k_m', '--out', out, '--json']);
    expect(q.code).toBe(0);
    const r = JSON.parse(q.out) as { perplexity_after: number; layers: { name: string; type: string; cols: number }[] };
    // Q4_K_M over 5 layers: output and attn_v / ffn_down of layers 2 and 4 are Q6_K (use_more_bits)
    const q6 = (n: string) => n === 'output.weight' || /^blk\.[24]\.(attn_v|ffn_down)\./.test(n);
    for (const l of r.layers) expect(l.type, l.name).toBe(l.cols % 32 !== 0 ? 'F32' : q6(l.name) ? 'Q8_0' : 'Q5_0');
    const e = await run(['eval', out, '--json']);
    expect(e.code).toBe(0);
    // the same Q8_0 blocks and F32 layers on the same kernels: the same number
    expect(JSON.parse(e.out).perplexity).toBe(r.perplexity_after);
    const g = await readGguf(out);
    await g.source.close();
    expect(g.tensors.get('blk.0.attn_v.weight')?.type).toBe('Q5_0');
    expect(g.tensors.get('blk.2.attn_v.weight')?.type).toBe('Q8_0');
  });

  it('--method gptq --format q4_k on a 256-wide random Llama: GPTQ K layers, RTN Q5_0 fallback for 320-wide rows; eval of the file prints the same perplexity', async () => {
    const model = join(dir, 'tiny.gguf');
    await writeTinyGguf('llama', model, 77, { D: 256, F: 320, L: 2, CTX: 256 });
    // a short text: a random-weights model's perplexity checks the file, it measures no quality
    const text = join(dir, 'short.txt');
    writeFileSync(text, readFileSync(fileURLToPath(validTextUrl), 'utf8').split('\n').slice(0, 12).join('\n'));
    const out = join(dir, 'gptq-q4_k.gguf');
    const q = await run(['quantize', model, '--method', 'gptq', '--format', 'q4_k', '--calib-windows', '2', '--text', text, '--out', out, '--json']);
    expect(q.code, q.err).toBe(0);
    const r = JSON.parse(q.out) as { method: string; perplexity_after: number; layers: { name: string; type: string; method: string; cols: number }[] };
    expect(r.method).toBe('gptq');
    for (const l of r.layers) expect([l.type, l.method], l.name).toEqual(l.cols === 320 ? ['Q5_0', 'rtn'] : ['Q4_K', 'gptq']);
    const g = await readGguf(out);
    await g.source.close();
    expect(g.tensors.get('blk.1.ffn_gate.weight')?.type).toBe('Q4_K');
    expect(g.tensors.get('blk.1.ffn_down.weight')?.type).toBe('Q5_0');
    const e = await run(['eval', out, '--text', text, '--json']);
    expect(e.code).toBe(0);
    // the same K blocks on the same kernels: the same number
    expect(JSON.parse(e.out).perplexity).toBe(r.perplexity_after);
  });
});
