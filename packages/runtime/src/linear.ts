// One weight matrix y = W·x and the kernel that applies it. Weights live in WASM memory (uploaded
// once); packed formats stay packed: the kernels multiply directly on ggml blocks / int4 groups.
import { type AnyPrecisionTensor, type GemvTensor, type PackedIntTensor, gemvPackedWasm } from '@lowbit/formats';
import { GGML_BLOCK_BYTES, GGML_MXFP4_BLOCK_BYTES, type KQuantWeightType, NF4_STAGING_BLOCK_BYTES, type Kernels, LowbitError, type WasmTensor, gemvKQuant, isLowbitError, kquantMatrixBytes, prepareKQuant, unprepareKQuant } from '@lowbit/kernels';
import { anyPrecisionBytes, anyPrecisionMatmul, checkAnyPrecisionWeight, resolveBits, uploadAnyPrecision } from './any-precision-linear.js';
import { blocksFromQ8, q5TilesOfQ5_1, q5_1FromTiles, q8BlocksOf } from './ggml-quants.js';
import { type Q5TensorType, TENSOR_TYPES } from './ggml-types.js';
import { type Lut4Host, lut4Bytes, lut4Matmul, uploadLut4 } from './lut-fast.js';

/**
 * A linear layer's weights, W of shape [rows (outputs), cols (inputs)], row-major.
 * - `f32`: plain values (also what a quantizer hands in to evaluate any format "fake-quantized").
 * - `q8_0` / `q4_0` / `q4_1`: llama.cpp blocks along cols (cols % 32 == 0), as in GGUF files.
 * - `int4`: the int-k group convention of CONTRIBUTING.md (codes u ∈ [0,15], value = scale·(u − zero),
 *   zero = 8 when `zeros` is null), `group` along cols.
 * - `packed`: any tensor @lowbit/formats can multiply without decoding (INT-k of any width, NF4,
 *   per-channel codebooks, MX), through its table-driven GEMV kernel, one token at a time.
 * - `any-precision`: nested bit-planes (@lowbit/formats AnyPrecisionTensor); one resident copy serves
 *   every stored width, the width chosen per call (`apply`'s `bits`), reading only the top planes.
 * - `kquant`: llama.cpp K-quant super-blocks (Q2_K … Q6_K) as GGUF stores them (cols % 256 == 0),
 *   repacked at upload into the kernels' prepared tiles (prepareKQuant: four rows interleaved, 2-5%
 *   more bytes) and multiplied there by gemvKQuant with int8 activations (ggml's Q8_K rounding); a
 *   batch goes through its batched kernel (each tile unpacked once per four tokens, results those of
 *   one token at a time bit for bit); a kernel build without SIMD keeps the blocks as stored.
 * - `lut4`: 4-bit codes into 16-entry tables of 7-bit levels (NF4, codebooks, BCQ ≤ 4 planes as
 *   lut-fast.ts prepares them), on the kernels' lut4Gemv (int8 activations).
 */
export type LinearWeight =
  | { format: 'f32'; shape: [number, number]; data: Float32Array }
  | ({ format: 'q8_0' | 'q4_0' | 'q4_1'; shape: [number, number]; data: Uint8Array; int?: IntForm } & InputGather)
  | ({ format: 'int4'; shape: [number, number]; packed: Uint8Array; scales: Float32Array; zeros: Float32Array | null; group: number } & InputGather)
  | { format: 'packed'; shape: [number, number]; tensor: GemvTensor }
  | { format: 'any-precision'; shape: [number, number]; tensor: AnyPrecisionTensor }
  | { format: 'kquant'; type: KQuantWeightType; shape: [number, number]; data: Uint8Array }
  /**
   * ggml's Q5_0, Q5_1 or IQ4_NL blocks as stored (22, 24, 18 bytes per 32): run as the Q8_0 blocks
   * of the same values (Q5_1's m per block as a group term), `source` gives these blocks back.
   */
  | { format: 'q5_0' | 'q5_1' | 'iq4_nl'; shape: [number, number]; data: Uint8Array }
  | { format: 'lut4'; shape: [number, number]; weights: Lut4Host }
  /**
   * ggml's MXFP4 blocks (17 bytes per 32: u8 e, u8 qs[16]) or NF4 staging blocks (20 bytes per 32:
   * f32 absmax, u8 qs[16]) on the kernels' MXFP4 / NF4 tiles, rows in fours; `fallback` is the same
   * layer for kernel builds without them (Q8_0 blocks, lut4Gemv or the table GEMV).
   */
  | { format: 'mxfp4' | 'nf4'; shape: [number, number]; data: Uint8Array; fallback: LinearWeight };

