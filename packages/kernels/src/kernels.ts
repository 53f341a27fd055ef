import { LowbitError } from './errors.js';
import { WasmHeap } from './heap.js';
import { GGML_BLOCK_BYTES, GGML_MXFP4_BLOCK_BYTES, GGML_Q5_BLOCK_BYTES, type GgmlBlockType, NF4_STAGING_BLOCK_BYTES } from './ggml-blocks.js';
import { f16ToF32, f32Bits, f32ToF16 } from './half.js';

export type KernelVariant = 'relaxed' | 'simd' | 'scalar';
/** Shared-memory builds for thread pools. */
export type ThreadedVariant = 'relaxed-threads' | 'simd-threads';

/** The raw exports of lowbit-*.wasm (pointers are byte offsets). */
export interface KernelExports {
  memory: WebAssembly.Memory;
  heap_base(): number;
  dot_f32(a: number, b: number, n: number): number;
  axpy_f32(alpha: number, x: number, y: number, n: number): void;
  matmul_f32(w: number, rows: number, cols: number, x: number, batch: number, out: number, r0: number, r1: number): void;
  dot_i8(a: number, b: number, n: number): number;
  quantize_act_groups(x: number, cols: number, batch: number, group: number, xq: number, xq16: number, xs: number, xsum: number, tmp: number): number;
  quantize_act_int4(x: number, cols: number, batch: number, group: number, xq: number, xq16: number, xs: number, xsum: number): number;
  quantize_act_q8(x: number, cols: number, batch: number, xq: number, xq16: number, xs: number, xsum: number): number;
  matmul_q4(w: number, scales: number, zeros: number, rows: number, cols: number, group: number, xq: number, xq16: number, xs: number, xsum: number, batch: number, out: number, res: number, r0: number, r1: number): void;
  matmul_ggml(kind: number, w: number, rows: number, cols: number, xq: number, xq16: number, xs: number, xsum: number, batch: number, out: number, r0: number, r1: number): void;
  matmul_ggml_tiled(kind: number, w: number, rows: number, cols: number, xq: number, xq16: number, xs: number, xsum: number, batch: number, out: number, r0: number, r1: number): void;
  matmul_ggml_gemm(kind: number, w: number, rows: number, cols: number, xq: number, xq16: number, xs: number, xsum: number, pairs: number, batch: number, out: number, r0: number, r1: number): void;
  matmul_ggml_gemm_multi(kind0: number, w0: number, rows0: number, kind1: number, w1: number, rows1: number, kind2: number, w2: number, rows2: number, cols: number, xq: number, xq16: number, xs: number, xsum: number, pairs: number, batch: number, out0: number, out1: number, out2: number, r0: number, r1: number): void;
  gemm_act_pairs(kind: number, xq: number, n: number, dst: number): void;
  matmul_ggml_tiled_multi(kind0: number, w0: number, rows0: number, kind1: number, w1: number, rows1: number, kind2: number, w2: number, rows2: number, cols: number, xq: number, xq16: number, xs: number, xsum: number, batch: number, out0: number, out1: number, out2: number, r0: number, r1: number): void;
  prepare_ggml(kind: number, src: number, rows: number, cols: number, dst: number): number;
  unprepare_ggml(kind: number, src: number, rows: number, cols: number, dst: number): void;
  ggml_tiled_bytes(kind: number, rows: number, cols: number): number;
  act_splats(xs: number, xsum: number, n: number, dst: number, xq: number): void;
  silu_mul_f32(g: number, u: number, n: number): void;
  attention_f32(q: number, kc: number, vc: number, out: number, att: number, n: number, pos: number, nHeads: number, nKvHeads: number, headDim: number, scaleBits: number, h0: number, h1: number): void;
  attention_span_f32(q: number, kc: number, vc: number, out: number, att: number, n: number, pos: number, nHeads: number, nKvHeads: number, headDim: number, scaleBits: number, spans: number, h0: number, h1: number): void;
  attention_block_bytes(headDim: number): number;
  attention_q8(q: number, kc: number, ks: number, vc: number, vs: number, out: number, att: number, scratch: number, n: number, pos: number, nHeads: number, nKvHeads: number, headDim: number, scaleBits: number, h0: number, h1: number): void;
  attn_train_fwd_f32(q: number, k: number, v: number, out: number, probs: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scaleBits: number, h0: number, h1: number): void;
  attn_train_bwd_f32(q: number, k: number, v: number, probs: number, dout: number, dq: number, dkh: number, dvh: number, ds: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scaleBits: number, h0: number, h1: number): void;
  lut4_rows(codes: number, tabs: number, tabRow: number, tabBlk: number, params: number, loRatioBits: number, rows: number, cols: number, bs: number, ab: number, batch: number, scratch: number, out: number, r0: number, r1: number): void;
  anyprec_fast_rows(planes: number, ps: number, bits: number, tabs: number, params: number, rows: number, cols: number, batch: number, scratch: number, out: number, r0: number, r1: number): void;
  kquant_tiles_rows(t: number, w: number, rows: number, cols: number, xq: number, dx: number, bs: number, batch: number, out: number, r0: number, r1: number): void;
  probe_relaxed_dot(a: number, b: number, c: number, out: number): void;
  copy_bytes(dst: number, src: number, n: number): void;
  read_bytes(src: number, n: number): number;
  decode_lut(codes: number, rows: number, cols: number, bits: number, lut: number, out: number): void;
  dequant_int_groups(codes: number, scales: number, zeros: number, rows: number, cols: number, bits: number, group: number, out: number): void;
  dequant_mx(codes: number, scales: number, n: number, lut: number, out: number): void;
}

type Typed = Float32Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;

