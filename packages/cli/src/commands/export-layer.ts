import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl } from '@lowbit/data';
import { QUANTIZE_DEFAULTS, layerData } from '@lowbit/quantizers';
import { LowbitError, writeNpy } from '@lowbit/runtime';
import { defineCommand } from '../command.js';
import { MODEL_ARGUMENT, ctxOption, threadOption, withModel } from '../model-arg.js';
import { checkOutputDir } from '../paths.js';

export const exportLayerCommand = defineCommand({
  name: 'export-layer',
  summary: "write one linear layer's weights (W.npy, out × in) and the inputs it sees on calibration text (X.npy, samples × in), for quantize-layer",
  arguments: [MODEL_ARGUMENT],
  options: {
    layer: { type: 'string', placeholder: 'name', required: true, description: 'the GGUF tensor name of the layer, e.g. blk.1.attn_q.weight (a wrong name lists the layers)' },
    out: { type: 'string', short: 'o', placeholder: 'dir', required: true, description: 'directory to write W.npy and X.npy into, created if missing' },
    calib: { type: 'string', placeholder: 'file', defaultText: 'embedded TinyStories train excerpt', description: 'calibration text, one document per line' },
    'calib-windows': { type: 'integer', min: 1, default: QUANTIZE_DEFAULTS.maxWindows, description: 'calibration windows of --ctx tokens (X has up to windows × ctx rows)' },
    ...ctxOption,
    ...threadOption,
  },
  examples: [
    'lowbit export-layer --layer blk.1.attn_q.weight --out layer/',
    'lowbit export-layer model.gguf --layer blk.0.ffn_down.weight --calib train.txt --calib-windows 8 --out down0/',
  ],
  async run(ctx) {
    const { layer, out } = ctx.values;
    checkOutputDir(out);
    const calibFile = ctx.values.calib ?? fileURLToPath(calibrationTextUrl);
    const calibration = await readFile(calibFile, 'utf8').catch((e: Error) => {
      throw new LowbitError('E_IO', `${calibFile}: cannot read (${e.message})`);
    });
    return withModel(ctx, async (model) => {
      const names = model.linears().map((l) => l.name);
      if (!names.includes(layer)) throw new LowbitError('E_MISSING', `${model.name}: no linear layer named ${layer}; the layers are ${names.join(', ')}`);
      const d = layerData(model, layer, calibration, { ctx: ctx.values.ctx, maxWindows: ctx.values['calib-windows'] });
      await mkdir(out, { recursive: true });
      const [w, x] = [join(out, 'W.npy'), join(out, 'X.npy')];
      await writeNpy(w, d.weights.data, d.weights.shape);
      await writeNpy(x, d.inputs.data, d.inputs.shape);
      ctx.print(`${layer} of ${model.name}: wrote ${w} [${d.weights.shape.join(', ')}] and ${x} [${d.inputs.shape.join(', ')}] (${d.windows} windows of ${calibFile})`);
      ctx.print(`next: lowbit quantize-layer --weights ${w} --inputs ${x}`);
      return { model: model.name, layer, weights_file: w, weights_shape: d.weights.shape, inputs_file: x, inputs_shape: d.inputs.shape, windows: d.windows, calibration: calibFile };
    });
  },
});
