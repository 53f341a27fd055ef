import { LowbitError } from '@lowbit/kernels';
import { type LinearWeight, dequantize } from '@lowbit/runtime';

/**
 * A layer's weights as f32 for quantization. f32 layers are returned as they are; llama.cpp blocks
 * (Q8_0, Q4_0, Q4_1, K-quants) are dequantized here, one layer at a time, so a model too large to hold in f32
 * (a 1B-class model is ~4.4 GB of f32, over the runtime's 4 GiB wasm32 memory) can be loaded packed
 * and each layer re-quantized from the values the model actually runs with.
 */
export function f32Weights(name: string, w: LinearWeight): { format: 'f32'; shape: [number, number]; data: Float32Array } {
  if (w.format === 'f32') return w;
  if (w.format === 'q8_0' || w.format === 'q4_0' || w.format === 'q4_1') {
    const [rows, cols] = w.shape;
    const data = new Float32Array(rows * cols);
    dequantize(w.format.toUpperCase() as 'Q8_0', w.data, 0, rows * cols, data);
    return { format: 'f32', shape: w.shape, data };
  }
  if (w.format === 'kquant') {
    const [rows, cols] = w.shape;
    const data = new Float32Array(rows * cols);
    dequantize(w.type, w.data, 0, rows * cols, data);
    return { format: 'f32', shape: w.shape, data };
  }
  throw new LowbitError('E_UNSUPPORTED', `${name}: quantizeModel needs f32 weights or llama.cpp blocks (Q8_0, Q4_0, Q4_1, Q2_K..Q6_K), the layer is ${w.format}`);
}
