import { LowbitError, type TensorType, exportHfModel, quantizeGguf, readGguf } from '@lowbit/runtime';
import { type Command, UsageError } from '../command.js';
import { modelPath } from '../model-arg.js';

const GGUF_TYPES = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1'] as const;

export const convertCommand: Command = {
  name: 'convert',
  summary: 'rewrite a GGUF as F32/F16/BF16/Q8_0/Q4_0/Q4_1 (llama.cpp reference quantizers), or as a Hugging Face safetensors directory',
  usage: 'lowbit convert [model.gguf] --to Q4_0|Q8_0|Q4_1|F16|BF16|F32|hf --out <file|dir> [--json]',
  options: { to: { type: 'string' }, out: { type: 'string', short: 'o' } },
  async run(ctx) {
    const to = String(ctx.values.to ?? '').toUpperCase();
    const out = ctx.values.out as string | undefined;
    if (!out) throw new UsageError('--out is required');
    const input = modelPath(ctx.positionals[0]);
    const t0 = performance.now();
    if (to === 'HF') await exportHfModel(input, out);
    else if ((GGUF_TYPES as readonly string[]).includes(to)) await quantizeGguf(input, out, to as TensorType);
    else throw new UsageError(`--to must be one of ${GGUF_TYPES.join(', ')}, hf; got "${ctx.values.to ?? ''}"`);
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
};
