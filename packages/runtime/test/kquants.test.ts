// K-quant (Q2_K … Q6_K) and ggml MXFP4 blocks against llama.cpp's own library: golden bytes of its
// reference quantizers and golden values of its dequantizers (tools/ggml-kquants-golden.py, run on the
// libggml-base.so node-llama-cpp ships), then whole models written by lowbit in each type, run by both.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGML_K_BLOCK_BYTES } from '@lowbit/kernels';
import { dequantize, fromF32 } from '../src/ggml-quants.js';
import { packMxfp4 } from '../src/ggml-kquants.js';
import { tensorBytes, tensorTypeOf } from '../src/ggml-types.js';
import { saveModel } from '../src/gguf-convert.js';
import { quantizeMx } from '@lowbit/formats';
import { type MxRowsTensor, dequantizeMxRows } from '../src/lowbit-tensors.js';
import { Session } from '../src/forward.js';
import { readGguf } from '../src/gguf-reader.js';
import { encodeGgufHeader } from '../src/gguf-writer.js';
import { bytesSource } from '../src/byte-source.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { perplexity } from '../src/perplexity.js';
import { validLines } from './helpers.js';
import { logProbDiffs } from './llama-cpp-lib.js';
import { TINY_DIMS, tinyTypeFiles } from './tiny-type-files.js';

interface Golden {
  x: number[];
  [type: string]: { bytes: string; dequant: number[] } | number[];
}
const golden = JSON.parse(readFileSync(new URL('./fixtures/ggml-kquants-golden.json', import.meta.url), 'utf8')) as Golden;
const x = Float32Array.from(golden.x);
const gold = (t: string) => golden[t === 'MXFP4' ? 'mxfp4' : `q${t.slice(1)}`] as { bytes: string; dequant: number[] };
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe("K-quants and MXFP4 equal llama.cpp's reference code", () => {
  // 10 super-blocks: sines at two magnitudes, zeros, all-equal, all-negative, one outlier, values
  // below GROUP_MAX_EPS, exact grid points (ties for nearest_int)
  it.for(['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const)('%s: quantize_row_*_ref bytes are identical, block by block', (type) => {
    const ours = fromF32(type, x, 256);
    const theirs = gold(type).bytes;
    expect(ours.byteLength * 2).toBe(theirs.length);
    const per = type === 'MXFP4' ? 17 : GGML_K_BLOCK_BYTES[type];
    for (let b = 0; b < ours.byteLength / per; b++) expect(hex(ours.subarray(b * per, (b + 1) * per)), `block ${b}`).toBe(theirs.slice(2 * b * per, 2 * (b + 1) * per));
  });

  it.for(['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K', 'MXFP4'] as const)('%s: dequantize_row_* values are bit-identical', (type) => {
    const bytes = Uint8Array.from(Buffer.from(gold(type).bytes, 'hex'));
    const out = new Float32Array(x.length);
    dequantize(type, bytes, 0, x.length, out);
    expect(Array.from(out)).toEqual(gold(type).dequant);
  });

  it('MXFP4: OCP codes and E8M0 scales repack into ggml blocks without rounding (element j low nibble, j+16 high)', () => {
    const codes = Uint8Array.from({ length: 32 }, (_, i) => i % 16);
    const out = new Uint8Array(17);
    packMxfp4(codes, Uint8Array.of(127), out);
    expect(out[0]).toBe(127);
    expect(out[1]).toBe(0 | (0 << 4)); // codes 0 and 16 % 16 = 0
    expect(out[2]).toBe(1 | (1 << 4));
    const y = new Float32Array(32);
    dequantize('MXFP4', out, 0, 32, y);
    // E2M1 codes 0..7 = 0, .5, 1, 1.5, 2, 3, 4, 6 and their negatives; scale 2^(127−127) = 1
    expect(Array.from(y.subarray(0, 16))).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6]);
  });

  it('a GGUF whose Q4_K tensor has rows of 64 is refused by the reader, naming the tensor', async () => {
    const { header } = encodeGgufHeader(new Map(), [{ name: 'blk.0.ffn_up.weight', shape: [64, 4], type: 'F32' }]);
    const b = new Uint8Array(header.byteLength + 64 * 4 * 4);
    b.set(header);
    const view = new DataView(b.buffer);
    // the tensor's index entry: name, n_dims u32, dims u64 × 2, type u32 (F32 = 0 → Q4_K = 12), offset u64
    const name = new TextEncoder().encode('blk.0.ffn_up.weight');
    let at = -1;
    for (let p = 0; p + name.length <= b.length && at < 0; p++) if (name.every((c, i) => b[p + i] === c)) at = p + name.length + 4 + 16;
    expect(view.getUint32(at, true)).toBe(0);
    view.setUint32(at, 12, true);
    await expect(readGguf(bytesSource(b, 'k.gguf'))).rejects.toMatchObject({ code: 'E_SHAPE', message: expect.stringMatching(/blk\.0\.ffn_up\.weight: row length 64 is not a multiple of the Q4_K block size 256/) });
  });

  it('sizes and errors: rows that are not whole super-blocks, unknown ids, Q8_K as a weight', () => {
    expect(tensorBytes('Q4_K', [512, 3])).toBe(2 * 3 * 144);
    expect(tensorBytes('MXFP4', [64, 2])).toBe(4 * 17);
    expect(() => tensorBytes('Q4_K', [64, 2], 'blk.0.ffn_up.weight')).toThrow(/blk\.0\.ffn_up\.weight: row length 64 is not a multiple of the Q4_K block size 256/);
    expect(tensorTypeOf(14, 't')).toBe('Q6_K');
    expect(tensorTypeOf(39, 't')).toBe('MXFP4');
    expect(() => tensorTypeOf(16, 'blk.0.attn_q.weight')).toThrow(/blk\.0\.attn_q\.weight: tensor type IQ2_XXS is not supported/);
    expect(() => tensorTypeOf(77, 't')).toThrow(/unknown type id 77/);
    expect(() => dequantize('Q4_K', new Uint8Array(144), 0, 128, new Float32Array(128))).toThrow(/not whole 256-value blocks/);
    expect(() => fromF32('Q8_K', x.subarray(0, 256), 256)).toThrow(/activation type/);
  });
});

