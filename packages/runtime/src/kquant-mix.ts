// Round-to-nearest K-quantization of a loaded model with ggml's reference quantizers (quantizeRowK,
// byte-identical to quantize_row_*_ref), per layer type as llama.cpp's llama-quantize chooses it:
// a single type for every matrix, or the Q4_K_M mix. The layers become `kquant` Linears (the kernels'
// K-quant GEMV), so the model in memory runs what saveModel writes and llama.cpp loads.
import { LowbitError } from '@lowbit/kernels';
import { fromF32 } from './ggml-quants.js';
import type { KQuantWritable } from './ggml-kquants.js';
import { KQUANT_FALLBACK, type KQuantFallback } from './ggml-types.js';
import type { LinearWeight } from './linear.js';
import type { DecoderModel } from './model.js';
import { dequantizeLinear } from './qdec.js';

/** One K type for every matrix (as `llama-quantize --pure`), or llama.cpp's Q4_K_M mix. */
export type KQuantScheme = KQuantWritable | 'Q4_K_M';

/** What a matrix is stored as: its K type, or the fallback for rows that are not whole super-blocks. */
export type KQuantLayerType = KQuantWritable | KQuantFallback | 'F32';

/**
 * llama.cpp's use_more_bits (src/llama-quant.cpp, llama_tensor_get_type): the first and last eighth
 * of the layers, and every third layer between them, get more bits in the _M mixes.
 */
export function useMoreBits(i: number, n: number): boolean {
  return i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;
}

/**
 * The type of matrix `name` ([rows, cols], cols the row length) under `scheme` in a model of
 * `nLayers` layers. Q4_K_M follows llama_tensor_get_type for a dense Llama: output.weight Q6_K;
 * attn_v and ffn_down Q6_K where useMoreBits(layer, nLayers), Q4_K elsewhere. Rows that are not whole
 * 256-weight super-blocks cannot be K-quantized: they take llama.cpp's fallback (KQUANT_FALLBACK: Q5_0
 * for Q4_K, Q5_1 for Q5_K, Q8_0 for Q6_K, IQ4_NL for Q2_K and Q3_K, by its own quantizers' rules), and
 * F32 where even 32-blocks do not fit (llama.cpp: F16; F32 so the file evaluates as the model in memory).
 */
export function kquantLayerType(scheme: KQuantScheme, name: string, nLayers: number, cols: number): KQuantLayerType {
  let t: KQuantWritable = scheme === 'Q4_K_M' ? 'Q4_K' : scheme;
  if (scheme === 'Q4_K_M') {
    const m = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name);
    if (name === 'output.weight' || (m && useMoreBits(Number(m[1]), nLayers))) t = 'Q6_K';
  }
  if (cols % 256 === 0) return t;
  return cols % 32 === 0 ? KQUANT_FALLBACK[t] : 'F32';
}

export interface KQuantizedLayer {
  name: string;
  type: KQuantLayerType;
  rows: number;
  cols: number;
}

/**
 * K-quantizes every linear layer of `model` in place (RTN with ggml's reference quantizers, from the
 * values each layer runs with now). Returns each layer's type and the bits per weight of the result.
 */
export function quantizeModelK(model: DecoderModel, scheme: KQuantScheme, onLayer?: (name: string, done: number, total: number) => void): { layers: KQuantizedLayer[]; bitsPerWeight: number } {
  const valid: readonly string[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_K_M'];
  if (!valid.includes(scheme)) throw new LowbitError('E_ARG', `quantizeModelK: scheme ${String(scheme)} is not one of ${valid.join(', ')}`);
  const linears = model.linears();
  const layers: KQuantizedLayer[] = [];
  let bytes = 0;
  let weights = 0;
  linears.forEach((l, i) => {
    const type = kquantLayerType(scheme, l.name, model.config.nLayers, l.cols);
    const x = dequantizeLinear(l.name, l.source);
    const where = `${model.name}: ${l.name}`;
    let w: LinearWeight & { data: Float32Array | Uint8Array };
    if (type === 'F32') w = { format: 'f32', shape: [l.rows, l.cols], data: x.slice() };
    else if (isKQuantFallback(type)) w = fallbackWeight(type, [l.rows, l.cols], x, where);
    else w = { format: 'kquant', type, shape: [l.rows, l.cols], data: fromF32(type, x, l.cols, where) };
    bytes += w.data.byteLength;
    weights += l.rows * l.cols;
    model.setLinear(l.name, w);
    layers.push({ name: l.name, type, rows: l.rows, cols: l.cols });
    onLayer?.(l.name, i + 1, linears.length);
  });
  return { layers, bitsPerWeight: weights ? (bytes * 8) / weights : 0 };
}

const FALLBACKS: ReadonlySet<KQuantLayerType> = new Set(Object.values(KQUANT_FALLBACK));

export function isKQuantFallback(t: KQuantLayerType): t is KQuantFallback {
  return FALLBACKS.has(t);
}

/** A fallback layer's weights: `x` ([rows, cols] values) in the 32-block type, by ggml's quantizer for it. */
export function fallbackWeight(type: KQuantFallback, shape: [number, number], x: Float32Array, where: string): LinearWeight & { data: Uint8Array } {
  const data = fromF32(type, x, shape[1], where);
  return type === 'Q8_0' ? { format: 'q8_0', shape, data } : { format: type.toLowerCase() as 'q5_0' | 'q5_1' | 'iq4_nl', shape, data };
}
