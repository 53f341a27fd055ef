import { readFile } from 'node:fs/promises';
import { dequantizeDpred, dequantizeFcq, dequantizeFlexor, dequantizeSeqenc, deserializeDpred, deserializeFcq, deserializeFlexor, deserializeSeqenc } from '@lowbit/formats';
import { LowbitError, writeNpy } from '@lowbit/runtime';
import { defineCommand } from '../command.js';
import { checkInputFile, checkOutputFile } from '../paths.js';

/** The four magic bytes of each file `lowbit encode --out` writes, and its reader. */
const READERS: Record<string, { method: string; read: (b: Uint8Array) => { shape: [number, number]; values: Float32Array } }> = {
  LBFQ: { method: 'fcq', read: (b) => { const t = deserializeFcq(b); return { shape: t.shape, values: dequantizeFcq(t) }; } },
  LBFX: { method: 'flexor', read: (b) => { const t = deserializeFlexor(b); return { shape: t.shape, values: dequantizeFlexor(t) }; } },
  LBDP: { method: 'dpred', read: (b) => { const t = deserializeDpred(b); return { shape: t.shape, values: dequantizeDpred(t) }; } },
  LBSQ: { method: 'seqenc', read: (b) => { const t = deserializeSeqenc(b); return { shape: t.shape, values: dequantizeSeqenc(t) }; } },
};

export const decodeCommand = defineCommand({
  name: 'decode',
  summary: 'decode a file written by lowbit encode --out (FCQ, FleXOR, DPRed or seqenc; length and checksum verified) to an f32 .npy matrix',
  arguments: [{ name: 'file', description: 'the encoded tensor' }],
  options: {
    out: { type: 'string', short: 'o', placeholder: 'W.npy', required: true, description: 'the f32 .npy to write' },
  },
  examples: ['lowbit encode fcq --tensor blk.0.ffn_up.weight --out up.fcq && lowbit decode up.fcq --out up.npy'],
  async run(ctx) {
    const file = ctx.positionals[0];
    if (!file) throw new LowbitError('E_ARG', 'decode: name the file to decode');
    checkInputFile(file, 'a file written by lowbit encode --out');
    checkOutputFile(ctx.values.out);
    const bytes = new Uint8Array(await readFile(file));
    const magic = new TextDecoder().decode(bytes.subarray(0, 4));
    const reader = READERS[magic];
    if (!reader) throw new LowbitError('E_FORMAT', `${file}: not a lowbit encode file (magic ${JSON.stringify(magic)})`);
    const t0 = performance.now();
    const { shape, values } = reader.read(bytes);
    const seconds = (performance.now() - t0) / 1000;
    await writeNpy(ctx.values.out, values, shape);
    ctx.print(`${file}: ${reader.method} [${shape.join(', ')}] decoded in ${seconds.toFixed(3)} s; wrote ${ctx.values.out}`);
    return { file, method: reader.method, shape, elements: values.length, decode_seconds: seconds, out: ctx.values.out };
  },
});
