// GPT-2's fused attn_qkv stored in lowbit tensor types, cut into Q, K, V at load: every form the
// loader runs a layer in (repacked with gathered inputs, a residue, a second plane; int4; the table
// GEMV; nested bit-planes) against the same model with Q, K, V quantized and stored apart. Rows are
// independent outputs, so each row-wise format quantizes a slice of rows as the whole tensor does:
// the two files hold the same weights, and the split layers must give the same logits bit for bit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MxFormatName, quantizeAnyPrecision, quantizeInt } from '@lowbit/formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { quantizeGguf, saveModel } from '../src/gguf-convert.js';
import { type GgufFile, readGguf, readTensorBytes } from '../src/gguf-reader.js';
import { type GgufTensorToWrite, gguf, writeGguf } from '../src/gguf-writer.js';
import { toF32 } from '../src/ggml-quants.js';
import { anyPrecisionTensorBytes } from '../src/any-precision-linear.js';
import type { InputGather } from '../src/linear.js';
import { type StoredLayer, encodeLowbit } from '../src/lowbit-tensors.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { actOrder, mxRows } from './helpers.js';
import { writeTinyGguf } from './tiny-models.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-gpt2qkv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The f32 tiny GPT-2 of each width: 64 (rows of whole 32-blocks) and 48 (a partial last block). */
const bases = new Map<number, string>();
beforeAll(async () => {
  for (const D of [64, 48]) {
    const path = join(dir, `gpt2-${D}.gguf`);
    await writeTinyGguf('gpt2', path, 777, { D });
    bases.set(D, path);
  }
});

type Stored = StoredLayer | ReturnType<typeof quantizeAnyPrecision>;

const mx = (format: MxFormatName) => (w: Float32Array, rows: number, cols: number): Stored => mxRows(format, w, rows, cols);
/** FP8 values 2^14 below their block's largest: bits under both int8 planes, kept as the exact residue. */
const withTiny = (w: Float32Array) => w.map((x, i) => (i % 7 === 3 ? x * 2 ** -16 : x));

interface Case {
  name: string;
  D: number;
  quantize: (w: Float32Array, rows: number, cols: number) => Stored;
  /** The layer format the fused tensor runs in, and the InputGather parts it has. */
  format: string;
  parts: (keyof InputGather)[];
  tiny?: boolean;
}

const cases: Case[] = [
  { name: 'MXFP8 E4M3: two Q8_0 planes and a residue', D: 64, quantize: mx('mxfp8_e4m3'), format: 'q8_0', parts: ['residue', 'plus'], tiny: true },
  { name: 'MXFP8 E5M2, 48-wide rows: gathered inputs, two planes, a residue', D: 48, quantize: mx('mxfp8_e5m2'), format: 'q8_0', parts: ['gather', 'residue', 'plus'], tiny: true },
  { name: 'MXFP6 E3M2, 48-wide rows: gathered inputs and a Q4_0 plane', D: 48, quantize: mx('mxfp6_e3m2'), format: 'q8_0', parts: ['gather', 'plus'] },
  { name: 'MXFP4, 48-wide rows: gathered inputs', D: 48, quantize: mx('mxfp4'), format: 'q8_0', parts: ['gather'] },
  { name: 'INT6 per row, 48-wide rows: Q8_0 on gathered inputs', D: 48, quantize: (w, r, c) => quantizeInt(w, [r, c], { bits: 6, granularity: 'per-oc' }), format: 'q8_0', parts: ['gather'] },
  {
    name: 'INT4 g32 act-order, asymmetric: Q4_0 on gathered inputs with a group term', D: 64, format: 'q4_0', parts: ['gather', 'groupTerm'],
    quantize: (w, r, c) => actOrder(quantizeInt(w, [r, c], { bits: 4, granularity: 'group-cols', group: 32, symmetric: false }), 11),
  },
  {
    name: 'INT3 g32 act-order: Q4_0 on gathered inputs', D: 64, format: 'q4_0', parts: ['gather'],
    quantize: (w, r, c) => actOrder(quantizeInt(w, [r, c], { bits: 3, granularity: 'group-cols', group: 32 }), 5),
  },
  { name: 'INT4 g32: Q4_0 (codes read back from the blocks)', D: 64, quantize: (w, r, c) => quantizeInt(w, [r, c], { bits: 4, granularity: 'group-cols', group: 32 }), format: 'q4_0', parts: [] },
  { name: 'INT4 g32 asymmetric: Q4_0 with a group term', D: 64, quantize: (w, r, c) => quantizeInt(w, [r, c], { bits: 4, granularity: 'group-cols', group: 32, symmetric: false }), format: 'q4_0', parts: ['groupTerm'] },
  { name: 'INT4 g32, 48-wide rows: int4', D: 48, quantize: (w, r, c) => quantizeInt(w, [r, c], { bits: 4, granularity: 'group-cols', group: 32 }), format: 'int4', parts: [] },
  { name: 'INT3 g16: the table GEMV', D: 48, quantize: (w, r, c) => quantizeInt(w, [r, c], { bits: 3, granularity: 'group-cols', group: 16 }), format: 'packed', parts: [] },
  { name: 'any-precision 3..4 bits: nested planes', D: 64, quantize: (w, r, c) => quantizeAnyPrecision(w, [r, c], { seedBits: 3, maxBits: 4 }), format: 'any-precision', parts: [] },
];

