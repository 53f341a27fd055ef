// Activations are quantized to int8 before the integer-weight kernels, as llama.cpp does for its
// quantized dot products: the inner loop then multiplies small integers (one SIMD instruction per 16
// weights with relaxed SIMD) instead of widening every nibble to f32.
// Rounding is to nearest-even (wasm `f32.nearest`), scale = amax / 127 so codes stay in [-127, 127].
import { wholeToI32 } from './f32';

// The f32 value of the binary16 nearest to v >= 0 (ties to even; +Inf past 65504): the value llama.cpp
// keeps as block_q8_0's scale. Normals: round the f32 mantissa to 10 bits in integer arithmetic;
// f16 subnormals (v < 2^-14) are whole multiples of 2^-24, v·2^24 rounded (exact power-of-two scalings).
// @ts-ignore: decorator
@inline export function roundToF16(v: f32): f32 {
  if (v < reinterpret<f32>(0x38800000)) return nearest<f32>(v * reinterpret<f32>(0x4b800000)) * reinterpret<f32>(0x33800000);
  const b = reinterpret<u32>(v);
  const r = reinterpret<f32>((b + 0xfff + ((b >> 13) & 1)) & 0xffffe000);
  return r > 65504 ? Infinity : r;
}

// Quantize n values starting at x into int8 codes at q with one scale (returned) per span.
// Returns -1 when the span has NaN/Inf. `ggml`: as llama.cpp's AVX quantize_row_q8_0, codes are
// round(x·(127/amax)) and the scale is amax/127 rounded to f16 (block_q8_0 stores it so; matching it
// is what makes lowbit's packed forward agree with llama.cpp's to a few ulps, not to ~1e-2);
// otherwise codes are round(x·(1/d)) with the f32 scale d = amax/127.
// @ts-ignore: decorator
@inline function quantSpan(x: usize, n: i32, q: usize, sumOut: usize, ggml: bool = false): f32 {
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (!isFinite<f32>(v)) return -1;
    amax = max<f32>(amax, abs<f32>(v));
  }
  const d: f32 = ggml ? roundToF16(amax / 127) : amax / 127;
  const id: f32 = ggml ? (amax != 0 ? <f32>127 / amax : 0) : d != 0 ? <f32>1 / d : 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const c = <i32>nearest<f32>(load<f32>(x + (<usize>i << 2)) * id);
    store<i8>(q + <usize>i, <i8>c);
    sum += c;
  }
  store<i32>(sumOut, sum);
  return d;
}

// For the int-k group kernel: one scale per weight group (`group` a multiple of 32). Two layouts of the
// same codes, one per SIMD path, so that neither inner loop shuffles:
//  - xq (i8, 32 B per 32-block): [x0, x2, ..., x30, x1, x3, ..., x31], meeting the low nibbles (even
//    elements under int-k packing) and the high nibbles (odd elements) of 16 packed bytes;
//  - xq16 (i16, 64 B per block, only when xq16 != 0): four planes p_k[j] = s_k·x[4j + k] with
//    s = (256, 16, 1, 256), meeting the nibble k of each 16-bit lane of the packed bytes.
// Then ngroups f32 scales and ngroups i32 code sums per input vector.
export function quantize_act_groups(x: usize, cols: i32, batch: i32, group: i32, xq: usize, xq16: usize, xs: usize, xsum: usize, tmp: usize): i32 {
  const nblk = (cols + 31) >> 5;
  const ngroups = (cols + group - 1) / group;
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>b * <usize>cols << 2);
    const qb = xq + <usize>b * (<usize>nblk << 5);
    const qb16 = xq16 + <usize>b * (<usize>nblk << 6);
    for (let g = 0; g < ngroups; g++) {
      const c0 = g * group;
      const n = min<i32>(group, cols - c0);
      const d = quantSpan(xb + (<usize>c0 << 2), n, tmp, xsum + ((<usize>b * <usize>ngroups + <usize>g) << 2));
      if (d < 0) return 1;
      store<f32>(xs + ((<usize>b * <usize>ngroups + <usize>g) << 2), d);
      const nb = (n + 31) >> 5;
      for (let k = 0; k < nb; k++) {
        const dst = qb + <usize>(c0 + (k << 5));
        const dst16 = qb16 + (<usize>(c0 + (k << 5)) << 1);
        for (let j = 0; j < 32; j++) {
          const e = (k << 5) + j;
          const c: i8 = e < n ? load<i8>(tmp + <usize>e) : 0;
          store<i8>(dst + <usize>(((j & 1) << 4) + (j >> 1)), c);
          // Plane scales 256, 16, 1, 256 meet the in-place nibble masks of the plain kernel (q4.ts).
          const k4 = j & 3;
          const sh = k4 == 1 ? 4 : k4 == 2 ? 0 : 8;
          if (xq16 != 0) store<i16>(dst16 + (<usize>((k4 << 3) + (j >> 2)) << 1), <i16>(<i32>c << sh));
        }
      }
    }
  }
  return 0;
}