// tinyTypeFiles' llama has rows of 256 everywhere, so every weight, embeddings and output included,
// is stored in the K type under test.
const TYPES = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4'] as const;

describe('K-quant and MXFP4 files written by lowbit, run by lowbit and llama.cpp', () => {
  const files = tinyTypeFiles('K-quant cross-checks', TYPES);

  it.for(TYPES)('%s: every matrix is stored in the type, and next-token log-probs agree with llama.cpp', async (type, t) => {
    const path = files.path(type);
    const file = await readGguf(path);
    const matrices = [...file.tensors.values()].filter((x) => x.shape.length === 2);
    await file.source.close();
    expect(matrices.length).toBeGreaterThan(0);
    for (const m of matrices) expect(m.type, m.name).toBe(type);
    if (!files.llama) return t.skip(files.skipReason);
    const ours: DecoderModel = await loadModel(path);
    // K types stay packed, run by the kernels' K-quant GEMV
    if (type !== 'MXFP4') for (const l of ours.linears()) expect(l.format, l.name).toBe('kquant');
    const lm = await files.llama.loadModel({ modelPath: path });
    const d = await logProbDiffs(lm, ours, files.ids, TINY_DIMS.CTX);
    // control: the same llama.cpp run against lowbit on the unquantized weights must differ more
    const control = await logProbDiffs(lm, files.unquantized, files.ids, TINY_DIMS.CTX);
    await lm.dispose();
    const ppl = perplexity(ours, validLines.slice(0, 6).join('\n'), { ctx: TINY_DIMS.CTX, maxWindows: 1 }).perplexity;
    ours.free();
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const s = { n: d.length, max: Math.max(...d), mean: mean(d), ppl, controlMean: mean(control) };
    console.log(`log-prob |Δ| vs llama.cpp, ${type}:`, s);
    // lowbit rounds activations to int8 per 256 as llama.cpp's Q8_K does for K types (measured mean |Δ|:
    // Q6_K 4e-7, Q3_K 3e-5, Q2_K 0.001, Q4_K 0.002, Q5_K 0.0025) and keeps MXFP4's f32, where llama.cpp
    // takes Q8_0: rounding noise, and only it, is what the bounds allow (the Q4_0 test's bounds); a
    // wrong layout or scale gives differences of nats
    expect(s.n).toBeGreaterThanOrEqual(150);
    expect(s.mean).toBeLessThan(0.05);
    expect(s.max).toBeLessThan(0.5);
    // measured control/mean: Q2_K 28, Q3_K 18, Q4_K 6.5, Q5_K 4.5, Q6_K 2.1, MXFP4 29
    expect(s.controlMean).toBeGreaterThan(2 * s.mean);
  });

  it.for(['Q2_K', 'Q4_K', 'Q6_K'] as const)('%s loaded as Q8_0 (kquants: "q8_0"): log-probs still agree with llama.cpp', async (type, t) => {
    const path = files.path(type);
    const ours = await loadModel(path, { kquants: 'q8_0' });
    expect(ours.linears().every((l) => l.format === 'q8_0')).toBe(true);
    if (!files.llama) {
      ours.free();
      return t.skip(files.skipReason);
    }
    const lm = await files.llama.loadModel({ modelPath: path });
    const d = await logProbDiffs(lm, ours, files.ids, TINY_DIMS.CTX);
    await lm.dispose();
    ours.free();
    const s = { n: d.length, max: Math.max(...d), mean: d.reduce((a, b) => a + b, 0) / d.length };
    console.log(`log-prob |Δ| vs llama.cpp, ${type} held as Q8_0:`, s);
    // the Q8_0 re-quantization (|error| ≤ half a step of amax/127 per 32) adds to the activation noise
    expect(s.mean).toBeLessThan(0.05);
    expect(s.max).toBeLessThan(0.5);
  });

  it('MXFP4 layers (lowbit quantize --format mxfp4) are saved as ggml type 39: llama.cpp runs the file, lowbit loads it packed', async (t) => {
    const model = await loadModel(files.f32);
    const packed = new Map<string, MxRowsTensor>();
    for (const l of model.linears()) {
      const w = (l.source as { data: Float32Array }).data;
      const scales = new Uint8Array((l.rows * l.cols) / 32);
      const codes = new Uint8Array(l.rows * l.cols);
      for (let r = 0; r < l.rows; r++) {
        const q = quantizeMx(w.subarray(r * l.cols, (r + 1) * l.cols), { format: 'mxfp4' });
        scales.set(q.scales, (r * l.cols) / 32);
        codes.set(q.codes, r * l.cols);
      }
      const m: MxRowsTensor = { kind: 'mx-rows', format: 'mxfp4', shape: [l.rows, l.cols], scales, codes };
      packed.set(l.name, m);
      model.setLinear(l.name, { format: 'f32', shape: [l.rows, l.cols], data: dequantizeMxRows(m) });
    }
    const out = join(files.dir, 'lowbit-mxfp4.gguf');
    await saveModel(model, out, { packed });
    const f = await readGguf(out);
    const types = new Set([...f.tensors.values()].filter((x) => packed.has(x.name)).map((x) => x.type));
    expect(f.metadata.has('lowbit.tensor_types')).toBe(false); // nothing lowbit-specific left in the file
    await f.source.close();
    expect([...types]).toEqual(['MXFP4']);
    const back = await loadModel(out);
    expect(back.linears().every((l) => l.source.format === 'packed')).toBe(true); // 4.25 bits per weight resident, not f32
    // the loaded MXFP4 layers run on Q8_0 tiles (packed-fast.ts: E2M1 values are integers times 2^-1),
    // whose GEMV rounds activations to int8 per 32-block as llama.cpp's does; against the f32 matmul of
    // the same decoded weights that moves logits by 0.025 at most here (summation order alone: < 1e-3),
    // a wrong code or scale moves them by whole units
    const logits = (m: DecoderModel) => {
      const s = new Session(m, { ctx: TINY_DIMS.CTX });
      const l = s.forward(files.ids.slice(0, 32), { logits: 'all' });
      s.free();
      return l;
    };
    const a = logits(model);
    const b = logits(back);
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    expect(maxDiff).toBeLessThan(0.1);
    if (!files.llama) {
      model.free();
      back.free();
      return t.skip(files.skipReason);
    }
    const lm = await files.llama.loadModel({ modelPath: out });
    const d = await logProbDiffs(lm, back, files.ids, TINY_DIMS.CTX);
    const control = await logProbDiffs(lm, files.unquantized, files.ids, TINY_DIMS.CTX);
    await lm.dispose();
    model.free();
    back.free();
    const mean = (v: number[]) => v.reduce((x, y) => x + y, 0) / v.length;
    console.log('log-prob |Δ| vs llama.cpp, lowbit MXFP4 layers saved as type 39:', { n: d.length, max: Math.max(...d), mean: mean(d), controlMean: mean(control) });
    // as the quantizeGguf files above: llama.cpp's Q8_0 activations are the only difference
    expect(Math.max(...d)).toBeLessThan(0.5);
    expect(mean(d)).toBeLessThan(0.05);
    expect(mean(control)).toBeGreaterThan(2 * mean(d));
  });

  it('a truncated K-quant tensor is refused, naming the tensor', async () => {
    const bytes = readFileSync(files.path('Q4_K'));
    const cut = join(files.dir, 'cut.gguf');
    writeFileSync(cut, bytes.subarray(0, bytes.byteLength - 100)); // the last tensor loses part of a super-block
    await expect(loadModel(cut)).rejects.toThrow(/tensor blk\.1\.ffn_down\.weight: data ends at byte \d+ but the file has \d+ bytes/);
  });
});
