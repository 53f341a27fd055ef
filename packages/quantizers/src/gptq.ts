import { LowbitError } from '@lowbit/kernels';
import { type PackedIntTensor, rowBytes, writeBits } from '@lowbit/formats';
import { type MatmulKernels, inverseCholeskyUpper, ldlUpper } from '@lowbit/solvers';
import { type Grid, type GridParams, IntGrid } from './grid.js';

export interface GptqOptions {
  /** The grid each column is rounded onto (e.g. `new IntGrid({ bits: 4 })`). */
  grid: Grid;
  /** Columns per group sharing a scale; 0 (default) = one scale per row (per output channel). */
  group?: number;
  /** Quantize columns in order of descending diag(H) (the paper's "act-order" heuristic). */
  actOrder?: boolean;
  /** With act-order and groups: fit every group's scale on the original weights up front, so groups stay contiguous. */
  staticGroups?: boolean;
  /** Dampening λ = damp·mean(diag H) added to diag H (paper §4: 1% of the average diagonal). */
  damp?: number;
  /**
   * Which weights share a scale. 'oc' (default): groups of `group` consecutive columns in a row.
   * 'ic' (AdaDim's per-input-channel grouping): groups of `group` consecutive rows in a column (0 = the
   * whole column); each column's scales are fitted on its current values just before it is quantized.
   */
  dim?: 'oc' | 'ic';
  /** Columns per lazy batch (paper §4, "Lazy batch-updates"): B = 128. */
  blockSize?: number;
  /**
   * `@lowbit/kernels` (e.g. `model.kernels`) to do the O(cols³ + rows·cols²) work in f32 WASM SIMD:
   * one blocked factorization H = M·D·Mᵀ instead of the f64 inverse and Cholesky of H⁻¹, and the
   * lazy batch updates as matmuls (GPTQ in its LDLQ form, see `ldlUpper`: the same algorithm, f32
   * rounding). Used for layers with at least `kernelMinCols` inputs; smaller ones stay f64 throughout.
   */
  kernels?: MatmulKernels;
  /** Inputs (cols) from which `kernels` are used. Default 512: below it the f64 path takes well under a second. */
  kernelMinCols?: number;
}

/** Where a GPTQ run spent its time, in seconds. */
export interface GptqTiming {
  /** Factorization of H (f64 inverse + Cholesky of H⁻¹, or the f32 blocked M·D·Mᵀ). */
  factor: number;
  /** The column-by-column loop inside each block (rounding and the within-block updates, TypeScript). */
  columns: number;
  /** The lazy batch updates of the columns after each block. */
  update: number;
}

export interface GptqResult {
  /** Quantized weights Ŵ [rows, cols] (original column order), exactly the grid values. */
  weights: Float32Array;
  /** Codes u ∈ [0, 2^bits − 1], one per weight, [rows, cols]. */
  codes: Uint8Array;
  /** Scales [rows × groups], row-major by row then group (formats' 'group-cols' / 'per-oc' layout). */
  scales: Float32Array;
  /** Zero points in the same layout, or null for a symmetric grid (q4_1: the offset m). */
  zeros: Float32Array | null;
  /** Group of each input column [cols]: ⌊c / group⌋ unless act-order without static groups permuted them. */
  groupIndex: Int32Array;
  /** The result as a packed `@lowbit/formats` tensor, or null when groupIndex is not contiguous. */
  packed: PackedIntTensor | null;
  /** Σ (w − q)²/(2·[H⁻¹]qq): the OBS estimate of the added output error, in the units of H. */
  loss: number;
  /** Columns whose calibration inputs were all zero (diag H = 0); their weights are set to 0, as in the paper's code. */
  deadColumns: number;
  /** Whether the f32 kernel path ran (see `GptqOptions.kernels`). */
  kernelPath: boolean;
  timing: GptqTiming;
}

/** Default of `kernelMinCols` (Gptq statistics, gptqQuantize, outputError). */
export const KERNEL_MIN_COLS = 512;

