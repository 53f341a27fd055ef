// lowbit's own GGUF tensor types (LB_INT*, LB_MX*): byte layouts, the writer and reader, loading
// them as packed layers, and llama.cpp refusing such a file with its own error.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MxFormatName, type PackedIntTensor, dequantizeInt, quantizeInt, quantizeMx } from '@lowbit/formats';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { LOWBIT_TYPES, bitsPerWeight, tensorTypeOf } from '../src/ggml-types.js';
import { LOWBIT_FORMAT_VERSION, saveModel } from '../src/gguf-convert.js';
import { lowbitParamsKey, metaValue, readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { writeGguf } from '../src/gguf-writer.js';
import { type MxRowsTensor, type StoredLayer, decodeLowbit, dequantizeMxRows, encodeLowbit } from '../src/lowbit-tensors.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { modelFile, mxRows } from './helpers.js';
import { packMxfp4 } from '../src/ggml-kquants.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-lbgguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function matrix(seed: number, rows: number, cols: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 0.3);
}

/** binary16 bits → value, written out from IEEE 754's layout (an independent check of the scales section). */
function halfValue(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** ggml MXFP4 blocks of an MXFP4 layer whose rows are whole 32-blocks (saved as type 39), else null. */
function ggmlMxfp4(t: StoredLayer): Uint8Array | null {
  if (t.kind !== 'mx-rows' || t.format !== 'mxfp4' || t.shape[1] % 32 !== 0) return null;
  const out = new Uint8Array((t.codes.length / 32) * 17);
  packMxfp4(t.codes, t.scales, out);
  return out;
}

function decode(t: StoredLayer): Float32Array {
  return t.kind === 'mx-rows' ? dequantizeMxRows(t) : dequantizeInt(t);
}

describe('lowbit tensor types: byte layouts', () => {
  it('type ids lie far past ggml\'s (1024+) and are read back by id', () => {
    for (const [name, info] of Object.entries(LOWBIT_TYPES)) {
      expect(info.id).toBeGreaterThanOrEqual(1024);
      expect(tensorTypeOf(info.id, 't')).toBe(name);
    }
  });

  const intCases: { bits: number; symmetric: boolean; granularity: 'group-cols' | 'per-oc' | 'per-ic' | 'group-rows'; group?: number; cols: number }[] = [
    { bits: 3, symmetric: true, granularity: 'group-cols', group: 32, cols: 172 },
    { bits: 2, symmetric: false, granularity: 'group-cols', group: 32, cols: 64 },
    { bits: 4, symmetric: true, granularity: 'per-oc', cols: 172 },
    { bits: 5, symmetric: false, granularity: 'group-cols', group: 16, cols: 70 },
    { bits: 8, symmetric: true, granularity: 'per-ic', cols: 64 },
    { bits: 6, symmetric: true, granularity: 'group-rows', group: 8, cols: 40 },
  ];
  for (const c of intCases) {
    it(`INT${c.bits} ${c.granularity}${c.group ? ` g${c.group}` : ''} ${c.symmetric ? 'sym' : 'asym'} [24, ${c.cols}]: documented size, exact round trip`, () => {
      const rows = 24;
      const t = quantizeInt(matrix(c.bits * 31 + c.cols, rows, c.cols), [rows, c.cols], c);
      const e = encodeLowbit(t);
      expect(e.type).toBe(`LB_INT${c.bits}`);
      expect(e.params).toEqual({ granularity: c.granularity, group: t.group, symmetric: c.symmetric, g_idx: false });
      // codes (rows × ⌈cols·k/8⌉) padded to 2, then fp16 scales (and zeros packed at k bits)
      const codeBytes = rows * Math.ceil((c.cols * c.bits) / 8);
      expect(e.bytes.byteLength).toBe(Math.ceil(codeBytes / 2) * 2 + t.scales.length * 2 + (c.symmetric ? 0 : Math.ceil((t.scales.length * c.bits) / 8)));
      // the scales section holds each scale's binary16 bits, little-endian
      const scalesAt = Math.ceil(codeBytes / 2) * 2;
      const view = new DataView(e.bytes.buffer, e.bytes.byteOffset);
      for (const i of [0, t.scales.length - 1]) expect(halfValue(view.getUint16(scalesAt + 2 * i, true))).toBe(t.scales[i]);
      const back = decodeLowbit(e.type, [c.cols, rows], e.params, e.bytes) as PackedIntTensor;
      expect(back.codes).toEqual(t.codes);
      expect(back.scales).toEqual(t.scales);
      expect(back.zeros).toEqual(t.zeros);
      expect(dequantizeInt(back)).toEqual(dequantizeInt(t));
    });
  }

  it('INT3 with a column → group map (act-order): g_idx section after the scales', () => {
    const rows = 8;
    const cols = 96;
    const t = quantizeInt(matrix(3, rows, cols), [rows, cols], { bits: 3, granularity: 'group-cols', group: 32 });
    const perm = Int32Array.from({ length: cols }, (_, i) => (i * 37) % cols); // 37 is prime to 96: a permutation
    const gIdx = new Int32Array(cols);
    perm.forEach((c, q) => (gIdx[c] = Math.floor(q / 32)));
    const withMap: PackedIntTensor = { ...t, gIdx };
    const e = encodeLowbit(withMap);
    expect(e.params?.g_idx).toBe(true);
    // codes | fp16 scales | the map packed at 2 bits a column (3 groups)
    expect(e.bytes.byteLength).toBe(rows * 36 + t.scales.length * 2 + (cols * 2) / 8);
    const back = decodeLowbit(e.type, [cols, rows], e.params, e.bytes) as PackedIntTensor;
    expect(back.gIdx).toEqual(gIdx);
    expect(dequantizeInt(back)).toEqual(dequantizeInt(withMap));
  });

  for (const format of ['mxfp4', 'mxfp6_e2m3', 'mxfp6_e3m2', 'mxfp8_e4m3', 'mxfp8_e5m2', 'mxint8'] as MxFormatName[]) {
    it(`${format}: codes at the element width, one E8M0 per 32 along each row (partial last block on 172-wide rows)`, () => {
      const rows = 6;
      for (const cols of [64, 172]) {
        const t = mxRows(format, matrix(cols, rows, cols), rows, cols);
        const e = encodeLowbit(t);
        const bits = LOWBIT_TYPES[e.type].bits;
        expect(e.bytes.byteLength).toBe(rows * Math.ceil((cols * bits) / 8) + rows * Math.ceil(cols / 32));
        const back = decodeLowbit(e.type, [cols, rows], undefined, e.bytes) as MxRowsTensor;
        expect(back).toEqual(t);
        // a row's blocks decode as formats' own MX decoder decodes that row
        if (cols === 64) {
          const flat = quantizeMx(matrix(cols, rows, cols), { format });
          expect(dequantizeMxRows(back)).toEqual(dequantizeMxRows({ ...t, scales: flat.scales, codes: flat.codes }));
        }
      }
    });
  }

  it('bad bytes and parameters are errors naming the tensor', () => {
    const t = quantizeInt(matrix(1, 4, 64), [4, 64], { bits: 4, granularity: 'group-cols', group: 32 });
    const e = encodeLowbit(t);
    expect(() => decodeLowbit(e.type, [64, 4], e.params, e.bytes.subarray(1), 'tensor x')).toThrow(/tensor x: .*bytes/);
    expect(() => decodeLowbit(e.type, [64, 4], undefined, e.bytes, 'tensor x')).toThrow(/tensor x: LB_INT4 needs its parameters/);
    expect(() => decodeLowbit(e.type, [64, 4], { ...e.params!, group: 0 }, e.bytes, 'tensor x')).toThrow(/group 0/);
  });
});

describe('lowbit-typed GGUF files', () => {
  /** The embedded model with every layer of blk.* replaced: INT3 g32 / INT2 asym / INT5 per-channel / MXFP4 / MXFP6, decoded f32 in memory. */
  async function quantized(): Promise<{ model: DecoderModel; packed: Map<string, StoredLayer> }> {
    const model = await loadModel(modelFile);
    const packed = new Map<string, StoredLayer>();
    model.linears().filter((l) => l.name.startsWith('blk.')).forEach((l, i) => {
      const w = (l.source as { data: Float32Array }).data;
      const shape: [number, number] = [l.rows, l.cols];
      const t: StoredLayer = [
        () => quantizeInt(w, shape, { bits: 3, granularity: 'group-cols', group: 32 }),
        () => quantizeInt(w, shape, { bits: 2, symmetric: false, granularity: 'group-cols', group: 32 }),
        () => quantizeInt(w, shape, { bits: 5, granularity: 'per-oc' }),
        () => mxRows('mxfp4', w, l.rows, l.cols),
        () => mxRows('mxfp6_e2m3', w, l.rows, l.cols),
      ][i % 5]();
      packed.set(l.name, t);
      model.setLinear(l.name, { format: 'f32', shape, data: decode(t) });
    });
    return { model, packed };
  }

  it('saveModel writes the packed layers as LB_* types with their metadata; loadModel runs them packed with the logits of the f32 decode', async () => {
    const { model, packed } = await quantized();
    const out = join(dir, 'mixed.gguf');
    await saveModel(model, out, { target: 'F32', packed });
    const f = await readGguf(out);
    expect(metaValue(f, 'general.quantized_by')).toBe('lowbit');
    expect(f.metadata.has('general.file_type')).toBe(false); // no llama_ftype describes lowbit types
    expect(metaValue(f, 'lowbit.format_version')).toBe(LOWBIT_FORMAT_VERSION);
    expect(LOWBIT_FORMAT_VERSION).toBe(2); // fp16 scales and packed zeros
    expect(new Set(metaValue(f, 'lowbit.tensor_types') as string[])).toEqual(new Set(['LB_INT3', 'LB_INT2', 'LB_INT5', 'LB_MXFP4', 'LB_MXFP6_E2M3']));
    for (const [name, t] of packed) {
      const info = f.tensors.get(name)!;
      const ggml = ggmlMxfp4(t);
      if (ggml) {
        // rows of whole 32-blocks: ggml's own MXFP4 (type 39), which llama.cpp runs (test/kquants.test.ts)
        expect(info.type).toBe('MXFP4');
        expect(await readTensorBytes(f, name)).toEqual(ggml);
        continue;
      }
      expect(info.type).toBe(encodeLowbit(t).type);
      expect(await readTensorBytes(f, name)).toEqual(encodeLowbit(t).bytes);
      if (t.kind === 'int') expect(JSON.parse(String(metaValue(f, lowbitParamsKey(name))))).toEqual(encodeLowbit(t).params);
    }
    const q = f.tensors.get('blk.0.attn_q.weight')!;
    expect(q.type).toBe('LB_INT3');
    expect(bitsPerWeight(q.type, q.shape, q.byteLength)).toBe(3.5); // 3-bit codes + one fp16 scale per 32
    const k = f.tensors.get('blk.0.attn_k.weight')!; // INT2 g32 asymmetric
    expect(bitsPerWeight(k.type, k.shape, k.byteLength)).toBe(2 + 16 / 32 + 2 / 32); // + a 2-bit zero per 32
    expect(f.tensors.get('output.weight')!.type).toBe('F32');
    await f.source.close();

    const loaded = await loadModel(out);
    const formats = new Map(loaded.linears().map((l) => [l.name, l.format]));
    // INT-k and MX repacked exactly onto integer kernels (packed-fast.ts), int8 activations
    expect(formats.get('blk.0.attn_q.weight')).toBe('q4_0'); // INT3 g32 symmetric
    expect(formats.get('blk.0.attn_k.weight')).toBe('q4_0'); // INT2 asym: u − z in [−3, 3]
    expect(formats.get('blk.0.attn_v.weight')).toBe(loaded.kernels.supportsMxfp4Tiles ? 'q5_0' : 'q8_0'); // INT5 per-channel: Q5_0 tiles
    // MXFP4 with 64-wide rows: the kernels' MXFP4 tiles on the relaxed build (the default here), Q8_0 elsewhere
    expect(formats.get('blk.0.attn_output.weight')).toBe(loaded.kernels.supportsMxfp4Tiles ? 'mxfp4' : 'q8_0');
    expect(formats.get('blk.1.ffn_down.weight')).toBe('q8_0'); // MXFP4 with 172-wide rows: blocks per row, the partial last one padded
    expect(formats.get('blk.0.ffn_down.weight')).toBe('int4'); // INT2 asym, 172-wide rows, partial last group

    const ids = loaded.tokenizer.encode('Once upon a time, there was a little girl named Lily.', { bos: true });
    // the same packed tensors in memory take the same kernels: identical logits
    for (const [name, t] of packed) model.setLinear(name, linearWeightFromPacked(t));
    const a = new Session(model, { ctx: 64 }).forward(ids, { logits: 'all' });
    const b = new Session(loaded, { ctx: 64 }).forward(ids, { logits: 'all' });
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    expect(maxDiff).toBe(0);

    // re-saving the loaded (packed) model gives the same tensors, byte for byte
    const again = join(dir, 'again.gguf');
    await saveModel(loaded, again);
    const g = await readGguf(again);
    for (const [name, t] of packed) expect(await readTensorBytes(g, name)).toEqual(ggmlMxfp4(t) ?? encodeLowbit(t).bytes);
    await g.source.close();
    model.free();
    loaded.free();
  });

  it('INT4 with groups of 32k loads on Q4_0 tiles (a g_idx too: x gathered in group order; zero points as a group term), rows not whole blocks on the int4 kernel; int8 activations', async () => {
    const model = await loadModel(modelFile);
    const packed = new Map<string, StoredLayer>();
    const names = ['blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_down.weight'];
    for (const name of names) {
      const l = model.linear(name);
      const symmetric = !name.includes('attn_v');
      const t = quantizeInt((l.source as { data: Float32Array }).data, [l.rows, l.cols], { bits: 4, granularity: 'group-cols', group: 32, symmetric });
      // attn_k: the same groups, declared through a column → group map (identity order)
      packed.set(name, name.includes('attn_k') ? { ...t, gIdx: Int32Array.from({ length: l.cols }, (_, c) => Math.floor(c / 32)) } : t);
    }
    const out = join(dir, 'int4.gguf');
    await saveModel(model, out, { packed });
    const loaded = await loadModel(out);
    expect(loaded.linear('blk.0.attn_q.weight').format).toBe('q4_0');
    expect(loaded.linear('blk.0.attn_k.weight').format).toBe('q4_0');
    expect(loaded.linear('blk.0.attn_v.weight').format).toBe('q4_0');
    expect(loaded.linear('blk.0.ffn_down.weight').format).toBe('int4'); // 172 columns
    // the asymmetric layer reads back with its zero points
    const v = loaded.linear('blk.0.attn_v.weight').source as { tensor: PackedIntTensor };
    expect(v.tensor.zeros).toEqual((packed.get('blk.0.attn_v.weight') as PackedIntTensor).zeros);
    expect(v.tensor.codes).toEqual((packed.get('blk.0.attn_v.weight') as PackedIntTensor).codes);
    // the Q4_0 layer keeps no copy of the codes: `source` reads them back from the tiles, the stored tensor bit for bit
    const back = loaded.linear('blk.0.attn_q.weight').source as { format: string; tensor: PackedIntTensor };
    const q = packed.get('blk.0.attn_q.weight') as PackedIntTensor;
    expect(back.format).toBe('packed');
    expect(back.tensor).toMatchObject({ kind: 'int', bits: 4, symmetric: true, granularity: 'group-cols', group: 32, shape: q.shape });
    expect(back.tensor.codes).toEqual(q.codes);
    expect(back.tensor.scales).toEqual(q.scales);
    for (const name of names) {
      const t = packed.get(name) as PackedIntTensor;
      const want = dequantizeInt(t);
      const lin = loaded.linear(name);
      const cols = lin.cols;
      const x = Float32Array.from({ length: cols }, (_, i) => Math.sin(i));
      const y = lin.apply(x, 1);
      const ng = t.scales.length / lin.rows;
      for (let r = 0; r < lin.rows; r++) {
        let ref = 0;
        let l1 = 0;
        for (let c = 0; c < cols; c++) {
          ref += want[r * cols + c] * x[c];
          // the int8-rounded inputs multiply scale·(u − 8) on Q4_0 tiles (the zero's term takes exact sums)
          const g = r * ng + Math.floor(c / t.group);
          l1 += t.zeros && lin.format === 'q4_0' ? Math.abs(want[r * cols + c] + t.scales[g] * (t.zeros[g] - 8)) : Math.abs(want[r * cols + c]);
        }
        // x rounded to int8 per 32 columns (|x| ≤ 1): each product off by ≤ |w|/254, plus f32 slack
        expect(Math.abs(y[r] - ref), name).toBeLessThan(l1 / 254 + 1e-5);
      }
    }
    model.free();
    loaded.free();
  });

  it('errors: a packed layer the model does not have, a missing parameter key; no partial file is left', async () => {
    const { model, packed } = await quantized();
    const bad = new Map(packed);
    bad.set('blk.9.attn_q.weight', packed.get('blk.0.attn_q.weight')!);
    const out = join(dir, 'bad.gguf');
    await expect(saveModel(model, out, { packed: bad })).rejects.toMatchObject({ code: 'E_MISSING' });
    const wrongShape = new Map(packed);
    wrongShape.set('blk.0.attn_k.weight', packed.get('blk.0.attn_q.weight')!); // [64, 64] into a [32, 64] layer
    await expect(saveModel(model, out, { packed: wrongShape })).rejects.toMatchObject({ code: 'E_SHAPE' });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);

    // an LB_INT tensor whose parameter key names another tensor (the writer itself always adds it)
    const t = packed.get('blk.0.attn_q.weight')!;
    const e = encodeLowbit(t);
    const noKey = join(dir, 'nokey.gguf');
    const v2 = new Map([['lowbit.format_version', { type: 4 as const, value: 2 }]]);
    await writeGguf(noKey, v2, [{ name: 'w', shape: [64, 64], type: e.type, params: e.params, data: e.bytes }]);
    const bytes = readFileSync(noKey);
    const at = bytes.indexOf('lowbit.tensor.w');
    bytes[at + 'lowbit.tensor.'.length] = 'v'.charCodeAt(0);
    writeFileSync(noKey, bytes);
    await expect(readGguf(noKey)).rejects.toThrow(/tensor w: LB_INT3 needs metadata lowbit\.tensor\.w/);

    // LB_INT tensors of format version 1 (f32 scales and zeros) are refused by name, as is a file without a version
    const v1 = join(dir, 'v1.gguf');
    await writeGguf(v1, new Map([['lowbit.format_version', { type: 4 as const, value: 1 }]]), [{ name: 'w', shape: [64, 64], type: e.type, params: e.params, data: e.bytes }]);
    await expect(readGguf(v1)).rejects.toMatchObject({ code: 'E_UNSUPPORTED', message: expect.stringMatching(/tensor w: written by lowbit format version 1, .*f32 scales.*quantize the model again/) });
    const none = join(dir, 'noversion.gguf');
    await writeGguf(none, new Map(), [{ name: 'w', shape: [64, 64], type: e.type, params: e.params, data: e.bytes }]);
    await expect(readGguf(none)).rejects.toMatchObject({ code: 'E_BAD_FILE', message: expect.stringMatching(/tensor w: LB_INT\* tensors need lowbit\.format_version 2/) });
    model.free();
  });
});
