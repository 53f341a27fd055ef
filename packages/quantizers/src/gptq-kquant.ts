import { GGML_K_BLOCK_BYTES, GGML_K_BLOCK_SIZE, LowbitError } from '@lowbit/kernels';
import { type KQuantWritable, quantizeRowK } from '@lowbit/runtime';
import { type MatmulKernels, inverseCholeskyUpper, ldlUpper } from '@lowbit/solvers';
import { KERNEL_MIN_COLS, addCompensation } from './gptq.js';
import { type KSubGrid, kCode, kRowBytes, kValue, kquantLayout, readCodes, readSubGrid, writeCodes } from './kquant-grid.js';

const QK = GGML_K_BLOCK_SIZE;

export interface GptqKQuantOptions {
  /** The K type whose grid every weight is rounded onto. */
  type: KQuantWritable;
  /** Dampening λ = damp·mean(diag H) added to diag H (paper §4: 1% of the average diagonal). Default 0.01. */
  damp?: number;
  /**
   * Quantize columns in order of decreasing diag(H). The super-blocks are contiguous columns in the
   * file, so act-order fixes every super-block's scales up front from the weights as given
   * (gptq.py's static groups) rather than when the sweep enters it.
   */
  actOrder?: boolean;
  /** Without act-order: fix every super-block's scales from the weights as given, as act-order does. Default false. */
  staticGroups?: boolean;
  /** Columns per lazy batch (paper §4). Default 128; without static groups it must divide 256. */
  blockSize?: number;
  /**
   * `@lowbit/kernels` (e.g. `model.kernels`) for layers with at least `kernelMinCols` inputs: GPTQ in its
   * LDLQ form as `gptqQuantize`'s kernel path (one f32-blocked H = M·D·Mᵀ, lazy updates as f32 matmuls).
   */
  kernels?: MatmulKernels;
  /** Inputs from which `kernels` are used. Default 512 (KERNEL_MIN_COLS). */
  kernelMinCols?: number;
}

export interface GptqKQuantResult {
  type: KQuantWritable;
  /** The tensor in ggml's byte layout: rows × (cols / 256) super-blocks, as GGUF stores it. */
  data: Uint8Array;
  /** The weights `data` decodes to [rows, cols] (exactly `dequantizeK` of `data`). */
  weights: Float32Array;
  /** Σ (w − q)²/(2·[H⁻¹]qq): the OBS estimate of the added output error, in the units of H. */
  loss: number;
  /** Columns whose calibration inputs were all zero (diag H = 0); their weights are set to 0 before quantizing. */
  deadColumns: number;
  /** Whether the super-block scales were fixed up front (act-order or `staticGroups`) or on entering each super-block. */
  staticGroups: boolean;
  /** Whether the f32 kernel path ran (see `GptqKQuantOptions.kernels`). */
  kernelPath: boolean;
}

/**
 * GPTQ (Frantar et al. 2023) onto llama.cpp's K-quant grid: the column-by-column OBS sweep of `gptqQuantize`
 * (error of column q spread over the later columns by row q of the upper Cholesky factor of H⁻¹, lazy
 * batches), with the quantizer of each weight the K type's sub-block grid.
 *
 * The grid of a super-block (the f16 d/dmin and the 6-bit or 4-bit sub-block scales and mins) is what
 * ggml's own reference quantizer (`quantizeRowK`: make_qkx2 / make_q3 / make_qx searches) picks for
 * it. By default it is fitted per row when the sweep enters the super-block, on the weights as the
 * errors of every earlier column have left them (gptq.py's per-group choice: the scale sees the error
 * it must absorb); with act-order the sweep jumps between super-blocks, so their scales are fitted on
 * the original weights first (gptq.py's static groups). Each weight then takes the code ggml's final
 * requantization pass would give it under those scales, and the error is its distance to that code's
 * decoded value, so `data` decodes to exactly the weights the algorithm saw.
 *
 * With H = I no error crosses a column and the result is `quantizeRowK` of W, byte for byte.
 */