/** A typed array copied into WASM memory once; pass it wherever a matrix is expected. */
export class WasmTensor {
  #freed = false;
  constructor(
    private readonly heap: WasmHeap,
    readonly ptr: number,
    readonly byteLength: number,
    readonly kind: string,
  ) {}
  get freed(): boolean {
    return this.#freed;
  }
  /** Whether this tensor lives in the memory of the instance that owns `heap`. */
  ownedBy(heap: WasmHeap): boolean {
    return this.heap === heap;
  }
  free(): void {
    if (!this.#freed) this.heap.free(this.ptr);
    this.#freed = true;
  }
}

type MatrixArg<T extends Typed> = T | WasmTensor;

/**
 * The block types `prepareGgml` takes: llama.cpp's, and ggml's MXFP4 (`{u8 e; u8 qs[16]}`, OCP MXFP4:
 * 2^(e − 127)·fp4, element j in the low nibble of byte j, j + 16 in the high one), which only the
 * relaxed-SIMD build runs (Q4_0's lane records, each nibble through a 16-entry table), and lowbit's
 * NF4 staging blocks (`{f32 absmax; u8 qs[16]}`, w = absmax·nf4(u), nibbles as ggml's), relaxed-SIMD
 * only too: each nibble becomes QLoRA's level as a 7-bit integer round(63·v + 64), so a weight moves
 * by at most absmax/126.
 */
export type TiledBlockType = GgmlBlockType | 'mxfp4' | 'nf4' | 'q5_0';
const TILED_BLOCK_BYTES: Readonly<Record<TiledBlockType, number>> = { ...GGML_BLOCK_BYTES, mxfp4: GGML_MXFP4_BLOCK_BYTES, nf4: NF4_STAGING_BLOCK_BYTES, q5_0: GGML_Q5_BLOCK_BYTES.q5_0 };
/** Block types that run only prepared, in whole tiles, on the relaxed-SIMD builds' lane kernels. */
const LUT_TILES: ReadonlySet<TiledBlockType> = new Set(['mxfp4', 'nf4', 'q5_0']);

/** The `kind` of a WasmTensor made by `prepareGgml` for block type `type`. */
const preparedKind = (type: TiledBlockType) => `ggml-tiled-${type}`;

const GGML_KIND: Record<TiledBlockType, number> = { q8_0: 0, q4_0: 1, q4_1: 2, mxfp4: 5, nf4: 6, q5_0: 7 };
/**
 * Fewest tokens for which matmulGgml takes the lane GEMM (assembly/ggml-gemm.ts) over the tiled GEMV,
 * outputs equal bit for bit. CPU time on a busy AMD EPYC (scripts/bench-ggml-gemm.mjs; decode: one
 * token over ~1 GB of 5632x2048 tiles, past each core's L3 slice). Q4_0 always: batch 64 relaxed
 * 1.4-3.6x, plain 1.1-1.2x; one token relaxed 12.4 -> 20.2 GB/s, plain 8.0 -> 11.4. Q8_0 from 4
 * tokens (batch 64 1.1-1.2x); one token the kind-0 GEMV streams faster (21.8 vs 19.1 GB/s relaxed).
 */
const GEMM_MIN_BATCH: Record<'simd' | 'relaxed', Record<TiledBlockType, number>> = {
  simd: { q8_0: 4, q4_0: 1, q4_1: Number.POSITIVE_INFINITY, mxfp4: Number.POSITIVE_INFINITY, nf4: Number.POSITIVE_INFINITY, q5_0: Number.POSITIVE_INFINITY },
  relaxed: { q8_0: 4, q4_0: 1, q4_1: Number.POSITIVE_INFINITY, mxfp4: 1, nf4: 1, q5_0: 1 },
};

/** The kernels that take a row range [r0, r1) as their last two arguments (so threads can split them). */
export type RowKernel = 'matmul_f32' | 'matmul_q4' | 'matmul_ggml' | 'matmul_ggml_tiled' | 'attention_f32' | 'matmul_ggml_tiled_multi' | 'attention_span_f32' | 'attention_q8' | 'attn_train_fwd_f32' | 'attn_train_bwd_f32' | 'matmul_ggml_gemm' | 'matmul_ggml_gemm_multi' | 'lut4_rows' | 'kquant_tiles_rows' | 'anyprec_fast_rows';
export const ROW_KERNELS: readonly RowKernel[] = ['matmul_f32', 'matmul_q4', 'matmul_ggml', 'matmul_ggml_tiled', 'attention_f32', 'matmul_ggml_tiled_multi', 'attention_span_f32', 'attention_q8', 'attn_train_fwd_f32', 'attn_train_bwd_f32', 'matmul_ggml_gemm', 'matmul_ggml_gemm_multi', 'lut4_rows', 'kquant_tiles_rows', 'anyprec_fast_rows'];
/** Kernels that also take a 16-byte per-thread scratch pointer just before r0. */
export const NEEDS_RES: ReadonlySet<RowKernel> = new Set(['matmul_q4']);

/**
 * Typed-array front end of one instantiated kernel module. One-shot calls copy their inputs into
 * scratch (freed before returning) and copy the result out; resident tensors from `upload` skip the
 * copy. Every argument is checked here so a bad call throws LowbitError instead of reading memory
 * it was not given.
 */
export class Kernels {
  readonly heap: WasmHeap;
  private res = 0;
  constructor(
    readonly variant: KernelVariant | ThreadedVariant,
    readonly exports: KernelExports,
  ) {
    this.heap = new WasmHeap(exports.memory, exports.heap_base());
  }

  /**
   * Runs a row kernel over rows [0, rows). A thread pool overrides this to split the range; the
   * arguments are plain integers (pointers, sizes) so they can cross to other threads.
   */
  protected runRows(fn: RowKernel, args: number[], rows: number): void {
    const f = this.exports[fn] as (...a: number[]) => void;
    if (NEEDS_RES.has(fn)) {
      if (this.res === 0) this.res = this.heap.alloc(16);
      f(...args, this.res, 0, rows);
    } else f(...args, 0, rows);
  }

  get memory(): WebAssembly.Memory {
    return this.exports.memory;
  }