export type LinearFormat = LinearWeight['format'];

/**
 * An INT4 tensor without its codes, on a `q4_0` weight that holds it exactly (packed-fast.ts
 * int4Q4Weight): `source` reads the codes back from the blocks, so no second copy is kept.
 */
export type IntForm = Omit<PackedIntTensor, 'codes'>;

/**
 * Weights repacked by packed-fast.ts that are not one kernel pass over the layer's inputs. `gather`
 * (act-order INT-k in group order, rows padded to whole blocks): the kernel multiplies x gathered by
 * it (kernel column j reads x[gather[j]], or 0 where it is −1), `data`/`packed` holding rows of
 * gather.length columns while `shape` stays the layer's. `residue`: exact weight parts the planes
 * leave out, W[index] = values (index r·cols + c), added as f32 products after the kernel. `plus`:
 * a second plane's weights (FP8 / FP6 E3M2's low bits), its product added.
 */
export interface InputGather {
  gather?: Int32Array;
  residue?: { index: Int32Array; values: Float32Array };
  /**
   * A term per (row, group of `group` kernel columns) times the sum of the inputs in that group,
   * y[r] += Σ_g values[r·⌈cols/group⌉ + g]·Σ_{c∈g} x[c]: asymmetric INT4 on Q4_0 blocks (packed-fast.ts
   * int4Q4Weight), whose scale·(u − zero) is Q4_0's scale·(u − 8) plus scale·(8 − zero).
   */
  groupTerm?: { group: number; values: Float32Array };
  /** A second plane of the layer's shape (its own weights, gather included) whose product is added. */
  plus?: LinearWeight;
}

/** Bytes of weight data one pass over this layer streams from memory. */
export function linearBytes(w: LinearWeight): number {
  if (w.format === 'any-precision') return anyPrecisionBytes(w.tensor, w.tensor.maxBits);
  if (w.format === 'packed') {
    const t = w.tensor as { codes: Uint8Array; scales?: Float32Array | Uint8Array | null; zeros?: Float32Array | null; lut?: Float32Array };
    return t.codes.byteLength + (t.scales?.byteLength ?? 0) + (t.zeros?.byteLength ?? 0) + (t.lut?.byteLength ?? 0);
  }
  if (w.format === 'lut4') return lut4Bytes(w.weights);
  const plus = (w as InputGather).plus;
  const more = (plus ? linearBytes(plus) : 0) + ((w as InputGather).groupTerm?.values.byteLength ?? 0);
  if (w.format === 'int4') return w.packed.byteLength + w.scales.byteLength + (w.zeros?.byteLength ?? 0) + more;
  return w.data.byteLength + more;
}

export class Linear {
  readonly rows: number;
  readonly cols: number;
  readonly format: LinearFormat;
  readonly bytes: number;
  private readonly resident: WasmTensor[];
  /** Kept in JS only for `packed` (no resident copy); the others are read back from WASM memory. */
  private readonly weight: LinearWeight | null;
  private readonly group: number;
  private readonly kquantType: KQuantWeightType | null;
  /** lut4 layers: the shape and strides of the resident codes, tables and params. */
  private readonly lut: Parameters<typeof lut4Matmul>[1] | null = null;
  /** InputGather of the weights (q8_0 / q4_* / int4 repacked by packed-fast.ts), or null. */
  private readonly gather: Int32Array | null;
  private readonly residue: InputGather['residue'] | null;
  /** InputGather.groupTerm with its values resident (an f32 [rows, groups] matrix), or null. */
  private readonly groupTerm: { group: number; groups: number; values: WasmTensor } | null = null;
  /** The ggml type whose blocks this Q8_0 layer holds (Q5_0 / Q5_1 / IQ4_NL), for `source`. */
  private readonly storedAs: Q5TensorType | null = null;
  private readonly plus: Linear | null = null;
  private freed = false;
  /** What the weights were repacked from (packed-fast.ts: INT-k / MX on ggml tiles): `source` returns it, so a re-saved model keeps its type. */
  private readonly origin: LinearWeight | null;
  /** The INT4 tensor a q4_0 layer holds exactly (int4Q4Weight): `source` returns it, codes read back from the blocks. */
  private readonly intForm: IntForm | null;
  /**
   * Added to every output after the matmul, y += f(x) for x [batch, cols] and y [batch, rows]: QDEC's
   * decode-time residual compensation (qdec.ts) hooks in here, so every path that runs the layer
   * (Session, applyShared, calibration) sees the compensated output. null: none.
   */
  compensation: ((x: Float32Array, batch: number, y: Float32Array) => void) | null = null;

