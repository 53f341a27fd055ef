import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, defaultModelUrl } from '@lowbit/data';
import { type MxFormatName, dequantizeMx, quantizeMx } from '@lowbit/formats';
import { loadModel } from '@lowbit/runtime';
import { describe, expect, it } from 'vitest';
import { MxGrid, collectHessians, gptqQuantize, mxTensor, outputError } from '../src/index.js';

describe('GPTQ onto OCP MX grids, on the real 64-wide layers', async () => {
  const model = await loadModel(fileURLToPath(defaultModelUrl));
  const text = readFileSync(fileURLToPath(calibrationTextUrl), 'utf8');
  const names = model.linears().filter((l) => l.cols % 32 === 0).map((l) => l.name);
  const stats = collectHessians(model, text, names, { ctx: 256, maxWindows: 4 });

  for (const format of ['mxfp4', 'mxfp6_e2m3', 'mxfp8_e4m3', 'mxint8'] as MxFormatName[]) {
    it(`${format}: with H = I it is formats' quantizeMx exactly; GPTQ decodes through dequantizeMx and beats it on every layer`, () => {
      const grid = new MxGrid(format);
      for (const name of names) {
        const lin = model.linear(name);
        const w = (lin.source as { data: Float32Array }).data;
        const shape: [number, number] = [lin.rows, lin.cols];
        const rtn = dequantizeMx(quantizeMx(w, { format }));
        const I = new Float64Array(lin.cols * lin.cols);
        for (let i = 0; i < lin.cols; i++) I[i * lin.cols + i] = 1;
        expect(gptqQuantize(w, shape, I, { grid, group: 32, damp: 0 }).weights).toEqual(rtn);
        const g = gptqQuantize(w, shape, stats.get(name)!.hessian(), { grid, group: 32, actOrder: true, staticGroups: true });
        expect(dequantizeMx(mxTensor(format, g.codes, lin.rows, lin.cols, g.scales))).toEqual(g.weights);
        const gram = stats.get(name)!.gram();
        expect(outputError(w, g.weights, shape, gram), name).toBeLessThan(outputError(w, rtn, shape, gram));
      }
    });
  }
});
