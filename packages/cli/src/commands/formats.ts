import { readFileSync } from 'node:fs';
import { ELEMENT_FORMATS, LowbitError, MX_FORMATS, type MxFormatName, dequantizeMx, getFormat, quantizeMx } from '@lowbit/formats';
import { UsageError, defineCommand } from '../command.js';

function readValues(path: string | undefined): Float32Array {
  let text: string;
  try {
    text = readFileSync(path ?? 0, 'utf8'); // fd 0: standard input
  } catch (e) {
    throw new LowbitError('E_IO', `cannot read ${path ?? 'standard input'}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new LowbitError('E_BAD_FILE', `${path ?? 'standard input'}: expected a JSON array of numbers`);
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' || x === null)) {
    throw new LowbitError('E_BAD_FILE', `${path ?? 'standard input'}: expected a JSON array of numbers`);
  }
  // JSON has no NaN/Infinity: null stands for NaN, as JSON.stringify writes it.
  return Float32Array.from(v as (number | null)[], (x) => (x === null ? Number.NaN : x));
}

const json = (v: number) => (Number.isFinite(v) ? v : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity');

export const formatsCommand = defineCommand({
  name: 'formats',
  summary: 'code tables of element formats; OCP MX block quantization of values',
  arguments: [{ name: 'name', optional: true, description: 'an element format (--table) or an MX format (--quantize); none: list the formats' }],
  options: {
    table: { type: 'boolean', description: 'print every code of an element format and its value' },
    quantize: { type: 'boolean', description: 'quantize values with an MX format: E8M0 block scales, codes, dequantized values' },
    input: { type: 'string', placeholder: 'file', defaultText: 'standard input', description: 'values for --quantize: a JSON array of numbers (null for NaN)' },
  },
  examples: ['lowbit formats', 'lowbit formats fp8_e4m3 --table', "echo '[0.1, -2, 3.5]' | lowbit formats mxfp4 --quantize --json"],
  async run(ctx) {
    const name = ctx.positionals[0];
    if (!name) {
      ctx.print(`element formats: ${ELEMENT_FORMATS.join(', ')}`);
      ctx.print(`MX block formats: ${MX_FORMATS.join(', ')}`);
      return { element: ELEMENT_FORMATS, mx: MX_FORMATS };
    }
    if (ctx.values.quantize) {
      if (!(MX_FORMATS as string[]).includes(name)) throw new LowbitError('E_FORMAT', `--quantize takes an MX format (${MX_FORMATS.join(', ')}), got "${name}"`);
      const values = readValues(ctx.values.input);
      const t = quantizeMx(values, { format: name as MxFormatName });
      const back = dequantizeMx(t);
      ctx.print(`${name}: ${values.length} values, ${t.scales.length} blocks of 32`);
      ctx.print(`scales (E8M0): ${Array.from(t.scales).join(' ')}`);
      ctx.print(`dequantized: ${Array.from(back).join(' ')}`);
      return { format: name, scales: Array.from(t.scales), codes: Array.from(t.codes), values: Array.from(back, json) };
    }
    if (!ctx.values.table) throw new UsageError('say --table (element formats) or --quantize (MX formats)');
    const f = getFormat(name);
    const rows = f.table().map(({ code, value }) => ({ code, hex: `0x${code.toString(16).padStart(Math.ceil(f.bits / 4), '0')}`, value: json(value) }));
    ctx.print(`${name}: ${f.bits} bits, max ${f.max}`);
    for (const r of rows) ctx.print(`  ${r.hex}  ${r.value}`);
    return { format: name, bits: f.bits, max: f.max, codes: rows };
  },
});
