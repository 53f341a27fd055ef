// Any-precision serving: one nested bit-plane layer, the width chosen per call, checked against the
// formats' TypeScript definitions (gemvAnyPrecision, readAnyPrecision) and through a file round trip.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AnyPrecisionTensor, gemvAnyPrecision, quantizeAnyPrecision, readAnyPrecision } from '@lowbit/formats';
import { isLowbitError, loadKernels } from '@lowbit/kernels';
import { afterAll, describe, expect, it } from 'vitest';
import { anyPrecisionFastTables, anyPrecisionRunsFast, keepExactAnyPrecision } from '../src/any-precision-linear.js';
import { Session } from '../src/forward.js';
import { Linear } from '../src/linear.js';
import { loadModel } from '../src/model.js';
import { linearWeightFromPacked } from '../src/packed-linear.js';
import { perplexity } from '../src/perplexity.js';
import { loadQuantizedSafetensors, saveModelSafetensors } from '../src/quantized-safetensors.js';
import { modelFile, validLines } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'lowbit-anyprec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const text = validLines.slice(0, 2).join('\n');

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

// the k-means fits take seconds: fitted once, every test's model gets the same tensors
let nested: Map<string, AnyPrecisionTensor> | null = null;

/** Every block linear of a model nested 3..8 bits (formats' plain k-means upscaling); `exact`: gemv_anyprec at every width. */
async function nestedModel(exact = false) {
  const model = await loadModel(modelFile);
  if (!nested) {
    nested = new Map();
    for (const l of model.linears()) {
      if (l.name === 'output.weight') continue;
      const src = l.source as { data: Float32Array; shape: [number, number] };
      nested.set(l.name, quantizeAnyPrecision(src.data, src.shape, { seedBits: 3, maxBits: 8 }));
    }
  }
  // a copy is marked exact, so the shared tensors stay on the default path
  for (const [name, t] of nested) model.setLinear(name, linearWeightFromPacked(exact ? keepExactAnyPrecision({ ...t }) : t));
  return model;
}

