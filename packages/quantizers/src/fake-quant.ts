// Fake quantization for training: a layer's latent f32 weights rounded onto a storage grid and
// handed back as f32 values, so a forward pass sees exactly what the packed model will hold. It is
// the RTN quantizer of this package (createQuantizer), not a second copy of the grids: the rounding
// the trainer sees is the rounding `quantizeModel({ method: 'rtn' })` stores at the end.
import type { MxFormatName } from '@lowbit/formats';
import { LowbitError } from '@lowbit/kernels';
import type { DecoderModel } from '@lowbit/runtime';
import type { GgmlType } from './ggml-grid.js';
import type { ModelQuantizeOptions } from './model-quantize.js';
import { createQuantizer } from './quantizer.js';

/** A storage grid: INT-k (group along cols, 0 = per output channel), a ggml block type, or an OCP MX format (both blocks of 32). */
export type TrainGrid = { format: 'int'; bits: number; group: number; symmetric?: boolean } | { format: GgmlType } | { format: MxFormatName };

export interface FakeQuant {
  /** The layers on the grid (blocks' q, k, v, output, gate, up, down; ggml formats: rows of whole 32-blocks only). */
  readonly names: string[];
  readonly shapes: Map<string, [number, number]>;
  /** Ŵ = RTN(w) on the grid, a fresh array. */
  quantize(name: string, w: Float32Array): Float32Array;
  /** The quantizeModel options that store the same rounding (RTN, LM head kept in full precision). */
  readonly modelOptions: ModelQuantizeOptions;
}

const BLOCK_LINEAR = /^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$/;

/** The linears quantizeModel quantizes without `includeOutput`: every block's, and for ggml blocks only rows of whole 32-blocks. */
export function quantizedLinears(model: DecoderModel, ggml: boolean): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const l of model.linears()) if (BLOCK_LINEAR.test(l.name) && (!ggml || l.cols % 32 === 0)) out.set(l.name, [l.rows, l.cols]);
  return out;
}

export function fakeQuantizer(model: DecoderModel, grid: TrainGrid): FakeQuant {
  const int = grid.format === 'int' ? grid : null;
  const ggml = grid.format === 'q4_0' || grid.format === 'q4_1' || grid.format === 'q8_0';
  if (int && !(Number.isInteger(int.group) && int.group >= 0)) throw new LowbitError('E_ARG', `fake quantization: group must be a non-negative integer, got ${int.group}`);
  const q = createQuantizer({ method: 'rtn', format: grid.format, bits: int?.bits, group: int ? int.group : 32, symmetric: int?.symmetric ?? true });
  const shapes = quantizedLinears(model, ggml);
  const modelOptions: ModelQuantizeOptions = int
    ? { method: 'rtn', format: 'int', bits: int.bits, group: int.group, symmetric: int.symmetric ?? true, includeOutput: false }
    : { method: 'rtn', format: grid.format, includeOutput: false };
  return {
    names: [...shapes.keys()],
    shapes,
    modelOptions,
    quantize(name, w) {
      const shape = shapes.get(name);
      if (!shape) throw new LowbitError('E_MISSING', `fake quantization: ${name} is not a quantized layer of ${model.name}`);
      return q.quantize({ weights: w, shape }).weights;
    },
  };
}