  constructor(
    private readonly k: Kernels,
    readonly name: string,
    weight: LinearWeight,
    /** Added to every output row (Qwen2's q/k/v projections); none in Llama. */
    readonly bias?: Float32Array,
  ) {
    // MXFP4 / NF4 tiles run on relaxed-SIMD kernel builds only; elsewhere the layer's other form, same origin
    if ((weight.format === 'mxfp4' || weight.format === 'nf4') && !k.supportsMxfp4Tiles) weight = withOrigin(weight.fallback, (weight as { origin?: LinearWeight }).origin);
    // Q5_0 and Q5_1 in rows of fours run on the kernels' Q5_0 tiles (relaxed builds; Q5_1 as d·(q − 16)
    // plus a group term m + 16·d); elsewhere they and IQ4_NL run as the Q8_0 blocks of the same values
    const q5Tiles = (weight.format === 'q5_0' || weight.format === 'q5_1') && k.supportsMxfp4Tiles && weight.shape[0] % 4 === 0;
    if (weight.format === 'q5_0' || weight.format === 'q5_1' || weight.format === 'iq4_nl') {
      checkWeight(name, weight);
      const t = q5Tiles && weight.format === 'q5_1' ? q5TilesOfQ5_1(weight.data, weight.shape[0], weight.shape[1]) : null;
      if (t) {
        this.storedAs = 'Q5_1';
        weight = Object.assign({ format: 'q5_0' as const, shape: weight.shape, data: t.q5 }, { groupTerm: { group: 32, values: t.term } });
      } else if (!q5Tiles || weight.format !== 'q5_0') {
        this.storedAs = weight.format.toUpperCase() as Q5TensorType;
        weight = q8Form(this.storedAs, weight);
      }
    }
    const [rows, cols] = weight.shape;
    this.rows = rows;
    this.cols = cols;
    this.format = weight.format;
    this.bytes = linearBytes(weight);
    checkWeight(name, weight);
    if (bias && bias.length !== rows) throw new LowbitError('E_SHAPE', `${name}: bias has ${bias.length} values, the layer ${rows} outputs`);
    this.weight = weight.format === 'packed' || weight.format === 'any-precision' ? weight : null;
    this.group = weight.format === 'int4' ? weight.group : 0;
    this.origin = (weight as { origin?: LinearWeight }).origin ?? null;
    this.intForm = weight.format === 'q4_0' ? (weight.int ?? null) : null;
    this.kquantType = weight.format === 'kquant' ? weight.type : null;
    this.gather = (weight as InputGather).gather ?? null;
    this.residue = (weight as InputGather).residue ?? null;
    // `packed` tensors stay in JS memory: the formats GEMV copies codes per call (see README: a
    // resident-codes entry point in @lowbit/formats would remove that copy)
    // ggml blocks are repacked once into the kernels' tiled form (f32 scales, four rows' codes side
    // by side): decode GEMVs on it run ~1.5x faster than on the blocks as stored. The JS arrays are
    // not kept: `source` reads the weights back from WASM memory (the blocks through
    // unprepareGgml, bit for bit), so a model costs its size once, not twice.
    const resident: WasmTensor[] = [];
    try {
      if (weight.format === 'int4') {
        resident.push(k.upload(weight.packed));
        resident.push(k.upload(weight.scales));
        if (weight.zeros) resident.push(k.upload(weight.zeros));
      } else if (weight.format === 'kquant') resident.push(prepareKQuant(k, weight.type, weight.data, rows, cols) ?? k.upload(weight.data));
      else if (weight.format === 'f32') resident.push(k.upload(weight.data));
      else if (weight.format === 'any-precision') resident.push(...uploadAnyPrecision(k, weight.tensor));
      else if (weight.format === 'lut4') {
        resident.push(...uploadLut4(k, weight.weights));
        this.lut = { ...weight.weights, codes: resident[0], tables: resident[1], params: resident[2] };
      }
      else if (weight.format !== 'packed' && weight.format !== 'q5_1' && weight.format !== 'iq4_nl') resident.push(k.prepareGgml(weight.format, weight.data, rows, this.gather?.length ?? cols));
    } catch (e) {
      for (const t of resident) t.free();
      // The kernels' heap says only how many bytes did not fit; a user loading a big model needs to
      // know which tensor, and that the limit is wasm32's 4 GiB for the whole model.
      if (isLowbitError(e) && /WebAssembly memory/.test(e.message)) {
        throw new LowbitError(e.code, `${name}: its ${this.bytes} bytes of ${weight.format} weights do not fit (${e.message}); one WebAssembly memory (wasm32) holds at most 4 GiB: loadModel spreads a GGUF over several kernel instances when its weights exceed maxInstanceBytes (lower it), else load a smaller type (Q4_0 rather than Q8_0 or F32) or a smaller model`, { cause: e });
      }
      throw e;
    }
    this.resident = resident;
    const term = (weight as InputGather).groupTerm;
    if (term) {
      try {
        this.groupTerm = { group: term.group, groups: term.values.length / rows, values: k.upload(term.values) };
      } catch (e) {
        for (const t of resident) t.free();
        throw e;
      }
    }
    const plus = (weight as InputGather).plus;
    if (plus) {
      if (plus.shape[0] !== rows || plus.shape[1] !== cols) {
        for (const t of resident) t.free();
        throw new LowbitError('E_SHAPE', `${name}: its second plane has shape [${plus.shape}], the layer is [${rows}, ${cols}]`);
      }
      try {
        this.plus = new Linear(k, `${name} (second plane)`, plus);
      } catch (e) {
        for (const t of resident) t.free();
        this.groupTerm?.values.free();
        throw e;
      }
    }
  }

