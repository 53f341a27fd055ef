import { describe, expect, it } from 'vitest';
import { createKernels, isLowbitError, type Kernels, type KernelVariant, reference } from '../src/index-node.js';
import { expectClose, randF16Scale, randF32, randU8, rng } from './helpers.js';

const variants: KernelVariant[] = ['relaxed', 'simd', 'scalar'];
const kernels = new Map<KernelVariant, Kernels>();
for (const v of variants) kernels.set(v, await createKernels({ variant: v }));

// Lengths around every vector width and unroll factor, plus zero.
const LENGTHS = [0, 1, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257];

// f32 kernels vs the f64 reference: f32 accumulation of n products in another order differs by at
// most ~n·2^-24 of Σ|a·b|; with inputs in [-1, 1] that is below 1e-5 relative to the largest output.
const F32_RTOL = 1e-5;
// Integer kernels: the int dot is exact; only the f32 products scale·dot and their f32 sum differ
// from the f64 reference (≤ (cols/32)·2^-24 relative): 1e-5 of the largest output.
const INT_RTOL = 1e-5;

describe('roundToF16 (activation scales as llama.cpp stores them)', () => {
  it('equals the nearest binary16, ties to even, on every f16 value and midpoint', () => {
    const f16 = (h: number) => reference.f16ToF32(h);
    for (let h = 0; h < 0x7c00; h++) {
      const v = f16(h);
      expect(reference.roundToF16(v)).toBe(v);
      if (h < 0x7bff) {
        const next = f16(h + 1);
        const mid = Math.fround((v + next) / 2);
        if (mid === (v + next) / 2) expect(reference.roundToF16(mid)).toBe(h % 2 === 0 ? v : next);
        expect(reference.roundToF16(Math.fround(v + (next - v) * 0.3))).toBe(v);
        expect(reference.roundToF16(Math.fround(v + (next - v) * 0.7))).toBe(next);
      }
    }
    expect(reference.roundToF16(65519)).toBe(65504);
    expect(reference.roundToF16(65520)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe.each(variants)('%s build', (variant) => {
  const k = kernels.get(variant)!;

  it('reports its variant', () => expect(k.variant).toBe(variant));

  it.each(LENGTHS)('dotF32 and axpyF32, n = %i', (n) => {
    const r = rng(n + 1);
    const a = randF32(r, n);
    const b = randF32(r, n);
    expectClose([k.dotF32(a, b)], [reference.dotF32(a, b)], F32_RTOL, 1e-6);
    const y = randF32(r, n);
    const want = y.slice();
    reference.axpyF32(0.75, a, want);
    expect(Array.from(k.axpyF32(0.75, a, y.slice()))).toEqual(Array.from(want)); // elementwise f32: exact
  });

  it.each([[1, 1], [3, 5], [4, 16], [5, 17], [8, 64], [13, 100], [64, 172], [2, 0], [0, 7]])('gemvF32/matmulF32 %i×%i', (rows, cols) => {
    const r = rng(rows * 1000 + cols);
    const w = randF32(r, rows * cols);
    for (const batch of [1, 3]) {
      const x = randF32(r, batch * cols);
      expectClose(k.matmulF32(w, rows, cols, x, batch), reference.matmulF32(w, rows, cols, x, batch), F32_RTOL, 1e-6);
    }
    const x1 = randF32(r, cols);
    expectClose(k.gemvF32(w, rows, cols, x1), reference.gemvF32(w, rows, cols, x1), F32_RTOL, 1e-6);
  });

  it('propagates NaN and Inf through f32 kernels as IEEE arithmetic does', () => {
    const w = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 1, 1, 1, 1, 1]);
    const x = Float32Array.from([1, 0, 0, 0, 0, 0, 0, Number.NaN]);
    expect(Array.from(k.gemvF32(w, 2, 8, x)).every(Number.isNaN)).toBe(true);
    const xi = Float32Array.from([Number.POSITIVE_INFINITY, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(k.gemvF32(w, 2, 8, xi))).toEqual([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  });

  it.each(LENGTHS)('dotI8 is exact, n = %i', (n) => {
    const r = rng(n + 7);
    const a = Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
    const b = Int8Array.from({ length: n }, () => Math.floor(r() * 256) - 128);
    if (n > 0) {
      a[0] = -128;
      b[0] = -128; // the extreme product
    }
    expect(k.dotI8(a, b)).toBe(reference.dotI8(a, b));
  });

  it.each([
    [4, 32, 32], [3, 64, 32], [5, 100, 32], [2, 128, 64], [7, 200, 64], [4, 4096, 128], [3, 300, 128], [6, 33, 32], [2, 1, 32],
  ])('gemvQ4 %i×%i group %i, symmetric and with zero points', (rows, cols, group) => {
    const r = rng(rows * 7919 + cols * 31 + group);
    const ng = Math.ceil(cols / group);
    const packed = randU8(r, rows * Math.ceil(cols / 2));
    const scales = Float32Array.from({ length: rows * ng }, () => r() * 0.1 + 0.001);
    const zeros = Float32Array.from({ length: rows * ng }, () => r() * 15);
    for (const batch of [1, 2]) {
      const x = randF32(r, batch * cols, 3);
      expectClose(k.matmulQ4(packed, scales, null, rows, cols, group, x, batch), reference.matmulQ4(packed, scales, null, rows, cols, group, x, batch), INT_RTOL, 1e-6);
      expectClose(k.matmulQ4(packed, scales, zeros, rows, cols, group, x, batch), reference.matmulQ4(packed, scales, zeros, rows, cols, group, x, batch), INT_RTOL, 1e-6);
    }
  });

  it('gemvQ4 on an all-zero activation gives exactly zero', () => {
    const out = k.gemvQ4(new Uint8Array(2 * 16).fill(0xff), new Float32Array(2).fill(1), null, 2, 32, 32, new Float32Array(32));
    expect(Array.from(out)).toEqual([0, 0]);
  });

  it.each(['q8_0', 'q4_0', 'q4_1'] as const)('matmul %s on llama.cpp blocks', (type) => {
    const bytes = reference.GGML_BLOCK_BYTES[type];
    for (const [rows, cols, batch] of [[1, 32, 1], [5, 64, 3], [9, 256, 2], [4, 2048, 1]]) {
      const r = rng(rows + cols + batch);
      const blocks = randU8(r, (rows * cols * bytes) / 32);
      const view = new DataView(blocks.buffer);
      for (let o = 0; o < blocks.length; o += bytes) {
        view.setUint16(o, randF16Scale(r), true);
        if (type === 'q4_1') view.setUint16(o + 2, randF16Scale(r), true);
      }
      const x = randF32(r, batch * cols, 2);
      expectClose(k.matmulGgml(type, blocks, rows, cols, x, batch), reference.matmulGgml(type, blocks, rows, cols, x, batch), INT_RTOL, 1e-6);
    }
  });

  it.each(['q8_0', 'q4_0', 'q4_1'] as const)('matmul %s with f16 scales at the edges of the format', (type) => {
    // Subnormal, zero, negative zero and the largest finite f16: the SIMD builds convert four scales
    // at once with a bit trick that must agree with the scalar definition on all of them.
    const edge = [0x0001, 0x03ff, 0x0400, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x8001, 0x3c00];
    const bytes = reference.GGML_BLOCK_BYTES[type];
    const rows = 7;
    const cols = 96;
    const r = rng(4242);
    const blocks = randU8(r, (rows * cols * bytes) / 32);
    const view = new DataView(blocks.buffer);
    let i = 0;
    for (let o = 0; o < blocks.length; o += bytes, i++) {
      view.setUint16(o, edge[i % edge.length], true);
      if (type === 'q4_1') view.setUint16(o + 2, edge[(i + 3) % edge.length], true);
    }
    const x = randF32(r, 2 * cols, 1e-3);
    // Same bound as above; products with 65504 make the outputs large, the bound is relative.
    expectClose(k.matmulGgml(type, blocks, rows, cols, x, 2), reference.matmulGgml(type, blocks, rows, cols, x, 2), INT_RTOL, 1e-6);
  });

  it.each(['q8_0', 'q4_0', 'q4_1'] as const)('matmul %s on blocks prepared by prepareGgml (tiles of four rows, f32 scales)', (type) => {
    const bytes = reference.GGML_BLOCK_BYTES[type];
    // Rows around the tile of four (partial last tiles), edge f16 scales among random ones.
    const edge = [0x0001, 0x03ff, 0x0400, 0x0000, 0x8000, 0x7bff, 0xfbff, 0x8001, 0x3c00];
    for (const [rows, cols] of [[1, 32], [3, 64], [4, 96], [5, 64], [9, 256], [12, 2048]]) {
      const r = rng(rows * 7 + cols);
      const blocks = randU8(r, (rows * cols * bytes) / 32);
      const view = new DataView(blocks.buffer);
      let i = 0;
      for (let o = 0; o < blocks.length; o += bytes, i++) {
        view.setUint16(o, i % 5 === 0 ? edge[i % edge.length] : randF16Scale(r), true);
        if (type === 'q4_1') view.setUint16(o + 2, i % 7 === 0 ? edge[(i + 3) % edge.length] : randF16Scale(r), true);
      }
      const t = k.prepareGgml(type, blocks, rows, cols);
      const raw = k.upload(blocks);
      const fromResident = k.prepareGgml(type, raw, rows, cols);
      for (const batch of [1, 2, 5]) {
        const x = randF32(r, batch * cols, 2);
        const want = reference.matmulGgml(type, blocks, rows, cols, x, batch);
        expectClose(k.matmulGgml(type, t, rows, cols, x, batch), want, INT_RTOL, 1e-6);
        expect(Array.from(k.matmulGgml(type, fromResident, rows, cols, x, batch))).toEqual(Array.from(k.matmulGgml(type, t, rows, cols, x, batch)));
      }
      t.free();
      raw.free();
      fromResident.free();
    }
  });

  it.each(['q8_0', 'q4_0'] as const)('matmul %s with activations from f16-subnormal to large scales (llama.cpp activation rounding)', (type) => {
    const bytes = reference.GGML_BLOCK_BYTES[type];
    const rows = 8;
    const cols = 32 * 7;
    const r = rng(77);
    const blocks = randU8(r, (rows * cols * bytes) / 32);
    const view = new DataView(blocks.buffer);
    for (let o = 0; o < blocks.length; o += bytes) view.setUint16(o, randF16Scale(r), true);
    const x = randF32(r, 2 * cols, 1);
    // One magnitude per 32-block: scales amax/127 from f16 subnormal (1e-9) to near the f16 maximum.
    const mags = [1e-9, 3e-7, 6e-5, 1, 7, 1e3, 8e6];
    for (let i = 0; i < x.length; i++) x[i] *= mags[Math.floor(i / 32) % mags.length];
    const t = k.prepareGgml(type, blocks, rows, cols);
    const want = reference.matmulGgml(type, blocks, rows, cols, x, 2);
    expectClose(k.matmulGgml(type, blocks, rows, cols, x, 2), want, INT_RTOL, 1e-6);
    expectClose(k.matmulGgml(type, t, rows, cols, x, 2), want, INT_RTOL, 1e-6);
    t.free();
  });

  it('matmul q8_0 prepared without code -128 (the signed-dot path), extreme codes included', () => {
    const rows = 9;
    const cols = 32 * 5;
    const r = rng(1288);
    const blocks = randU8(r, (rows * cols * 34) / 32);
    const view = new DataView(blocks.buffer);
    for (let o = 0; o < blocks.length; o += 34) {
      view.setUint16(o, randF16Scale(r), true);
      for (let j = 2; j < 34; j++) {
        if (blocks[o + j] === 0x80) blocks[o + j] = 0x81;
        if (o % 3 === 0) blocks[o + j] = j % 2 ? 0x7f : 0x81; // ±127: i16 pair sums at 2·127·127
      }
    }
    const t = k.prepareGgml('q8_0', blocks, rows, cols);
    for (const batch of [1, 3]) {
      const x = randF32(r, batch * cols, 2);
      for (let i = 0; i < x.length; i += 7) x[i] = i % 2 ? 2 : -2; // activation codes at ±127
      expectClose(k.matmulGgml('q8_0', t, rows, cols, x, batch), reference.matmulGgml('q8_0', blocks, rows, cols, x, batch), INT_RTOL, 1e-6);
    }
    t.free();
  });

  it('prepareGgml tensors are checked against the type they were prepared for', () => {
    const t = k.prepareGgml('q4_0', new Uint8Array(18 * 4), 4, 32);
    expect(() => k.matmulQ8_0(t, 4, 32, new Float32Array(32), 1)).toThrow(/prepared as q4_0/);
    expect(() => k.matmulQ4_0(t, 8, 32, new Float32Array(32), 1)).toThrow(/bytes/);
    expect(() => k.prepareGgml('q4_0', t, 4, 32)).toThrow(/already prepared/);
    expect(() => k.prepareGgml('q4_0', new Uint8Array(18), 2, 32)).toThrow(/elements/);
    t.free();
  });

  it('resident tensors give the same answers as one-shot calls', () => {
    const r = rng(99);
    const w = randF32(r, 16 * 48);
    const x = randF32(r, 48);
    const t = k.upload(w);
    expect(Array.from(k.gemvF32(t, 16, 48, x))).toEqual(Array.from(k.gemvF32(w, 16, 48, x)));
    t.free();
    expect(() => k.gemvF32(t, 16, 48, x)).toThrow(/freed/);
  });
});

describe('bad calls throw LowbitError and leave the instance usable', () => {
  const k = kernels.get('simd')!;
  const cases: [string, () => unknown, string][] = [
    ['shape mismatch', () => k.gemvF32(new Float32Array(10), 3, 4, new Float32Array(4)), 'E_SHAPE'],
    ['x of the wrong length', () => k.gemvF32(new Float32Array(12), 3, 4, new Float32Array(5)), 'E_SHAPE'],
    ['wrong array type', () => k.gemvF32(new Float64Array(12) as unknown as Float32Array, 3, 4, new Float32Array(4)), 'E_DTYPE'],
    ['plain array', () => k.dotF32([1, 2] as unknown as Float32Array, new Float32Array(2)), 'E_DTYPE'],
    ['group size 0', () => k.gemvQ4(new Uint8Array(16), new Float32Array(1), null, 1, 32, 0, new Float32Array(32)), 'E_ARG'],
    ['negative group size', () => k.gemvQ4(new Uint8Array(16), new Float32Array(1), null, 1, 32, -32, new Float32Array(32)), 'E_ARG'],
    ['scales of the wrong length', () => k.gemvQ4(new Uint8Array(32), new Float32Array(1), null, 1, 64, 32, new Float32Array(64)), 'E_SHAPE'],
    ['zeros of the wrong length', () => k.gemvQ4(new Uint8Array(32), new Float32Array(2), new Float32Array(3), 1, 64, 32, new Float32Array(64)), 'E_SHAPE'],
    ['negative rows', () => k.gemvF32(new Float32Array(0), -1, 4, new Float32Array(4)), 'E_ARG'],
    ['fractional cols', () => k.gemvF32(new Float32Array(3), 2, 1.5, new Float32Array(1)), 'E_ARG'],
    ['ggml cols not a block multiple', () => k.matmulQ4_0(new Uint8Array(18), 1, 30, new Float32Array(30), 1), 'E_SHAPE'],
    ['NaN activation for an integer kernel', () => k.gemvQ4(new Uint8Array(16), new Float32Array(1), null, 1, 32, 32, new Float32Array(32).fill(Number.NaN)), 'E_NAN'],
    ['Inf activation for a ggml kernel', () => k.matmulQ8_0(new Uint8Array(34), 1, 32, new Float32Array(32).fill(Number.POSITIVE_INFINITY), 1), 'E_NAN'],
    ['out of the wrong length', () => k.gemvF32(new Float32Array(12), 3, 4, new Float32Array(4), new Float32Array(2)), 'E_SHAPE'],
    ['a resident tensor of another instance', () => k.gemvF32(kernels.get('relaxed')!.upload(new Float32Array(12)), 3, 4, new Float32Array(4)), 'E_ARG'],
  ];
  it.each(cases)('%s', (_name, call, code) => {
    const before = k.heap.liveBytes;
    let err: unknown;
    try {
      call();
    } catch (e) {
      err = e;
    }
    expect(isLowbitError(err)).toBe(true);
    expect((err as { code: string }).code).toBe(code);
    expect((err as Error).message.length).toBeGreaterThan(10);
    expect(k.heap.liveBytes).toBe(before); // scratch was returned even on the error path
    const w = Float32Array.from([1, 2, 3, 4]);
    expect(Array.from(k.gemvF32(w, 1, 4, Float32Array.from([1, 1, 1, 1])))).toEqual([10]);
  });
});

describe('memory', () => {
  it('stays flat over 10,000 calls', async () => {
    const k = await createKernels({ variant: 'simd' });
    const r = rng(5);
    const w = randF32(r, 64 * 64);
    const x = randF32(r, 64);
    const packed = randU8(r, 64 * 32);
    const scales = new Float32Array(64 * 2).fill(0.01);
    k.gemvF32(w, 64, 64, x);
    k.gemvQ4(packed, scales, null, 64, 64, 32, x);
    // After one warm-up call of each kernel (which allocates the instance's 16-byte tile scratch once).
    const pages = k.memory.buffer.byteLength;
    const high = k.heap.highWater;
    const live = k.heap.liveBytes;
    for (let i = 0; i < 10_000; i++) {
      k.gemvF32(w, 64, 64, x);
      k.gemvQ4(packed, scales, null, 64, 64, 32, x);
    }
    expect(k.heap.liveBytes).toBe(live);
    expect(live).toBeLessThanOrEqual(128);
    expect(k.heap.highWater).toBe(high);
    expect(k.memory.buffer.byteLength).toBe(pages);
  });

  it('grows for inputs larger than the initial memory', async () => {
    const k = await createKernels({ variant: 'simd' });
    const initial = k.memory.buffer.byteLength;
    const rows = 2048;
    const cols = 8192; // 64 MiB of f32 weights
    const w = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) w[r * cols + (r % cols)] = r;
    const x = new Float32Array(cols).fill(1);
    const out = k.gemvF32(w, rows, cols, x);
    // The weights alone are 64 MiB beyond the initial memory; x and out may fit in its spare room.
    expect(k.memory.buffer.byteLength).toBeGreaterThanOrEqual(initial + rows * cols * 4);
    expect(out[0]).toBe(0);
    expect(out[2047]).toBe(2047);
    expect(k.heap.liveBytes).toBe(0);
  });
});
