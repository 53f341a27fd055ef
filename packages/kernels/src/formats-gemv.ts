import { LowbitError } from './errors.js';
import { type Kernels, scoped, WasmTensor } from './kernels.js';

/**
 * Decode-into-GEMV over table-driven codes (the kernel behind @lowbit/formats' INT-k, NF4, MX and
 * codebook GEMVs): out[r] = Σ_g scale(r,g) · Σ_{c∈g} (lut[code(r,c)] − zero(r,g)) · x[c].
 * Codes follow the int-k packing convention (k-bit little-endian streams, rows on byte boundaries).
 */
export interface GemvLutGroupsArgs {
  /** [rows, ceil(cols·bits/8)] packed codes, or the same bytes resident in WASM memory. */
  codes: Uint8Array | WasmTensor;
  rows: number;
  cols: number;
  /** 1..8 */
  bits: number;
  /** 2^bits values, or rows·2^bits when `lutPerRow` (one table per output channel). */
  lut: Float32Array;
  lutPerRow?: boolean;
  /** Per (row, group): f32 scales, E8M0 codes (Uint8Array; 2^(e−127), 0xFF = NaN), or null (1). */
  scales: Float32Array | Uint8Array | null;
  /** Per (row, group) zero points subtracted from the table value, or null (0). */
  zeros: Float32Array | null;
  /** Columns per group (> 0); the last group of a row may be partial. */
  group: number;
  x: Float32Array;
  out?: Float32Array;
}

interface GemvExports {
  gemv_lut_groups(codes: number, rows: number, cols: number, bits: number, lut: number, lutStride: number,
    scales: number, scaleKind: number, zeros: number, group: number, x: number, out: number): void;
}