  /** The kernel instance whose memory holds this layer's weights (a sharded model has several). */
  get kernels(): Kernels {
    return this.k;
  }

  /**
   * out[b, r] = Σc W[r, c]·x[b, c]; x is [batch, cols], out [batch, rows]. `bits` picks the width of
   * an any-precision layer (default: its widest); other formats have one width and ignore it.
   */
  apply(x: Float32Array, batch: number, out?: Float32Array, bits?: number): Float32Array {
    const y = this.matmul(x, batch, out, bits);
    this.compensation?.(x, batch, y);
    const b = this.bias;
    if (b) for (let i = 0; i < y.length; i++) y[i] += b[i % this.rows];
    return y;
  }

  /** The widths this layer can run at: [min, max], or null for a single-width format. */
  get bitRange(): [number, number] | null {
    const w = this.weight;
    return w?.format === 'any-precision' ? [w.tensor.seedBits, w.tensor.maxBits] : null;
  }

  /** Weight bytes one pass streams at `bits` (any-precision: the top `bits` planes and that width's table). */
  bytesAt(bits?: number): number {
    const w = this.weight;
    return w?.format === 'any-precision' ? anyPrecisionBytes(w.tensor, resolveBits(this.name, w.tensor, bits)) : this.bytes;
  }

  private matmul(x: Float32Array, batch: number, out?: Float32Array, bits?: number): Float32Array {
    if (!this.gather && !this.residue && !this.plus && !this.groupTerm) return this.kernelMatmul(x, this.cols, batch, out, bits);
    const xk = this.gather ? gatherInput(this.gather, this.cols, x, batch) : x;
    const y = this.kernelMatmul(xk, this.gather?.length ?? this.cols, batch, out, bits);
    if (this.groupTerm) this.addGroupTerm(xk, batch, y);
    if (this.residue) addResidue(this.residue, this.rows, this.cols, x, batch, y);
    if (this.plus) addInto(y, this.plus.matmul(x, batch));
    return y;
  }

