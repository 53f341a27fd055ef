import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { quantizeInt } from '@lowbit/formats';
import { type DecoderModel, dequantize, fromF32, linearWeightFromPacked, loadModel } from '@lowbit/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LowbitError, measuredPrecision, modelWorkload, quantizeActivations, simulateWorkload, weightCodes } from '../src/index.js';

const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
let model: DecoderModel;
beforeAll(async () => {
  model = await loadModel(fileURLToPath(defaultModelUrl));
});
afterAll(() => model?.free());

// the block scale d, read through the runtime's own decoder of a block whose codes are all 1
function dequantizeOne(bytes: Uint8Array, at: number): number {
  const block = new Uint8Array(34);
  block.set(bytes.subarray(at, at + 2), 0);
  block.fill(1, 2);
  const out = new Float32Array(32);
  dequantize('Q8_0', block, 0, 32, out);
  return out[0];
}

describe('weight codes from storage formats', () => {
  it('Q8_0, Q4_0, Q5_0 and Q5_1 codes times the block scale (plus Q5_1\'s m) give the runtime\'s dequantized values', () => {
    const rows = 4;
    const cols = 64;
    const x = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 7)));
    const cases = [['Q8_0', 'q8_0', 34, 8], ['Q4_0', 'q4_0', 18, 4], ['Q5_0', 'q5_0', 22, 5], ['Q5_1', 'q5_1', 24, 5]] as const;
    for (const [type, fmt, size, bits] of cases) {
      const data = fromF32(type, x, cols);
      const ref = new Float32Array(rows * cols);
      dequantize(type, data, 0, rows * cols, ref);
      const c = weightCodes('w', { format: fmt, shape: [rows, cols], data })!;
      expect(c.bits).toBe(bits);
      for (let i = 0; i < rows * cols; i++) {
        const at = Math.floor(i / 32) * size;
        const d = dequantizeOne(data, at);
        const m = fmt === 'q5_1' ? dequantizeOne(data, at + 2) : 0;
        expect(c.codes[i] * d + m).toBeCloseTo(ref[i], 5); // both f32 products of the same f16 scale and code
      }
    }
  });
  it('f32 weights have no codes', () => {
    expect(weightCodes('w', { format: 'f32', shape: [1, 1], data: new Float32Array(1) })).toBeNull();
  });
});

describe('weight bits of a repacked layer', () => {
  it('an INT2 layer the runtime runs on Q4_0 tiles is simulated at its stored 2 bits', async () => {
    const q = await loadModel(fileURLToPath(defaultModelUrl));
    try {
      const name = 'blk.0.attn_q.weight';
      const src = q.linear(name).source as { shape: [number, number]; data: Float32Array };
      const t = quantizeInt(src.data, src.shape, { bits: 2, symmetric: true, granularity: 'group-cols', group: 32 });
      q.setLinear(name, linearWeightFromPacked(t));
      expect(q.linear(name).format).toBe('q4_0'); // the kernel form (packed-fast.ts), not what is stored
      const w = modelWorkload(q, text, { seq: 8 });
      const i = w.layers.findIndex((l) => l.name === name);
      expect(w.weightBits(i)).toBe(2);
      expect(w.tensors(i, 8).wgtBits).toBe(2);
    } finally {
      q.free();
    }
  });
});

describe('activations', () => {
  it('quantizes symmetrically to the given bits and measures the precision used', () => {
    const q = quantizeActivations(Float32Array.from([0.5, -1, 0.25, 0]), 8);
    expect(Array.from(q)).toEqual([64, -127, 32, 0]);
    expect(measuredPrecision(q)).toBe(8); // 127 needs 7 magnitude bits + sign
    expect(measuredPrecision(quantizeActivations(Float32Array.from([0.5, 1]), 8))).toBe(7);
    expect(() => quantizeActivations(new Float32Array(2), 17)).toThrow(LowbitError);
  });
});

