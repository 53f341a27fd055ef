import { hsum } from './f32';

// int4 weights, int-k packing (element 2j = low nibble of byte j, 2j+1 = high nibble; each row
// starts on a byte boundary), one f32 scale and optional f32 zero point per group along cols:
//   w[r, c] = scale[r, g] * (u[r, c] - zero[r, g]),  zero = 8 when `zeros` is 0 (symmetric).
// With activations quantized per group (x ≈ xs[g] * xq):
//   out[r] = Σ_g scale·xs[g] · (Σ_{c∈g} u·xq − zero · Σ_{c∈g} xq)
// so the inner loop is an integer dot of unsigned nibbles with int8 codes.

// Integer dot of one 32-block (16 packed bytes) with the reordered int8 codes, into i32 lanes.
// @ts-ignore: decorator
@inline function blockDotRelaxed(wb: usize, xe: v128, xo: v128, acc: v128): v128 {
  const bytes = v128.load(wb);
  const lo = v128.and(bytes, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(bytes, 4);
  // Nibbles are 0..15 (7-bit safe), so the implementation-defined sign case never arises.
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(xo, hi, i32x4.relaxed_dot_i8x16_i7x16_add_s(xe, lo, acc));
}

// Same with plain SIMD into i16 lanes: each block adds 4 products per lane, each |u·xq| <= 15·127,
// so up to 4 blocks (16 products, 30480) fit an i16 lane before it must be widened.
// @ts-ignore: decorator
@inline function blockDotPlain(wb: usize, xe: v128, xo: v128, acc: v128): v128 {
  const bytes = v128.load(wb);
  const lo = v128.and(bytes, i8x16.splat(0x0f));
  const hi = i8x16.shr_u(bytes, 4);
  acc = i16x8.add(acc, i16x8.extmul_low_i8x16_s(lo, xe));
  acc = i16x8.add(acc, i16x8.extmul_high_i8x16_s(lo, xe));
  acc = i16x8.add(acc, i16x8.extmul_low_i8x16_s(hi, xo));
  return i16x8.add(acc, i16x8.extmul_high_i8x16_s(hi, xo));
}

// @ts-ignore: decorator
@inline function groupDot(wr: usize, xq: usize, k0: i32, k1: i32): v128 {
  let acc = i32x4.splat(0);
  if (ASC_FEATURE_RELAXED_SIMD) {
    for (let k = k0; k < k1; k++) {
      const xb = xq + (<usize>k << 5);
      acc = blockDotRelaxed(wr + (<usize>k << 4), v128.load(xb), v128.load(xb, 16), acc);
    }
  } else {
    let k = k0;
    while (k < k1) {
      const kend = min<i32>(k1, k + 4);
      let a16 = i16x8.splat(0);
      for (; k < kend; k++) {
        const xb = xq + (<usize>k << 5);
        a16 = blockDotPlain(wr + (<usize>k << 4), v128.load(xb), v128.load(xb, 16), a16);
      }
      acc = i32x4.add(acc, i32x4.extadd_pairwise_i16x8_s(a16));
    }
  }
  return acc;
}

// @ts-ignore: decorator
@inline function groupDotScalar(wr: usize, xq: usize, c0: i32, c1: i32): i32 {
  let s = 0;
  for (let c = c0; c < c1; c++) {
    const byte = <i32>load<u8>(wr + <usize>(c >> 1));
    const u = (c & 1) ? byte >> 4 : byte & 15;
    const j = c & 31;
    const q = <i32>load<i8>(xq + <usize>((c & ~31) + ((j & 1) << 4) + (j >> 1)));
    s += u * q;
  }
  return s;
}

// @ts-ignore: decorator
@inline function rowSimd(wr: usize, sr: usize, zr: usize, ngroups: i32, bpg: i32, nblk: i32, xqb: usize, xsb: usize, xsumb: usize): f32 {
  let facc = f32x4.splat(0);
  let corr: f32 = 0;
  for (let g = 0; g < ngroups; g++) {
    const f = load<f32>(sr + (<usize>g << 2)) * load<f32>(xsb + (<usize>g << 2));
    const z: f32 = zr != 0 ? load<f32>(zr + (<usize>g << 2)) : 8;
    corr += f * z * <f32>load<i32>(xsumb + (<usize>g << 2));
    const k0 = g * bpg;
    const acc = groupDot(wr, xqb, k0, min<i32>(k0 + bpg, nblk));
    facc = f32x4.add(facc, f32x4.mul(f32x4.convert_i32x4_s(acc), f32x4.splat(f)));
  }
  return hsum(facc) - corr;
}

// @ts-ignore: decorator
@inline function rowScalar(wr: usize, sr: usize, zr: usize, ngroups: i32, group: i32, cols: i32, xqb: usize, xsb: usize, xsumb: usize): f32 {
  let fs: f32 = 0;
  let corr: f32 = 0;
  for (let g = 0; g < ngroups; g++) {
    const f = load<f32>(sr + (<usize>g << 2)) * load<f32>(xsb + (<usize>g << 2));
    const z: f32 = zr != 0 ? load<f32>(zr + (<usize>g << 2)) : 8;
    corr += f * z * <f32>load<i32>(xsumb + (<usize>g << 2));
    const c0 = g * group;
    fs += f * <f32>groupDotScalar(wr, xqb, c0, min<i32>(c0 + group, cols));
  }
  return fs - corr;
}

export function matmul_q4(
  w: usize, scales: usize, zeros: usize, rows: i32, cols: i32, group: i32,
  xq: usize, xs: usize, xsum: usize, batch: i32, out: usize,
): void {
  const rowBytes = <usize>((cols + 1) >> 1);
  const ngroups = (cols + group - 1) / group;
  const nblk = (cols + 31) >> 5;
  const bpg = group >> 5; // 32-blocks per group
  for (let r = 0; r < rows; r++) {
    const wr = w + <usize>r * rowBytes;
    const sr = scales + (<usize>r * <usize>ngroups << 2);
    const zr = zeros != 0 ? zeros + (<usize>r * <usize>ngroups << 2) : 0;
    for (let b = 0; b < batch; b++) {
      const xqb = xq + <usize>b * (<usize>nblk << 5);
      const xsb = xs + (<usize>b * <usize>ngroups << 2);
      const xsumb = xsum + (<usize>b * <usize>ngroups << 2);
      const v = ASC_FEATURE_SIMD
        ? rowSimd(wr, sr, zr, ngroups, bpg, nblk, xqb, xsb, xsumb)
        : rowScalar(wr, sr, zr, ngroups, group, cols, xqb, xsb, xsumb);
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), v);
    }
  }
}