export interface GptqStatsOptions {
  /** Accumulate Σ xxᵀ as f32 WASM matmuls of up to 256 samples each (summed in f64) when cols ≥ `kernelMinCols`. */
  kernels?: MatmulKernels;
  kernelMinCols?: number;
}

/** Samples per f32 XᵀX product before it is added to the f64 sum (bounds the f32 accumulation to 256 terms). */
const SAMPLE_CHUNK = 256;
/** Columns per sub-block of the kernel path's inner loop (see gptqQuantize). */
const SUB_BLOCK = 32;
/** Output rows per kernel call (bounds the f32 result of one call to STRIP × cols values). */
const STRIP = 256;

/**
 * GPTQ (Frantar et al. 2023) for one linear layer: accumulate H = (2/N)·Σ xxᵀ over calibration
 * inputs with `addBatch`, then `quantize` W [rows, cols] column by column, spreading each
 * column's rounding error over the not yet quantized columns by the OBS update
 *   δ_F = −(w_q − quant(w_q)) / [H_F⁻¹]_qq · (H_F⁻¹)_{:,q}            (paper eq. 2)
 * where the rows of the upper Cholesky factor of H⁻¹ hold every (H_F⁻¹)_{q,:} at once (§4).
 */
export class Gptq {
  readonly cols: number;
  /** Σ xxᵀ (lower triangle accumulated, mirrored on read) and the number of samples N. */
  private readonly sum: Float64Array;
  private n = 0;
  /** max |x_j| over all samples, per input channel [cols] (SmoothQuant's activation statistic). */
  readonly absMax: Float64Array;
  private readonly kernels?: MatmulKernels;

  constructor(cols: number, options: GptqStatsOptions = {}) {
    if (!Number.isInteger(cols) || cols <= 0) throw new LowbitError('E_ARG', `Gptq: cols must be a positive integer, got ${cols}`);
    this.cols = cols;
    this.sum = new Float64Array(cols * cols);
    this.absMax = new Float64Array(cols);
    if (options.kernels && cols >= (options.kernelMinCols ?? KERNEL_MIN_COLS)) this.kernels = options.kernels;
  }

  get samples(): number {
    return this.n;
  }

  /** Adds `batch` input rows x [batch, cols] (each row one token's input to the layer). */
  addBatch(x: ArrayLike<number>, batch: number): void {
    const n = this.cols;
    if (x.length < batch * n) throw new LowbitError('E_SHAPE', `Gptq.addBatch: ${batch} rows of ${n} need ${batch * n} values, got ${x.length}`);
    if (this.kernels) {
      for (let b0 = 0; b0 < batch; b0 += SAMPLE_CHUNK) this.addChunkKernels(this.kernels, x, b0, Math.min(batch, b0 + SAMPLE_CHUNK));
      this.n += batch;
      return;
    }
    const S = this.sum;
    const row = new Float64Array(n);
    for (let b = 0; b < batch; b++) {
      for (let c = 0; c < n; c++) {
        row[c] = x[b * n + c];
        if (!Number.isFinite(row[c])) throw new LowbitError('E_NAN', `Gptq.addBatch: input [${b}, ${c}] is ${row[c]}`);
        if (Math.abs(row[c]) > this.absMax[c]) this.absMax[c] = Math.abs(row[c]);
      }
      for (let i = 0; i < n; i++) {
        const xi = row[i];
        if (xi === 0) continue;
        const ri = i * n;
        for (let j = 0; j <= i; j++) S[ri + j] += xi * row[j];
      }
    }
    this.n += batch;
  }

