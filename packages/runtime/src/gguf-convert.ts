// Writing models back out: re-encode a GGUF's tensors as Q8_0 / Q4_0 / Q4_1 (llama.cpp's reference
// quantizers), or save an in-memory model whose layers a quantizer replaced.
import { LowbitError } from '@lowbit/kernels';
import type { TensorType } from './ggml-types.js';
import { fromF32, toF32 } from './ggml-quants.js';
import { type GgufFile, type GgufValue, readGguf, readTensorBytes } from './gguf-reader.js';
import { type GgufTensorToWrite, writeGguf } from './gguf-writer.js';
import type { LinearWeight } from './linear.js';
import type { LlamaModel } from './model.js';

/** llama.cpp `llama_ftype` of a file whose weights are mostly `type` (general.file_type). */
const FILE_TYPE: Record<TensorType, number> = { F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, BF16: 32 };

/**
 * The type a tensor gets when a file is quantized to `target`: matrices take `target`; vectors
 * (norms) stay F32; matrices whose rows are not a whole number of 32-blocks fall back to F16, as
 * llama.cpp's quantizer does for incompatible tensors.
 */
export function storageType(target: TensorType, shape: readonly number[]): TensorType {
  if (shape.length < 2 || shape.slice(1).every((d) => d === 1)) return 'F32';
  if (target === 'Q8_0' || target === 'Q4_0' || target === 'Q4_1') return shape[0] % 32 === 0 ? target : 'F16';
  return target;
}

function withFileType(meta: Map<string, GgufValue>, target: TensorType): Map<string, GgufValue> {
  const out = new Map(meta);
  out.set('general.file_type', { type: 4, value: FILE_TYPE[target] });
  return out;
}

/** Re-encodes every tensor of `input` for `target` and writes `output` atomically, tensor by tensor. */
export async function quantizeGguf(input: string, output: string, target: TensorType): Promise<void> {
  const file: GgufFile = await readGguf(input);
  try {
    const tensors: GgufTensorToWrite[] = [...file.tensors.values()].map((t) => {
      const type = storageType(target, t.shape);
      const n = t.shape.reduce((a, b) => a * b, 1);
      return {
        name: t.name,
        shape: t.shape,
        type,
        data: async () => {
          const bytes = await readTensorBytes(file, t.name);
          return type === t.type ? bytes : fromF32(type, toF32(t.type, bytes, n), t.shape[0], `${input}: tensor ${t.name}`);
        },
      };
    });
    await writeGguf(output, withFileType(file.metadata, target), tensors);
  } finally {
    await file.source.close();
  }
}

function linearTensor(name: string, w: LinearWeight, target?: TensorType): GgufTensorToWrite {
  const [rows, cols] = w.shape;
  const shape = [cols, rows];
  if (w.format === 'int4' || w.format === 'packed') {
    throw new LowbitError('E_UNSUPPORTED', `${name}: ${w.format} weights have no GGUF type; save them as f32, q8_0, q4_0 or q4_1 (or serialize the tensor with @lowbit/formats)`);
  }
  if (w.format !== 'f32') {
    return { name, shape, type: w.format.toUpperCase() as TensorType, data: w.data };
  }
  const type = storageType(target ?? 'F32', shape);
  return { name, shape, type, data: () => fromF32(type, w.data, cols, name) };
}

/**
 * Writes an in-memory model (its current, possibly replaced, layers) as GGUF: packed layers keep
 * their blocks; f32 layers are stored as `target` (default F32). Metadata and tokenizer come from
 * the GGUF the model was loaded from.
 */
export async function saveModel(model: LlamaModel, output: string, options: { target?: TensorType } = {}): Promise<void> {
  const src = model.gguf;
  if (!src) throw new LowbitError('E_MISSING', `${model.name}: saveModel needs a model loaded from GGUF (metadata)`);
  const c = model.config;
  if (c.variant) throw new LowbitError('E_UNSUPPORTED', `${model.name}: saveModel writes Llama-family GGUF; ${c.architecture} is not one`);
  const f32 = (name: string, v: Float32Array): GgufTensorToWrite => ({ name, shape: [v.length], type: 'F32', data: fromF32('F32', v, v.length) });
  const e = model.weights.tokenEmbd;
  const tensors: GgufTensorToWrite[] = [{ name: 'token_embd.weight', shape: [c.dim, c.vocabSize], type: e.type, data: e.data }];
  tensors.push(f32('output_norm.weight', model.weights.outputNorm));
  tensors.push(linearTensor('output.weight', model.weights.output.source, options.target));
  model.weights.layers.forEach((l, i) => {
    const b = `blk.${i}.`;
    tensors.push(f32(`${b}attn_norm.weight`, l.attnNorm));
    for (const lin of [l.wq, l.wk, l.wv, l.wo]) tensors.push(linearTensor(lin.name, lin.source, options.target));
    tensors.push(f32(`${b}ffn_norm.weight`, l.ffnNorm));
    for (const lin of [l.w1, l.w2, l.w3]) if (lin) tensors.push(linearTensor(lin.name, lin.source, options.target));
  });
  await writeGguf(output, withFileType(src.metadata, options.target ?? 'F32'), tensors);
}