// For ggml block kernels: one scale per 32 values in natural order (block_q8_0 activations).
// Block-major: block k of vector b is entry k·batch + b (32 codes, one f32 scale, one i32 code sum),
// so the prefill kernel, which holds one weight block while it runs over the batch, reads the
// batch's codes for that block contiguously. When xq16 != 0, also
// four i16 planes per block (64 B) for the plain-SIMD Q4_0/Q4_1 kernel: read as 16-bit lanes, lane i
// of a block's 16 packed bytes holds elements 2i, 2i+16, 2i+1, 2i+17 in its four nibbles, so
// plane 0 = 256·x[2i], plane 1 = 16·x[2i+16], plane 2 = x[2i+1], plane 3 = 256·x[2i+17]
// (the factors meet the in-place masks of ggml.ts; every product comes out as 256·u·x).
// quantSpan(x, 32, q, sumOut, true) in SIMD, bit for bit: the same f32 amax (max of |x| is exact in
// any order), scale and reciprocal, and f32x4.nearest is the scalar nearest lane by lane. NaN/Inf are
// caught by |x| < Inf (false for both). Codes fit i8, so the saturating narrows are exact.
// @ts-ignore: decorator
@inline function quantBlock32Ggml(x: usize, q: usize, sumOut: usize): f32 {
  const inf = f32x4.splat(Infinity);
  let ok = i32x4.splat(-1);
  let m = f32x4.splat(0);
  for (let i: usize = 0; i < 128; i += 16) {
    const a = f32x4.abs(v128.load(x + i));
    ok = v128.and(ok, f32x4.lt(a, inf));
    m = f32x4.pmax(m, a);
  }
  if (!i32x4.all_true(ok)) return -1;
  m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
  const amax = f32x4.extract_lane(f32x4.pmax(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2)), 0);
  const d: f32 = roundToF16(amax / 127);
  const id = f32x4.splat(amax != 0 ? <f32>127 / amax : 0);
  let sum = i32x4.splat(0);
  for (let i: usize = 0; i < 128; i += 64) {
    const c0 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(x + i), id)));
    const c1 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(x + i, 16), id)));
    const c2 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(x + i, 32), id)));
    const c3 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(x + i, 48), id)));
    sum = i32x4.add(sum, i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)));
    v128.store(q + (i >> 2), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3)));
  }
  store<i32>(sumOut, i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3));
  return d;
}

export function quantize_act_q8(x: usize, cols: i32, batch: i32, xq: usize, xq16: usize, xs: usize, xsum: usize): i32 {
  const nblk = (cols + 31) >> 5;
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>b * <usize>cols << 2);
    for (let k = 0; k < nblk; k++) {
      const n = min<i32>(32, cols - (k << 5));
      const idx = <usize>k * <usize>batch + <usize>b;
      const dst = xq + (idx << 5);
      const d = ASC_FEATURE_SIMD && n == 32
        ? quantBlock32Ggml(xb + (<usize>(k << 5) << 2), dst, xsum + (idx << 2))
        : quantSpan(xb + (<usize>(k << 5) << 2), n, dst, xsum + (idx << 2), true);
      if (d < 0) return 1;
      for (let j = n; j < 32; j++) store<i8>(dst + <usize>j, 0);
      store<f32>(xs + (idx << 2), d);
      if (xq16 != 0) {
        const dst16 = xq16 + (idx << 6);
        for (let j = 0; j < 32; j++) {
          const t = j & 1;
          const plane = (j < 16 ? 0 : 1) + (t << 1);
          const sh = plane == 0 || plane == 3 ? 8 : plane == 1 ? 4 : 0;
          store<i16>(dst16 + (<usize>((plane << 3) + ((j & 15) >> 1)) << 1), <i16>(<i32>load<i8>(dst + <usize>j) << sh));
        }
      }
    }
  }
  return 0;
}