export function gptqKQuantize(w: Float32Array, shape: [number, number], hessian: Float64Array, options: GptqKQuantOptions): GptqKQuantResult {
  const [rows, cols] = shape;
  const { type } = options;
  const layout = kquantLayout(type);
  if (!Number.isInteger(rows) || rows <= 0 || !Number.isInteger(cols) || cols <= 0) throw new LowbitError('E_SHAPE', `gptq ${type}: shape [${rows}, ${cols}] is not two positive integers`);
  if (cols % QK !== 0) throw new LowbitError('E_SHAPE', `gptq ${type}: rows of ${cols} weights are not whole ${QK}-weight super-blocks`);
  if (!(w instanceof Float32Array) || w.length !== rows * cols) throw new LowbitError('E_SHAPE', `gptq ${type}: weights must be a Float32Array of [${rows}, ${cols}], got ${w.length} values`);
  if (hessian.length !== cols * cols) throw new LowbitError('E_SHAPE', `gptq ${type}: Hessian must be [${cols}, ${cols}], got ${hessian.length} values`);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) throw new LowbitError('E_NAN', `gptq ${type}: weight [${Math.floor(i / cols)}, ${i % cols}] is ${w[i]}`);
  }
  const damp = options.damp ?? 0.01;
  if (!(damp >= 0)) throw new LowbitError('E_ARG', `gptq ${type}: damp must be >= 0, got ${damp}`);
  const actOrder = options.actOrder ?? false;
  const staticGroups = actOrder || (options.staticGroups ?? false);
  const B = options.blockSize ?? 128;
  if (!Number.isInteger(B) || B < 1) throw new LowbitError('E_ARG', `gptq ${type}: blockSize must be a positive integer, got ${B}`);
  // a super-block's scales are fitted at the start of a lazy batch, where every earlier error has reached it
  if (!staticGroups && QK % B !== 0) throw new LowbitError('E_ARG', `gptq ${type}: blockSize ${B} does not divide the ${QK}-weight super-block (needed to fit its scales on the updated weights)`);

  const W0 = Float64Array.from(w);
  let dead = 0;
  let H = hessian;
  for (let c = 0; c < cols; c++) {
    if (hessian[c * cols + c] === 0) {
      if (dead++ === 0) H = Float64Array.from(hessian);
      H[c * cols + c] = 1;
      for (let r = 0; r < rows; r++) W0[r * cols + c] = 0;
    }
  }

  const nsb = cols / QK;
  const S = layout.subBlocks;
  const sub = QK / S;
  const bytes = GGML_K_BLOCK_BYTES[type];
  const rb = kRowBytes(type, cols);
  const data = new Uint8Array(rows * rb);
  const grid: KSubGrid = { a: new Float32Array(rows * nsb * S), b: new Float32Array(rows * nsb * S) };
  const L = new Uint8Array(rows * cols);
  const row = new Float32Array(QK);
  // ggml's scale search on the current values of super-block s of every row; the codes it stored
  // stay where a sub-block scale is 0 (any code decodes the same there)
  const fit = (src: Float64Array, srcCols: number, srcCol: number, s: number) => {
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < QK; i++) row[i] = src[r * srcCols + srcCol + i];
      const o = r * rb + s * bytes;
      quantizeRowK(type, row, data, o);
      readSubGrid(type, data, o, grid, (r * nsb + s) * S);
      readCodes(type, data, o, L, r * cols + s * QK);
    }
  };
  if (staticGroups) for (let s = 0; s < nsb; s++) fit(W0, cols, s * QK, s);

  const perm = Int32Array.from({ length: cols }, (_, i) => i);
  if (actOrder) perm.sort((x, y) => H[y * cols + y] - H[x * cols + x] || x - y);
  const W = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) W[r * cols + c] = W0[r * cols + perm[c]];
  // f64 path: U = upper Cholesky factor of H⁻¹, error e = (w − q)/U[q,q]. Kernel path: U = M of
  // H = M·D·Mᵀ, error e = q − w_original (the LDLQ identity: the same updates, one factorization).
  const kernels = options.kernels && cols >= (options.kernelMinCols ?? KERNEL_MIN_COLS) ? options.kernels : undefined;
  let U: Float64Array;
  let D: Float64Array | null = null;
  if (kernels) {
    ({ m: U, d: D } = ldlUpper(H, cols, { damp, kernels, order: perm }));
  } else {
    const Hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i] * cols + perm[j]];
    U = inverseCholeskyUpper(Hp, cols, { damp });
  }

  const weights = new Float32Array(rows * cols);
  const Err = new Float64Array(rows * B);
  let loss = 0;
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(i1 + B, cols);
    if (!staticGroups && i1 % QK === 0) {
      if (kernels) fit(gptqValues(kernels, W, W0, U, rows, cols, i1), QK, 0, i1 / QK);
      else fit(W, cols, i1, i1 / QK);
    }
    Err.fill(0);
    for (let q = i1; q < i2; q++) {
      const c = perm[q];
      const g0 = Math.floor(c / QK) * S + Math.floor((c % QK) / sub);
      const d = U[q * cols + q];
      for (let r = 0; r < rows; r++) {
        const x = W[r * cols + q];
        const gi = r * nsb * S + g0;
        const a = grid.a[gi];
        const b = grid.b[gi];
        let u = kCode(type, x, a, b);
        if (u < 0) u = L[r * cols + c];
        else L[r * cols + c] = u;
        const qv = kValue(type, u, a, b);
        weights[r * cols + c] = qv;
        let e: number;
        if (D) {
          e = qv - W0[r * cols + c];
          loss += ((x - qv) * (x - qv) * D[q]) / 2;
        } else {
          e = (x - qv) / d;
          loss += (e * e) / 2;
        }
        Err[r * B + (q - i1)] = e;
        const wr = r * cols;
        const uq = q * cols;
        for (let k = q + 1; k < i2; k++) W[wr + k] -= e * U[uq + k];
      }
    }
    // lazy batch update (§4): this batch's errors reach every later column in one pass
    if (kernels) lazyUpdate(kernels, W, Err, U, rows, cols, i1, i2, B);
    else for (let r = 0; r < rows; r++) {
      const wr = r * cols;
      for (let j = 0; j < i2 - i1; j++) {
        const e = Err[r * B + j];
        if (e === 0) continue;
        const uj = (i1 + j) * cols;
        for (let k = i2; k < cols; k++) W[wr + k] -= e * U[uj + k];
      }
    }
  }
  for (let r = 0; r < rows; r++) for (let s = 0; s < nsb; s++) writeCodes(type, L, r * cols + s * QK, data, r * rb + s * bytes);
  return { type, data, weights, loss, deadColumns: dead, staticGroups, kernelPath: kernels !== undefined };
}

