// IEEE binary16, the storage type of INT-k group scales (as in GPTQ checkpoints and ggml's blocks).
// fp16 rather than bf16: weight-group scales of LLMs lie far inside fp16's range (2^-24 .. 65504),
// where its 11-bit significand rounds a scale by at most 2^-11 relative, 8 times finer than bf16's
// 2^-8; bf16's wider exponent range buys nothing for them. A leaf module.
import { LowbitError, f16ToF32, f32ToF16, roundToF16 } from '@lowbit/kernels';

/** The largest finite binary16 value. */
export const F16_MAX = 65504;
/** The smallest positive binary16 value (a subnormal). */
export const F16_MIN = 2 ** -24;

/**
 * A group scale s > 0 as it is stored: rounded to the nearest binary16 (ties to even), then kept in
 * [2^-24, 65504] so it stays a positive finite scale (a group whose range rounds below 2^-24 decodes
 * within 2^-24·2^(k−1) of its values; one past 65504 saturates its codes instead of becoming Inf).
 * Encoders round the scale first and choose codes against it, so rounding error is compensated
 * where an algorithm can (GPTQ) and decoding gives exactly the values the encoder saw.
 */
export function f16Scale(s: number): number {
  const r = roundToF16(s);
  return r === 0 ? F16_MIN : Math.min(r, F16_MAX);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Whether v is exactly a finite binary16 value (so fp16 storage keeps it): an f32 at most 65504 whose
 * significand fits fp16's 10 bits (the low 13 of f32's 23 are zero), or below 2^-14 a whole multiple
 * of 2^-24 (fp16's subnormals). Bit tests only: every stored scale passes here on load.
 */
export function isF16(v: number): boolean {
  if (Math.fround(v) !== v) return false; // NaN, or not even an f32
  const a = Math.abs(v);
  if (a > F16_MAX) return false;
  if (a < 2 ** -14) return Number.isInteger(a * 2 ** 24);
  f32[0] = a;
  return (u32[0] & 0x1fff) === 0;
}

/** The binary16 bits of a value that is exactly a binary16 (`isF16`); anything else throws. */
export function f16Bits(v: number): number {
  if (!isF16(v)) throw new LowbitError('E_ARG', `f16Bits: ${v} is not exactly a finite binary16 value`);
  // an exact binary16 value is exact in f32 too, so kernels' one f16 encoder gives its bits unrounded
  return f32ToF16(v);
}

/** binary16 bits → value. */
export const f16Value: (h: number) => number = f16ToF32;
