import { LowbitError } from '@lowbit/kernels';
import { type PackedIntTensor, rowBytes, writeBits } from '@lowbit/formats';
import { inverseCholeskyUpper } from '@lowbit/solvers';
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
}

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

  constructor(cols: number) {
    if (!Number.isInteger(cols) || cols <= 0) throw new LowbitError('E_ARG', `Gptq: cols must be a positive integer, got ${cols}`);
    this.cols = cols;
    this.sum = new Float64Array(cols * cols);
    this.absMax = new Float64Array(cols);
  }

  get samples(): number {
    return this.n;
  }

  /** Adds `batch` input rows x [batch, cols] (each row one token's input to the layer). */
  addBatch(x: ArrayLike<number>, batch: number): void {
    const n = this.cols;
    if (x.length < batch * n) throw new LowbitError('E_SHAPE', `Gptq.addBatch: ${batch} rows of ${n} need ${batch * n} values, got ${x.length}`);
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

  /** H = (2/N)·XᵀX [cols, cols] (the mean keeps H's scale independent of the amount of calibration data). */
  hessian(): Float64Array {
    const n = this.cols;
    const H = new Float64Array(n * n);
    const f = this.n > 0 ? 2 / this.n : 0;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j <= i; j++) {
        const v = this.sum[i * n + j] * f;
        H[i * n + j] = v;
        H[j * n + i] = v;
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

  const H = Float64Array.from(hessian);
  const W0 = Float64Array.from(w);
  // Dead inputs never reach the output: any value is exact, so zero them and make H invertible there.
  let dead = 0;
  for (let c = 0; c < cols; c++) {
    if (H[c * cols + c] === 0) {
      dead++;
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
  const Hp = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) W[r * cols + c] = W0[r * cols + perm[c]];
  for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) Hp[i * cols + j] = H[perm[i] * cols + perm[j]];

  const U = inverseCholeskyUpper(Hp, cols, { damp });

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
  for (let i1 = 0; i1 < cols; i1 += B) {
    const i2 = Math.min(i1 + B, cols);
    const cnt = i2 - i1;
    Err.fill(0);
    for (let q = i1; q < i2; q++) {
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
          params = grid.findParams(currentColumns(W, Err, U, rows, cols, i1, q, i2, Math.min(cols, q + G)), rows, Math.min(cols, q + G) - q, 0, Math.min(cols, q + G) - q);
          store(q / G, params);
        }
        groupIndex[perm[q]] = Math.floor(q / G);
      }
      const p = params as GridParams;
      const d = U[q * cols + q];
      for (let r = 0; r < rows; r++) {
        const x = W[r * cols + q];
        const u = grid.code(x, r, p);
        const qv = grid.value(u, r, p);
        codes[r * cols + q] = u;
        const e = (x - qv) / d;
        loss += (e * e) / 2;
        Err[r * B + (q - i1)] = e;
        // Within the block the update is applied at once (it is cheap: at most B columns).
        const wr = r * cols;
        const uq = q * cols;
        for (let c = q + 1; c < i2; c++) W[wr + c] -= e * U[uq + c];
      }
    }
    // Lazy batch update (§4): all of this block's errors reach the columns after it in one pass.
    for (let r = 0; r < rows; r++) {
      const wr = r * cols;
      for (let j = 0; j < cnt; j++) {
        const e = Err[r * B + j];
        if (e === 0) continue;
        const uj = (i1 + j) * cols;
        for (let c = i2; c < cols; c++) W[wr + c] -= e * U[uj + c];
      }
    }
  }

  const outCodes = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) outCodes[r * cols + perm[q]] = codes[r * cols + q];
  const weights = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) weights[r * cols + c] = grid.value(outCodes[r * cols + c], r, dim === 'ic' ? icParams[c] : groupParams[groupIndex[c]]);
  }
  if (dim === 'ic') {
    const packed = grid instanceof IntGrid ? packInt(outCodes, rows, cols, grid, GR, icScales, icZeros, 'group-rows') : null;
    return { weights, codes: outCodes, scales: icScales, zeros: icZeros, groupIndex, packed, loss, deadColumns: dead };
  }
  let contiguous = true;
  for (let c = 0; c < cols && contiguous; c++) contiguous = groupIndex[c] === Math.floor(c / G);
  // Only the int-k grid has a @lowbit/formats tensor; ggml grids are stored with ggmlBlocks().
  const packed = contiguous && grid instanceof IntGrid ? packInt(outCodes, rows, cols, grid, group, scales, zeros) : null;
  return { weights, codes: outCodes, scales, zeros, groupIndex, packed, loss, deadColumns: dead };
}

/**
 * Current values of columns [c0, c1) (c0 inside the block [i1, i2)) as a [rows, c1 − c0] matrix:
 * columns inside the block are up to date in W; columns past the block still owe the block's
 * pending lazy updates from columns i1..q−1, added here so a group's scale is fitted on exactly the
 * weights the sequential OBS algorithm would see (gptq.py reads the not yet updated W here).
 */
function currentColumns(W: Float64Array, Err: Float64Array, U: Float64Array, rows: number, cols: number, i1: number, q: number, i2: number, c1: number): Float64Array {
  const B = Err.length / rows;
  const width = c1 - q;
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) {
    for (let c = q; c < c1; c++) {
      let v = W[r * cols + c];
      if (c >= i2) for (let j = i1; j < q; j++) v -= Err[r * B + (j - i1)] * U[j * cols + c];
      out[r * width + (c - q)] = v;
    }
  }
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

