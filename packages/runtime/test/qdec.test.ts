// QDEC: residual columns of salient channels added at decode time. Checked against the unquantized
// layer (all channels stored and selected must give back W·x), a sort-based top-k, a file round trip,
// and stores that do not belong to the model.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dequantizeInt, quantizeInt } from '@lowbit/formats';
import { isLowbitError, loadKernels } from '@lowbit/kernels';
import { afterAll, describe, expect, it } from 'vitest';
import { Session } from '../src/forward.js';
import { Linear } from '../src/linear.js';
import { type DecoderModel, loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import {
  type QdecStore, attachQdec, baseWeightHash, buildQdecStore, channelSaliency, dequantizeLinear, encodeColumns, qdecBytesPerToken, readQdecStore, selectChannels, writeQdecStore,
} from '../src/qdec.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-qdec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/**
 * The embedded model with every block linear RTN int3/int4 g32: packed as the runtime runs them (the
 * packed kernels may round activations to int8), or `fake`: the same values as f32 weights, so the
 * compensation's arithmetic can be checked exactly.
 */
async function quantized(bits: 3 | 4, fake = false): Promise<DecoderModel> {
  const model = await loadModel(modelFile);
  for (const l of model.linears()) {
    if (l.name === 'output.weight') continue;
    const src = l.source as { data: Float32Array; shape: [number, number] };
    const t = quantizeInt(src.data, src.shape, { bits, granularity: 'group-cols', group: 32 });
    model.setLinear(l.name, fake ? { format: 'f32', shape: src.shape, data: dequantizeInt(t) } : linearWeightFromPacked(t));
  }
  return model;
}

function allSaliency(model: DecoderModel): Map<string, Float32Array> {
  return new Map(model.linears().map((l) => [l.name, new Float32Array(l.cols).fill(1)]));
}

describe('selectChannels', () => {
  it('picks the k stored channels of largest |x|, ties to the lower channel, in channel order', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const cols = 1 + (seed % 37);
      // rounded values make ties common
      const x = Float32Array.from(randn(cols + 3, seed), (v) => Math.round(v * 2) / 2);
      const channels = Int32Array.from({ length: cols }, (_, c) => c).filter((c) => (c * 7 + seed) % 3 !== 0);
      for (const k of [0, 1, 3, channels.length - 1, channels.length, channels.length + 5]) {
        if (k < 0) continue;
        const out = new Int32Array(Math.min(Math.max(k, 0), channels.length));
        const m = selectChannels(x, 3, channels, k, out);
        const want = [...channels].sort((a, b) => Math.abs(x[3 + b]) - Math.abs(x[3 + a]) || a - b).slice(0, k).sort((a, b) => a - b);
        expect(m).toBe(Math.min(k, channels.length));
        expect([...out.subarray(0, m)]).toEqual(want);
      }
    }
  });
});