  /** y += the group term's values times the group sums of xk (the kernel's inputs, [batch, kernel columns]). */
  private addGroupTerm(xk: Float32Array, batch: number, y: Float32Array): void {
    const { group, groups, values } = this.groupTerm as NonNullable<Linear['groupTerm']>;
    const kc = xk.length / batch;
    const sums = new Float32Array(batch * groups);
    for (let b = 0; b < batch; b++) {
      for (let g = 0; g < groups; g++) {
        let s = 0;
        const end = Math.min(kc, (g + 1) * group);
        for (let c = g * group; c < end; c++) s += xk[b * kc + c];
        sums[b * groups + g] = s;
      }
    }
    addInto(y, this.k.matmulF32(values, this.rows, groups, sums, batch));
  }

  private kernelMatmul(x: Float32Array, cols: number, batch: number, out?: Float32Array, bits?: number): Float32Array {
    const { k, rows } = this;
    const [w, s, z] = this.resident;
    switch (this.format) {
      case 'f32':
        return k.matmulF32(w, rows, cols, x, batch, out);
      case 'q8_0':
        return k.matmulQ8_0(w, rows, cols, x, batch, out);
      case 'q4_0':
        return k.matmulQ4_0(w, rows, cols, x, batch, out);
      case 'q4_1':
        return k.matmulQ4_1(w, rows, cols, x, batch, out);
      case 'mxfp4':
      case 'nf4':
        return k.matmulGgml(this.format, w, rows, cols, x, batch, out);
      case 'int4':
        return k.matmulQ4(w, s, z ?? null, rows, cols, this.group, x, batch, out);
      case 'packed': {
        const o = out ?? new Float32Array(batch * rows);
        const t = (this.weight as { tensor: GemvTensor }).tensor;
        for (let b = 0; b < batch; b++) o.set(gemvPackedWasm(k, t, x.subarray(b * cols, (b + 1) * cols)), b * rows);
        return o;
      }
      case 'any-precision': {
        const t = (this.weight as { tensor: AnyPrecisionTensor }).tensor;
        return anyPrecisionMatmul(k, this.name, t, this.resident, x, batch, bits, out);
      }
      case 'kquant':
        return gemvKQuant(k, this.kquantType as KQuantWeightType, w, rows, cols, x, batch, out);
      case 'lut4':
        return lut4Matmul(k, this.lut as NonNullable<typeof this.lut>, x, batch, out);
      case 'q5_0':
        return k.matmulGgml('q5_0', w, rows, cols, x, batch, out);
      case 'q5_1':
      case 'iq4_nl':
        throw new LowbitError('E_ARG', `${this.name}: ${this.format} blocks run as Q8_0 (the constructor converts them)`);
    }
  }

  /**
   * out_i = layers[i]·x for layers that share the input x ([batch, cols]), as Q/K/V or gate/up: when
   * all are ggml blocks of one type on one kernel instance, x is quantized once for all of them
   * (results equal each layer's own apply). outs, when given, receive the results.
   */
  static applyShared(layers: readonly Linear[], x: Float32Array, batch: number, outs?: Float32Array[], bits?: number): Float32Array[] {
    const first = layers[0];
    const f = first?.format;
    // layers whose inputs are gathered share only one gather (packed-fast.ts caches it per width)
    if (layers.length > 1 && (f === 'q8_0' || f === 'q4_0' || f === 'q4_1' || f === 'mxfp4' || f === 'nf4' || f === 'q5_0') && layers.every((l) => l.format === f && l.k === first.k && l.cols === first.cols && l.gather === first.gather)) {
      const g = first.gather;
      const xg = g ? gatherInput(g, first.cols, x, batch) : x;
      const ys = first.k.matmulGgmlShared(f, layers.map((l) => l.resident[0]), layers.map((l) => l.rows), g?.length ?? first.cols, xg, batch, outs);
      layers.forEach((l, i) => l.groupTerm && l.addGroupTerm(xg, batch, ys[i]));
      // in matmul's order: residue, then the second planes (packed-fast.ts), which share their own
      // activation quantization the same way
      layers.forEach((l, i) => l.residue && addResidue(l.residue, l.rows, l.cols, x, batch, ys[i]));
      const pluses = layers.map((l) => l.plus);
      if (pluses.every((p) => p)) Linear.applyShared(pluses as Linear[], x, batch).forEach((p, i) => addInto(ys[i], p));
      else pluses.forEach((p, i) => p && addInto(ys[i], p.matmul(x, batch)));
      layers.forEach((l, i) => {
        const b = l.bias;
        const y = ys[i];
        l.compensation?.(x, batch, y);
        if (b) for (let j = 0; j < y.length; j++) y[j] += b[j % l.rows];
      });
      return ys;
    }
    return layers.map((l, i) => l.apply(x, batch, outs?.[i], bits));
  }