function check(a: GemvLutGroupsArgs): { ng: number; rowBytes: number; lutSize: number } {
  const fn = 'gemvLutGroups';
  for (const [k, v] of [['rows', a.rows], ['cols', a.cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${fn}: ${k} must be a non-negative integer, got ${v}`);
  }
  if (!Number.isInteger(a.bits) || a.bits < 1 || a.bits > 8) throw new LowbitError('E_ARG', `${fn}: codes have 1 to 8 bits, got ${a.bits}`);
  if (!Number.isInteger(a.group) || a.group <= 0) throw new LowbitError('E_ARG', `${fn}: group size must be a positive integer, got ${a.group}`);
  const ng = Math.ceil(a.cols / a.group);
  const rowBytes = Math.ceil((a.cols * a.bits) / 8);
  const lutSize = 2 ** a.bits;
  const codeBytes = a.codes instanceof WasmTensor ? a.codes.byteLength : a.codes instanceof Uint8Array ? a.codes.length : -1;
  if (codeBytes < 0) throw new LowbitError('E_DTYPE', `${fn}: codes must be a Uint8Array or WasmTensor`);
  if (a.codes instanceof WasmTensor && a.codes.freed) throw new LowbitError('E_ARG', `${fn}: codes is a freed WasmTensor`);
  if (a.codes instanceof WasmTensor ? codeBytes < a.rows * rowBytes : codeBytes !== a.rows * rowBytes) {
    throw new LowbitError('E_SHAPE', `${fn}: codes hold ${codeBytes} bytes, [${a.rows}, ${a.cols}] at ${a.bits} bits needs ${a.rows * rowBytes}`);
  }
  const want = (a.lutPerRow ? a.rows : 1) * lutSize;
  if (!(a.lut instanceof Float32Array) || a.lut.length !== want) throw new LowbitError('E_SHAPE', `${fn}: lut must be a Float32Array of ${want} values, got ${a.lut?.length}`);
  if (a.scales !== null && !(a.scales instanceof Float32Array || a.scales instanceof Uint8Array)) throw new LowbitError('E_DTYPE', `${fn}: scales must be a Float32Array, Uint8Array (E8M0) or null`);
  if (a.scales !== null && a.scales.length !== a.rows * ng) throw new LowbitError('E_SHAPE', `${fn}: scales has ${a.scales.length} entries, ${a.rows} rows × ${ng} groups need ${a.rows * ng}`);
  if (a.zeros !== null && (!(a.zeros instanceof Float32Array) || a.zeros.length !== a.rows * ng)) throw new LowbitError('E_SHAPE', `${fn}: zeros must be a Float32Array of ${a.rows * ng} entries`);
  if (!(a.x instanceof Float32Array) || a.x.length !== a.cols) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${a.cols} values`);
  if (a.out !== undefined && (!(a.out instanceof Float32Array) || a.out.length !== a.rows)) throw new LowbitError('E_SHAPE', `${fn}: out must be a Float32Array of ${a.rows} values`);
  return { ng, rowBytes, lutSize };
}

/** The WASM kernel. */
export function gemvLutGroups(k: Kernels, a: GemvLutGroupsArgs): Float32Array {
  check(a);
  const out = a.out ?? new Float32Array(a.rows);
  if (a.rows === 0) return out;
  const ex = k.exports as unknown as GemvExports;
  const ptrs: number[] = [];
  const put = (t: ArrayBufferView): number => {
    const p = k.heap.alloc(t.byteLength);
    ptrs.push(p);
    new Uint8Array(k.memory.buffer, p, t.byteLength).set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength));
    return p;
  };
  try {
    const pc = a.codes instanceof WasmTensor ? a.codes.ptr : put(a.codes);
    const ps = a.scales === null ? 0 : put(a.scales);
    const pz = a.zeros === null ? 0 : put(a.zeros);
    const pl = put(a.lut);
    const px = put(a.x);
    const po = k.heap.alloc(out.byteLength);
    ptrs.push(po);
    ex.gemv_lut_groups(pc, a.rows, a.cols, a.bits, pl, a.lutPerRow ? 2 ** a.bits : 0,
      ps, a.scales instanceof Uint8Array ? 1 : 0, pz, a.group, px, po);
    out.set(new Float32Array(k.memory.buffer, po, a.rows));
    return out;
  } finally {
    for (let i = ptrs.length - 1; i >= 0; i--) k.heap.free(ptrs[i]);
  }
}

/** The plain-TypeScript definition: the same f32 operations in the same order as the kernel. */
export function gemvLutGroupsReference(a: GemvLutGroupsArgs): Float32Array {
  if (a.codes instanceof WasmTensor) throw new LowbitError('E_ARG', 'gemvLutGroupsReference: codes must be a Uint8Array');
  const { ng, rowBytes, lutSize } = check(a);
  const f = Math.fround;
  const codes = a.codes;
  const out = a.out ?? new Float32Array(a.rows);
  const mask = lutSize - 1;
  const lane = new Float64Array(4);
  for (let r = 0; r < a.rows; r++) {
    const lutBase = a.lutPerRow ? r * lutSize : 0;
    let sum = 0;
    for (let g = 0; g < ng; g++) {
      const si = r * ng + g;
      const z = a.zeros ? a.zeros[si] : 0;
      const c0 = g * a.group;
      const c1 = Math.min(a.cols, c0 + a.group);
      lane.fill(0);
      for (let c = c0; c < c1; c++) {
        const bit = r * rowBytes * 8 + c * a.bits;
        const byte = bit >> 3;
        const word = codes[byte] | ((byte + 1 < codes.length ? codes[byte + 1] : 0) << 8);
        const v = a.lut[lutBase + ((word >> (bit & 7)) & mask)];
        const j = (c - c0) & 3;
        lane[j] = f(lane[j] + f(f(v - z) * a.x[c]));
      }
      const dot = f(f(f(lane[0] + lane[1]) + lane[2]) + lane[3]);
      let s = 1;
      if (a.scales instanceof Uint8Array) s = a.scales[si] === 0xff ? Number.NaN : 2 ** (a.scales[si] - 127);
      else if (a.scales) s = a.scales[si];
      sum = a.scales ? f(sum + f(s * dot)) : f(sum + dot);
    }
    out[r] = sum;
  }
  return out;
}