describe('QDEC compensation', () => {
  it('with every channel stored (f32) and selected, a quantized layer gives back the unquantized W·x', async () => {
    const k = await loadKernels();
    // the base's values as f32 weights: packed kernels may round x to int8, which no residual undoes
    for (const [rows, cols, bits] of [[9, 64, 3], [16, 96, 5], [5, 33, 2]] as [number, number, number][]) {
      const w = randn(rows * cols, rows * cols);
      const t = quantizeInt(w, [rows, cols], { bits, granularity: 'group-cols', group: 32 });
      const q = new Linear(k, 'q', { format: 'f32', shape: [rows, cols], data: dequantizeInt(t) });
      const wq = dequantizeLinear('q', q.source);
      const all = Int32Array.from({ length: cols }, (_, c) => c);
      const layer = encodeColumns('q', rows, cols, all, 32, (c, r) => w[r * cols + c] - wq[r * cols + c], baseWeightHash(wq));
      const model = { name: 'm', linears: () => [q], linear: () => q } as unknown as DecoderModel;
      const h = attachQdec(model, { layers: new Map([['q', layer]]) }, { k: cols });
      const x = randn(3 * cols, 11);
      const y = q.apply(x, 3);
      const ref = new Linear(k, 'ref', { format: 'f32', shape: [rows, cols], data: w }).apply(x, 3);
      // W·x summed as Ŵ·x + R·x in f32: a few ulps of Σ|w||x| (1e-5 relative to it)
      ref.forEach((v, i) => {
        let mag = 0;
        const b = Math.floor(i / rows);
        for (let c = 0; c < cols; c++) mag += Math.abs(w[(i % rows) * cols + c] * x[b * cols + c]);
        expect(Math.abs(y[i] - v)).toBeLessThanOrEqual(1e-5 * mag);
      });
      expect(h.stats).toEqual({ layerRows: 3, fetchedBytes: 3 * cols * (4 * rows + 4) });
      h.detach();
      expect(Array.from(q.apply(x, 3))).toEqual(Array.from(new Linear(k, 'q2', { format: 'f32', shape: [rows, cols], data: dequantizeInt(t) }).apply(x, 3)));
    }
  });

  it('on the embedded model: all channels, f32 residuals give the f32 logits (fake-quantized int3), and cut the packed int3/int4 bases’ error', async () => {
    const reference = await loadModel(modelFile);
    const ids = reference.tokenizer.encode(validLines[0], { bos: true }).slice(0, 48);
    const want = new Session(reference, { ctx: 64 }).forward(ids, { logits: 'all' });
    for (const [bits, fake] of [[3, true], [3, false], [4, false]] as const) {
      const base = await quantized(bits, fake);
      const store = buildQdecStore(base, reference, allSaliency(reference), { bits: 32 });
      expect([...store.layers.keys()]).not.toContain('output.weight'); // F32 in both: nothing to compensate
      const plain = new Session(base, { ctx: 64 }).forward(ids, { logits: 'all' });
      const h = attachQdec(base, store, { k: 1 << 20 });
      const got = new Session(base, { ctx: 64 }).forward(ids, { logits: 'all' });
      let worst = 0;
      let before = 0;
      for (let i = 0; i < want.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - want[i]));
        before = Math.max(before, Math.abs(plain[i] - want[i]));
      }
      // f32 base: only the summation order differs (1e-4 on logits of magnitude ~10); packed bases:
      // their kernels round activations to int8 per 32, which the f32 residuals cannot undo
      // (measured: int4 worst 0.46 compensated against 8.7 for the plain model)
      if (fake) expect(worst).toBeLessThanOrEqual(1e-4);
      else expect(worst).toBeLessThan(before / 3);
      h.detach();
      base.free();
    }
    reference.free();
  });

  it('k channels of int8 residuals per token: bytes fetched as stated, error between none and all', async () => {
    const reference = await loadModel(modelFile);
    const base = await quantized(3);
    const text = validLines.slice(0, 2).join('\n');
    const sal = channelSaliency(reference, text, reference.linears().map((l) => l.name), { ctx: 64, maxWindows: 2 });
    const store = buildQdecStore(base, reference, sal, { channels: 0.25, bits: 8 });
    for (const l of store.layers.values()) expect(l.channels.length).toBe(Math.round(0.25 * l.cols));
    // the stored channels are the most salient ones
    const wq = store.layers.get('blk.0.attn_q.weight')!;
    const s = sal.get('blk.0.attn_q.weight')!;
    const minStored = Math.min(...[...wq.channels].map((c) => s[c]));
    expect([...s].filter((v) => v > minStored).length).toBeLessThan(wq.channels.length);
    const ids = reference.tokenizer.encode(validLines[1], { bos: true }).slice(0, 40);
    const want = new Session(reference, { ctx: 64 }).forward(ids, { logits: 'all' });
    const err = (k: number) => {
      const h = attachQdec(base, store, { k });
      const got = new Session(base, { ctx: 64 }).forward(ids, { logits: 'all' });
      h.detach();
      let e = 0;
      for (let i = 0; i < want.length; i++) e += (got[i] - want[i]) ** 2;
      return { e, fetched: h.bytesPerToken() };
    };
    const [e0, e4, eAll] = [err(0), err(4), err(64)];
    expect(e4.e).toBeLessThan(e0.e);
    expect(eAll.e).toBeLessThan(e4.e);
    expect(e0.fetched).toBe(0);
    // every stored layer fetches 4 columns (rows int8 + f32 scale + i32 index) per token
    const per = [...store.layers.values()].reduce((a, l) => a + 4 * (l.rows + 8), 0);
    expect(qdecBytesPerToken(store, 4)).toBe(per);
    expect(e4.fetched).toBeCloseTo(per, 6);
    base.free();
    reference.free();
  });
});

