import { LowbitError } from './errors.js';
import { type Kernels, scoped } from './kernels.js';

/** The WASM half of @lowbit/formats' FCQ decoder (dequantizeFcqWasm there). */

interface FcqExports {
  fcq_decode(stream: number, len: number, freqs: number, nl: number, n: number, levels: number, out: number, scratch: number): number;
}

/**
 * Decodes n values from a static rANS stream of level indices (12-bit frequencies `freqs`, summing
 * to 4096) straight to their f32 `levels`. A stream that runs out or does not end in the encoder's
 * initial state throws E_TRUNCATED / E_BAD_FILE, as the TypeScript decoder does.
 */
export function decodeFcqStream(k: Kernels, stream: Uint8Array, freqs: Uint16Array, levels: Float32Array, n: number): Float32Array {
  const fn = 'decodeFcqStream';
  const nl = freqs.length;
  if (nl < 1 || nl > 256 || levels.length !== nl) throw new LowbitError('E_SHAPE', `${fn}: ${nl} frequencies for ${levels.length} levels (1..256, equal)`);
  let sum = 0;
  for (const f of freqs) sum += f;
  if (sum !== 4096) throw new LowbitError('E_FORMAT', `${fn}: frequencies sum to ${sum}, expected 4096`);
  if (!Number.isInteger(n) || n < 0) throw new LowbitError('E_ARG', `${fn}: count must be a non-negative integer, got ${n}`);
  if (stream.length < 4) throw new LowbitError('E_TRUNCATED', `${fn}: stream of ${stream.length} bytes is shorter than the 4-byte state`);
  if (stream.length > 4 + 2 * n) throw new LowbitError('E_BAD_FILE', `${fn}: ${stream.length} bytes is more than ${n} symbols can use`);
  let fmax = 0;
  for (const f of freqs) fmax = Math.max(fmax, f);
  if (fmax === 4096 && n > 0) throw new LowbitError('E_FORMAT', `${fn}: a symbol of frequency 4096 (probability 1) bounds no count`);
  const minBits = 12 - Math.log2(fmax);
  if (minBits > 0 && n * minBits > 1.1 * 8 * stream.length + 64) throw new LowbitError('E_BAD_FILE', `${fn}: ${n} symbols cannot fit in ${stream.length} bytes`);
  const ex = k.exports as unknown as FcqExports;
  return scoped(k, (put, alloc) => {
    const ps = put(stream);
    const pf = put(freqs);
    const pl = put(levels);
    const po = alloc(Math.max(4, n * 4));
    const scratch = alloc(4096 + 4 * (nl + 1));
    const rc = ex.fcq_decode(ps, stream.length, pf, nl, n, pl, po, scratch);
    if (rc === 1) throw new LowbitError('E_TRUNCATED', `${fn}: stream ends before ${n} symbols`);
    if (rc !== 0) throw new LowbitError('E_BAD_FILE', `${fn}: stream does not end in the initial state: corrupted or wrong count`);
    return new Float32Array(k.memory.buffer, po, n).slice();
  });
}
