import { type GgufTensorInfo, LOWBIT_TYPES, type LowbitAnyPrecisionParams, type LowbitIntParams, bitsPerWeight, isLowbitType, metaValue, readGguf, readSafetensors } from '@lowbit/runtime';
import { type CommandContext, defineCommand } from '../command.js';
import { modelPath } from '../model-arg.js';
import { checkInputFile } from '../paths.js';

export const inspectCommand = defineCommand({
  name: 'inspect',
  summary: 'metadata, tensors, types, sizes and bits per weight of a GGUF or safetensors file',
  arguments: [{ name: 'file', optional: true, description: 'a .gguf or .safetensors file (default: the embedded stories260K model)' }],
  options: {},
  examples: ['lowbit inspect', 'lowbit inspect model.gguf --json', 'lowbit inspect hf-dir/model.safetensors'],
  async run(ctx) {
    const path = modelPath(ctx.positionals[0]);
    checkInputFile(path, 'a .gguf or .safetensors file (for a Hugging Face directory, name its model.safetensors)');
    if (path.endsWith('.safetensors')) return inspectSafetensors(ctx, path);
    const file = await readGguf(path);
    await file.source.close();
    const metadata: Record<string, unknown> = {};
    for (const key of file.metadata.keys()) {
      const v = metaValue(file, key);
      // vocabularies are thousands of entries: show their length and first few
      metadata[key] = Array.isArray(v) && v.length > 16 ? { length: v.length, first: v.slice(0, 8).map(String) } : typeof v === 'bigint' ? v.toString() : v;
    }
    const tensors = [...file.tensors.values()].map((t) => ({
      name: t.name, shape: t.shape, type: t.type, bytes: t.byteLength, bitsPerWeight: bitsPerWeight(t.type, t.shape, t.byteLength),
      ...(isLowbitType(t.type) ? { lowbit: lowbitDetail(t) } : {}),
    }));
    const weights = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
    const bytes = tensors.reduce((s, t) => s + t.bytes, 0);
    ctx.print(`${file.source.name}: GGUF v${file.version}, ${tensors.length} tensors, ${weights} weights, ${bytes} bytes (${((bytes * 8) / weights).toFixed(3)} bits/weight)`);
    for (const [k, v] of Object.entries(metadata)) ctx.print(`  ${k} = ${JSON.stringify(v)}`);
    const bpw = (b: number) => (Number.isInteger(b) ? String(b) : b.toFixed(3));
    for (const t of tensors) ctx.print(`  ${t.name.padEnd(28)} ${t.type.padEnd(5)} [${t.shape.join(', ')}] ${t.bytes} B ${bpw(t.bitsPerWeight)} b/w${t.lowbit ? ` (${t.lowbit})` : ''}`);
    return { file: file.source.name, version: file.version, alignment: file.alignment, metadata, tensors, weights, bytes, bitsPerWeight: (bytes * 8) / weights };
  },
});

/** What a lowbit tensor type's name does not say: INT-k grouping, zero points, act-order map; MX block scales. */
function lowbitDetail(t: GgufTensorInfo): string {
  const info = LOWBIT_TYPES[t.type as keyof typeof LOWBIT_TYPES];
  if (info.kind === 'mx') return `lowbit ${info.mx}, E8M0 scale per 32 along rows`;
  if (info.kind === 'anyprec') {
    const a = t.params as LowbitAnyPrecisionParams | undefined;
    return `lowbit any-precision ${a?.seedBits}..${a?.maxBits} bits, nested bit-planes + f32 tables per width`;
  }
  const p = t.params as LowbitIntParams | undefined;
  if (!p) return `lowbit int${info.bits}`;
  const g = p.granularity === 'group-cols' ? `g${p.group}` : p.granularity === 'group-rows' ? `g${p.group} along rows` : p.granularity;
  return `lowbit int${info.bits} ${g} ${p.symmetric ? 'sym' : 'asym'} fp16 scales${p.symmetric ? '' : ` int${info.bits} zeros`}${p.g_idx ? ' g_idx' : ''}`;
}

async function inspectSafetensors(ctx: CommandContext, path: string) {
  const file = await readSafetensors(path);
  await file.source.close();
  const bits = { F32: 32, F16: 16, BF16: 16, I8: 8, U8: 8, I32: 32 } as const;
  const tensors = [...file.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, type: t.dtype, bytes: t.byteLength, bitsPerWeight: bits[t.dtype] }));
  // packed layers count the weights they hold, not their int32 words: GPTQ qweight holds [g_idx length, out],
  // a lowbit blob the [rows, cols] its lowbit.tensors entry names; qzeros / scales / g_idx hold none
  const lowbit = file.metadata['lowbit.tensors'] ? (JSON.parse(file.metadata['lowbit.tensors']) as Record<string, { shape: number[] }>) : {};
  const count = (t: { name: string; shape: number[] }) => {
    const p = t.name.replace(/\.[^.]+$/, '');
    if (t.name.endsWith('.qweight')) return (file.tensors.get(`${p}.g_idx`)?.shape[0] ?? 0) * t.shape[1];
    if (/\.(qzeros|scales|g_idx)$/.test(t.name)) return 0;
    if (t.name.endsWith('.lowbit_packed')) return (lowbit[p]?.shape ?? [0]).reduce((a, b) => a * b, 1);
    return t.shape.reduce((a, b) => a * b, 1);
  };
  const weights = tensors.reduce((s, t) => s + count(t), 0);
  const bytes = tensors.reduce((s, t) => s + t.bytes, 0);
  ctx.print(`${path}: safetensors, ${tensors.length} tensors, ${weights} weights, ${bytes} bytes (${((bytes * 8) / weights).toFixed(3)} bits/weight)`);
  // a quantized file lowbit wrote carries its source GGUF metadata (vocabulary included): shown by size only
  const metadata = Object.fromEntries(Object.entries(file.metadata).map(([k, v]) => [k, k === 'lowbit.gguf_metadata' ? `<${v.length} characters of GGUF metadata JSON>` : v]));
  for (const key of ['quantize_config', 'lowbit.tensors']) if (metadata[key]) ctx.print(`  ${key} = ${metadata[key]}`);
  for (const t of tensors) ctx.print(`  ${t.name.padEnd(48)} ${t.type.padEnd(5)} [${t.shape.join(', ')}] ${t.bytes} B`);
  return { file: path, format: 'safetensors', metadata, tensors, weights, bytes, bitsPerWeight: (bytes * 8) / weights };
}
