import { LowbitError } from './errors.js';
import { type Kernels, scoped, WasmTensor } from './kernels.js';

interface Fp8Exports {
  gemv_mx_fp8(codes: number, rows: number, cols: number, e5m2: number, scales: number, x: number, out: number): number;
}

/**
 * MXFP8 GEMV (E4M3 or E5M2 codes one per byte, E8M0 scales per 32 along each row), decoding codes
 * by bit moves instead of a table: equal bit for bit to gemvLutGroups with that format's value
 * table, group 32 (test/mx-fp8.test.ts). Returns null where this kernel does not run (scalar
 * build, rows that are not whole 32-blocks): the caller then takes gemvLutGroups.
 */
export function gemvMxFp8(k: Kernels, a: { codes: Uint8Array | WasmTensor; rows: number; cols: number; e5m2: boolean; scales: Uint8Array; x: Float32Array; out?: Float32Array }): Float32Array | null {
  const fn = 'gemvMxFp8';
  const { rows, cols } = a;
  if (![rows, cols].every((v) => Number.isInteger(v) && v >= 0)) throw new LowbitError('E_ARG', `${fn}: rows and cols must be non-negative integers`);
  if (cols % 32 !== 0) return null;
  const have = a.codes instanceof WasmTensor ? a.codes.byteLength : a.codes instanceof Uint8Array ? a.codes.length : -1;
  if (have < 0) throw new LowbitError('E_DTYPE', `${fn}: codes must be a Uint8Array or WasmTensor`);
  if (a.codes instanceof WasmTensor && a.codes.freed) throw new LowbitError('E_ARG', `${fn}: codes is a freed WasmTensor`);
  if (a.codes instanceof WasmTensor ? have < rows * cols : have !== rows * cols) throw new LowbitError('E_SHAPE', `${fn}: codes hold ${have} bytes, [${rows}, ${cols}] needs ${rows * cols}`);
  if (!(a.scales instanceof Uint8Array) || a.scales.length !== (rows * cols) / 32) throw new LowbitError('E_SHAPE', `${fn}: scales must be ${(rows * cols) / 32} E8M0 bytes`);
  if (!(a.x instanceof Float32Array) || a.x.length !== cols) throw new LowbitError('E_SHAPE', `${fn}: x must be a Float32Array of ${cols} values`);
  if (a.out !== undefined && (!(a.out instanceof Float32Array) || a.out.length !== rows)) throw new LowbitError('E_SHAPE', `${fn}: out must be a Float32Array of ${rows} values`);
  const out = a.out ?? new Float32Array(rows);
  if (rows === 0) return out;
  const ex = k.exports as unknown as Fp8Exports;
  return scoped(k, (put, alloc) => {
    const po = alloc(rows * 4);
    const pc = a.codes instanceof WasmTensor ? a.codes.ptr : put(a.codes as Uint8Array);
    const rc = ex.gemv_mx_fp8(pc, rows, cols, a.e5m2 ? 1 : 0, put(a.scales), put(a.x), po);
    if (rc !== 0) return null;
    out.set(new Float32Array(k.memory.buffer, po, rows));
    return out;
  });
}
