import { LowbitError } from '@lowbit/kernels';

/**
 * A static, byte-renormalised rANS coder (Duda 2013; the byte-wise variant of Giesen's ryg_rans)
 * over an alphabet of up to 256 symbols. The model is a table of frequencies summing to
 * 2^RANS_PRECISION, stored next to the stream; the coder reaches the cross-entropy of the data
 * under that table to within a few bytes (the 4-byte final state).
 */

export const RANS_PRECISION = 12;
const M = 1 << RANS_PRECISION;
/** Lower bound of the normalised state interval [L, 256·L): a 32-bit state stays below 2^31. */
const L = 1 << 23;

/** Symbol frequencies normalised to sum to 2^RANS_PRECISION, every present symbol at least 1, none at 2^RANS_PRECISION. */
export function normalizeFrequencies(counts: ArrayLike<number>): Uint16Array {
  const k = counts.length;
  if (k < 2 || k > 256) throw new LowbitError('E_ARG', `normalizeFrequencies: alphabet of 2 to 256 symbols, got ${k}`);
  let total = 0;
  for (let s = 0; s < k; s++) {
    if (!Number.isInteger(counts[s]) || counts[s] < 0) throw new LowbitError('E_ARG', `normalizeFrequencies: count ${s} is ${counts[s]}`);
    total += counts[s];
  }
  const f = new Uint16Array(k);
  if (total === 0) return f;
  let sum = 0;
  for (let s = 0; s < k; s++) {
    if (counts[s] === 0) continue;
    f[s] = Math.max(1, Math.floor((counts[s] * M) / total));
    sum += f[s];
  }
  // Hand the rounding error to (or take it from) the symbols where it costs least: the largest
  // counts, whose code length changes least per unit of frequency.
  const order = Array.from({ length: k }, (_, s) => s).filter((s) => counts[s] > 0).sort((a, b) => counts[b] - counts[a] || a - b);
  let i = 0;
  while (sum < M) {
    f[order[i % order.length]]++;
    sum++;
    i++;
  }
  // No symbol may have probability 1: a stream of one repeated symbol would then cost nothing, and
  // its 4-byte state could claim any count; 1/4096 to a neighbour costs 0.00035 bits per symbol.
  if (order.length === 1) {
    const s = order[0];
    f[s] = M - 1;
    f[s === 0 ? 1 : s - 1] = 1;
    return f;
  }
  i = 0;
  let stuck = 0;
  while (sum > M) {
    const s = order[i % order.length];
    if (f[s] > 1) {
      f[s]--;
      sum--;
      stuck = 0;
    } else if (++stuck > order.length) {
      break; // cannot happen for k <= 256 < M, kept so a bug cannot loop forever
    }
    i++;
  }
  return f;
}

function cumulative(freqs: Uint16Array, fn: string): Uint32Array {
  const cum = new Uint32Array(freqs.length + 1);
  for (let s = 0; s < freqs.length; s++) cum[s + 1] = cum[s] + freqs[s];
  if (cum[freqs.length] !== M) throw new LowbitError('E_FORMAT', `${fn}: frequencies sum to ${cum[freqs.length]}, expected ${M}`);
  return cum;
}

/** rANS-encodes `symbols` (each < freqs.length, with a non-zero frequency) under `freqs`. */
export function ransEncode(symbols: Uint8Array, freqs: Uint16Array): Uint8Array {
  const n = symbols.length;
  const cum = cumulative(freqs, 'ransEncode');
  // Bytes come out last symbol first; written backwards into a buffer sized for the worst case
  // (each symbol at frequency 1 costs 12 bits, at most 2 bytes of output, plus the 4-byte state).
  let cap = 2 * n + 8;
  let buf = new Uint8Array(cap);
  let pos = cap;
  let x = L;
  for (let i = n - 1; i >= 0; i--) {
    const s = symbols[i];
    const f = s < freqs.length ? freqs[s] : 0;
    if (f === 0) throw new LowbitError('E_ARG', `ransEncode: symbol ${i} (${s}) has zero frequency`);
    const xMax = (L >>> RANS_PRECISION) * 256 * f;
    while (x >= xMax) {
      if (pos === 0) {
        const bigger = new Uint8Array(cap * 2);
        bigger.set(buf, cap);
        pos = cap;
        cap *= 2;
        buf = bigger;
      }
      buf[--pos] = x & 0xff;
      x = x >>> 8;
    }
    x = Math.floor(x / f) * M + (x % f) + cum[s];
  }
  if (pos < 4) {
    const bigger = new Uint8Array(cap + 8);
    bigger.set(buf, 8);
    pos += 8;
    buf = bigger;
  }
  for (let b = 0; b < 4; b++) buf[--pos] = (x >>> (8 * b)) & 0xff; // big-endian: the decoder reads it first
  return buf.slice(pos);
}