describe("Linear 'any-precision' (resident planes, width per call)", () => {
  it('exact: equals the formats TS GEMV bit for bit at every width, on shapes with partial plane bytes', async () => {
    const k = await loadKernels();
    for (const [rows, cols] of [[7, 13], [16, 64], [3, 1]] as [number, number][]) {
      const t = keepExactAnyPrecision(quantizeAnyPrecision(randn(rows * cols, rows + cols), [rows, cols], { seedBits: 2, maxBits: 6 }));
      const l = new Linear(k, 'ap', { format: 'any-precision', shape: [rows, cols], tensor: t });
      const x = randn(2 * cols, 7);
      for (let bits = 2; bits <= 6; bits++) {
        const y = l.apply(x, 2, undefined, bits);
        for (let b = 0; b < 2; b++) expect(Array.from(y.subarray(b * rows, (b + 1) * rows))).toEqual(Array.from(gemvAnyPrecision(t, bits, x.subarray(b * cols, (b + 1) * cols))));
        // the width's own dense model: same products in another summation order (f32: 1e-5 relative)
        const dense = new Linear(k, 'dense', { format: 'f32', shape: [rows, cols], data: readAnyPrecision(t, bits) }).apply(x, 2);
        dense.forEach((v, i) => expect(Math.abs(y[i] - v)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(v))));
        // bytes read grow with the width: planes ∝ bits, plus that width's table
        expect(l.bytesAt(bits)).toBe(bits * rows * Math.ceil(cols / 8) + rows * 2 ** bits * 4);
      }
      expect(Array.from(l.apply(x, 2))).toEqual(Array.from(l.apply(x, 2, undefined, 6))); // default: the widest
      for (const bad of [1, 7, 2.5]) expect(() => l.apply(x, 2, undefined, bad)).toThrow(/holds 2 to 6 bits, asked for/);
      l.free();
    }
  });

  it('at <= 4 bits runs gemvAnyprecFast within the written rounding bound of the exact kernel; wider widths stay exact', async (ctx) => {
    const k = await loadKernels();
    if (k.variant === 'scalar') return ctx.skip(); // gemvAnyprecFast needs SIMD; the layer then stays exact
    for (const [rows, cols, seed, max] of [[7, 13, 1, 4], [16, 200, 2, 6], [9, 256, 3, 4]] as [number, number, number, number][]) {
      const t = quantizeAnyPrecision(randn(rows * cols, rows * cols), [rows, cols], { seedBits: seed, maxBits: max });
      const fast = new Linear(k, 'fast', { format: 'any-precision', shape: [rows, cols], tensor: t });
      const exact = new Linear(k, 'exact', { format: 'any-precision', shape: [rows, cols], tensor: keepExactAnyPrecision({ ...t }) });
      const x = randn(2 * cols, cols);
      for (let bits = seed; bits <= max; bits++) {
        const yf = fast.apply(x, 2, undefined, bits);
        const ye = exact.apply(x, 2, undefined, bits);
        if (bits > 4) {
          expect(Array.from(yf)).toEqual(Array.from(ye));
          continue;
        }
        const { params } = anyPrecisionFastTables(t, bits) as NonNullable<ReturnType<typeof anyPrecisionFastTables>>;
        const dense = readAnyPrecision(t, bits);
        for (let b = 0; b < 2; b++) {
          const xb = x.subarray(b * cols, (b + 1) * cols);
          for (let r = 0; r < rows; r++) {
            // |w·x − ŵ·x̂| ≤ |w − ŵ|·|x| + |ŵ|·|x − x̂| with |w − ŵ| ≤ step/2 (7-bit levels of the row's
            // table) and |x − x̂| ≤ d/2, d = amax/127 of the activation's 128-column block; plus f32
            // summation noise (1e-5 of Σ|w·x|)
            const half = params[2 * r] / 2;
            let bound = 0;
            let mag = 0;
            for (let c = 0; c < cols; c++) {
              const j = Math.floor(c / 128);
              let amax = 0;
              for (let i = j * 128; i < Math.min(cols, j * 128 + 128); i++) amax = Math.max(amax, Math.abs(xb[i]));
              const w = dense[r * cols + c];
              bound += half * Math.abs(xb[c]) + (Math.abs(w) + half) * (amax / 254);
              mag += Math.abs(w * xb[c]);
            }
            expect(Math.abs(yf[b * rows + r] - ye[b * rows + r])).toBeLessThanOrEqual(bound + 1e-5 * (mag + 1));
          }
        }
      }
      fast.free();
      exact.free();
    }
  });

  it('stories260K nested 3..8 bits: perplexity on gemvAnyprecFast within 1% of the exact kernel at 3 and 4 bits', async () => {
    const fast = await nestedModel();
    const exact = await nestedModel(true);
    const q = fast.linear('blk.0.attn_q.weight');
    const res = (q as unknown as { resident: never[] }).resident;
    for (const bits of [3, 4]) {
      // Node has SIMD: the fast path is what is measured here
      expect(anyPrecisionRunsFast((q.source as { tensor: AnyPrecisionTensor }).tensor, res, bits)).toBe(true);
      const a = perplexity(fast, text, { ctx: 64, maxWindows: 4, bits }).perplexity;
      const b = perplexity(exact, text, { ctx: 64, maxWindows: 4, bits }).perplexity;
      expect(Math.abs(a / b - 1)).toBeLessThan(0.01);
    }
    fast.free();
    exact.free();
  });

  it('a Session serves each stored width from one model; a width not held or a model without nested layers is E_ARG', async () => {
    const model = await nestedModel();
    const ppl = [3, 5, 8].map((bits) => perplexity(model, text, { ctx: 64, maxWindows: 4, bits }).perplexity);
    // the widest nested model is the upscaled codebook model; the seed costs the most
    expect(ppl[0]).toBeGreaterThan(ppl[2]);
    // at 8 bits the nested layers equal their dense decode (same values; summation order aside)
    const dense = await loadModel(modelFile);
    for (const l of model.linears()) {
      const w = l.source;
      if (w.format === 'any-precision') dense.setLinear(l.name, { format: 'f32', shape: w.shape, data: readAnyPrecision(w.tensor, 8) });
    }
    expect(Math.abs(perplexity(dense, text, { ctx: 64, maxWindows: 4 }).perplexity / ppl[2] - 1)).toBeLessThan(1e-4);
    for (const bits of [2, 9]) {
      try {
        new Session(model, { bits });
        expect.unreachable();
      } catch (e) {
        expect(isLowbitError(e) && e.code).toBe('E_ARG');
      }
    }
    expect(() => new Session(dense, { bits: 3 })).toThrow(/no any-precision layers/);
    model.free();
    dense.free();
  });

  it('round-trips through a safetensors file (RoPE rows permuted and back): logits equal bit for bit per width', async () => {
    const model = await nestedModel();
    const file = join(dir, 'ap.safetensors');
    await saveModelSafetensors(model, file);
    const back = await loadQuantizedSafetensors(file);
    for (const l of back.linears()) {
      if (l.name !== 'output.weight') expect(l.bitRange).toEqual([3, 8]);
    }
    for (const bits of [3, 6, 8]) {
      const a = new Session(model, { ctx: 16, bits }).forward([1, 72, 300, 45], { logits: 'all' });
      const b = new Session(back, { ctx: 16, bits }).forward([1, 72, 300, 45], { logits: 'all' });
      expect(Array.from(b)).toEqual(Array.from(a));
    }
    // GGUF holds nested layers too (LB_ANYPREC): test/anyprec-gguf.test.ts
    const q = model.linear('blk.0.attn_q.weight').source as { tensor: AnyPrecisionTensor };
    const q2 = back.linear('blk.0.attn_q.weight').source as { tensor: AnyPrecisionTensor };
    expect(Array.from(q2.tensor.planes)).toEqual(Array.from(q.tensor.planes));
    model.free();
    back.free();
  });

  it('a file whose metadata or sections disagree is refused before reading: E_BAD_FILE / E_SHAPE', async () => {
    const model = await nestedModel();
    const file = join(dir, 'ok.safetensors');
    await saveModelSafetensors(model, file);
    model.free();
    const bytes = readFileSync(file);
    const hlen = Number(bytes.readBigUInt64LE(0));
    const header = bytes.subarray(8, 8 + hlen).toString('utf8');
    const cases: [string, string, RegExp][] = [
      // maxBits 9 would size planes past the format
      ['\\"maxBits\\":8', '\\"maxBits\\":9', /seedBits .* maxBits .* must satisfy/],
      // a smaller maxBits: the planes section no longer matches the entry
      ['\\"maxBits\\":8', '\\"maxBits\\":7', /anyprec_planes is U8 .* need U8/],
      ['\\"shape\\":[64,64]', '\\"shape\\":[64,65]', /lowbit.any_precision shape/],
    ];
    for (const [from, to, msg] of cases) {
      expect(header.includes(from)).toBe(true);
      // same length so the data offsets stay valid; pad the header with spaces when shorter
      let h = header.split(from).join(to);
      h = h.length <= hlen ? h.padEnd(hlen, ' ') : h;
      const hb = Buffer.from(h, 'utf8');
      const out = Buffer.alloc(8 + hb.length + bytes.length - 8 - hlen);
      out.writeBigUInt64LE(BigInt(hb.length), 0);
      hb.copy(out, 8);
      bytes.copy(out, 8 + hb.length, 8 + hlen);
      const bad = join(dir, 'bad.safetensors');
      writeFileSync(bad, out);
      await expect(loadQuantizedSafetensors(bad)).rejects.toThrow(msg);
    }
  });
});
