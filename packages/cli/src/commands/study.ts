import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { calibrationTextUrl, validTextUrl } from '@lowbit/data';
import { DEFAULT_STUDY, QUANTIZE_DEFAULTS, runStudy } from '@lowbit/quantizers';
import { studyMarkdown, studySvg } from '../study-report.js';
import { LowbitError, loadModel, writeTextAtomic } from '@lowbit/runtime';
import { defineCommand } from '../command.js';
import { GGUF_ARGUMENT, modelPath } from '../model-arg.js';
import { checkInputFile, checkOutputFile } from '../paths.js';

export const studyCommand = defineCommand({
  name: 'study',
  summary: 'perplexity, bits/weight and time of FP32, RTN, selective RTN, GPTQ, SmoothQuant+GPTQ, AdaDim at int4/int3/int2 and MX on a model',
  arguments: [GGUF_ARGUMENT],
  options: {
    'calib-windows': { type: 'integer', min: 1, default: QUANTIZE_DEFAULTS.maxWindows, description: 'calibration windows of 256 tokens from the embedded train excerpt' },
    only: { type: 'string', placeholder: 'substring', defaultText: 'every row', description: 'run only the rows whose label contains this (and FP32)' },
    svg: { type: 'string', placeholder: 'file', defaultText: 'none (no plot)', description: 'also write the perplexity against bits/weight plot as SVG' },
  },
  examples: ['lowbit study --only "GPTQ int3" --svg study.svg', 'lowbit study --calib-windows 8 --json'],
  async run(ctx) {
    const read = (url: URL) => readFile(fileURLToPath(url), 'utf8');
    const [calibration, valid] = [await read(calibrationTextUrl), await read(validTextUrl)];
    const { only, svg } = ctx.values;
    const configs = only ? DEFAULT_STUDY.filter((c) => c.label === 'FP32' || c.label.includes(only)) : DEFAULT_STUDY;
    if (only && !configs.some((c) => c.label.includes(only))) throw new LowbitError('E_ARG', `--only "${only}" matches no study row`);
    const path = modelPath(ctx.positionals[0]);
    checkInputFile(path, 'a .gguf file');
    if (svg) checkOutputFile(svg, '--svg');
    const rows = await runStudy(() => loadModel(path), calibration, valid, {
      configs, maxWindows: ctx.values['calib-windows'],
      onRow: (r, d, t) => ctx.progress(d, t, r.label),
    });
    ctx.print(studyMarkdown(rows));
    if (svg) {
      await writeTextAtomic(svg, studySvg(rows));
      ctx.print(`wrote the plot to ${svg}`);
    } else ctx.print('no plot written (give --svg plot.svg for one)');
    return { model: path, rows, svg: svg ?? null };
  },
});
