import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { DEFAULT_STUDY, runStudy, studyMarkdown, studySvg } from '@lowbit/quantizers';
import { LowbitError, loadModel, writeTextAtomic } from '@lowbit/runtime';
import { type Command, intOption } from '../command.js';
import { modelPath } from '../model-arg.js';

export const studyCommand: Command = {
  name: 'study',
  summary: 'perplexity, bits/weight and time of FP32, RTN, selective RTN, GPTQ, SmoothQuant+GPTQ, AdaDim at int4/int3/int2 on the embedded model',
  usage: 'lowbit study [model.gguf] [--calib-windows 32] [--only <substring>] [--svg plot.svg] [--json]',
  options: { 'calib-windows': { type: 'string' }, only: { type: 'string' }, svg: { type: 'string' } },
  async run(ctx) {
    const read = (url: URL) => readFile(fileURLToPath(url), 'utf8');
    const [calibration, valid] = [await read(calibrationTextUrl), await read(validTextUrl)];
    const only = ctx.values.only as string | undefined;
    const configs = only ? DEFAULT_STUDY.filter((c) => c.label === 'FP32' || c.label.includes(only)) : DEFAULT_STUDY;
    if (only && !configs.some((c) => c.label.includes(only))) throw new LowbitError('E_ARG', `--only "${only}" matches no study row`);
    const path = modelPath(ctx.positionals[0]);
    const rows = await runStudy(() => loadModel(path), calibration, valid, {
      configs, maxWindows: intOption(ctx, 'calib-windows', 32),
      onRow: (r, d, t) => ctx.progress(d, t, r.label),
    });
    ctx.print(studyMarkdown(rows));
    const svg = ctx.values.svg as string | undefined;
    if (svg) await writeTextAtomic(svg, studySvg(rows));
    return { model: path, rows, svg: svg ?? null };
  },
};