describe('QDEC store files and mismatches', () => {
  it('round-trips through a file (int4, int8, f32 residuals) and refuses a store that is not the model’s', async () => {
    const reference = await loadModel(modelFile);
    const base = await quantized(3);
    const sal = allSaliency(reference);
    for (const bits of [4, 8, 32] as const) {
      const store = buildQdecStore(base, reference, sal, { channels: 10, bits });
      const path = join(dir, `r${bits}.safetensors`);
      await writeQdecStore(path, store);
      const back = await readQdecStore(path);
      expect(back.layers.size).toBe(store.layers.size);
      for (const [name, l] of store.layers) {
        const b = back.layers.get(name)!;
        expect(b.bits).toBe(bits);
        expect(Array.from(b.channels)).toEqual(Array.from(l.channels));
        expect(Array.from(b.residuals)).toEqual(Array.from(l.residuals));
        expect(Array.from(b.scales)).toEqual(Array.from(l.scales));
        expect(b.baseHash).toBe(l.baseHash);
      }
      attachQdec(base, back, { k: 4 }).detach();
    }
    const store = buildQdecStore(base, reference, sal, { channels: 8, bits: 8 });
    const code = async (f: () => unknown) => {
      try {
        await f();
      } catch (e) {
        expect(isLowbitError(e)).toBe(true);
        return (e as { code: string; message: string }).code;
      }
      return 'no error';
    };
    // another base (int4 weights): the hash differs
    const other = await quantized(4);
    expect(await code(() => attachQdec(other, store, { k: 4 }))).toBe('E_BAD_FILE');
    // a layer name the model lacks, a shape it does not have
    const l0 = store.layers.get('blk.0.attn_q.weight')!;
    const renamed: QdecStore = { layers: new Map([['blk.9.attn_q.weight', { ...l0, name: 'blk.9.attn_q.weight' }]]) };
    expect(await code(() => attachQdec(base, renamed, { k: 4 }))).toBe('E_MISSING');
    const reshaped: QdecStore = { layers: new Map([['blk.0.attn_q.weight', { ...l0, cols: l0.cols + 1 }]]) };
    expect(await code(() => attachQdec(base, reshaped, { k: 4 }))).toBe('E_SHAPE');
    expect(await code(() => attachQdec(base, store, { k: -1 }))).toBe('E_ARG');
    // nothing was attached by the failed calls
    expect(base.linears().every((l) => l.compensation === null)).toBe(true);

    // hostile files: metadata and tensor headers checked before use
    const path = join(dir, 'r.safetensors');
    await writeQdecStore(path, store);
    const bytes = readFileSync(path);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + n).toString('utf8');
    const patched = (from: RegExp, to: string) => {
      const h = header.replace(from, to);
      expect(h).not.toBe(header);
      const p = join(dir, 'bad.safetensors');
      const hb = Buffer.from(h.padEnd(n, ' ').slice(0, Math.max(n, h.length)));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(hb.length));
      writeFileSync(p, Buffer.concat([len, hb, bytes.subarray(8 + n)]));
      return p;
    };
    expect(await code(() => readQdecStore(patched(/\\"channels\\":8/, '\\"channels\\":9')))).toBe('E_SHAPE');
    expect(await code(() => readQdecStore(patched(/\\"bits\\":8/, '\\"bits\\":5')))).toBe('E_BAD_FILE');
    expect(await code(() => readQdecStore(patched(/\\"rows\\":64/, '\\"rows\\":-1')))).toBe('E_BAD_FILE');
    expect(await code(() => readQdecStore(patched(/\\"version\\":1/, '\\"version\\":7')))).toBe('E_BAD_FILE');
    expect(await code(() => readQdecStore(patched(/"lowbit\.qdec"/, '"lowbit.qdex"')))).toBe('E_BAD_FILE');
    other.free();
    base.free();
    reference.free();
  });
});