/** Output rows per kernel call (bounds one call's f32 result to STRIP × cols values). */
const STRIP = 256;

/** W[:, i2:] −= Err[:, 0:i2 − i1]·U[i1:i2, i2:] as f32 matmuls, STRIP rows of W at a time (Uᵀ's slice resident). */
function lazyUpdate(k: MatmulKernels, W: Float64Array, Err: Float64Array, U: Float64Array, rows: number, cols: number, i1: number, i2: number, B: number): void {
  const m = cols - i2;
  if (m === 0) return;
  const cnt = i2 - i1;
  const UT = new Float32Array(m * cnt);
  for (let j = 0; j < cnt; j++) for (let c = 0; c < m; c++) UT[c * cnt + j] = U[(i1 + j) * cols + i2 + c];
  const ut = k.upload(UT);
  const X = new Float32Array(STRIP * cnt);
  const out = new Float32Array(STRIP * m);
  try {
    for (let r0 = 0; r0 < rows; r0 += STRIP) {
      const nr = Math.min(rows, r0 + STRIP) - r0;
      for (let r = 0; r < nr; r++) for (let j = 0; j < cnt; j++) X[r * cnt + j] = Err[(r0 + r) * B + j];
      k.matmulF32(ut, m, cnt, X.subarray(0, nr * cnt), nr, out.subarray(0, nr * m));
      for (let r = 0; r < nr; r++) {
        const wr = (r0 + r) * cols + i2;
        for (let c = 0; c < m; c++) W[wr + c] -= out[r * m + c];
      }
    }
  } finally {
    ut.free();
  }
}

/**
 * GPTQ's current values of the super-block [q, q + 256) [rows, 256] on the kernel path, whose W holds
 * LDLQ's partial sums P (equal to GPTQ's values only at the moment each column is quantized): with
 * F = the columns ≥ q, A_F = W0_F + (P_F − W0_F)·M_FF⁻¹, whose leading block is M_gg⁻¹ (M is upper
 * triangular), so ggml's scale search sees exactly what the f64 path shows it (as `gptqQuantize`'s
 * group scales on its kernel path).
 */
function gptqValues(k: MatmulKernels, W: Float64Array, W0: Float64Array, M: Float64Array, rows: number, cols: number, q: number): Float64Array {
  const delta = new Float32Array(rows * QK);
  const out = new Float64Array(rows * QK);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < QK; j++) {
      const w0 = W0[r * cols + q + j];
      delta[r * QK + j] = W[r * cols + q + j] - w0;
      out[r * QK + j] = w0;
    }
  }
  return addCompensation(k, M, cols, q, QK, delta, out);
}
