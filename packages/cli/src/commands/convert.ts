import { LowbitError, type TensorType, exportHfModel, quantizeGguf, readGguf } from '@lowbit/runtime';
import { defineCommand } from '../command.js';
import { GGUF_ARGUMENT, modelPath } from '../model-arg.js';
import { checkInputFile, checkOutputDir, checkOutputFile } from '../paths.js';

const TARGETS = ['Q4_0', 'Q8_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'MXFP4', 'F16', 'BF16', 'F32', 'hf'] as const;

export const convertCommand = defineCommand({
  name: 'convert',
  summary: 'rewrite a GGUF as F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1/IQ4_NL, K-quants Q2_K..Q6_K or MXFP4 (llama.cpp\'s quantizers), or as a Hugging Face safetensors directory',
  arguments: [GGUF_ARGUMENT],
  options: {
    to: { type: 'string', description: 'target: a GGUF tensor type (case-insensitive), or hf for a Hugging Face directory', placeholder: 'type', choices: TARGETS, ignoreCase: true, required: true },
    out: { type: 'string', short: 'o', placeholder: 'file|dir', required: true, description: 'the .gguf file to write, or the directory for --to hf' },
  },
  examples: ['lowbit convert --to q8_0 --out m.q8_0.gguf', 'lowbit convert model.gguf --to q4_k --out m.q4_k.gguf', 'lowbit convert model.gguf --to hf --out ./hf-dir'],
  async run(ctx) {
    const { to: target, out } = ctx.values;
    const to = target === 'hf' ? 'HF' : target;
    const input = modelPath(ctx.positionals[0]);
    checkInputFile(input, 'a .gguf file');
    if (to === 'HF') checkOutputDir(out);
    else checkOutputFile(out);
    const t0 = performance.now();
    if (to === 'HF') await exportHfModel(input, out);
    else await quantizeGguf(input, out, to as TensorType);
    let bytes: number | undefined;
    if (to !== 'HF') {
      const g = await readGguf(out).catch((e) => {
        throw new LowbitError('E_IO', `${out}: written but not readable back (${(e as Error).message})`);
      });
      bytes = [...g.tensors.values()].reduce((s, t) => s + t.byteLength, 0);
      await g.source.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    ctx.print(`wrote ${out} (${to}${bytes !== undefined ? `, ${bytes} bytes of tensors` : ''}) in ${seconds.toFixed(2)} s`);
    return { input, output: out, to, tensorBytes: bytes, seconds };
  },
});
