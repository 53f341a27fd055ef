import { type MxFormatName, dequantizeInt, quantizeInt, quantizeMx } from '@lowbit/formats';
import { loadKernels } from '@lowbit/kernels';
import { describe, expect, it } from 'vitest';
import { q8BlocksOf } from '../src/ggml-quants.js';
import { type InputGather, type IntForm, Linear, type LinearWeight } from '../src/linear.js';
import { dequantizeMxRows } from '../src/lowbit-tensors.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { permuteLinearRows } from '../src/rope-order.js';
import { dequantizeLinear } from '../src/qdec.js';
import { actOrder, modelFile, mxRows, spikyWeights, validLines } from './helpers.js';

/**
 * The weights a repacked Q8_0 layer multiplies, by its own definition: kernel column j of row r
 * (d·q, ggml's Q8_0 blocks) times x[gather[j]], plus the residue; accumulated in f64 so any
 * difference from the decoded tensor is the repacking's, not this sum's.
 */
function kernelWeights(w: LinearWeight, out?: Float64Array): Float64Array {
  // MXFP4 tiles hold the same values as their Q8_0 form (the kernels' mxfp4-tiles test: equal outputs)
  if (w.format === 'mxfp4') return kernelWeights(w.fallback, out);
  // Q5_0 tiles hold the same values as the Q8_0 blocks of codes u − 16 (the kernels' q5-tiles test: equal outputs)
  if (w.format === 'q5_0') return kernelWeights({ format: 'q8_0', shape: w.shape, data: q8BlocksOf('Q5_0', w.data, w.shape[0], w.shape[1]).q8 }, out);
  expect(['q8_0', 'q4_0']).toContain(w.format);
  const q4 = w.format === 'q4_0';
  const { data, shape, gather, residue, plus } = w as { data: Uint8Array; shape: [number, number] } & InputGather;
  const [rows, cols] = shape;
  const pc = gather?.length ?? cols;
  const acc = out ?? new Float64Array(rows * cols);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const per = q4 ? 18 : 34;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < pc; j++) {
      const o = (r * (pc / 32) + (j >> 5)) * per;
      const c = gather ? gather[j] : j;
      const jj = j & 31;
      // Q4_0: element jj in the low nibble of byte jj, jj + 16 in the high one, minus 8
      const q = q4 ? ((data[o + 2 + (jj & 15)] >> (jj < 16 ? 0 : 4)) & 15) - 8 : view.getInt8(o + 2 + jj);
      if (c < 0) expect(q).toBe(0);
      else acc[r * cols + c] += f16(view.getUint16(o, true)) * q;
    }
  }
  if (residue) for (let i = 0; i < residue.index.length; i++) acc[residue.index[i]] += residue.values[i];
  if (plus) kernelWeights(plus, acc);
  return acc;
}

function f16(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1024 + m) * 2 ** (e - 25);
  return h & 0x8000 ? -v : v;
}