  /** The weights this layer was built from, equal to what it was given (a fresh copy but for `packed`). */
  get source(): LinearWeight {
    if (this.freed) throw new LowbitError('E_ARG', `${this.name}: the layer was freed (model.free()), its weights are gone`);
    if (this.weight) return this.weight;
    if (this.origin) return this.origin;
    const shape: [number, number] = [this.rows, this.cols];
    if (this.intForm) return { format: 'packed', shape, tensor: intFromQ4Blocks(this.intForm, this.k.unprepareGgml('q4_0', this.resident[0], this.rows, this.cols)) };
    const bytes = (t: WasmTensor) => new Uint8Array(this.k.memory.buffer, t.ptr, t.byteLength).slice();
    const f32 = (t: WasmTensor) => new Float32Array(bytes(t).buffer);
    // Q5_1 on Q5_0 tiles keeps m + 16·d as its group term; on Q8_0 blocks, m
    const term = this.groupTerm ? f32(this.groupTerm.values) : null;
    if (this.storedAs === 'Q5_1' && this.format === 'q5_0') {
      return { format: 'q5_1', shape, data: q5_1FromTiles(this.k.unprepareGgml('q5_0', this.resident[0], this.rows, this.cols), term as Float32Array, this.rows, this.cols) };
    }
    if (this.storedAs) {
      const q8 = this.k.unprepareGgml('q8_0', this.resident[0], this.rows, this.cols);
      return { format: this.storedAs.toLowerCase() as 'q5_0', shape, data: blocksFromQ8(this.storedAs, q8, term, this.rows, this.cols) };
    }
    const [w, s, z] = this.resident;
    switch (this.format) {
      case 'f32':
        return { format: 'f32', shape, data: f32(w) };
      case 'int4':
        return { format: 'int4', shape, packed: bytes(w), scales: f32(s), zeros: z ? f32(z) : null, group: this.group };
      case 'q8_0':
      case 'q4_0':
      case 'q4_1':
      case 'q5_0':
        return { format: this.format, shape, data: this.k.unprepareGgml(this.format, w, this.rows, this.cols) };
      case 'kquant':
        return { format: 'kquant', type: this.kquantType as KQuantWeightType, shape, data: w.kind.startsWith('kquant-tiles') ? unprepareKQuant(this.k, this.kquantType as KQuantWeightType, w, this.rows, this.cols) : bytes(w) };
      default:
        throw new LowbitError('E_ARG', `${this.name}: no weights kept for format ${this.format}`);
    }
  }

  free(): void {
    this.freed = true;
    for (const t of this.resident) t.free();
    this.groupTerm?.values.free();
    this.plus?.free();
  }
}

/** x [batch, cols] gathered into [batch, gather.length] (index −1: zero). */
function gatherInput(gather: Int32Array, cols: number, x: Float32Array, batch: number): Float32Array {
  const pc = gather.length;
  const xg = new Float32Array(batch * pc);
  for (let b = 0; b < batch; b++) {
    const o = b * pc;
    const xo = b * cols;
    for (let j = 0; j < pc; j++) {
      const c = gather[j];
      if (c >= 0) xg[o + j] = x[xo + c];
    }
  }
  return xg;
}

