import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { dequantize, loadModel, quantizeRowQ4_0, quantizeRowQ4_1, quantizeRowQ8_0 } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { GgmlGrid, type GgmlType, collectHessians, ggmlBlocks, gptqQuantize, outputError } from '../src/index.js';

const TYPES: { type: GgmlType; ref: (x: Float32Array, out: Uint8Array) => void; block: number; name: 'Q4_0' | 'Q4_1' | 'Q8_0' }[] = [
  { type: 'q4_0', ref: quantizeRowQ4_0, block: 18, name: 'Q4_0' },
  { type: 'q4_1', ref: quantizeRowQ4_1, block: 20, name: 'Q4_1' },
  { type: 'q8_0', ref: quantizeRowQ8_0, block: 34, name: 'Q8_0' },
];

describe('GPTQ onto llama.cpp block grids, on the real attention layers', async () => {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
  const names = model.linears().filter((l) => l.cols % 32 === 0).map((l) => l.name);
  const stats = collectHessians(model, text, names, { ctx: 256, maxWindows: 4 });

  for (const t of TYPES) {
    it(`${t.type}: blocks decode (llama.cpp layout, runtime's dequantize) to exactly Ŵ, with lower output error than llama.cpp's own quantizer on every layer`, () => {
      for (const name of names) {
        const lin = model.linear(name);
        const w = (lin.source as { data: Float32Array }).data;
        const shape: [number, number] = [lin.rows, lin.cols];
        const r = gptqQuantize(w, shape, stats.get(name)!.hessian(), { grid: new GgmlGrid(t.type), group: 32, actOrder: true, staticGroups: true });
        const blocks = ggmlBlocks(t.type, r.codes, lin.rows, lin.cols, r.scales, r.zeros);
        expect(blocks.length).toBe((lin.rows * lin.cols * t.block) / 32);
        const back = new Float32Array(w.length);
        dequantize(t.name, blocks, 0, w.length, back);
        expect(back).toEqual(r.weights);
        const refBlocks = new Uint8Array(blocks.length);
        for (let row = 0; row < lin.rows; row++) t.ref(w.subarray(row * lin.cols, (row + 1) * lin.cols), refBlocks.subarray((row * lin.cols * t.block) / 32));
        const refW = new Float32Array(w.length);
        dequantize(t.name, refBlocks, 0, w.length, refW);
        const gram = stats.get(name)!.gram();
        expect(outputError(w, r.weights, shape, gram), name).toBeLessThan(outputError(w, refW, shape, gram));
      }
    });
  }

  it('rejects rows that are not whole blocks', () => {
    expect(() => ggmlBlocks('q4_0', new Uint8Array(40), 1, 40, new Float32Array(2), null)).toThrow(/not a whole number of 32-blocks; keep this tensor at F16/);
  });
});