/** A stored layer as a GGUF tensor of lowbit type. */
function lowbitTensor(name: string, t: Stored): GgufTensorToWrite {
  const shape = [t.shape[1], t.shape[0]];
  if (t.kind === 'any-precision') return { name, shape, type: 'LB_ANYPREC', params: { seedBits: t.seedBits, maxBits: t.maxBits }, data: anyPrecisionTensorBytes(t) };
  const { type, params, bytes } = encodeLowbit(t, name);
  return { name, shape, type, params, data: bytes };
}

/** The base file's tensors as written, but attn_qkv of each block through `qkv` (its f32 weights and bias). */
async function rewrite(base: GgufFile, out: string, qkv: (b: string, w: Float32Array, bias: Float32Array) => GgufTensorToWrite[]): Promise<void> {
  const tensors: GgufTensorToWrite[] = [];
  for (const t of base.tensors.values()) {
    if (t.name.endsWith('attn_qkv.bias')) continue;
    const data = await readTensorBytes(base, t.name);
    if (!t.name.endsWith('attn_qkv.weight')) {
      tensors.push({ name: t.name, shape: t.shape, type: t.type, data });
      continue;
    }
    const b = t.name.slice(0, -'attn_qkv.weight'.length);
    const bias = toF32('F32', await readTensorBytes(base, `${b}attn_qkv.bias`), t.shape[1]);
    tensors.push(...qkv(b, toF32('F32', data, t.shape[0] * t.shape[1]), bias));
  }
  const meta = new Map(base.metadata);
  meta.set('lowbit.format_version', gguf.u32(2));
  await writeGguf(out, meta, tensors);
}

const f32Tensor = (name: string, v: Float32Array): GgufTensorToWrite => ({ name, shape: [v.length], type: 'F32', data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });

describe('GPT-2 with its fused attn_qkv in lowbit tensor types', () => {
  const ids = [5, 17, 42, 7, 99, 3, 250, 12];
  for (const c of cases) {
    it(`${c.name}: split at load, logits equal Q, K, V stored apart bit for bit`, async () => {
      const base = await readGguf(bases.get(c.D) as string);
      const D = c.D;
      const fused = join(dir, 'fused.gguf');
      const apart = join(dir, 'apart.gguf');
      const prep = (w: Float32Array) => (c.tiny ? withTiny(w) : w);
      const forms = new Set<string>();
      await rewrite(base, fused, (b, w, bias) => {
        const t = c.quantize(prep(w), 3 * D, D);
        // the fused tensor really takes the form under test
        const fast = t.kind === 'any-precision' ? { format: 'any-precision' } : linearWeightFromPacked(t);
        forms.add(fast.format);
        expect(Object.keys(fast).filter((k) => k === 'gather' || k === 'residue' || k === 'plus' || k === 'groupTerm').sort()).toEqual([...c.parts].sort());
        return [lowbitTensor(`${b}attn_qkv.weight`, t), f32Tensor(`${b}attn_qkv.bias`, bias)];
      });
      expect([...forms]).toEqual([c.format]);
      // Q, K, V quantized apart from the same f32 rows
      await rewrite(base, apart, (b, w, bias) => ['attn_q', 'attn_k', 'attn_v'].flatMap((n, i) => [
        lowbitTensor(`${b}${n}.weight`, c.quantize(prep(w).slice(i * D * D, (i + 1) * D * D), D, D)),
        f32Tensor(`${b}${n}.bias`, bias.slice(i * D, (i + 1) * D)),
      ]));
      await base.source.close();

      const a = await loadModel(fused);
      const b = await loadModel(apart);
      for (const n of ['attn_q', 'attn_k', 'attn_v']) {
        const la = a.linears().find((l) => l.name === `blk.1.${n}.weight`);
        expect([la?.format, la?.rows, la?.cols]).toEqual([c.format, D, D]);
      }
      const la = new Session(a, { ctx: 16 }).forward(ids, { logits: 'all' });
      const lb = new Session(b, { ctx: 16 }).forward(ids, { logits: 'all' });
      expect(la.every(Number.isFinite)).toBe(true);
      expect(la).toEqual(lb);

      // the split layers keep their own rows of the stored tensor: a re-save writes Q, K, V apart
      // with exactly the bytes of the file that stored them apart
      const again = join(dir, 'again.gguf');
      await saveModel(a, again);
      const [g, h] = [await readGguf(again), await readGguf(apart)];
      for (const n of ['attn_q', 'attn_k', 'attn_v']) {
        const name = `blk.0.${n}.weight`;
        expect(g.tensors.get(name)?.type).toBe(h.tensors.get(name)?.type);
        expect(await readTensorBytes(g, name)).toEqual(await readTensorBytes(h, name));
      }
      await g.source.close();
      await h.source.close();
      a.free();
      b.free();
    });
  }
});

describe('GPT-2 in a K-quant', () => {
  it('Q4_K: attn_qkv cut into Q, K, V at load is fused again on save, the same super-blocks byte for byte', async () => {
    const f32 = join(dir, 'gpt2-256.gguf');
    const q = join(dir, 'gpt2-q4k.gguf');
    await writeTinyGguf('gpt2', f32, 91, { D: 256, L: 1, CTX: 32 });
    await quantizeGguf(f32, q, 'Q4_K');
    const m = await loadModel(q);
    expect(m.linears().find((l) => l.name === 'blk.0.attn_k.weight')?.format).toBe('kquant');
    const logits = new Session(m, { ctx: 16 }).forward([5, 17, 42], { logits: 'all' });
    // as llama.cpp reads GPT-2: one fused attn_qkv (written apart, it would not load there)
    const again = join(dir, 'gpt2-q4k-again.gguf');
    await saveModel(m, again);
    const [g, h] = [await readGguf(again), await readGguf(q)];
    expect(g.tensors.has('blk.0.attn_q.weight')).toBe(false);
    expect(g.tensors.get('blk.0.attn_qkv.weight')?.type).toBe('Q4_K');
    expect(await readTensorBytes(g, 'blk.0.attn_qkv.weight')).toEqual(await readTensorBytes(h, 'blk.0.attn_qkv.weight'));
    await g.source.close();
    await h.source.close();
    const back = await loadModel(again);
    expect(new Session(back, { ctx: 16 }).forward([5, 17, 42], { logits: 'all' })).toEqual(logits);
    m.free();
    back.free();
  });
});
