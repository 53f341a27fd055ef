// The one RoPE row permutation, checked against llama.cpp's converter written out independently
// (convert_hf_to_gguf.py `permute`: w.reshape(heads, 2, hd/2, cols).swapaxes(1, 2).reshape(...)), and
// the row permuters of every weight layout against permuting the decoded rows.
import { type PackedIntTensor, dequantizeInt, quantizeInt } from '@lowbit/formats';
import { describe, expect, it } from 'vitest';
import { fromF32, toF32 } from '../src/ggml-quants.js';
import { ggufToHfName, hfToGgufName } from '../src/hf-names.js';
import type { LinearWeight } from '../src/linear.js';
import { type MxRowsTensor, dequantizeMxRows } from '../src/lowbit-tensors.js';
import { ggufRopeLayout, permuteLinearRows, permuteRows, permuteStoredRows, ropeRowOrder } from '../src/rope-order.js';

/** The HF → GGUF permutation as the converter's reshape/swapaxes does it: GGUF row (h, i, t) = HF row (h, t, i). */
function converterPermute(w: Float32Array, heads: number, cols: number): Float32Array {
  const hd = w.length / cols / heads;
  const out = new Float32Array(w.length);
  let o = 0;
  for (let h = 0; h < heads; h++) for (let i = 0; i < hd / 2; i++) for (let t = 0; t < 2; t++) {
    const src = h * hd + t * (hd / 2) + i;
    out.set(w.subarray(src * cols, (src + 1) * cols), o);
    o += cols;
  }
  return out;
}

const rows = 4 * 8;
const cols = 64;
const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));

describe('RoPE row order', () => {
  it("to pairs is llama.cpp's converter permutation; to halves is its inverse", () => {
    const pairs = ropeRowOrder(4, 8, 'pairs');
    const halves = ropeRowOrder(4, 8, 'halves');
    expect(permuteRows(w, cols, pairs)).toEqual(converterPermute(w, 4, cols));
    expect(permuteRows(permuteRows(w, cols, pairs), cols, halves)).toEqual(w);
    expect(Array.from(pairs).sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
  });

  it('refuses odd head widths and non-whole heads', () => {
    expect(() => ropeRowOrder(4, 7, 'pairs')).toThrow(/even width/);
    expect(() => ropeRowOrder(0, 8, 'pairs')).toThrow(/heads/);
  });

  it('layouts by architecture: llama pairs, qwen2 halves, gpt2 none', () => {
    expect(ggufRopeLayout('llama')).toBe('pairs');
    expect(ggufRopeLayout('qwen2')).toBe('halves');
    expect(ggufRopeLayout('gpt2')).toBeNull();
  });

  it('permutes ggml blocks, int4 groups and packed INT-k / MX rows as it permutes the decoded rows', () => {
    const src = ropeRowOrder(4, 8, 'halves');
    for (const f of ['q8_0', 'q4_0', 'q4_1'] as const) {
      const q: LinearWeight = { format: f, shape: [rows, cols], data: fromF32(f.toUpperCase() as 'Q8_0', w, cols) };
      const p = permuteLinearRows('x', q, src) as { data: Uint8Array };
      const decoded = toF32(f.toUpperCase() as 'Q8_0', (q as { data: Uint8Array }).data, rows * cols);
      expect(toF32(f.toUpperCase() as 'Q8_0', p.data, rows * cols), f).toEqual(permuteRows(decoded, cols, src));
    }
    const t = quantizeInt(w, [rows, cols], { bits: 3, granularity: 'group-cols', group: 32, symmetric: false });
    const pt = permuteStoredRows('x', t, src) as PackedIntTensor;
    expect(dequantizeInt(pt)).toEqual(permuteRows(dequantizeInt(t), cols, src));
    expect((permuteLinearRows('x', { format: 'packed', shape: [rows, cols], tensor: t }, src) as { tensor: PackedIntTensor }).tensor).toEqual(pt);
    const m: MxRowsTensor = { kind: 'mx-rows', format: 'mxfp4', shape: [rows, cols], scales: Uint8Array.from({ length: rows * 2 }, (_, i) => 120 + (i % 9)), codes: Uint8Array.from({ length: rows * cols }, (_, i) => (i * 7) % 16) };
    expect(dequantizeMxRows(permuteStoredRows('x', m, src) as MxRowsTensor)).toEqual(permuteRows(dequantizeMxRows(m), cols, src));
    // int4 groups (the int4 kernel's layout): the same rows as the INT4 tensor they came from
    const t4 = quantizeInt(w, [rows, cols], { bits: 4, granularity: 'group-cols', group: 32, symmetric: true });
    const i4 = permuteLinearRows('x', { format: 'int4', shape: [rows, cols], packed: t4.codes, scales: t4.scales, zeros: null, group: 32 }, src) as { packed: Uint8Array; scales: Float32Array };
    const p4 = permuteStoredRows('x', t4, src) as PackedIntTensor;
    expect(i4.packed).toEqual(p4.codes);
    expect(i4.scales).toEqual(p4.scales);
  });

  it('names: biases and GPT-2 map both ways', () => {
    for (const g of ['blk.3.attn_q.bias', 'blk.3.attn_k.bias', 'blk.3.attn_v.bias', 'output.weight', 'blk.0.ffn_down.weight']) expect(hfToGgufName(ggufToHfName(g))).toBe(g);
    expect(ggufToHfName('blk.1.attn_qkv.weight', 'gpt2')).toBe('h.1.attn.c_attn.weight');
    expect(hfToGgufName('transformer.h.1.ln_2.bias', 'gpt2')).toBe('blk.1.ffn_norm.bias');
    expect(() => ggufToHfName('rope_freqs.weight')).toThrow(/no Hugging Face/);
  });
});