  /**
   * Σ xxᵀ over samples [b0, b1) as one f32 product Xᵀ·X on the kernels: Xᵀ [cols, T] is both operands
   * (matmulF32's out[b, r] = Σt Xᵀ[r, t]·Xᵀ[b, t]), computed in strips of output rows b with only
   * r ≤ b (the lower triangle, half the multiply-adds), each strip added to the f64 sum.
   */
  private addChunkKernels(k: MatmulKernels, x: ArrayLike<number>, b0: number, b1: number): void {
    const n = this.cols;
    const T = b1 - b0;
    const XT = new Float32Array(n * T);
    for (let b = 0; b < T; b++) {
      const xo = (b0 + b) * n;
      for (let c = 0; c < n; c++) {
        const v = x[xo + c];
        if (!Number.isFinite(v)) throw new LowbitError('E_NAN', `Gptq.addBatch: input [${b0 + b}, ${c}] is ${v}`);
        if (Math.abs(v) > this.absMax[c]) this.absMax[c] = Math.abs(v);
        XT[c * T + b] = v;
      }
    }
    const S = this.sum;
    const xt = k.upload(XT);
    try {
      for (let s0 = 0; s0 < n; s0 += STRIP) {
        const s1 = Math.min(n, s0 + STRIP);
        const out = k.matmulF32(xt, s1, T, XT.subarray(s0 * T, s1 * T), s1 - s0);
        for (let b = 0; b < s1 - s0; b++) {
          const si = (s0 + b) * n;
          const ob = b * s1;
          for (let r = 0; r <= s0 + b; r++) S[si + r] += out[ob + r];
        }
      }
    } finally {
      xt.free();
    }
  }

  /** H = (2/N)·XᵀX [cols, cols] (the mean keeps H's scale independent of the amount of calibration data). */
  hessian(): Float64Array {
    const n = this.cols;
    const H = new Float64Array(n * n);
    const f = this.n > 0 ? 2 / this.n : 0;
    // Mirrored in 64×64 tiles: a plain j-loop writes H[j, i] a row apart each time (at 5632 inputs
    // that strided pass alone took seconds).
    const T = 64;
    for (let i0 = 0; i0 < n; i0 += T) {
      const i1 = Math.min(n, i0 + T);
      for (let j0 = 0; j0 <= i0; j0 += T) {
        for (let i = i0; i < i1; i++) {
          const j1 = Math.min(i + 1, j0 + T);
          for (let j = j0; j < j1; j++) H[i * n + j] = this.sum[i * n + j] * f;
        }
        for (let j = j0; j < Math.min(n, j0 + T); j++) {
          for (let i = Math.max(i0, j + 1); i < i1; i++) H[j * n + i] = H[i * n + j];
        }
      }
    }
    return H;
  }

  /**
   * Re-expresses the statistics for inputs x' = x / s (SmoothQuant moved s into the previous norm):
   * Σ x'x'ᵀ = diag(1/s)·Σ xxᵀ·diag(1/s), max|x'| = max|x| / s.
   */
  scaleInputs(s: ArrayLike<number>): void {
    const n = this.cols;
    if (s.length !== n) throw new LowbitError('E_SHAPE', `Gptq.scaleInputs: ${s.length} scales for ${n} inputs`);
    for (let i = 0; i < n; i++) {
      this.absMax[i] /= s[i];
      for (let j = 0; j <= i; j++) this.sum[i * n + j] /= s[i] * s[j];
    }
  }

  /** Σ xxᵀ as accumulated (for output-error measurement: ‖ΔW·Xᵀ‖² = tr(ΔW·XᵀX·ΔWᵀ)). */
  gram(): Float64Array {
    const H = this.hessian();
    const f = this.n / 2;
    for (let i = 0; i < H.length; i++) H[i] *= f;
    return H;
  }

  quantize(w: Float32Array, rows: number, options: GptqOptions): GptqResult {
    if (this.n === 0) throw new LowbitError('E_ARG', 'Gptq.quantize: no calibration inputs were added (call addBatch first)');
    return gptqQuantize(w, [rows, this.cols], this.hessian(), options);
  }
}

