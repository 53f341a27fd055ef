// Activations are quantized to int8 before the integer-weight kernels, as llama.cpp does for its
// quantized dot products: the inner loop then multiplies small integers (one SIMD instruction per 16
// weights with relaxed SIMD) instead of widening every nibble to f32.
// Rounding is to nearest-even (wasm `f32.nearest`), scale = amax / 127 so codes stay in [-127, 127].

// Quantize n values starting at x into int8 codes at q with one scale (returned) per span.
// Writes `pad` zero codes after the n values. Returns -1 when the span has NaN/Inf.
// @ts-ignore: decorator
@inline function quantSpan(x: usize, n: i32, q: usize, sumOut: usize): f32 {
  let amax: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (!isFinite<f32>(v)) return -1;
    amax = max<f32>(amax, abs<f32>(v));
  }
  const d: f32 = amax / 127;
  const id: f32 = d != 0 ? <f32>1 / d : 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const c = <i32>nearest<f32>(load<f32>(x + (<usize>i << 2)) * id);
    store<i8>(q + <usize>i, <i8>c);
    sum += c;
  }
  store<i32>(sumOut, sum);
  return d;
}

// For the int-k group kernel: one scale per weight group (`group` a multiple of 32) and, inside each
// 32-block, codes reordered [x0, x2, ..., x30, x1, x3, ..., x31] so that the low nibbles (even
// elements, int-k packing) and high nibbles (odd elements) each meet one contiguous 16-byte vector.
// Layout per input vector: nblk*32 codes, ngroups f32 scales, ngroups i32 code sums.
export function quantize_act_groups(x: usize, cols: i32, batch: i32, group: i32, xq: usize, xs: usize, xsum: usize, tmp: usize): i32 {
  const nblk = (cols + 31) >> 5;
  const ngroups = (cols + group - 1) / group;
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>b * <usize>cols << 2);
    const qb = xq + <usize>b * (<usize>nblk << 5);
    for (let g = 0; g < ngroups; g++) {
      const c0 = g * group;
      const n = min<i32>(group, cols - c0);
      const d = quantSpan(xb + (<usize>c0 << 2), n, tmp, xsum + ((<usize>b * <usize>ngroups + <usize>g) << 2));
      if (d < 0) return 1;
      store<f32>(xs + ((<usize>b * <usize>ngroups + <usize>g) << 2), d);
      const nb = (n + 31) >> 5;
      for (let k = 0; k < nb; k++) {
        const dst = qb + <usize>(c0 + (k << 5));
        for (let j = 0; j < 32; j++) {
          const e = (k << 5) + j;
          const c: i8 = e < n ? load<i8>(tmp + <usize>e) : 0;
          store<i8>(dst + <usize>(((j & 1) << 4) + (j >> 1)), c);
        }
      }
    }
  }
  return 0;
}

// For ggml block kernels: one scale per 32 values in natural order (block_q8_0 activations).
// Layout per input vector: nblk*32 codes, nblk f32 scales, nblk i32 code sums.
export function quantize_act_q8(x: usize, cols: i32, batch: i32, xq: usize, xs: usize, xsum: usize): i32 {
  const nblk = (cols + 31) >> 5;
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>b * <usize>cols << 2);
    for (let k = 0; k < nblk; k++) {
      const n = min<i32>(32, cols - (k << 5));
      const idx = <usize>b * <usize>nblk + <usize>k;
      const dst = xq + (idx << 5);
      const d = quantSpan(xb + (<usize>(k << 5) << 2), n, dst, xsum + (idx << 2));
      if (d < 0) return 1;
      for (let j = n; j < 32; j++) store<i8>(dst + <usize>j, 0);
      store<f32>(xs + (idx << 2), d);
    }
  }
  return 0;
}
