import { LowbitError } from './errors.js';
import { type Kernels, scoped } from './kernels.js';

/** The WASM half of @lowbit/formats' sequential-encryption decoder (decodeSeqencWasm there). */

interface SeqencExports {
  seqenc_plane(inputs: number, n: number, nIn: number, nOut: number, nS: number, block: number, cols: number, patches: number, np: number, codes: number, b: number, scratch: number): void;
  seqenc_values(codes: number, mask: number, n: number, bits: number, scale: number, out: number): void;
  unpack_bits(src: number, n: number, dst: number): void;
  rans_decode_u8(stream: number, len: number, freqs: number, nl: number, n: number, out: number, scratch: number): number;
}

/** One bit-plane: the shift-register network's input bits and the positions to flip. */
export interface SeqencPlaneArgs {
  inputs: Uint8Array;
  /** Ascending positions < n. */
  patches: Uint32Array;
  /** (nS+1)·nIn network columns (seqencNetwork of the plane's seed). */
  columns: Uint32Array;
}

/** The keep mask: a bitmap (LSB first), or a static rANS stream of one 0/1 symbol per position. */
export type SeqencMaskArgs = { bitmap: Uint8Array } | { rans: Uint8Array; freqs: Uint16Array };

/**
 * Decodes a sequentially encrypted tensor: plane b sets bit b of every position's code, kept positions
 * become the f32 bit pattern (bits 32) or the sign-extended code times `scale`, pruned ones +0.
 * A mask stream that runs out or does not end in the initial state throws E_TRUNCATED / E_BAD_FILE.
 */
export function decodeSeqencPlanes(k: Kernels, o: { n: number; nIn: number; nOut: number; nS: number; block: number; bits: number; scale: number; mask: SeqencMaskArgs; planes: SeqencPlaneArgs[] }): Float32Array {
  const fn = 'decodeSeqencPlanes';
  const { n, nIn, nOut, nS, block, bits } = o;
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 28) throw new LowbitError('E_ARG', `${fn}: n must be 0..2^28 positions, got ${n}`);
  if (!Number.isInteger(nOut) || nOut < 1 || nOut > 32 || !Number.isInteger(nIn) || nIn < 1 || nIn > 8) throw new LowbitError('E_ARG', `${fn}: need nIn 1..8 and nOut 1..32, got ${nIn}/${nOut}`);
  if (!Number.isInteger(nS) || nS < 0 || nS * nIn > 16) throw new LowbitError('E_ARG', `${fn}: nS·nIn must be 0..16, got nS ${nS}`);
  if (!Number.isInteger(block) || block < 1) throw new LowbitError('E_ARG', `${fn}: block must be a positive integer, got ${block}`);
  if (bits !== 32 && (!Number.isInteger(bits) || bits < 1 || bits > 16)) throw new LowbitError('E_ARG', `${fn}: bits must be 1..16 or 32, got ${bits}`);
  if (o.planes.length !== bits) throw new LowbitError('E_SHAPE', `${fn}: ${o.planes.length} planes for ${bits} bits`);
  const ib = Math.ceil((Math.ceil(n / nOut) * nIn) / 8);
  for (const [b, p] of o.planes.entries()) {
    if (p.inputs.length !== ib) throw new LowbitError('E_SHAPE', `${fn}: plane ${b}: ${p.inputs.length} input bytes, ${n} positions at ${nIn}/${nOut} need ${ib}`);
    if (p.columns.length !== (nS + 1) * nIn) throw new LowbitError('E_SHAPE', `${fn}: plane ${b}: ${p.columns.length} network columns, need ${(nS + 1) * nIn}`);
    for (const q of p.patches) if (q >= n) throw new LowbitError('E_SHAPE', `${fn}: plane ${b}: patch position ${q} is past ${n} positions`);
  }
  const m = o.mask;
  if ('bitmap' in m && m.bitmap.length !== Math.ceil(n / 8)) throw new LowbitError('E_SHAPE', `${fn}: mask bitmap of ${m.bitmap.length} bytes for ${n} positions`);
  if ('rans' in m) {
    if (m.freqs.length !== 2 || m.freqs[0] + m.freqs[1] !== 4096) throw new LowbitError('E_FORMAT', `${fn}: mask frequencies must be two summing to 4096`);
    if (m.rans.length < 4) throw new LowbitError('E_TRUNCATED', `${fn}: mask stream of ${m.rans.length} bytes is shorter than the 4-byte state`);
  }
  const ex = k.exports as unknown as SeqencExports;
  return scoped(k, (put, alloc) => {
    const pc = alloc(Math.max(4, 4 * n));
    new Uint32Array(k.memory.buffer, pc, n).fill(0);
    const scratch = alloc(4 * ((1 << nIn) + (1 << (nS * nIn))) + 4096 + 12);
    for (const [b, p] of o.planes.entries()) {
      const pi = alloc(ib + 4);
      const heap = new Uint8Array(k.memory.buffer, pi, ib + 4);
      heap.set(p.inputs);
      heap.fill(0, ib);
      const pp = put(p.patches);
      const pcols = put(p.columns);
      ex.seqenc_plane(pi, n, nIn, nOut, nS, block, pcols, pp, p.patches.length, pc, b, scratch);
    }
    const pm = alloc(Math.max(1, n));
    if ('bitmap' in m) ex.unpack_bits(put(m.bitmap), n, pm);
    else {
      const rc = ex.rans_decode_u8(put(m.rans), m.rans.length, put(m.freqs), 2, n, pm, scratch);
      if (rc === 1) throw new LowbitError('E_TRUNCATED', `${fn}: mask stream ends before ${n} positions`);
      if (rc !== 0) throw new LowbitError('E_BAD_FILE', `${fn}: mask stream does not end in the initial state: corrupted or wrong count`);
    }
    ex.seqenc_values(pc, pm, n, bits, o.scale, pc);
    return new Float32Array(k.memory.buffer, pc, n).slice();
  });
}