/** GPTQ of W [rows, cols] for a given Hessian H [cols, cols] (see `Gptq`). */
export function gptqQuantize(w: Float32Array, shape: [number, number], hessian: Float64Array, options: GptqOptions): GptqResult {
  const [rows, cols] = shape;
  if (!(w instanceof Float32Array) || w.length !== rows * cols) throw new LowbitError('E_SHAPE', `gptq: weights must be a Float32Array of [${rows}, ${cols}], got ${w.length} values`);
  if (hessian.length !== cols * cols) throw new LowbitError('E_SHAPE', `gptq: Hessian must be [${cols}, ${cols}], got ${hessian.length} values`);
  for (let i = 0; i < w.length; i++) {
    if (!Number.isFinite(w[i])) throw new LowbitError('E_NAN', `gptq: weight [${Math.floor(i / cols)}, ${i % cols}] is ${w[i]}`);
  }
  const { grid } = options;
  const group = options.group ?? 0;
  const damp = options.damp ?? 0.01;
  const B = options.blockSize ?? 128;
  if (!Number.isInteger(group) || group < 0) throw new LowbitError('E_ARG', `gptq: group must be a non-negative integer, got ${group}`);
  if (!(damp >= 0)) throw new LowbitError('E_ARG', `gptq: damp must be >= 0, got ${damp}`);
  if (!Number.isInteger(B) || B < 1) throw new LowbitError('E_ARG', `gptq: blockSize must be a positive integer, got ${B}`);
  const dim = options.dim ?? 'oc';
  if (dim !== 'oc' && dim !== 'ic') throw new LowbitError('E_ARG', `gptq: dim must be 'oc' or 'ic', got ${dim as string}`);
  const GR = dim === 'ic' ? (group > 0 ? group : rows) : 0; // rows per group along a column
  const G = dim === 'ic' ? cols : group > 0 ? group : cols;
  const ngroups = Math.ceil(cols / G);
  const actOrder = options.actOrder ?? false;
  const staticGroups = (options.staticGroups ?? false) && group > 0 && dim === 'oc';

  const kernels = options.kernels && cols >= (options.kernelMinCols ?? KERNEL_MIN_COLS) ? options.kernels : undefined;
  const timing: GptqTiming = { factor: 0, columns: 0, update: 0 };
  const W0 = Float64Array.from(w);
  // Dead inputs never reach the output: any value is exact, so zero them and make H invertible there.
  // (H is copied only when that happens: at 5632 inputs a copy is 254 MB.)
  let dead = 0;
  let H: Float64Array = hessian;
  for (let c = 0; c < cols; c++) {
    if (hessian[c * cols + c] === 0) {
      if (dead++ === 0) H = Float64Array.from(hessian);
      H[c * cols + c] = 1;
      for (let r = 0; r < rows; r++) W0[r * cols + c] = 0;
    }
  }

  // Static groups: fit each group's grid on the weights as given, before any error is spread into them.
  const staticParams: GridParams[] = [];
  if (staticGroups) for (let g = 0; g < ngroups; g++) staticParams.push(grid.findParams(W0, rows, cols, g * G, Math.min(cols, (g + 1) * G)));

  const perm = Int32Array.from({ length: cols }, (_, i) => i);
  if (actOrder) perm.sort((a, b) => H[b * cols + b] - H[a * cols + a] || a - b);
  const W = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) W[r * cols + c] = W0[r * cols + perm[c]];

  // U: the rows GPTQ spreads each column's error along. f64 path: U = upper Cholesky factor of H⁻¹,
  // error e = (w − q)/U[q,q]. Kernel path: U = M of H = M·D·Mᵀ (ldlUpper), error e = q − w_original,
  // which by the LDLQ identity gives the same sequence of updates with one factorization.
  let t = performance.now();
  let U: Float64Array;
  let D: Float64Array | null = null;
  if (kernels) {
    const f = ldlUpper(H, cols, { damp, kernels, order: perm });
    U = f.m;
    D = f.d;
  } else {
    const Hp = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i] * cols + perm[j]];
    U = inverseCholeskyUpper(Hp, cols, { damp });
  }
  timing.factor = (performance.now() - t) / 1000;

  const codes = new Uint8Array(rows * cols); // permuted column order while the loop runs
  const scales = new Float32Array(rows * ngroups);
  const zeros = grid.symmetric ? null : new Float32Array(rows * ngroups);
  const groupIndex = new Int32Array(cols);
  const groupParams: GridParams[] = [];
  const store = (g: number, p: GridParams) => {
    groupParams[g] = p;
    for (let r = 0; r < rows; r++) {
      scales[r * ngroups + g] = p.scale[r];
      if (zeros) zeros[r * ngroups + g] = p.zero[r];
    }
  };
  staticParams.forEach((p, g) => store(g, p));
  const icCount = dim === 'ic' ? Math.ceil(rows / GR) * cols : 0;
  const icScales = new Float32Array(icCount);
  const icZeros = grid.symmetric ? null : new Float32Array(icCount);
  const icParams: GridParams[] = [];

  let params: GridParams | null = null;
  let loss = 0;
  const Err = new Float64Array(rows * B);
  // Kernel path: inside a block, columns are updated at once only within sub-blocks of SUB_BLOCK
  // columns; each finished sub-block reaches the rest of its block by one more matmul (the same
  // lazy-batch idea one level down), so the TypeScript loop does rows·cols·SUB_BLOCK/2 updates, not rows·cols·B/2.
  const SB = kernels ? SUB_BLOCK : B;
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(i1 + B, cols);
    const cnt = i2 - i1;
    Err.fill(0);
    t = performance.now();
    for (let q = i1; q < i2; q++) {
      const s1 = i1 + Math.floor((q - i1) / SB) * SB;
      const s2 = Math.min(i2, s1 + SB);
      if (dim === 'ic') {
        params = columnParams(grid, W, rows, cols, q, GR);
        for (let r = 0; r < rows; r++) {
          const k = Math.floor(r / GR) * cols + perm[q];
          icScales[k] = params.scale[r];
          if (icZeros) icZeros[k] = params.zero[r];
        }
        icParams[perm[q]] = params;
      } else if (staticGroups) {
        params = staticParams[Math.floor(perm[q] / G)];
        groupIndex[perm[q]] = Math.floor(perm[q] / G);
      } else {
        if (q % G === 0) {
          const c1 = Math.min(cols, q + G);
          let cur = currentColumns(W, Err, U, rows, cols, i1, s1, q, s2, i2, c1);
          if (D) cur = gptqColumns(cur, W0, perm, U, rows, cols, q, c1, kernels as MatmulKernels);
          params = grid.findParams(cur, rows, c1 - q, 0, c1 - q);
          store(q / G, params);
        }
        groupIndex[perm[q]] = Math.floor(q / G);
      }
      const p = params as GridParams;
      const d = U[q * cols + q];
      const dq = D ? D[q] : 0;
      const pq = perm[q];
      for (let r = 0; r < rows; r++) {
        const x = W[r * cols + q];
        const u = grid.code(x, r, p);
        const qv = grid.value(u, r, p);
        codes[r * cols + q] = u;
        let e: number;
        if (D) {
          e = qv - W0[r * cols + pq];
          loss += (x - qv) * (x - qv) * dq / 2;
        } else {
          e = (x - qv) / d;
          loss += (e * e) / 2;
        }
        Err[r * B + (q - i1)] = e;
        // Within the (sub-)block the update is applied at once (it is cheap: at most B columns).
        const wr = r * cols;
        const uq = q * cols;
        for (let c = q + 1; c < s2; c++) W[wr + c] -= e * U[uq + c];
      }
      if (q + 1 === s2 && s2 < i2) lazyUpdateKernels(kernels as MatmulKernels, W, Err, U, rows, cols, i1, s1, s2, s2, i2, B);
    }
    timing.columns += (performance.now() - t) / 1000;
    t = performance.now();
    // Lazy batch update (§4): all of this block's errors reach the columns after it in one pass.
    if (kernels) lazyUpdateKernels(kernels, W, Err, U, rows, cols, i1, i1, i2, i2, cols, B);
    else for (let r = 0; r < rows; r++) {
      const wr = r * cols;
      for (let j = 0; j < cnt; j++) {
        const e = Err[r * B + j];
        if (e === 0) continue;
        const uj = (i1 + j) * cols;
        for (let c = i2; c < cols; c++) W[wr + c] -= e * U[uj + c];
      }
    }
    timing.update += (performance.now() - t) / 1000;
  }

  const outCodes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) outCodes[r * cols + perm[q]] = codes[r * cols + q];
  const weights = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) weights[r * cols + c] = grid.value(outCodes[r * cols + c], r, dim === 'ic' ? icParams[c] : groupParams[groupIndex[c]]);
  }
  if (dim === 'ic') {
    const packed = grid instanceof IntGrid ? packInt(outCodes, rows, cols, grid, GR, icScales, icZeros, 'group-rows') : null;
    return { weights, codes: outCodes, scales: icScales, zeros: icZeros, groupIndex, packed, loss, deadColumns: dead, kernelPath: kernels !== undefined, timing };
  }
  let contiguous = true;
  for (let c = 0; c < cols && contiguous; c++) contiguous = groupIndex[c] === Math.floor(c / G);
  // Only the int-k grid has a @lowbit/formats tensor; ggml grids are stored with ggmlBlocks().
  const packed = contiguous && grid instanceof IntGrid ? packInt(outCodes, rows, cols, grid, group, scales, zeros) : null;
  return { weights, codes: outCodes, scales, zeros, groupIndex, packed, loss, deadColumns: dead, kernelPath: kernels !== undefined, timing };
}

