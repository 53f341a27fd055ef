import { LowbitError } from '@lowbit/kernels';
import { roundEven } from './round.js';

/** Two's-complement k-bit integers, 2 <= k <= 8: the element grid of INT-k quantization. */
export function intRange(bits: number): { min: number; max: number } {
  checkBits(bits);
  return { min: -(2 ** (bits - 1)), max: 2 ** (bits - 1) - 1 };
}

export function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) throw new LowbitError('E_ARG', `integer formats have 2 to 8 bits, got ${bits}`);
}

/** Nearest-even integer, clamped to the k-bit range; the code is the low k bits of two's complement. */
export function encodeInt(bits: number, v: number): number {
  if (Number.isNaN(v)) throw new LowbitError('E_NAN', `int${bits} has no NaN: cannot encode NaN`);
  const { min, max } = intRange(bits);
  const q = Math.min(max, Math.max(min, roundEven(v)));
  return q & ((1 << bits) - 1);
}

export function decodeInt(bits: number, code: number): number {
  const sign = 1 << (bits - 1);
  return (code & (sign - 1)) - (code & sign);
}