function addInto(y: Float32Array, p: Float32Array): void {
  for (let i = 0; i < y.length; i++) y[i] += p[i];
}

function addResidue(res: NonNullable<InputGather['residue']>, rows: number, cols: number, x: Float32Array, batch: number, y: Float32Array): void {
  const { index, values } = res;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < index.length; i++) {
      const at = index[i];
      const r = Math.floor(at / cols);
      y[b * rows + r] += values[i] * x[b * cols + (at - r * cols)];
    }
  }
}

function checkGather(name: string, w: LinearWeight, rows: number, cols: number): number {
  const { gather, residue, groupTerm } = w as InputGather;
  if (groupTerm) {
    const kc = gather?.length ?? cols;
    const { group, values } = groupTerm;
    if (!Number.isInteger(group) || group <= 0 || !(values instanceof Float32Array) || values.length !== rows * Math.ceil(kc / group)) {
      throw new LowbitError('E_ARG', `${name}: groupTerm needs a positive integer group and a Float32Array of rows × ⌈${kc} / group⌉ values, got group ${group} and ${values?.length} values`);
    }
  }
  if (residue) {
    const { index, values } = residue;
    if (!(index instanceof Int32Array) || !(values instanceof Float32Array) || index.length !== values.length) throw new LowbitError('E_ARG', `${name}: residue needs an Int32Array index and a Float32Array of values of one length`);
    for (let i = 0; i < index.length; i++) if (!(index[i] >= 0 && index[i] < rows * cols)) throw new LowbitError('E_ARG', `${name}: residue index ${index[i]} at ${i} is outside the [${rows}, ${cols}] weights`);
  }
  if (!gather) return cols;
  if (!(gather instanceof Int32Array) || gather.length === 0) throw new LowbitError('E_ARG', `${name}: gather must be a non-empty Int32Array`);
  for (let j = 0; j < gather.length; j++) if (!(gather[j] >= -1 && gather[j] < cols)) throw new LowbitError('E_ARG', `${name}: gather[${j}] = ${gather[j]} is not an input column in [−1, ${cols})`);
  return gather.length;
}

/** Q5_0 / Q5_1 / IQ4_NL blocks as the Q8_0 blocks of the same values, Q5_1's m per block as a group term. */
function q8Form(type: Q5TensorType, w: { shape: [number, number]; data: Uint8Array }): LinearWeight {
  const [rows, cols] = w.shape;
  const { q8, m } = q8BlocksOf(type, w.data, rows, cols);
  return { format: 'q8_0', shape: w.shape, data: q8, ...(m ? { groupTerm: { group: 32, values: m } } : {}) };
}