/**
 * W[:, c0:c1] −= Err[:, j1:j2]·U[j1:j2, c0:c1] as f32 matmuls (Err's column j is j − i1, stride B):
 * Uᵀ's slice [c1 − c0, j2 − j1] is resident, the errors go in STRIP rows of W at a time
 * (out[r, c] = Σj Uᵀ[c, j]·Err[r, j]).
 */
function lazyUpdateKernels(k: MatmulKernels, W: Float64Array, Err: Float64Array, U: Float64Array, rows: number, cols: number, i1: number, j1: number, j2: number, c0: number, c1: number, B: number): void {
  const m = c1 - c0;
  if (m === 0) return;
  const cnt = j2 - j1;
  const UT = new Float32Array(m * cnt);
  for (let j = 0; j < cnt; j++) {
    const uj = (j1 + j) * cols + c0;
    for (let c = 0; c < m; c++) UT[c * cnt + j] = U[uj + c];
  }
  const ut = k.upload(UT);
  const X = new Float32Array(STRIP * cnt);
  const out = new Float32Array(STRIP * m);
  try {
    for (let r0 = 0; r0 < rows; r0 += STRIP) {
      const nr = Math.min(rows, r0 + STRIP) - r0;
      for (let r = 0; r < nr; r++) for (let j = 0; j < cnt; j++) X[r * cnt + j] = Err[(r0 + r) * B + j1 - i1 + j];
      k.matmulF32(ut, m, cnt, X.subarray(0, nr * cnt), nr, out.subarray(0, nr * m));
      for (let r = 0; r < nr; r++) {
        const wr = (r0 + r) * cols + c0;
        const o = r * m;
        for (let c = 0; c < m; c++) W[wr + c] -= out[o + c];
      }
    }
  } finally {
    ut.free();
  }
}