/** Symmetric int4 with one scale per 32 inputs (codes u = round(x/s) + 8, int-k packing: element 2j low nibble of byte j). */
function int4Groups(x: Float32Array, rows: number, cols: number) {
  const rowBytes = Math.ceil(cols / 2);
  const ng = Math.ceil(cols / 32);
  const packed = new Uint8Array(rows * rowBytes);
  const scales = new Float32Array(rows * ng);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < ng; g++) {
      let m = 0;
      for (let c = g * 32; c < Math.min(cols, g * 32 + 32); c++) m = Math.max(m, Math.abs(x[r * cols + c]));
      const s = m / 7 || 1;
      scales[r * ng + g] = s;
      for (let c = g * 32; c < Math.min(cols, g * 32 + 32); c++) {
        const u = Math.max(0, Math.min(15, Math.round(x[r * cols + c] / s) + 8));
        packed[r * rowBytes + (c >> 1)] |= u << ((c & 1) * 4);
      }
    }
  }
  return { format: 'int4' as const, shape: [rows, cols] as [number, number], packed, scales, zeros: null, group: 32 };
}

describe('a runtime model as a workload', () => {
  it('captures every linear input of stories260K on the calibration text and runs the profile designs', () => {
    const w = modelWorkload(model, text, { seq: 64 });
    expect(w.seq).toBe(64);
    expect(w.layers.length).toBe(model.linears().length - 1); // all but the LM head
    for (const l of w.layers) expect(w.inputs.get(l.name)!.length).toBe(64 * l.inC);
    const base = simulateWorkload(w, 'baseline');
    expect(base.speedup).toBe(1);
    const str = simulateWorkload(w, 'stripes');
    // 8-bit symmetric activations measure 8 bits (7 + sign) wherever a negative value reaches the max
    for (const l of str.layers) expect(l.act_bits).toBeLessThanOrEqual(8);
    expect(str.speedup).toBeGreaterThan(1.9);
    expect(() => simulateWorkload(w, 'laconic')).toThrow(/f32 weights; laconic needs quantized weights/);
    expect(() => simulateWorkload(w, 'tartan')).toThrow(LowbitError);
  });
  it('runs every design on the model with Q8_0 weights', async () => {
    const q = await loadModel(fileURLToPath(defaultModelUrl));
    try {
      for (const l of q.linears()) {
        const src = l.source;
        if (src.format !== 'f32' || l.name === 'output.weight') continue;
        const [rows, cols] = src.shape;
        if (cols % 32 === 0) q.setLinear(l.name, { format: 'q8_0', shape: src.shape, data: fromF32('Q8_0', src.data, cols) });
        else q.setLinear(l.name, int4Groups(src.data, rows, cols)); // stories260K's ffn_down has 172 inputs

      }
      const w = modelWorkload(q, text, { seq: 32 });
      const r: Record<string, number> = {};
      for (const a of ['baseline', 'stripes', 'tartan', 'loom', 'dpred', 'laconic', 'tactical']) {
        const s = simulateWorkload(w, a);
        expect(s.layers.length).toBe(w.layers.length);
        for (const l of s.layers) {
          expect(l.cycles).toBeGreaterThan(0);
          expect(l.mac_utilisation).toBeGreaterThan(0);
          expect(l.mac_utilisation).toBeLessThanOrEqual(1 + 1e-12);
        }
        r[a] = s.speedup;
      }
      expect(r.baseline).toBe(1);
      const bits = simulateWorkload(w, 'tartan').layers.map((l) => l.wgt_bits);
      expect(bits[0]).toBe(8);
      expect(bits[w.layers.findIndex((l) => l.name.endsWith('ffn_down.weight'))]).toBe(4);
      // dynamic precision can only shorten what the static per-layer precision takes
      expect(r.dpred).toBeGreaterThanOrEqual(r.stripes * 0.999);
    } finally {
      q.free();
    }
  });
});