/**
 * Decodes `n` symbols. The stream must be consumed exactly and end in the encoder's initial
 * state: anything else (truncation, a flipped byte, a wrong count) throws E_BAD_FILE.
 */
export function ransDecode(stream: Uint8Array, freqs: Uint16Array, n: number): Uint8Array {
  const fn = 'ransDecode';
  const cum = cumulative(freqs, fn);
  if (!Number.isInteger(n) || n < 0) throw new LowbitError('E_ARG', `${fn}: count must be a non-negative integer, got ${n}`);
  if (stream.length < 4) throw new LowbitError('E_TRUNCATED', `${fn}: stream of ${stream.length} bytes is shorter than the 4-byte state`);
  // Each symbol reads at most 2 bytes, so a count far beyond the stream is rejected before allocating.
  if (stream.length > 4 + 2 * n) throw new LowbitError('E_BAD_FILE', `${fn}: ${stream.length} bytes is more than ${n} symbols can use`);
  // Each symbol costs at least log2(2^12 / max frequency) bits, so the stream length also bounds
  // the count from above before n bytes are allocated (10% slack for rANS rounding, 64 bits of state).
  let fmax = 0;
  for (const f of freqs) fmax = Math.max(fmax, f);
  if (fmax === M && n > 0) throw new LowbitError('E_FORMAT', `${fn}: a symbol of frequency ${M} (probability 1) bounds no count`);
  const minBits = RANS_PRECISION - Math.log2(Math.max(1, fmax));
  if (minBits > 0 && n * minBits > 1.1 * 8 * stream.length + 64) throw new LowbitError('E_BAD_FILE', `${fn}: ${n} symbols cannot fit in ${stream.length} bytes`);
  const slot = new Uint8Array(M);
  for (let s = 0; s < freqs.length; s++) slot.fill(s, cum[s], cum[s + 1]);
  let x = (stream[0] << 24 >>> 0) + (stream[1] << 16) + (stream[2] << 8) + stream[3];
  let pos = 4;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    if (x < L) throw new LowbitError('E_BAD_FILE', `${fn}: state out of range at symbol ${i} (corrupted stream)`);
    const r = x & (M - 1);
    const s = slot[r];
    out[i] = s;
    x = freqs[s] * Math.floor(x / M) + r - cum[s];
    while (x < L) {
      if (pos >= stream.length) throw new LowbitError('E_TRUNCATED', `${fn}: stream ends at symbol ${i} of ${n}`);
      x = x * 256 + stream[pos++];
    }
  }
  if (pos !== stream.length || x !== L) {
    throw new LowbitError('E_BAD_FILE', `${fn}: stream does not end in the initial state (${stream.length - pos} bytes left): corrupted or wrong count`);
  }
  return out;
}

/** Empirical (order-0) entropy of the counts, in bits per symbol. */
export function entropyBits(counts: ArrayLike<number>): number {
  let total = 0;
  for (let s = 0; s < counts.length; s++) total += counts[s];
  if (total === 0) return 0;
  let h = 0;
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) h -= (counts[s] / total) * Math.log2(counts[s] / total);
  return h;
}

/** Code length in bits of data with `counts` under the model `freqs` (the cross-entropy times n). */
export function crossEntropyBits(counts: ArrayLike<number>, freqs: Uint16Array): number {
  let b = 0;
  for (let s = 0; s < counts.length; s++) if (counts[s] > 0) b += counts[s] * (RANS_PRECISION - Math.log2(freqs[s]));
  return b;
}