/**
 * Current values of columns [q, c1) (q inside the sub-block [s1, s2) of the block [i1, i2)) as a
 * [rows, c1 − q] matrix: columns inside the sub-block are up to date in W; later columns of the block
 * still owe the sub-block's pending updates from columns s1..q−1, columns past the block the block's
 * from i1..q−1, added here so a group's scale is fitted on exactly the weights the sequential OBS
 * algorithm would see (gptq.py reads the not yet updated W here).
 */
function currentColumns(W: Float64Array, Err: Float64Array, U: Float64Array, rows: number, cols: number, i1: number, s1: number, q: number, s2: number, i2: number, c1: number): Float64Array {
  const B = Err.length / rows;
  const width = c1 - q;
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let c = q; c < c1; c++) {
      let v = W[r * cols + c];
      const from = c >= i2 ? i1 : c >= s2 ? s1 : q;
      for (let j = from; j < q; j++) v -= Err[r * B + (j - i1)] * U[j * cols + c];
      out[r * width + (c - q)] = v;
    }
  }
  return out;
}

/**
 * The kernel path keeps LDLQ's running values P_c = w_c + Σ_{j<q} δ_j·M[j, c], which equal GPTQ's
 * only at the moment column c itself is quantized. A group's scale is fitted earlier, at its first
 * column q, on GPTQ's values at that moment; those follow from P by the block inverse of M (with
 * F = columns ≥ q: A_F = W_F + (P_F − W_F)·M_FF⁻¹, and the leading [g, g] block of the triangular
 * M_FF⁻¹ is M_gg⁻¹), so the kernel path fits exactly the scales the f64 path fits.
 * `cur` [rows, c1 − q] holds P of columns [q, c1); returns GPTQ's values of the same columns.
 */
