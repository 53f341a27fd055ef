// ggml's Q5_0, Q5_1 and IQ4_NL (the fallbacks llama.cpp's K-quant and IQ files use for rows that are
// not whole 256-blocks): files written by lowbit (by its twins of ggml's quantizers, checked byte for
// byte in ggml-quants.test.ts), read back and run as Q8_0 blocks of the same values, against llama.cpp
// running the same files.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadKernels } from '@lowbit/kernels';
import { toF32 } from '../src/ggml-quants.js';
import { Linear } from '../src/linear.js';
import { saveModel } from '../src/gguf-convert.js';
import { readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { loadModel } from '../src/model.js';
import { dequantizeLinear } from '../src/qdec.js';
import { logProbDiffs } from './llama-cpp-lib.js';
import { TINY_DIMS, tinyTypeFiles } from './tiny-type-files.js';

const TYPES = ['Q5_0', 'Q5_1', 'IQ4_NL'] as const;

describe('Q5_0, Q5_1 and IQ4_NL files, run by lowbit and llama.cpp', () => {
  const files = tinyTypeFiles('Q5_0 / Q5_1 / IQ4_NL cross-checks', TYPES);

  it.for(TYPES)('%s: the file holds the type, lowbit runs it (Q5_0 tiles or Q8_0) and saves the same blocks back, byte for byte', async (type) => {
    const file = await readGguf(files.path(type));
    const matrices = [...file.tensors.values()].filter((x) => x.shape.length === 2 && x.name !== 'output.weight' && x.name !== 'token_embd.weight');
    expect(matrices.length).toBeGreaterThan(0);
    for (const x of matrices) expect(x.type, x.name).toBe(type);
    const ours = await loadModel(files.path(type));
    for (const l of ours.linears()) {
      if (l.name === 'output.weight') continue;
      // Q5_0 and Q5_1 on the kernels' Q5_0 tiles (relaxed builds, rows in fours), IQ4_NL as Q8_0 blocks
      expect(l.format, l.name).toBe(type !== 'IQ4_NL' && ours.kernels.supportsMxfp4Tiles ? 'q5_0' : 'q8_0');
      const src = l.source as { format: string; data: Uint8Array };
      expect(src.format).toBe(type.toLowerCase());
      expect(Buffer.from(src.data).equals(Buffer.from(await readTensorBytes(file, l.name))), l.name).toBe(true);
      // the values the Q8_0 form multiplies are ggml's dequantized values
      expect(Array.from(dequantizeLinear(l.name, src as never))).toEqual(Array.from(toF32(type, src.data, l.rows * l.cols)));
    }
    await file.source.close();
    const again = join(files.dir, `again-${type}.gguf`);
    await saveModel(ours, again);
    ours.free();
    const a = await readGguf(files.path(type));
    const b = await readGguf(again);
    for (const x of matrices) expect(Buffer.from(await readTensorBytes(b, x.name)).equals(Buffer.from(await readTensorBytes(a, x.name))), x.name).toBe(true);
    await a.source.close();
    await b.source.close();
  });

  it.for(TYPES)('%s: next-token log-probs agree with llama.cpp', async (type, t) => {
    if (!files.llama) return t.skip(files.skipReason);
    const ours = await loadModel(files.path(type));
    const lm = await files.llama.loadModel({ modelPath: files.path(type) });
    const d = await logProbDiffs(lm, ours, files.ids, TINY_DIMS.CTX);
    const control = await logProbDiffs(lm, files.unquantized, files.ids, TINY_DIMS.CTX);
    await lm.dispose();
    ours.free();
    const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    const s = { n: d.length, max: Math.max(...d), mean: mean(d), controlMean: mean(control) };
    console.log(`log-prob |Δ| vs llama.cpp, ${type}:`, s);
    // both round activations to int8 per 32 (Q5_1: llama.cpp's q8_1 sums for m, lowbit's f32 sums)
    expect(s.mean).toBeLessThan(0.05);
    expect(s.max).toBeLessThan(0.5);
    expect(s.controlMean).toBeGreaterThan(2 * s.mean);
  });

  it('Q5_1 takes the Q8_0 form where a block\'s m would not come back exactly from m + 16·d, and saves the same bytes either way', async () => {
    const k = await loadKernels({ variant: 'relaxed' });
    const rows = 4;
    const cols = 64;
    const blocks = new Uint8Array((rows * cols * 24) / 32);
    const view = new DataView(blocks.buffer);
    for (let b = 0; b < blocks.length / 24; b++) {
      view.setUint16(b * 24, 0x3c00 + b, true); // d ≈ 1
      view.setUint16(b * 24 + 2, 0xb800 + 3 * b, true); // m ≈ −0.5
      for (let j = 4; j < 24; j++) blocks[b * 24 + j] = (b * 37 + j * 11) & 0xff;
    }
    const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i));
    const tiles = new Linear(k, 'q5_1', { format: 'q5_1', shape: [rows, cols], data: blocks });
    expect(tiles.format).toBe('q5_0');
    const odd = blocks.slice();
    new DataView(odd.buffer).setUint16(0, 0x6400, true); // d = 1024: m + 16384 has no room for m's bits in f32
    new DataView(odd.buffer).setUint16(2, 0x0401, true); // m = 2^-14·(1 + 2^-10)
    const q8 = new Linear(k, 'q5_1 odd', { format: 'q5_1', shape: [rows, cols], data: odd });
    expect(q8.format).toBe('q8_0');
    expect((tiles.source as { data: Uint8Array }).data).toEqual(blocks);
    expect((q8.source as { data: Uint8Array }).data).toEqual(odd);
    // the same values as ggml's dequantize_row_q5_1, through either form
    for (const [lin, b] of [[tiles, blocks], [q8, odd]] as const) {
      const w = toF32('Q5_1', b, rows * cols);
      const y = lin.apply(x, 1);
      for (let r = 0; r < rows; r++) {
        let ref = 0;
        let mag = 0;
        for (let c = 0; c < cols; c++) {
          ref += w[r * cols + c] * x[c];
          mag += Math.abs(w[r * cols + c] * x[c]);
        }
        // int8 activations: x moves by at most amax/254 per 32
        expect(Math.abs(y[r] - ref)).toBeLessThanOrEqual(mag / 127 + 1e-5 * mag);
      }
    }
    tiles.free();
    q8.free();
  });

  it('a NaN block scale is refused at load, and a truncated tensor, each naming the tensor', async () => {
    const bytes = readFileSync(files.path('Q5_1'));
    const file = await readGguf(files.path('Q5_1'));
    const info = file.tensors.get('blk.0.attn_q.weight');
    await file.source.close();
    expect(info).toBeDefined();
    const at = (info as { offset: number }).offset;
    const bad = Buffer.from(bytes);
    bad.writeUInt16LE(0x7e00, at + 24 * 3 + 2); // block 3's m
    writeFileSync(join(files.dir, 'nan.gguf'), bad);
    await expect(loadModel(join(files.dir, 'nan.gguf'))).rejects.toThrow(/blk\.0\.attn_q\.weight: Q5_1 block 3 has a NaN or infinite scale/);
    writeFileSync(join(files.dir, 'cut.gguf'), bytes.subarray(0, bytes.byteLength - 100));
    await expect(loadModel(join(files.dir, 'cut.gguf'))).rejects.toThrow(/data ends at byte \d+ but the file has \d+ bytes/);
  });
});
