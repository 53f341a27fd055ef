// IEEE binary16 and bfloat16 conversions, the one definition for every lowbit package (ggml block
// scales, safetensors F16/BF16, GPTQ scales, INT-k group scales). Round-to-nearest-even, as ggml's
// GGML_FP32_TO_FP16 and GGML_FP32_TO_BF16 do, so quantized files are bit-identical to llama.cpp's.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bits of v rounded to f32, as a signed i32: how f32 arguments reach the row kernels (threads pass i32s). */
export function f32Bits(v: number): number {
  f32[0] = v;
  return u32[0] | 0;
}

/** binary16 bits → value. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** value (first rounded to f32) → binary16 bits, to nearest even (overflow → ±Inf, NaN stays NaN). */
export function f32ToF16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half: shift the implicit-1 mantissa right and round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  const rem = mant & 0x1fff;
  let h = (e << 10) | (mant >>> 13);
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // carry into the exponent is the right answer
  return sign | h;
}

/** Round half to even, as wasm's f32.nearest (Math.round sends ties up). */
export function roundEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The binary16 value nearest to v >= 0 (ties to even, +Inf past 65504), as a number: rounds v itself,
 * not v first rounded to f32 as f32ToF16 does (the two agree on every f32 input).
 */
export function roundToF16(v: number): number {
  if (v < 2 ** -14) return roundEven(v * 2 ** 24) * 2 ** -24;
  const e = Math.floor(Math.log2(v));
  // log2 may land one off near powers of two; fix the exponent so that 2^e <= v < 2^(e+1).
  const ex = v < 2 ** e ? e - 1 : v >= 2 ** (e + 1) ? e + 1 : e;
  const r = roundEven(v * 2 ** (10 - ex)) * 2 ** (ex - 10);
  return r > 65504 ? Number.POSITIVE_INFINITY : r;
}

/** bfloat16 bits → value. */
export function bf16ToF32(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** value (first rounded to f32) → bfloat16 bits, to nearest even (NaN stays a quiet NaN). */
export function f32ToBf16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 64) & 0xffff; // quiet NaN
  return ((x + (0x7fff + ((x >>> 16) & 1))) >>> 16) & 0xffff;
}
