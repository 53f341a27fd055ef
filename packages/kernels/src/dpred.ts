import { LowbitError } from './errors.js';
import { type Kernels, scoped } from './kernels.js';

/** The WASM half of @lowbit/formats' DPRed decoder (decodeDpredWasm there). */

interface DpredExports {
  dpred_decode(stream: number, sb: number, rows: number, cols: number, group: number, scales: number, out: number): number;
}

/**
 * Decodes a DPRed group stream (per group of `group` values along a row: a 4-bit width p, then
 * p-bit two's-complement codes, LSB first) straight to code · scales[row] as f32. A stream that ends
 * inside a group throws E_TRUNCATED, 8 or more bits left over E_FORMAT, as the TypeScript reader does.
 */
export function decodeDpredStream(k: Kernels, stream: Uint8Array, rows: number, cols: number, group: number, scales: Float32Array): Float32Array {
  const fn = 'decodeDpredStream';
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v < 0) throw new LowbitError('E_ARG', `${fn}: ${name} must be a non-negative integer, got ${v}`);
  }
  if (!Number.isInteger(group) || group < 1 || group > 65535) throw new LowbitError('E_ARG', `${fn}: group must be 1..65535, got ${group}`);
  if (scales.length !== rows) throw new LowbitError('E_SHAPE', `${fn}: ${rows} rows need ${rows} scales, got ${scales.length}`);
  const n = rows * cols;
  // every group holds at least its 4-bit header: a stream too short for them is refused before allocating
  if (rows * Math.ceil(cols / group) * 4 > stream.length * 8) throw new LowbitError('E_TRUNCATED', `${fn}: [${rows}, ${cols}] in groups of ${group} cannot fit in ${stream.length} bytes`);
  if (n > 2 ** 29) throw new LowbitError('E_ARG', `${fn}: ${n} values is more than one WASM call decodes`);
  const ex = k.exports as unknown as DpredExports;
  return scoped(k, (put, alloc) => {
    // 4 bytes past the stream: the bit window reads a u32 at the last field's byte
    const ps = alloc(stream.length + 8);
    const heap = new Uint8Array(k.memory.buffer, ps, stream.length + 8);
    heap.set(stream);
    heap.fill(0, stream.length);
    const pa = put(scales);
    const po = alloc(Math.max(4, n * 4));
    const rc = ex.dpred_decode(ps, stream.length, rows, cols, group, pa, po);
    if (rc === 1) throw new LowbitError('E_TRUNCATED', `${fn}: group stream ends inside a group (${stream.length} bytes)`);
    if (rc !== 0) throw new LowbitError('E_FORMAT', `${fn}: stream bits left over after [${rows}, ${cols}]`);
    return new Float32Array(k.memory.buffer, po, n).slice();
  });
}