interface DecodeExports {
  dequant_lut_groups(codes: number, rows: number, cols: number, bits: number, lut: number, lutStride: number,
    scales: number, scaleKind: number, zeros: number, group: number, out: number): void;
  dequant_bcq(planes: number, alphas: number, rows: number, cols: number, bits: number, group: number, out: number): void;
}


/**
 * The matrix itself, [rows, cols] row-major: out[r, c] = scale(r,g)·(lut[code(r,c)] − zero(r,g)),
 * computed in f64 and rounded once to f32 (as @lowbit/formats' TypeScript decoders do). `x` is unused.
 */
export function dequantLutGroups(k: Kernels, a: Omit<GemvLutGroupsArgs, 'x' | 'out'>): Float32Array {
  check({ ...a, x: new Float32Array(a.cols) });
  const out = new Float32Array(a.rows * a.cols);
  if (out.length === 0) return out;
  const ex = k.exports as unknown as DecodeExports;
  return scoped(k, (put, alloc) => {
    const po = alloc(out.byteLength);
    ex.dequant_lut_groups(a.codes instanceof WasmTensor ? a.codes.ptr : put(a.codes), a.rows, a.cols, a.bits, put(a.lut), a.lutPerRow ? 2 ** a.bits : 0,
      a.scales === null ? 0 : put(a.scales), a.scales instanceof Uint8Array ? 1 : 0, a.zeros === null ? 0 : put(a.zeros), a.group, po);
    out.set(new Float32Array(k.memory.buffer, po, out.length));
    return out;
  });
}

/** Binary-coding planes to the matrix: out[r, c] = Σ_i ±alphas[r, g, i] (bit 1 of plane i = +1), f64 sum in plane order. */
export function dequantBcq(k: Kernels, planes: Uint8Array, alphas: Float32Array, rows: number, cols: number, bits: number, group: number): Float32Array {
  const fn = 'dequantBcq';
  if (![rows, cols].every((v) => Number.isInteger(v) && v >= 0)) throw new LowbitError('E_ARG', `${fn}: rows and cols must be non-negative integers`);
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new LowbitError('E_ARG', `${fn}: 1 to 8 bit-planes, got ${bits}`);
  if (!Number.isInteger(group) || group <= 0) throw new LowbitError('E_ARG', `${fn}: group size must be a positive integer, got ${group}`);
  const ng = Math.ceil(cols / group);
  if (!(planes instanceof Uint8Array) || planes.length !== bits * rows * Math.ceil(cols / 8)) throw new LowbitError('E_SHAPE', `${fn}: planes must be a Uint8Array of ${bits * rows * Math.ceil(cols / 8)} bytes`);
  if (!(alphas instanceof Float32Array) || alphas.length !== rows * ng * bits) throw new LowbitError('E_SHAPE', `${fn}: alphas must be a Float32Array of ${rows * ng * bits} values`);
  const out = new Float32Array(rows * cols);
  if (out.length === 0) return out;
  const ex = k.exports as unknown as DecodeExports;
  return scoped(k, (put, alloc) => {
    const po = alloc(out.byteLength);
    ex.dequant_bcq(put(planes), put(alphas), rows, cols, bits, group, po);
    out.set(new Float32Array(k.memory.buffer, po, out.length));
    return out;
  });
}

/** Arguments of a GEMV over any-precision nested codes: the top `bits` of `maxBits` bit-planes. */
export interface GemvBitplanesArgs {
  /** [maxBits][rows, ceil(cols/8)], plane 0 the most significant bit; bit c of a row's bytes is element c. */
  planes: Uint8Array | WasmTensor;
  rows: number;
  cols: number;
  maxBits: number;
  /** 1..maxBits: how many planes to read. */
  bits: number;
  /** [rows, 2^bits] values of the `bits`-bit model. */
  lut: Float32Array;
  x: Float32Array;
}