function checkWeight(name: string, w: LinearWeight): void {
  const [rows, logicalCols] = w.shape;
  if (!Number.isInteger(rows) || !Number.isInteger(logicalCols) || rows <= 0 || logicalCols <= 0) {
    throw new LowbitError('E_SHAPE', `${name}: shape [${w.shape}] is not a positive [rows, cols]`);
  }
  // the kernel's columns: the layer's, or its gathered inputs' (InputGather)
  const cols = w.format === 'q8_0' || w.format === 'q4_0' || w.format === 'q4_1' || w.format === 'int4' || w.format === 'q5_0' ? checkGather(name, w, rows, logicalCols) : logicalCols;
  const n = rows * cols;
  const need = (what: string, got: number, want: number) => {
    if (got !== want) throw new LowbitError('E_SHAPE', `${name}: ${what} has ${got} elements, shape [${rows}, ${cols}] as ${w.format} needs ${want}`);
  };
  switch (w.format) {
    case 'f32':
      if (!(w.data instanceof Float32Array)) throw new LowbitError('E_DTYPE', `${name}: f32 weights must be a Float32Array`);
      return need('data', w.data.length, n);
    case 'q8_0':
    case 'q4_0':
    case 'q4_1': {
      if (cols % 32) throw new LowbitError('E_SHAPE', `${name}: ${w.format} needs cols % 32 == 0, got ${cols}`);
      // an INT4 form read back from these blocks (`source`) must describe them: 4 bits, the layer's shape, no gather
      const f = w.format === 'q4_0' ? w.int : undefined;
      if (f && (f.bits !== 4 || f.shape?.[0] !== rows || f.shape?.[1] !== cols || w.gather)) {
        throw new LowbitError('E_SHAPE', `${name}: its INT4 form (bits ${f.bits}, shape [${f.shape}]) does not describe the [${rows}, ${cols}] Q4_0 blocks it came from${w.gather ? ' (gathered inputs)' : ''}`);
      }
      const per = GGML_BLOCK_BYTES[w.format];
      return need('data (bytes)', w.data.byteLength, (n / 32) * per);
    }
    case 'q5_0':
    case 'q5_1':
    case 'iq4_nl': {
      if (cols % 32) throw new LowbitError('E_SHAPE', `${name}: ${w.format} needs cols % 32 == 0, got ${cols}`);
      if (!(w.data instanceof Uint8Array)) throw new LowbitError('E_DTYPE', `${name}: ${w.format} weights must be a Uint8Array of ggml blocks`);
      return need('data (bytes)', w.data.byteLength, (n / 32) * TENSOR_TYPES[w.format.toUpperCase() as Q5TensorType].blockBytes);
    }
    case 'mxfp4':
    case 'nf4':
      if (cols % 32 || rows % 4) throw new LowbitError('E_SHAPE', `${name}: ${w.format} tiles need cols % 32 == 0 and rows % 4 == 0, got [${rows}, ${cols}]`);
      checkWeight(name, w.fallback);
      return need('data (bytes)', w.data.byteLength, (n / 32) * (w.format === 'nf4' ? NF4_STAGING_BLOCK_BYTES : GGML_MXFP4_BLOCK_BYTES));
    case 'any-precision':
      return checkAnyPrecisionWeight(name, w.shape, w.tensor);
    case 'kquant':
      if (!(w.data instanceof Uint8Array)) throw new LowbitError('E_DTYPE', `${name}: ${w.type} weights must be a Uint8Array of GGUF super-blocks`);
      return need('data (bytes)', w.data.byteLength, kquantMatrixBytes(name, w.type, rows, cols));
    case 'lut4':
      if (w.weights.rows !== rows || w.weights.cols !== cols) throw new LowbitError('E_SHAPE', `${name}: lut4 weights are [${w.weights.rows}, ${w.weights.cols}], the layer is [${rows}, ${cols}]`);
      return;
    case 'packed': {
      const ts = (w.tensor as { shape?: number[] }).shape;
      if (!ts || ts[0] !== rows || ts[1] !== cols) throw new LowbitError('E_SHAPE', `${name}: packed tensor has shape [${ts}], the layer is [${rows}, ${cols}]`);
      return;
    }
    case 'int4': {
      if (!Number.isInteger(w.group) || w.group <= 0 || w.group % 32) throw new LowbitError('E_ARG', `${name}: int4 group ${w.group} must be a positive multiple of 32`);
      const ng = rows * Math.ceil(cols / w.group);
      need('packed (bytes)', w.packed.byteLength, rows * Math.ceil(cols / 2));
      need('scales', w.scales.length, ng);
      if (w.zeros) need('zeros', w.zeros.length, ng);
    }
  }
}

/** The INT4 tensor `form` describes with its codes read back from Q4_0 blocks (int4Q4Weight's inverse). */
function intFromQ4Blocks(form: IntForm, blocks: Uint8Array): PackedIntTensor {
  const [rows, cols] = form.shape;
  const nb = cols / 32;
  const codes = new Uint8Array((rows * cols) / 2);
  for (let k = 0; k < rows * nb; k++) {
    const o = k * 18 + 2;
    const i0 = k * 16;
    for (let i = 0; i < 8; i++) {
      const lo = blocks[o + 2 * i];
      const hi = blocks[o + 2 * i + 1];
      codes[i0 + i] = (lo & 15) | ((hi & 15) << 4);
      codes[i0 + 8 + i] = (lo >> 4) | (hi & 0xf0);
    }
  }
  return { ...form, codes };
}

/** w carrying `origin` (what `source` returns) where there is one. */
function withOrigin(w: LinearWeight, origin: LinearWeight | undefined): LinearWeight {
  return origin ? Object.assign({ ...w }, { origin }) : w;
}
