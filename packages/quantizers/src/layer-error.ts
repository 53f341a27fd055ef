import { LowbitError } from '@lowbit/kernels';
import type { MatmulKernels } from '@lowbit/solvers';

/** ‖W − Ŵ‖²_F. */
export function weightError(w: ArrayLike<number>, wq: ArrayLike<number>): number {
  if (w.length !== wq.length) throw new LowbitError('E_SHAPE', `weightError: ${w.length} vs ${wq.length} values`);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += (w[i] - wq[i]) ** 2;
  return s;
}

export interface OutputErrorOptions {
  /** Compute Δ·(XᵀX) as f32 WASM matmuls for layers with cols ≥ `kernelMinCols` (default 512); Δ·(Δ·XᵀX)ᵀ is still summed in f64. */
  kernels?: MatmulKernels;
  kernelMinCols?: number;
}

/**
 * ‖W·Xᵀ − Ŵ·Xᵀ‖²_F = Σ_r Δ_r·(XᵀX)·Δ_rᵀ, from the Gram matrix XᵀX [cols, cols] so calibration
 * data of any length costs one cols² pass per row (f64 throughout: it is a small difference of sums).
 */
export function outputError(w: ArrayLike<number>, wq: ArrayLike<number>, shape: [number, number], gram: Float64Array, options: OutputErrorOptions = {}): number {
  const [rows, cols] = shape;
  if (w.length !== rows * cols || wq.length !== rows * cols) throw new LowbitError('E_SHAPE', `outputError: weights must be [${rows}, ${cols}]`);
  if (gram.length !== cols * cols) throw new LowbitError('E_SHAPE', `outputError: Gram matrix must be [${cols}, ${cols}], got ${gram.length} values`);
  if (options.kernels && cols >= (options.kernelMinCols ?? 512)) return outputErrorKernels(options.kernels, w, wq, rows, cols, gram);
  const d = new Float64Array(cols);
  let total = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) d[c] = w[r * cols + c] - wq[r * cols + c];
    for (let i = 0; i < cols; i++) {
      if (d[i] === 0) continue;
      let s = 0;
      const gi = i * cols;
      for (let j = 0; j < cols; j++) s += gram[gi + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}

/**
 * The kernel path of `outputError`: XᵀX resident in f32, Δ in strips of 256 rows. Every term
 * Δ_r·G·Δ_rᵀ is ≥ 0 (G is a Gram matrix), so f32 products keep the relative error near 1e-6.
 */
function outputErrorKernels(k: MatmulKernels, w: ArrayLike<number>, wq: ArrayLike<number>, rows: number, cols: number, gram: Float64Array): number {
  const strip = 256;
  const g = k.upload(Float32Array.from(gram));
  const d = new Float32Array(strip * cols);
  const out = new Float32Array(strip * cols);
  let total = 0;
  try {
    for (let r0 = 0; r0 < rows; r0 += strip) {
      const nr = Math.min(rows, r0 + strip) - r0;
      for (let i = 0; i < nr * cols; i++) d[i] = w[r0 * cols + i] - wq[r0 * cols + i];
      k.matmulF32(g, cols, cols, d.subarray(0, nr * cols), nr, out.subarray(0, nr * cols));
      for (let i = 0; i < nr * cols; i++) total += d[i] * out[i];
    }
  } finally {
    g.free();
  }
  return total;
}

/** XᵀX [cols, cols] of X [samples, cols] in f64. */
export function gramMatrix(x: ArrayLike<number>, samples: number, cols: number): Float64Array {
  if (x.length !== samples * cols) throw new LowbitError('E_SHAPE', `gramMatrix: X must be [${samples}, ${cols}], got ${x.length} values`);
  const G = new Float64Array(cols * cols);
  const row = new Float64Array(cols);
  for (let s = 0; s < samples; s++) {
    for (let c = 0; c < cols; c++) row[c] = x[s * cols + c];
    for (let i = 0; i < cols; i++) {
      const xi = row[i];
      if (xi === 0) continue;
      for (let j = 0; j <= i; j++) G[i * cols + j] += xi * row[j];
    }
  }
  for (let i = 0; i < cols; i++) for (let j = 0; j < i; j++) G[j * cols + i] = G[i * cols + j];
  return G;
}