describe('INT-k and MX on the integer kernels (packed-fast)', () => {
  it('INT-k repacks exactly: the weights the kernel multiplies equal the decoded tensor bit for bit', () => {
    const cases: [number, boolean, 'group-cols' | 'per-oc' | 'tensor', number, number, string][] = [
      [2, true, 'group-cols', 32, 64, 'q4_0'],
      [3, true, 'group-cols', 32, 64, 'q4_0'],
      [3, true, 'group-cols', 128, 256, 'q4_0'],
      [3, true, 'per-oc', 0, 96, 'q4_0'],
      [3, true, 'tensor', 0, 64, 'q4_0'],
      [3, false, 'group-cols', 32, 64, 'q4_0'], // u − z in [−7, 7]
      [6, false, 'group-cols', 64, 64, 'q8_0'], // u − z up to ±63
      [7, false, 'group-cols', 32, 64, 'q8_0'],
      [3, true, 'group-cols', 32, 172, 'int4'], // rows not whole 32-blocks
      [2, false, 'per-oc', 0, 172, 'int4'],
      [5, true, 'group-cols', 32, 64, 'q5_0'], // u − 16 in [−16, 15]: Q5_0 blocks
      [6, true, 'group-cols', 64, 128, 'q8_0'],
      [8, true, 'per-oc', 0, 64, 'q8_0'],
      [8, true, 'per-oc', 0, 172, 'q8_0'], // rows padded to whole blocks (zero columns)
      [5, false, 'group-cols', 32, 100, 'q8_0'],
    ];
    for (const [bits, symmetric, granularity, group, cols, format] of cases) {
      const rows = 12;
      const t = quantizeInt(spikyWeights(rows, cols, bits * 1000 + cols), [rows, cols], { bits, granularity, group: group || undefined, symmetric });
      const w = linearWeightFromPacked(t);
      expect(w.format, `int${bits} ${symmetric ? 'sym' : 'asym'} ${granularity} ${group} cols ${cols}`).toBe(format);
      // exact: every value is scale·(small integer), which f32 holds exactly on both sides
      if ((w as InputGather).gather) expect(Float32Array.from(kernelWeights(w))).toEqual(dequantizeInt(t));
      else expect(dequantizeLinear('w', w)).toEqual(dequantizeInt(t));
    }
  });

  it('every MX format runs as Q8_0 (FP8 plus a Q8_0 plane, FP6 E3M2 plus a Q4_0 plane), whole and partial blocks, exactly', () => {
    const rows = 8;
    const second: Record<MxFormatName, string | undefined> = { mxfp4: undefined, mxfp6_e2m3: undefined, mxint8: undefined, mxfp6_e3m2: 'q4_0', mxfp8_e4m3: 'q8_0', mxfp8_e5m2: 'q8_0' };
    for (const [format, plane] of Object.entries(second) as [MxFormatName, string | undefined][]) {
      for (const cols of [96, 100]) {
        // wide-range values so FP8 blocks hold values 2^14 below their largest (the residue)
        const v = spikyWeights(rows, cols, 7).map((x, i) => (i % 5 === 0 ? x * 1e-5 : x));
        const m = mxRows(format, v, rows, cols);
        const w = linearWeightFromPacked(m);
        const g = (w as InputGather).gather;
        expect(g?.length ?? cols, `${format} ${cols}`).toBe(Math.ceil(cols / 32) * 32);
        expect((w as InputGather).plus?.format, format).toBe(plane);
        // exact up to the sign of zero (MX has a −0 code, int8 has none; ±0·x adds the same)
        expect(Array.from(kernelWeights(w), (x) => x + 0), `${format} ${cols}`).toEqual(Array.from(dequantizeMxRows(m), (x) => x + 0));
        if (format === 'mxfp8_e4m3') expect((w as InputGather).residue?.index.length).toBeGreaterThan(0);
        if (format === 'mxfp6_e3m2') expect((w as InputGather).residue).toBeUndefined();
      }
    }
    for (const format of Object.keys(second) as MxFormatName[]) {
      const cols = 96;
      const m = quantizeMx(spikyWeights(rows, cols, 7), { format });
      const w = linearWeightFromPacked(m, { shape: [rows, cols] });
      expect(w.format, format).toBe(format === 'mxfp4' ? 'mxfp4' : 'q8_0');
      // a block scale outside fp16's range (2^-24..2^15 after the element factor) keeps the exact table path
      const big = { ...m, scales: m.scales.slice() };
      big.scales[3] = 127 + 30;
      expect(linearWeightFromPacked(big, { shape: [rows, cols] }).format).toBe('packed');
    }
  });

  it('MXFP4 on the kernels\' MXFP4 tiles: the outputs of its Q8_0 form bit for bit, rows moved or picked as that form', async () => {
    const k = await loadKernels({ variant: 'relaxed' });
    const [rows, cols, batch] = [8, 96, 3];
    const m = mxRows('mxfp4', spikyWeights(rows, cols, 23), rows, cols);
    const w = linearWeightFromPacked(m);
    expect(w.format).toBe('mxfp4');
    const fallback = (w as Extract<LinearWeight, { fallback: LinearWeight }>).fallback;
    expect(fallback.format).toBe('q8_0');
    const x = Float32Array.from(spikyWeights(batch, cols, 5), (v) => v * 3);
    const tiles = new Linear(k, 'mxfp4', w);
    const q8 = new Linear(k, 'q8_0', fallback);
    expect(tiles.format).toBe('mxfp4');
    expect(Array.from(tiles.apply(x, batch))).toEqual(Array.from(q8.apply(x, batch)));
    // two layers sharing x (applyShared: one activation quantization) give each one's own result
    expect(Linear.applyShared([tiles, tiles], x, batch).map((y) => Array.from(y))).toEqual([Array.from(q8.apply(x, batch)), Array.from(q8.apply(x, batch))]);
    // a kernel build without MXFP4 tiles runs the Q8_0 form
    const plain = new Linear(await loadKernels({ variant: 'simd' }), 'plain', w);
    expect(plain.format).toBe('q8_0');
    // rows in RoPE order stay tiles; a pick of rows not in fours falls back to the Q8_0 form
    const order = Int32Array.from([3, 0, 1, 2, 7, 4, 5, 6]);
    const moved = new Linear(k, 'moved', permuteLinearRows('w', w, order));
    expect(moved.format).toBe('mxfp4');
    const y = q8.apply(x, batch);
    const ym = moved.apply(x, batch);
    for (let b = 0; b < batch; b++) order.forEach((s, r) => expect(ym[b * rows + r]).toBe(y[b * rows + s]));
    expect(permuteLinearRows('w', w, Int32Array.from([2, 3, 4])).format).toBe('q8_0');
    for (const l of [tiles, q8, plain, moved]) l.free();
  });

  it('two-plane layers put in RoPE row order, or cut to some rows, keep exactly the moved rows', () => {
    const rows = 8;
    const cols = 100;
    for (const format of ['mxfp8_e4m3', 'mxfp6_e3m2'] as const) {
      const m = mxRows(format, spikyWeights(rows, cols, 17).map((x, i) => (i % 5 === 0 ? x * 1e-5 : x)), rows, cols);
      const d = dequantizeMxRows(m);
      for (const src of [Int32Array.from([3, 0, 1, 2, 7, 4, 5, 6]), Int32Array.from([2, 3, 4])]) {
        const p = permuteLinearRows('w', linearWeightFromPacked(m), src);
        expect(p.shape).toEqual([src.length, cols]);
        const want = new Float32Array(src.length * cols);
        src.forEach((s, r) => want.set(d.subarray(s * cols, (s + 1) * cols), r * cols));
        expect(Array.from(kernelWeights(p), (x) => x + 0), format).toEqual(Array.from(want, (x) => x + 0));
      }
    }
  });

  it('gathered weights with a gather or residue index outside the layer are refused, naming the layer', async () => {
    const k = await loadKernels();
    const data = new Uint8Array(2 * 2 * 34);
    const bad: [Partial<InputGather>, RegExp][] = [
      [{ gather: Int32Array.from({ length: 64 }, (_, j) => (j === 40 ? 32 : j % 32)) }, /gather\[40\] = 32/],
      [{ gather: new Int32Array(32) }, /data \(bytes\) has 136/],
      [{ gather: Int32Array.from({ length: 64 }, (_, j) => j % 32), residue: { index: Int32Array.of(64), values: Float32Array.of(1) } }, /residue index 64/],
    ];
    for (const [extra, msg] of bad) {
      expect(() => new Linear(k, 'blk.0.attn_q.weight', { format: 'q8_0', shape: [2, 32], data, ...extra } as LinearWeight)).toThrow(msg);
      expect(() => new Linear(k, 'blk.0.attn_q.weight', { format: 'q8_0', shape: [2, 32], data, ...extra } as LinearWeight)).toThrow(/blk\.0\.attn_q\.weight/);
    }
  });

  it('act-order INT-k runs on the same kernels over x in group order, exactly', () => {
    const rows = 6;
    for (const [bits, group, cols, format] of [[4, 128, 256, 'q4_0'], [3, 32, 96, 'q4_0'], [4, 32, 64, 'q4_0'], [5, 64, 128, 'q8_0']] as const) {
      const t = actOrder(quantizeInt(spikyWeights(rows, cols, bits + cols), [rows, cols], { bits, granularity: 'group-cols', group, symmetric: bits === 3 }), cols);
      const w = linearWeightFromPacked(t);
      expect(w.format, `int${bits} g${group}`).toBe(format);
      const g = (w as InputGather).gather as Int32Array;
      expect(g.length).toBe(cols);
      // kernel column j is input column g[j]: decode the repacked codes (INT4's zero points as the group
      // term, over kernel columns) and scatter them back
      const q = dequantizeLinear('w', { ...w, gather: undefined } as LinearWeight);
      const back = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) back[r * cols + g[j]] = q[r * cols + j];
      expect(back).toEqual(dequantizeInt(t));
    }
  });

  it('FP8, partial MX and act-order layers give the table GEMV outputs up to int8 activation rounding', async () => {
    const k = await loadKernels();
    const rows = 16;
    const cases: [string, () => { fast: LinearWeight; table: LinearWeight; w: Float32Array; cols: number }][] = [
      ...(['mxfp8_e4m3', 'mxfp8_e5m2', 'mxfp6_e3m2', 'mxfp4'] as const).map((f): (typeof cases)[number] => [f, () => {
        const cols = 100;
        const m = mxRows(f, spikyWeights(rows, cols, 3), rows, cols);
        return { fast: linearWeightFromPacked(m), table: linearWeightFromPacked(m, { tableGemv: true }), w: dequantizeMxRows(m), cols };
      }]),
      ['int8 per-channel, rows not whole blocks', () => {
        const cols = 172;
        const t = quantizeInt(spikyWeights(rows, cols, 13), [rows, cols], { bits: 8, granularity: 'per-oc', symmetric: true });
        return { fast: linearWeightFromPacked(t), table: linearWeightFromPacked(t, { tableGemv: true }), w: dequantizeInt(t), cols };
      }],
      ['int4 g128 act-order', () => {
        const cols = 256;
        const t = actOrder(quantizeInt(spikyWeights(rows, cols, 11), [rows, cols], { bits: 4, granularity: 'group-cols', group: 128, symmetric: true }), 5);
        return { fast: linearWeightFromPacked(t), table: linearWeightFromPacked(t, { tableGemv: true }), w: dequantizeInt(t), cols };
      }],
    ];
    for (const [name, make] of cases) {
      const { fast: fw, table: tw, w, cols } = make();
      expect(tw.format, name).toBe('packed');
      const fast = new Linear(k, 'fast', fw);
      const table = new Linear(k, 'table', tw);
      const x = spikyWeights(2, cols, 99).map((v) => v * 10);
      const a = fast.apply(x, 2);
      const b = new Float32Array(2 * rows);
      for (let i = 0; i < 2; i++) b.set(table.apply(x.subarray(i * cols, (i + 1) * cols), 1), i * rows);
      // activations rounded to int8 per 32 columns: each product off by ≤ |w|·amax(x block)/254 (we
      // take the row's amax), so the output by ≤ Σ|w|·amax/254, plus f32 summation slack
      for (let i = 0; i < 2; i++) {
        const amax = x.subarray(i * cols, (i + 1) * cols).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        for (let r = 0; r < rows; r++) {
          let l1 = 0;
          for (let c = 0; c < cols; c++) l1 += Math.abs(w[r * cols + c]);
          expect(Math.abs(a[i * rows + r] - b[i * rows + r]), `${name} row ${r}`).toBeLessThanOrEqual((l1 * amax) / 254 + 1e-4 * (1 + l1 * amax));
        }
      }
      // Q/K/V-style sharing of one activation quantization gives each layer's own result
      if (fw.format === 'q8_0') {
        const [s] = Linear.applyShared([fast, fast], x, 2);
        expect(s).toEqual(a);
      }
      fast.free();
      table.free();
    }
  });

  it('a layer on the int4 kernel and on Q4_0 tiles gives the table GEMV outputs up to int8 activation rounding', async () => {
    const k = await loadKernels();
    const rows = 16;
    for (const [symmetric, cols] of [[true, 128], [false, 172]] as const) {
      const t = quantizeInt(spikyWeights(rows, cols, 5), [rows, cols], { bits: 3, granularity: 'group-cols', group: 32, symmetric });
      const fast = new Linear(k, 'fast', linearWeightFromPacked(t));
      const table = new Linear(k, 'table', linearWeightFromPacked(t, { tableGemv: true }));
      expect(table.format).toBe('packed');
      const x = spikyWeights(1, cols, 99).map((v) => v * 10);
      const a = fast.apply(x, 1);
      const b = table.apply(x, 1);
      // activations rounded to int8 per 32 columns: each product off by ≤ |w|·amax(x)/254, so the
      // output by ≤ Σ|w|·amax/254 over the row; we allow that bound
      const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const dq = dequantizeInt(t);
      for (let r = 0; r < rows; r++) {
        let l1 = 0;
        for (let c = 0; c < cols; c++) l1 += Math.abs(dq[r * cols + c]);
        expect(Math.abs(a[r] - b[r])).toBeLessThanOrEqual((l1 * amax) / 254 + 1e-5);
      }
      fast.free();
      table.free();
    }
  });

  it('INT4 runs on Q4_0 tiles for groups of 32k and per row, zero points as a group term; source reads the same tensor back', async () => {
    const k = await loadKernels();
    const rows = 12;
    const cols = 256;
    const x = spikyWeights(2, cols, 77);
    const cases = [
      { opts: { bits: 4, granularity: 'group-cols', group: 128 }, format: 'q4_0' },
      { opts: { bits: 4, granularity: 'group-cols', group: 32 }, format: 'q4_0' },
      { opts: { bits: 4, granularity: 'per-oc' }, format: 'q4_0' },
      { opts: { bits: 4, granularity: 'group-cols', group: 64, symmetric: false }, format: 'q4_0' },
      { opts: { bits: 4, granularity: 'per-oc', symmetric: false }, format: 'q4_0' },
    ] as const;
    for (const { opts, format } of cases) {
      const t = quantizeInt(spikyWeights(rows, cols, 3), [rows, cols], opts);
      const w = linearWeightFromPacked(t);
      expect(w.format).toBe(format);
      // zero points other than 8: scale·(8 − zero) per row and group, on the group sums of x
      expect(!!(w as InputGather).groupTerm).toBe(!!t.zeros);
      const lin = new Linear(k, 'int4', w);
      if (format === 'q4_0') {
        // the layer holds no copy of the codes: they come back from the tiles, the stored tensor bit for bit
        const back = lin.source as { format: string; tensor: typeof t };
        expect(back.format).toBe('packed');
        expect(back.tensor.codes).toEqual(t.codes);
        expect(back.tensor.scales).toEqual(t.scales);
        expect(back.tensor).toMatchObject({ bits: 4, granularity: t.granularity, group: t.group, shape: t.shape, symmetric: t.symmetric });
        expect(back.tensor.zeros).toEqual(t.zeros);
        // the same values as the int4 kernel multiplies (the Q4_0 blocks decoded against the INT4 decode)
        expect(dequantizeLinear('q', w)).toEqual(dequantizeInt(t));
        // rows reordered: scales move with them, and the codes read back follow
        const src = Int32Array.from({ length: rows }, (_, i) => (i * 5) % rows);
        const moved = new Linear(k, 'moved', permuteLinearRows('q', w, src));
        const mb = moved.source as { tensor: typeof t };
        const dq = dequantizeInt(t);
        const dm = dequantizeInt(mb.tensor);
        for (let r = 0; r < rows; r++) expect(dm.subarray(r * cols, (r + 1) * cols)).toEqual(dq.subarray(src[r] * cols, (src[r] + 1) * cols));
        moved.free();
      }
      // the exact product of the INT4 weights, up to the int8 rounding of the activations per 32
      // columns: each product off by ≤ |scale·(u − 8)|·amax(x)/254 (the group term takes exact sums)
      const dq = dequantizeInt(t);
      const q4 = dequantizeLinear('q', { ...w, groupTerm: undefined } as LinearWeight);
      const a = lin.apply(x, 2);
      for (let b = 0; b < 2; b++) {
        const xb = x.subarray(b * cols, (b + 1) * cols);
        const amax = xb.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        for (let r = 0; r < rows; r++) {
          let exact = 0;
          let l1 = 0;
          for (let c = 0; c < cols; c++) {
            exact += dq[r * cols + c] * xb[c];
            l1 += Math.abs(q4[r * cols + c]);
          }
          expect(Math.abs(a[b * rows + r] - exact)).toBeLessThanOrEqual((l1 * amax) / 254 + 1e-5);
        }
      }
      lin.free();
    }
    // GPTQ's explicit symmetric zeros (all 8) need no group term; a zero that is no 4-bit integer keeps the int4 kernel
    const t = quantizeInt(spikyWeights(rows, cols, 4), [rows, cols], { bits: 4, granularity: 'group-cols', group: 32 });
    const eights = linearWeightFromPacked({ ...t, symmetric: false, zeros: new Float32Array(t.scales.length).fill(8) });
    expect(eights.format).toBe('q4_0');
    expect((eights as InputGather).groupTerm).toBeUndefined();
    expect(linearWeightFromPacked({ ...t, symmetric: false, zeros: new Float32Array(t.scales.length).fill(7.5) }).format).toBe('int4');
    // a scale that is not an fp16 breaks the type's contract: the int4 kernel (f32 scales) takes it
    expect(linearWeightFromPacked({ ...t, scales: t.scales.map((v, i) => (i ? v : v * (1 + 2 ** -20))) }).format).toBe('int4');
    // an INT4 form that does not describe its blocks is refused by name
    const w = linearWeightFromPacked(t) as LinearWeight & { int: IntForm };
    expect(() => new Linear(k, 'bad', { ...w, int: { ...w.int, shape: [rows, 64] } } as LinearWeight)).toThrow(/bad: its INT4 form/);
    // a group term of the wrong size is refused by name
    expect(() => new Linear(k, 'bad', { ...w, groupTerm: { group: 32, values: new Float32Array(5) } } as LinearWeight)).toThrow(/bad: groupTerm/);
  });

  it('int3 g32 on the embedded model: perplexity within 1% of the table GEMV (f32 activations)', async () => {
    const text = validLines.slice(0, 2).join('\n');
    const fast = await loadModel(modelFile);
    const table = await loadModel(modelFile);
    for (const l of fast.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      const t = quantizeInt(src.data, src.shape, { bits: 3, granularity: 'group-cols', group: 32, symmetric: true });
      fast.setLinear(l.name, linearWeightFromPacked(t));
      table.setLinear(l.name, linearWeightFromPacked(t, { tableGemv: true }));
    }
    const p = perplexity(fast, text, { ctx: 64 }).perplexity;
    const q = perplexity(table, text, { ctx: 64 }).perplexity;
    // same weights, int8 activations on one side (the whole model file: 14.0693 -> 14.0896, 0.14%)
    expect(Math.abs(p / q - 1)).toBeLessThan(0.01);
  });
});