/**
 * Checks the arguments of an any-precision GEMV before any memory is touched. `lut` may be resident
 * (a WasmTensor), and with `batch` x may hold several vectors back to back.
 */
export function checkPlanes(fn: string, a: Omit<GemvBitplanesArgs, 'lut'> & { lut: Float32Array | WasmTensor }, batch = false): void {
  if (![a.rows, a.cols].every((v) => Number.isInteger(v) && v >= 0)) throw new LowbitError('E_ARG', `${fn}: rows and cols must be non-negative integers`);
  if (!Number.isInteger(a.maxBits) || a.maxBits < 1 || a.maxBits > 8) throw new LowbitError('E_ARG', `${fn}: maxBits must be 1 to 8, got ${a.maxBits}`);
  if (!Number.isInteger(a.bits) || a.bits < 1 || a.bits > a.maxBits) throw new LowbitError('E_ARG', `${fn}: bits must be 1 to ${a.maxBits}, got ${a.bits}`);
  const need = a.maxBits * a.rows * Math.ceil(a.cols / 8);
  const have = a.planes instanceof WasmTensor ? a.planes.byteLength : a.planes instanceof Uint8Array ? a.planes.length : -1;
  if (have < 0) throw new LowbitError('E_DTYPE', `${fn}: planes must be a Uint8Array or WasmTensor`);
  if (a.planes instanceof WasmTensor ? have < need : have !== need) throw new LowbitError('E_SHAPE', `${fn}: planes hold ${have} bytes, ${a.maxBits} planes of [${a.rows}, ${a.cols}] need ${need}`);
  const lutLen = a.lut instanceof WasmTensor ? a.lut.byteLength / 4 : a.lut instanceof Float32Array ? a.lut.length : -1;
  if (lutLen !== a.rows * 2 ** a.bits) throw new LowbitError('E_SHAPE', `${fn}: lut must hold ${a.rows * 2 ** a.bits} f32 values (rows × 2^bits), got ${lutLen}`);
  const xOk = a.x instanceof Float32Array && (batch ? a.x.length % Math.max(1, a.cols) === 0 : a.x.length === a.cols);
  if (!xOk) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${batch ? 'a multiple of ' : ''}${a.cols} values`);
}

/** The definition: the `bits`-bit codes gathered from the planes, then gemvLutGroupsReference (one group per row). */
export function gemvBitplanesReference(a: GemvBitplanesArgs): Float32Array {
  if (a.planes instanceof WasmTensor) throw new LowbitError('E_ARG', 'gemvBitplanesReference: planes must be a Uint8Array');
  checkPlanes('gemvBitplanesReference', a);
  const rpb = Math.ceil(a.cols / 8);
  const rowBytes = Math.ceil((a.cols * a.bits) / 8);
  const codes = new Uint8Array(a.rows * rowBytes);
  for (let r = 0; r < a.rows; r++) {
    for (let c = 0; c < a.cols; c++) {
      let code = 0;
      for (let b = 0; b < a.bits; b++) code = (code << 1) | ((a.planes[(b * a.rows + r) * rpb + (c >> 3)] >> (c & 7)) & 1);
      const bit = r * rowBytes * 8 + c * a.bits;
      for (let i = 0; i < a.bits; i++) if ((code >> i) & 1) codes[(bit + i) >> 3] |= 1 << ((bit + i) & 7);
    }
  }
  return gemvLutGroupsReference({ codes, rows: a.rows, cols: a.cols, bits: a.bits, lut: a.lut, lutPerRow: true, scales: null, zeros: null, group: Math.max(1, a.cols), x: a.x });
}