  upload(data: Typed): WasmTensor {
    if (!ArrayBuffer.isView(data)) throw new LowbitError('E_DTYPE', 'upload: expected a typed array');
    const ptr = this.heap.alloc(data.byteLength);
    new Uint8Array(this.memory.buffer, ptr, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return new WasmTensor(this.heap, ptr, data.byteLength, data.constructor.name);
  }

  /**
   * ggml blocks ([rows, cols], cols % 32 == 0) repacked once into the resident form the matmuls read
   * fastest: rows in tiles of four, per 32-column block the four scales as f32 then the four rows'
   * codes, 16-byte aligned (assembly/ggml-tiled.ts). Pass the result to `matmulGgml` with the same
   * type; results equal those on the blocks themselves. The blocks are not kept (save those).
   * 'mxfp4' (ggml's MXFP4 blocks) needs the relaxed-SIMD build (`supportsMxfp4Tiles`) and rows in
   * fours, and refuses a NaN scale (0xFF); its matmuls equal those of the same values as Q8_0 blocks
   * (2·fp4 with d = 2^(e − 128)) bit for bit, streaming 5 bits per weight where those take 9. 'nf4'
   * (lowbit's staging blocks, `NF4_STAGING_BLOCK_BYTES`) likewise, refusing a non-finite absmax, and
   * 'q5_0' (ggml's block_q5_0) likewise: Q4_0's records plus 16 bytes of high bits, 6 bits per weight.
   */
  prepareGgml(type: TiledBlockType, blocks: MatrixArg<Uint8Array>, rows: number, cols: number): WasmTensor {
    const name = 'prepareGgml';
    if (!(type in GGML_KIND)) throw new LowbitError('E_FORMAT', `${name}: unknown block type ${String(type)}`);
    checkDims(name, rows, cols, 1);
    if (cols % 32 !== 0) throw new LowbitError('E_SHAPE', `${name}: ggml block rows need cols to be a multiple of 32, got ${cols}`);
    checkMatrix(name, blocks, Uint8Array, (rows * cols * TILED_BLOCK_BYTES[type]) / 32, 'blocks');
    if (blocks instanceof WasmTensor && blocks.kind.startsWith('ggml-tiled')) throw new LowbitError('E_ARG', `${name}: blocks are already prepared`);
    if (LUT_TILES.has(type)) {
      const label = type.toUpperCase();
      if (!this.supportsMxfp4Tiles) throw new LowbitError('E_UNSUPPORTED', `${name}: ${label} tiles need the relaxed-SIMD kernel build, this is ${this.variant}`);
      if (rows % 4 !== 0) throw new LowbitError('E_SHAPE', `${name}: ${label} tiles need rows in fours, got ${rows}`);
    }
    const bytes = this.exports.ggml_tiled_bytes(GGML_KIND[type], rows, cols) >>> 0;
    const ptr = this.heap.alloc(bytes);
    let nan = 0;
    try {
      nan = this.scoped((s) => this.exports.prepare_ggml(GGML_KIND[type], s.matrix(blocks), rows, cols, ptr));
    } catch (e) {
      this.heap.free(ptr);
      throw e;
    }
    if (nan) {
      this.heap.free(ptr);
      throw new LowbitError('E_NAN', type === 'nf4' ? `${name}: an NF4 block's absmax is not finite` : `${name}: an MXFP4 block has scale 0xFF (NaN)`);
    }
    return new WasmTensor(this.heap, ptr, bytes, preparedKind(type));
  }

  /** Whether `prepareGgml('mxfp4' | 'nf4' | 'q5_0', …)` runs here: the relaxed-SIMD builds only. */
  get supportsMxfp4Tiles(): boolean {
    return this.variant.startsWith('relaxed');
  }

  /**
   * The ggml blocks of a tensor made by `prepareGgml`, byte for byte (scales back to their f16 bits,
   * NaN payloads included): callers need not keep the blocks beside the resident copy.
   */
  unprepareGgml(type: TiledBlockType, prepared: WasmTensor, rows: number, cols: number): Uint8Array {
    const name = 'unprepareGgml';
    if (!(prepared instanceof WasmTensor) || prepared.kind !== preparedKind(type)) {
      throw new LowbitError('E_ARG', `${name}: expected a tensor prepared by prepareGgml as ${type}, got ${prepared instanceof WasmTensor ? prepared.kind : typeof prepared}`);
    }
    checkDims(name, rows, cols, 1);
    if (cols % 32 !== 0 || (this.exports.ggml_tiled_bytes(GGML_KIND[type], rows, cols) >>> 0) !== prepared.byteLength) {
      throw new LowbitError('E_SHAPE', `${name}: [${rows}, ${cols}] is not the shape this ${prepared.byteLength}-byte tensor was prepared with`);
    }
    const out = new Uint8Array((rows * cols * TILED_BLOCK_BYTES[type]) / 32);
    return this.scoped((s) => {
      const p = s.alloc(out.byteLength);
      this.exports.unprepare_ggml(GGML_KIND[type], s.matrix(prepared), rows, cols, p);
      return s.get(p, out);
    });
  }

  dotF32(a: Float32Array, b: Float32Array): number {
    checkType('dotF32', 'a', a, Float32Array);
    checkType('dotF32', 'b', b, Float32Array);
    if (a.length !== b.length) throw new LowbitError('E_SHAPE', `dotF32: a has ${a.length} elements, b has ${b.length}`);
    return this.scoped((s) => this.exports.dot_f32(s.put(a), s.put(b), a.length));
  }

  /** y ← y + alpha·x, in place. */
  axpyF32(alpha: number, x: Float32Array, y: Float32Array): Float32Array {
    checkType('axpyF32', 'x', x, Float32Array);
    checkType('axpyF32', 'y', y, Float32Array);
    if (x.length !== y.length) throw new LowbitError('E_SHAPE', `axpyF32: x has ${x.length} elements, y has ${y.length}`);
    return this.scoped((s) => {
      const py = s.put(y);
      this.exports.axpy_f32(alpha, s.put(x), py, x.length);
      return s.get(py, y);
    });
  }

  dotI8(a: Int8Array, b: Int8Array): number {
    checkType('dotI8', 'a', a, Int8Array);
    checkType('dotI8', 'b', b, Int8Array);
    if (a.length !== b.length) throw new LowbitError('E_SHAPE', `dotI8: a has ${a.length} elements, b has ${b.length}`);
    if (a.length >= 131072) throw new LowbitError('E_ARG', `dotI8: length ${a.length} may overflow the i32 accumulator (limit 131071)`);
    return this.scoped((s) => this.exports.dot_i8(s.put(a), s.put(b), a.length));
  }

  gemvF32(w: MatrixArg<Float32Array>, rows: number, cols: number, x: Float32Array, out?: Float32Array): Float32Array {
    return this.matmulF32(w, rows, cols, x, 1, out);
  }

  /** out[b, r] = Σc w[r, c]·x[b, c]; w [rows, cols] row-major, x [batch, cols], out [batch, rows]. */
  matmulF32(w: MatrixArg<Float32Array>, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    const name = 'matmulF32';
    checkDims(name, rows, cols, batch);
    checkMatrix(name, w, Float32Array, rows * cols * 4);
    checkVector(name, 'x', x, batch * cols);
    const o = outArray(name, out, batch * rows);
    return this.scoped((s) => {
      const po = s.alloc(o.byteLength);
      this.runRows('matmul_f32', [s.matrix(w), rows, cols, s.put(x), batch, po], rows);
      return s.get(po, o);
    });
  }

  /**
   * int4 weights with one f32 scale (and optional f32 zero point) per group of `group` along cols;
   * packing and value rule as in CONTRIBUTING.md (int-k convention). `group` must be a positive
   * multiple of 32; the last group of a row may be partial. Activations are quantized to int8 per
   * group (scale amax/127, round to nearest even) before the integer dot.
   */
  gemvQ4(packed: MatrixArg<Uint8Array>, scales: MatrixArg<Float32Array>, zeros: MatrixArg<Float32Array> | null,
    rows: number, cols: number, group: number, x: Float32Array, out?: Float32Array): Float32Array {
    return this.matmulQ4(packed, scales, zeros, rows, cols, group, x, 1, out);
  }

  matmulQ4(packed: MatrixArg<Uint8Array>, scales: MatrixArg<Float32Array>, zeros: MatrixArg<Float32Array> | null,
    rows: number, cols: number, group: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    const name = 'matmulQ4';
    checkDims(name, rows, cols, batch);
    if (!Number.isInteger(group) || group <= 0 || group % 32 !== 0) {
      throw new LowbitError('E_ARG', `${name}: group size must be a positive multiple of 32, got ${group}`);
    }
    const ngroups = Math.ceil(cols / group);
    checkMatrix(name, packed, Uint8Array, rows * Math.ceil(cols / 2));
    checkMatrix(name, scales, Float32Array, rows * ngroups * 4, 'scales');
    if (zeros !== null) checkMatrix(name, zeros, Float32Array, rows * ngroups * 4, 'zeros');
    checkVector(name, 'x', x, batch * cols);
    const o = outArray(name, out, batch * rows);
    if (o.length === 0) return o;
    return this.scoped((s) => {
      const nblk = Math.ceil(cols / 32);
      const xq = s.alloc(batch * nblk * 32);
      // The plain-SIMD path reads an i16 copy of the codes; the others need none.
      const xq16 = this.variant.startsWith('simd') ? s.alloc(batch * nblk * 64) : 0;
      const xs = s.alloc(batch * ngroups * 4);
      const xsum = s.alloc(batch * ngroups * 4);
      const tmp = s.alloc(group);
      const xp = s.put(x);
      let bad = this.exports.quantize_act_int4(xp, cols, batch, group, xq, xq16, xs, xsum);
      if (bad === 2) bad = this.exports.quantize_act_groups(xp, cols, batch, group, xq, xq16, xs, xsum, tmp);
      if (bad !== 0) {
        throw new LowbitError('E_NAN', `${name}: x holds NaN or Inf; integer kernels need finite activations`);
      }
      const po = s.alloc(o.byteLength);
      this.runRows('matmul_q4', [s.matrix(packed), s.matrix(scales), zeros === null ? 0 : s.matrix(zeros), rows, cols, group, xq, xq16, xs, xsum, batch, po], rows);
      return s.get(po, o);
    });
  }

  matmulQ8_0(w: MatrixArg<Uint8Array>, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    return this.matmulGgml('q8_0', w, rows, cols, x, batch, out);
  }
  matmulQ4_0(w: MatrixArg<Uint8Array>, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    return this.matmulGgml('q4_0', w, rows, cols, x, batch, out);
  }
  matmulQ4_1(w: MatrixArg<Uint8Array>, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    return this.matmulGgml('q4_1', w, rows, cols, x, batch, out);
  }

  /** llama.cpp block types, bit for bit; activations quantized to int8 per 32 like block_q8_0. */
  matmulGgml(type: TiledBlockType, w: MatrixArg<Uint8Array>, rows: number, cols: number, x: Float32Array, batch: number, out?: Float32Array): Float32Array {
    return this.matmulGgmlShared(type, [w], [rows], cols, x, batch, out && [out])[0];
  }

  /**
   * Several ggml matmuls of one input x ([batch, cols]), as a layer's Q, K, V or gate and up
   * projections: x is quantized once for all of them. Result i equals
   * matmulGgml(type, ws[i], rows[i], cols, x, batch, outs?.[i]).
   */
  matmulGgmlShared(type: TiledBlockType, ws: MatrixArg<Uint8Array>[], rows: number[], cols: number, x: Float32Array, batch: number, outs?: Float32Array[]): Float32Array[] {
    const name = `matmul${type.toUpperCase().replace('_', '_')}`;
    if (!(type in GGML_KIND)) throw new LowbitError('E_FORMAT', `matmulGgml: unknown block type ${String(type)}`);
    if (rows.length !== ws.length || (outs && outs.length !== ws.length)) throw new LowbitError('E_ARG', `${name}: ${ws.length} matrices, ${rows.length} row counts, ${outs?.length ?? ws.length} outputs`);
    let splats = false;
    const prepared = ws.map((w, i) => {
      checkDims(name, rows[i], cols, batch);
      if (cols % 32 !== 0) throw new LowbitError('E_SHAPE', `${name}: ggml block rows need cols to be a multiple of 32, got ${cols}`);
      const p = w instanceof WasmTensor && w.kind.startsWith('ggml-tiled');
      if (p && w.kind !== preparedKind(type)) throw new LowbitError('E_ARG', `${name}: w was prepared as ${w.kind.slice(11)}, not ${type}`);
      if (LUT_TILES.has(type) && !p) throw new LowbitError('E_UNSUPPORTED', `${name}: ${type.toUpperCase()} blocks run prepared only (prepareGgml('${type}', …))`);
      checkMatrix(name, w, Uint8Array, p ? this.exports.ggml_tiled_bytes(GGML_KIND[type], rows[i], cols) >>> 0 : (rows[i] * cols * TILED_BLOCK_BYTES[type]) / 32);
      // The relaxed tiled 4-bit kernels read splatted activation scales and offsets (act_splats).
      if (p && type !== 'q8_0' && this.variant.startsWith('relaxed')) splats = true;
      return p;
    });
    checkVector(name, 'x', x, batch * cols);
    const os = ws.map((_, i) => outArray(name, outs?.[i], batch * rows[i]));
    if (batch === 0 || cols === 0 || os.every((o) => o.length === 0)) return os;
    // Q8_0 / Q4_0 tiles by the lane GEMM (assembly/ggml-gemm.ts) where it is the faster, each output
    // equal to the tiled GEMV's bit for bit.
    const family = this.variant.startsWith('relaxed') ? 'relaxed' : this.variant.startsWith('simd') ? 'simd' : null;
    const gemm = family !== null && batch >= GEMM_MIN_BATCH[family][type] && prepared.every(Boolean);
    // The relaxed Q4_0 GEMM reads the compact codes, scales and code sums; only a partial last tile
    // (rows not a multiple of 4) goes through the tiled kernel and its act_splats records, which
    // otherwise were written (160 B per 32 values, 640 KiB for 64 tokens of 2048) for nothing.
    if (gemm && (type === 'q4_0' || LUT_TILES.has(type)) && rows.every((r) => r % 4 === 0)) splats = false;
    return this.scoped((s) => {
      const nblk = cols / 32;
      const xq = s.alloc(batch * nblk * 32);
      // The plain-SIMD 4-bit path reads i16 planes of the codes (64 B per block); the relaxed tiled
      // 4-bit kernels read act_splats records there instead (160 B); Q8_0 needs neither.
      const xq16 = type !== 'q8_0' && (this.variant.startsWith('simd') || splats) ? s.alloc(batch * nblk * (splats ? 160 : 64)) : 0;
      const xs = s.alloc(batch * nblk * 4);
      const xsum = s.alloc(batch * nblk * 4);
      // With splats, act_splats writes xq16 whole: quantize_act_q8's i16 planes (a scalar loop, 40% of
      // its time) would only be overwritten.
      if (this.exports.quantize_act_q8(s.put(x), cols, batch, xq, splats ? 0 : xq16, xs, xsum) !== 0) {
        throw new LowbitError('E_NAN', `${name}: x holds NaN or Inf; integer kernels need finite activations`);
      }
      if (splats) this.exports.act_splats(xs, xsum, batch * nblk, xq16, xq);
      // The relaxed Q4_0 GEMM reads no pair table (xq16 passes through for a partial last tile); the
      // others the GEMM's activation pairs.
      const ownPairs = gemm && !(family === 'relaxed' && (type === 'q4_0' || LUT_TILES.has(type)));
      const pairs = ownPairs ? s.alloc(batch * nblk * 64) : gemm ? xq16 : 0;
      if (ownPairs) this.exports.gemm_act_pairs(GGML_KIND[type], xq, batch * nblk, pairs);
      // Two or three prepared matrices whose row counts before the last are whole tiles: one job.
      if (ws.length >= 2 && ws.length <= 3 && prepared.every(Boolean) && rows.slice(0, -1).every((r) => r % 4 === 0)) {
        const pos = os.map((o) => s.alloc(o.byteLength));
        const m = [0, 1, 2].map((i) => (i < ws.length ? [GGML_KIND[type], s.matrix(ws[i]), rows[i]] : [0, 0, 0]));
        const sum = rows.reduce((a, b) => a + b, 0);
        if (gemm) this.runRows('matmul_ggml_gemm_multi', [...m[0], ...m[1], ...m[2], cols, xq, xq16, xs, xsum, pairs, batch, pos[0], pos[1], pos[2] ?? 0], sum);
        else this.runRows('matmul_ggml_tiled_multi', [...m[0], ...m[1], ...m[2], cols, xq, xq16, xs, xsum, batch, pos[0], pos[1], pos[2] ?? 0], sum);
        for (const [i, o] of os.entries()) s.get(pos[i], o);
        return os;
      }
      ws.forEach((w, i) => {
        const o = os[i];
        if (o.length === 0) return;
        const po = s.alloc(o.byteLength);
        if (gemm) this.runRows('matmul_ggml_gemm', [GGML_KIND[type], s.matrix(w), rows[i], cols, xq, xq16, xs, xsum, pairs, batch, po], rows[i]);
        else this.runRows(prepared[i] ? 'matmul_ggml_tiled' : 'matmul_ggml', [GGML_KIND[type], s.matrix(w), rows[i], cols, xq, xq16, xs, xsum, batch, po], rows[i]);
        s.get(po, o);
      });
      return os;
    });
  }

  /**
   * Causal grouped-query attention of n new tokens at positions pos..pos+n−1 over an f32 KV cache
   * that stays in WASM memory: `keys`/`values` hold [ctx, nKvHeads·headDim] per layer, this layer's
   * from element `offset`. kNew/vNew ([n, kvDim]) are written into the cache at pos first; q is
   * [n, nHeads·headDim] and so is the result (heads concatenated). Head h reads kv head
   * h / (nHeads / nKvHeads); scores are q·k·scale (reference.attentionF32). A pool splits the heads.
   */
  attention(q: Float32Array, kNew: Float32Array, vNew: Float32Array, keys: WasmTensor, values: WasmTensor, offset: number, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number, out?: Float32Array): Float32Array {
    const name = 'attention';
    for (const [k, v] of [['offset', offset], ['pos', pos], ['n', n], ['nHeads', nHeads], ['nKvHeads', nKvHeads], ['headDim', headDim]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${name}: ${k} must be a non-negative integer, got ${v}`);
    }
    if (nKvHeads === 0 || nHeads % nKvHeads !== 0) throw new LowbitError('E_ARG', `${name}: ${nHeads} heads are not a multiple of ${nKvHeads} kv heads`);
    const dim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const end = (offset + (pos + n) * kvDim) * 4;
    checkMatrix(name, keys, Float32Array, end, 'keys');
    checkMatrix(name, values, Float32Array, end, 'values');
    if (!(keys instanceof WasmTensor) || !(values instanceof WasmTensor)) throw new LowbitError('E_ARG', `${name}: keys and values must be resident WasmTensors`);
    checkVector(name, 'q', q, n * dim);
    checkVector(name, 'kNew', kNew, n * kvDim);
    checkVector(name, 'vNew', vNew, n * kvDim);
    const o = outArray(name, out, n * dim);
    if (n === 0 || dim === 0) return o;
    return this.scoped((s) => {
      const kc = s.matrix(keys) + offset * 4;
      const vc = s.matrix(values) + offset * 4;
      new Float32Array(this.memory.buffer, kc + pos * kvDim * 4, n * kvDim).set(kNew);
      new Float32Array(this.memory.buffer, vc + pos * kvDim * 4, n * kvDim).set(vNew);
      const att = s.alloc(nHeads * (pos + n) * 4);
      const po = s.alloc(o.byteLength);
      this.runRows('attention_f32', [s.put(q), kc, vc, po, att, n, pos, nHeads, nKvHeads, headDim, f32Bits(scale)], nHeads);
      return s.get(po, o);
    });
  }

  /**
   * `attention` where head h reads only its last `spans[h]` positions (adaptive attention span;
   * reference.attentionSpanF32): position pos + t of head h attends to max(0, pos + t + 1 − spans[h])
   * .. pos + t. Spans are integers ≥ 1, one per query head; with every span ≥ pos + n the result
   * equals `attention` bit for bit. kNew/vNew are written into the cache at pos first, as there.
   */
  attentionSpan(q: Float32Array, kNew: Float32Array, vNew: Float32Array, keys: WasmTensor, values: WasmTensor, offset: number, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number, spans: Int32Array, out?: Float32Array): Float32Array {
    const name = 'attentionSpan';
    for (const [k, v] of [['offset', offset], ['pos', pos], ['n', n], ['nHeads', nHeads], ['nKvHeads', nKvHeads], ['headDim', headDim]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${name}: ${k} must be a non-negative integer, got ${v}`);
    }
    if (nKvHeads === 0 || nHeads % nKvHeads !== 0) throw new LowbitError('E_ARG', `${name}: ${nHeads} heads are not a multiple of ${nKvHeads} kv heads`);
    if (!(spans instanceof Int32Array) || spans.length !== nHeads) throw new LowbitError('E_ARG', `${name}: spans must be an Int32Array of ${nHeads} (one per head)`);
    for (let h = 0; h < nHeads; h++) if (!(spans[h] >= 1)) throw new LowbitError('E_RANGE', `${name}: spans[${h}] = ${spans[h]} must be at least 1`);
    const dim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const end = (offset + (pos + n) * kvDim) * 4;
    checkMatrix(name, keys, Float32Array, end, 'keys');
    checkMatrix(name, values, Float32Array, end, 'values');
    if (!(keys instanceof WasmTensor) || !(values instanceof WasmTensor)) throw new LowbitError('E_ARG', `${name}: keys and values must be resident WasmTensors`);
    checkVector(name, 'q', q, n * dim);
    checkVector(name, 'kNew', kNew, n * kvDim);
    checkVector(name, 'vNew', vNew, n * kvDim);
    const o = outArray(name, out, n * dim);
    if (n === 0 || dim === 0) return o;
    return this.scoped((s) => {
      const kc = s.matrix(keys) + offset * 4;
      const vc = s.matrix(values) + offset * 4;
      new Float32Array(this.memory.buffer, kc + pos * kvDim * 4, n * kvDim).set(kNew);
      new Float32Array(this.memory.buffer, vc + pos * kvDim * 4, n * kvDim).set(vNew);
      const att = s.alloc(nHeads * (pos + n) * 4);
      const po = s.alloc(o.byteLength);
      this.runRows('attention_span_f32', [s.put(q), kc, vc, po, att, n, pos, nHeads, nKvHeads, headDim, f32Bits(scale), s.put(spans)], nHeads);
      return s.get(po, o);
    });
  }

  /**
   * `attention` over an int8 KV cache (reference.attentionQ8): `keys`/`values` hold int8 codes
   * [ctx, nKvHeads·headDim] per layer, `keyScales`/`valueScales` one f32 per position and kv head
   * [ctx, nKvHeads]; this layer's codes start at element `offset` (its scales at offset / headDim).
   * kNew/vNew are quantized into the cache at pos first (quantizeKvQ8: per token and kv head,
   * scale = absmax/127 rounded to fp16). A quarter of the f32 cache's bytes per position, plus the
   * scales. A pool splits the heads.
   */
  attentionQ8(q: Float32Array, kNew: Float32Array, vNew: Float32Array, keys: WasmTensor, keyScales: WasmTensor, values: WasmTensor, valueScales: WasmTensor, offset: number, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number, out?: Float32Array): Float32Array {
    const name = 'attentionQ8';
    for (const [k, v] of [['offset', offset], ['pos', pos], ['n', n], ['nHeads', nHeads], ['nKvHeads', nKvHeads], ['headDim', headDim]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${name}: ${k} must be a non-negative integer, got ${v}`);
    }
    if (nKvHeads === 0 || headDim === 0 || nHeads % nKvHeads !== 0) throw new LowbitError('E_ARG', `${name}: ${nHeads} heads are not a multiple of ${nKvHeads} kv heads of ${headDim}`);
    if (offset % headDim !== 0) throw new LowbitError('E_ARG', `${name}: offset ${offset} is not a multiple of headDim ${headDim}`);
    const dim = nHeads * headDim;
    const kvDim = nKvHeads * headDim;
    const end = offset + (pos + n) * kvDim;
    checkMatrix(name, keys, Int8Array, end, 'keys');
    checkMatrix(name, values, Int8Array, end, 'values');
    checkMatrix(name, keyScales, Float32Array, (end / headDim) * 4, 'keyScales');
    checkMatrix(name, valueScales, Float32Array, (end / headDim) * 4, 'valueScales');
    for (const t of [keys, values, keyScales, valueScales]) if (!(t instanceof WasmTensor)) throw new LowbitError('E_ARG', `${name}: caches and scales must be resident WasmTensors`);
    checkVector(name, 'q', q, n * dim);
    checkVector(name, 'kNew', kNew, n * kvDim);
    checkVector(name, 'vNew', vNew, n * kvDim);
    const o = outArray(name, out, n * dim);
    if (n === 0 || dim === 0) return o;
    return this.scoped((s) => {
      const [kc, vc] = [s.matrix(keys) + offset, s.matrix(values) + offset];
      const [ks, vs] = [s.matrix(keyScales) + (offset / headDim) * 4, s.matrix(valueScales) + (offset / headDim) * 4];
      const buf = this.memory.buffer;
      quantizeKvQ8(kNew, n * nKvHeads, headDim, new Int8Array(buf, kc + pos * kvDim, n * kvDim), new Float32Array(buf, ks + pos * nKvHeads * 4, n * nKvHeads));
      quantizeKvQ8(vNew, n * nKvHeads, headDim, new Int8Array(buf, vc + pos * kvDim, n * kvDim), new Float32Array(buf, vs + pos * nKvHeads * 4, n * nKvHeads));
      const att = s.alloc(nHeads * (pos + n) * 4);
      const scratch = s.alloc(nHeads * this.exports.attention_block_bytes(headDim));
      const po = s.alloc(o.byteLength);
      this.runRows('attention_q8', [s.put(q), kc, ks, vc, vs, po, att, scratch, n, pos, nHeads, nKvHeads, headDim, f32Bits(scale)], nHeads);
      return s.get(po, o);
    });
  }

  /**
   * SwiGLU's gating, in place: u[i] = u[i]·g[i]/(1 + e^−g[i]) (reference.siluMul; e^x within ~2 ulp
   * in the SIMD builds). Returns u.
   */
  siluMul(g: Float32Array, u: Float32Array): Float32Array {
    checkVector('siluMul', 'g', g, g.length);
    checkVector('siluMul', 'u', u, g.length);
    if (u.length === 0) return u;
    return this.scoped((s) => {
      const pu = s.put(u);
      this.exports.silu_mul_f32(s.put(g), pu, u.length);
      return s.get(pu, u);
    });
  }

  /**
   * Decoders for @lowbit/formats packed tensors (that package defines the values; these equal its
   * TypeScript decoders bit for bit). `lut` holds the value of every code (2^bits entries).
   * Codes are k-bit little-endian streams, each of `rows` rows starting on a byte boundary.
   */
  decodeLut(codes: Uint8Array, rows: number, cols: number, bits: number, lut: Float32Array, out?: Float32Array): Float32Array {
    const name = 'decodeLut';
    checkDims(name, rows, cols, 1);
    checkCodeBits(name, bits);
    checkMatrix(name, codes, Uint8Array, rows * Math.ceil((cols * bits) / 8), 'codes');
    checkVector(name, 'lut', lut, 2 ** bits);
    const o = outArray(name, out, rows * cols);
    return this.scoped((s) => {
      const po = s.alloc(o.byteLength);
      this.exports.decode_lut(s.put(codes), rows, cols, bits, s.put(lut), po);
      return s.get(po, o);
    });
  }

  /** INT-k, groups along cols: out = scale·(u − zero), zero = 2^(bits−1) when `zeros` is null. */
  dequantIntGroups(codes: Uint8Array, scales: Float32Array, zeros: Float32Array | null, rows: number, cols: number, bits: number, group: number, out?: Float32Array): Float32Array {
    const name = 'dequantIntGroups';
    checkDims(name, rows, cols, 1);
    checkCodeBits(name, bits);
    if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `${name}: group size must be a positive integer, got ${group}`);
    const ng = Math.ceil(cols / group);
    checkMatrix(name, codes, Uint8Array, rows * Math.ceil((cols * bits) / 8), 'codes');
    checkVector(name, 'scales', scales, rows * ng);
    if (zeros !== null) checkVector(name, 'zeros', zeros, rows * ng);
    const o = outArray(name, out, rows * cols);
    return this.scoped((s) => {
      const po = s.alloc(o.byteLength);
      this.exports.dequant_int_groups(s.put(codes), s.put(scales), zeros === null ? 0 : s.put(zeros), rows, cols, bits, group, po);
      return s.get(po, o);
    });
  }

  /** OCP MX: out[i] = lut[codes[i]]·2^(scales[i/32] − 127); scale 0xFF is NaN. One code per byte. */
  dequantMx(codes: Uint8Array, scales: Uint8Array, lut: Float32Array, out?: Float32Array): Float32Array {
    const name = 'dequantMx';
    checkType(name, 'codes', codes, Uint8Array);
    checkMatrix(name, scales, Uint8Array, Math.ceil(codes.length / 32), 'scales');
    checkVector(name, 'lut', lut, 256);
    const o = outArray(name, out, codes.length);
    return this.scoped((s) => {
      const po = s.alloc(o.byteLength);
      this.exports.dequant_mx(s.put(codes), s.put(scales), codes.length, s.put(lut), po);
      return s.get(po, o);
    });
  }

  private scoped<T>(fn: (s: Scratch) => T): T {
    const s = new Scratch(this.heap);
    try {
      return fn(s);
    } finally {
      s.release();
    }
  }
}

/**
 * Runs `fn` with per-call WASM allocations (`put` copies a typed array in, `alloc` reserves bytes),
 * all freed when it returns or throws: the one scratch discipline of every kernel wrapper.
 */
export function scoped<T>(k: Kernels, fn: (put: (t: ArrayBufferView) => number, alloc: (n: number) => number) => T): T {
  const s = new Scratch(k.heap);
  try {
    return fn((t) => s.put(t), (n) => s.alloc(n));
  } finally {
    s.release();
  }
}

/** Per-call allocations, all returned in `release`. */
class Scratch {
  private readonly ptrs: number[] = [];
  constructor(private readonly heap: WasmHeap) {}
  alloc(bytes: number): number {
    const p = this.heap.alloc(bytes);
    this.ptrs.push(p);
    return p;
  }
  put(a: ArrayBufferView): number {
    const p = this.alloc(a.byteLength);
    new Uint8Array(this.heap.memory.buffer, p, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    return p;
  }
  matrix(m: Typed | WasmTensor): number {
    if (!(m instanceof WasmTensor)) return this.put(m);
    // A pointer into another instance's memory would read whatever lies at that offset here.
    if (!m.ownedBy(this.heap)) throw new LowbitError('E_ARG', 'a WasmTensor was passed to a Kernels instance other than the one that uploaded it');
    return m.ptr;
  }
  get<T extends Typed>(ptr: number, into: T): T {
    into.set(new (into.constructor as new (b: ArrayBuffer, o: number, n: number) => T)(this.heap.memory.buffer, ptr, into.length) as never);
    return into;
  }
  release(): void {
    for (let i = this.ptrs.length - 1; i >= 0; i--) this.heap.free(this.ptrs[i]);
  }
}

function checkType(fn: string, arg: string, v: unknown, ctor: { name: string; prototype: object }): void {
  if (!(v instanceof (ctor as unknown as new () => object))) {
    const got = v === null ? 'null' : typeof v === 'object' ? (v as object).constructor?.name : typeof v;
    throw new LowbitError('E_DTYPE', `${fn}: ${arg} must be a ${ctor.name}, got ${got}`);
  }
}

function checkCodeBits(fn: string, bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new LowbitError('E_ARG', `${fn}: codes have 1 to 8 bits, got ${bits}`);
}

function checkDims(fn: string, rows: number, cols: number, batch: number): void {
  for (const [k, v] of [['rows', rows], ['cols', cols], ['batch', batch]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${fn}: ${k} must be a non-negative integer, got ${v}`);
  }
}

function checkMatrix(fn: string, m: unknown, ctor: { name: string; prototype: object }, bytes: number, arg = 'w'): void {
  if (m instanceof WasmTensor) {
    if (m.freed) throw new LowbitError('E_ARG', `${fn}: ${arg} is a freed WasmTensor`);
    if (m.byteLength < bytes) throw new LowbitError('E_SHAPE', `${fn}: ${arg} holds ${m.byteLength} bytes, the shape needs ${bytes}`);
    return;
  }
  checkType(fn, arg, m, ctor);
  const a = m as Typed;
  if (a.byteLength !== bytes) {
    const per = a.BYTES_PER_ELEMENT;
    throw new LowbitError('E_SHAPE', `${fn}: ${arg} has ${a.length} elements, the shape needs ${bytes / per}`);
  }
}

function checkVector(fn: string, arg: string, v: unknown, n: number): void {
  checkType(fn, arg, v, Float32Array);
  if ((v as Float32Array).length !== n) throw new LowbitError('E_SHAPE', `${fn}: ${arg} has ${(v as Float32Array).length} elements, expected ${n}`);
}

function outArray(fn: string, out: Float32Array | undefined, n: number): Float32Array {
  if (out === undefined) return new Float32Array(n);
  checkVector(fn, 'out', out, n);
  return out;
}

/**
 * int8 KV rows: x holds `groups` groups of `size` values; each gets scale = absmax/127 rounded to
 * fp16 (stored as f32) and codes round(x/scale) clamped to [−128, 127] (all 0 when the group is 0).
 * The rule of @lowbit/runtime's CompressedKvCache at 8 bits, so both hold the same numbers.
 */
export function quantizeKvQ8(x: Float32Array, groups: number, size: number, codes: Int8Array, scales: Float32Array): void {
  for (let g = 0; g < groups; g++) {
    const o = g * size;
    let amax = 0;
    for (let i = 0; i < size; i++) amax = Math.max(amax, Math.abs(x[o + i]));
    const s = f16ToF32(f32ToF16(amax / 127));
    scales[g] = s;
    for (let i = 0; i < size; i++) codes[o + i] = s === 0 ? 0 : Math.max(-128, Math.min(127, Math.round(x[o + i] / s)));
  }
}
