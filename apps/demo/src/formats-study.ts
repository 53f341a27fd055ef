// The Formats panel's computation (in the worker): one weight tensor of the loaded model quantized
// to one format with @lowbit/formats or the runtime's ggml blocks, and the error it leaves.
import { MX_BLOCK, type MxFormatName, dequantizeInt, dequantizeMx, dequantizeNf4, getFormat, intBitsPerWeight, quantizeInt, quantizeMx, quantizeNf4 } from '@lowbit/formats';
import { LowbitError, dequantize, quantizeRowQ4_0, quantizeRowQ4_1, quantizeRowQ8_0 } from '@lowbit/runtime';
import type { FormatStudy, STUDY_FORMATS } from './api.js';

const MX_ELEMENT: Record<MxFormatName, string> = {
  mxfp4: 'fp4_e2m1', mxfp6_e2m3: 'fp6_e2m3', mxfp6_e3m2: 'fp6_e3m2', mxfp8_e4m3: 'fp8_e4m3', mxfp8_e5m2: 'fp8_e5m2', mxint8: 'int8',
};
const GGML = {
  q4_0: { bytes: 18, quantize: quantizeRowQ4_0, table: 'int4', note: 'value = d · (code − 8), one fp16 d per block of 32 (the table lists code − 8)' },
  q4_1: { bytes: 20, quantize: quantizeRowQ4_1, table: null, note: 'value = d · code + m, fp16 d and m per block of 32 (codes 0..15)' },
  q8_0: { bytes: 34, quantize: quantizeRowQ8_0, table: 'int8', note: 'value = d · code, one fp16 d per block of 32' },
} as const;

export function studyFormat(format: (typeof STUDY_FORMATS)[number], tensor: string, w: Float32Array, rows: number, cols: number): Omit<FormatStudy, 'sqnrDb' | 'rmsError' | 'maxAbsError' | 'rmsWeight' | 'hist'> & { dequantized: Float32Array } {
  const base = { format, tensor, rows, cols };
  const int = /^int(\d) g(\d+)$/.exec(format);
  if (int) {
    const bits = Number(int[1]);
    const t = quantizeInt(w, [rows, cols], { bits, symmetric: true, granularity: 'group-cols', group: Number(int[2]) });
    return {
      ...base, dequantized: dequantizeInt(t), bitsPerWeight: intBitsPerWeight(t), table: getFormat(`int${bits}`).table(),
      tableNote: `value = scale · level, one fp16 scale per group of ${int[2]} columns (symmetric: no zero point)`,
    };
  }
  if (format === 'nf4 g64') {
    const t = quantizeNf4(w, [rows, cols], { group: 64 });
    return {
      ...base, dequantized: dequantizeNf4(t), bitsPerWeight: ((t.codes.byteLength + t.scales.byteLength) * 8) / (rows * cols), table: getFormat('nf4').table(),
      tableNote: 'value = absmax · level: the 16 quantiles of a normal distribution (QLoRA), one f32 absmax per group of 64 columns',
    };
  }
  if (format in GGML) {
    const g = GGML[format as keyof typeof GGML];
    if (cols % 32) throw new LowbitError('E_SHAPE', `${tensor}: rows of ${cols} are not whole blocks of 32; ${format} needs them (llama.cpp keeps such layers F16)`);
    const out = new Float32Array(rows * cols);
    const blocks = new Uint8Array((cols / 32) * g.bytes);
    for (let r = 0; r < rows; r++) {
      g.quantize(w.subarray(r * cols, (r + 1) * cols), blocks);
      dequantize(format.toUpperCase() as 'Q8_0', blocks, 0, cols, out, r * cols);
    }
    const table = g.table ? getFormat(g.table).table() : Array.from({ length: 16 }, (_, code) => ({ code, value: code }));
    return { ...base, dequantized: out, bitsPerWeight: (g.bytes * 8) / 32, table, tableNote: g.note };
  }
  const mx = format as MxFormatName;
  if (!(mx in MX_ELEMENT)) throw new LowbitError('E_ARG', `unknown format "${format}"`);
  const out = new Float32Array(rows * cols);
  // blocks of 32 along each row (a partial last block on rows that are not whole blocks), as quantizeModel stores MX
  for (let r = 0; r < rows; r++) out.set(dequantizeMx(quantizeMx(w.slice(r * cols, (r + 1) * cols), { format: mx })), r * cols);
  const el = getFormat(MX_ELEMENT[mx]);
  return {
    ...base, dequantized: out, bitsPerWeight: el.bits + (8 * Math.ceil(cols / MX_BLOCK)) / cols, table: el.table(),
    tableNote: `value = 2^e · element (${MX_ELEMENT[mx]}${mx === 'mxint8' ? ', read as a fixed-point number: level / 64' : ''}), one E8M0 scale 2^e per block of ${MX_BLOCK}`,
  };
}

/** Error statistics and a histogram of ŵ − w with `bins` bins over ±max|ŵ − w|. */
export function errorStats(w: Float32Array, q: Float32Array, bins = 41): Pick<FormatStudy, 'sqnrDb' | 'rmsError' | 'maxAbsError' | 'rmsWeight' | 'hist'> {
  let se = 0;
  let sw = 0;
  let max = 0;
  for (let i = 0; i < w.length; i++) {
    const e = q[i] - w[i];
    se += e * e;
    sw += w[i] * w[i];
    max = Math.max(max, Math.abs(e));
  }
  const lo = -(max || 1);
  const width = (2 * (max || 1)) / bins;
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < w.length; i++) counts[Math.min(bins - 1, Math.floor((q[i] - w[i] - lo) / width))]++;
  return { sqnrDb: 10 * Math.log10(sw / se), rmsError: Math.sqrt(se / w.length), maxAbsError: max, rmsWeight: Math.sqrt(sw / w.length), hist: { lo, width, counts } };
}