function gptqColumns(cur: Float64Array, W0: Float64Array, perm: Int32Array, M: Float64Array, rows: number, cols: number, q: number, c1: number, k: MatmulKernels): Float64Array {
  const g = c1 - q;
  const d = new Float32Array(rows * g);
  const out = new Float64Array(rows * g);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < g; j++) {
      const w0 = W0[r * cols + perm[q + j]];
      d[r * g + j] = cur[r * g + j] - w0;
      out[r * g + j] = w0;
    }
  }
  return addCompensation(k, M, cols, q, g, d, out);
}

/**
 * out += Δ·M_gg⁻¹ for the diagonal block g = [q, q + width) of the unit upper M, as one f32 matmul like
 * the rest of the kernel path. `delta` and `out` are [rows, width]: P − W0 and W0 of the block's columns.
 */
export function addCompensation(k: MatmulKernels, M: Float64Array, cols: number, q: number, width: number, delta: Float32Array, out: Float64Array): Float64Array {
  // N = M_gg⁻¹ (unit upper): N[i, c] = −Σ_{i≤j<c} N[i, j]·M[j, c]; the matmul takes it transposed
  const N = new Float64Array(width * width);
  for (let i = 0; i < width; i++) {
    N[i * width + i] = 1;
    for (let c = i + 1; c < width; c++) {
      let s = 0;
      for (let j = i; j < c; j++) s -= N[i * width + j] * M[(q + j) * cols + q + c];
      N[i * width + c] = s;
    }
  }
  const NT = new Float32Array(width * width);
  for (let j = 0; j < width; j++) for (let c = j; c < width; c++) NT[c * width + j] = N[j * width + c];
  const rows = out.length / width;
  const dn = k.matmulF32(NT, width, width, delta, rows);
  for (let i = 0; i < rows * width; i++) out[i] += dn[i];
  return out;
}

/** Per-row params of column q where rows share a scale in groups of `gr` (the grid fitted on each row group's values). */
function columnParams(grid: Grid, W: Float64Array, rows: number, cols: number, q: number, gr: number): GridParams {
  const col = new Float64Array(rows);
  for (let r = 0; r < rows; r++) col[r] = W[r * cols + q];
  const scale = new Float64Array(rows);
  const zero = new Float64Array(rows);
  for (let r0 = 0; r0 < rows; r0 += gr) {
    const r1 = Math.min(rows, r0 + gr);
    const p = grid.findParams(col, 1, rows, r0, r1);
    scale.fill(p.scale[0], r0, r1);
    zero.fill(p.zero[0], r0, r1);
  }
  return { scale, zero };
}

function packInt(codes: Uint8Array, rows: number, cols: number, grid: Grid, group: number, scales: Float32Array, zeros: Float32Array | null, granularity?: 'group-rows'): PackedIntTensor {
  const rb = rowBytes(cols, grid.bits);
  const packed = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) writeBits(packed, r * rb * 8 + c * grid.bits, grid.bits, codes[r * cols + c]);
  return {
    kind: 'int', bits: grid.bits, symmetric: grid.symmetric, shape: [rows, cols],
    granularity: granularity ?? (group > 0 ? 'group-cols' : 'per-oc'), group: granularity ? group : group > 0 ? group : cols,
    scales, zeros, codes: packed,
  };
}

