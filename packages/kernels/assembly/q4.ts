
// int4 weights, int-k packing (element 2j = low nibble of byte j, 2j+1 = high nibble; each row
// starts on a byte boundary), one f32 scale and optional f32 zero point per group along cols:
//   w[r, c] = scale[r, g] * (u[r, c] - zero[r, g]),  zero = 8 when `zeros` is 0 (symmetric).
// With activations quantized per group (x ≈ xs[g] * xq):
//   out[r] = Σ_g scale·xs[g] · (Σ_{c∈g} u·xq − zero · Σ_{c∈g} xq)
// so the inner loop is an integer dot of unsigned nibbles with int8 codes.
//
// Rows go in tiles of 4 so every activation load feeds four weight streams. The relaxed path keeps
// partial products in i16 lanes: a block adds at most 4 products of |u·xq| <= 15·127 per lane, so
// 4 blocks (30480) fit before the lanes are widened to i32, every 4 blocks.

// @ts-ignore: decorator
@inline function stepRelaxed(wb: usize, xe: v128, xo: v128, acc: v128): v128 {
  const bytes = v128.load(wb);
  // Nibbles are 0..15, so the 7-bit operand's implementation-defined sign case never arises.
  acc = i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(xe, v128.and(bytes, i8x16.splat(0x0f))));
  return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(xo, i8x16.shr_u(bytes, 4)));
}

// Plain SIMD: read the packed bytes as 16-bit lanes; nibble k of lane j is element 4j+k, which meets
// plane k of the i16 activation layout. Each nibble is isolated by one mask in place (no shift but
// for the top one) and i32x4.dot_i16x8_s (pmaddwd) multiplies and pair-sums into i32 at once; the
// planes are pre-scaled (256, 16, 1, 256) so that every product comes out as 256·u·x. Against
// shift+mask+i16 mul this is 13 instead of 15 ops per 16 bytes, and 5 instead of 7 on the two
// ports x86 has for shifts and multiplies, which is where the loop was bound (7.8 -> see bench).
// @ts-ignore: decorator
@inline function stepPlain(wb: usize, p0: v128, p1: v128, p2: v128, p3: v128, acc: v128): v128 {
  const v = v128.load(wb);
  const a = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x000f)), p0),
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x00f0)), p1));
  const b = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(v, i16x8.splat(0x0f00)), p2),
    i32x4.dot_i16x8_s(i16x8.shr_u(v, 12), p3));
  return i32x4.add(acc, i32x4.add(a, b));
}

// @ts-ignore: decorator
@inline function widen(a16: v128): v128 {
  return i32x4.extadd_pairwise_i16x8_s(a16);
}

// Four f32 values at p0..p3 (+off) as one vector: the four rows' scales (or zeros) of a group.
// @ts-ignore: decorator
@inline function gather4(p0: usize, p1: usize, p2: usize, p3: usize, off: usize): v128 {
  let v = f32x4.splat(0);
  v = v128.load32_lane(p0 + off, v, 0);
  v = v128.load32_lane(p1 + off, v, 1);
  v = v128.load32_lane(p2 + off, v, 2);
  return v128.load32_lane(p3 + off, v, 3);
}

// [Σa, Σb, Σc, Σd] of four i32x4: one lane per row of the tile.
// @ts-ignore: decorator
@inline function lanesSum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

// Four rows (w0..w3, possibly repeating the last row of the matrix) against one input vector.
// Writes the four sums to res[0..3]. The group epilogue (scales, zero points, conversion to f32)
// runs on one vector with a lane per row instead of four times on splats: about 40 → 20 ops per
// group and tile, which is a tenth of the work at group 128.
// @ts-ignore: decorator
@inline function tileSimd(
  w0: usize, w1: usize, w2: usize, w3: usize, s0: usize, s1: usize, s2: usize, s3: usize,
  z0: usize, z1: usize, z2: usize, z3: usize, ngroups: i32, bpg: i32, nblk: i32,
  xq: usize, xq16: usize, xs: usize, xsum: usize, res: usize,
): void {
  // The plain planes carry a factor 256, taken out with the scale (exact: a power of two).
  const unit: f32 = ASC_FEATURE_RELAXED_SIMD ? 1 : 0.00390625;
  let acc = f32x4.splat(0);
  let corr = f32x4.splat(0);
  for (let g = 0; g < ngroups; g++) {
    const go = <usize>g << 2;
    const dx = load<f32>(xs + go);
    const dsx = dx * <f32>load<i32>(xsum + go);
    const sc = gather4(s0, s1, s2, s3, go);
    const zc = z0 != 0 ? gather4(z0, z1, z2, z3, go) : f32x4.splat(8);
    corr = f32x4.add(corr, f32x4.mul(f32x4.mul(sc, zc), f32x4.splat(dsx)));
    const h = f32x4.mul(sc, f32x4.splat(dx * unit));
    const kEnd = min<i32>((g + 1) * bpg, nblk);
    let k = g * bpg;
    while (k < kEnd) {
      // Plain SIMD: a row gains at most 32·256·15·127 (1.6e7) per block, so the four rows' sums are
      // moved to f32 every 128 blocks (4096 columns) at the latest; they stay multiples of 256
      // below 2^31, which f32 holds exactly.
      const kChunk = min<i32>(kEnd, k + 128);
      let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
      if (ASC_FEATURE_RELAXED_SIMD) {
        while (k < kChunk) {
          const kk = min<i32>(kChunk, k + 4);
          let a0 = i16x8.splat(0), a1 = i16x8.splat(0), a2 = i16x8.splat(0), a3 = i16x8.splat(0);
          for (; k < kk; k++) {
            const wo = <usize>k << 4;
            const xb = xq + (<usize>k << 5);
            const xe = v128.load(xb);
            const xo = v128.load(xb, 16);
            a0 = stepRelaxed(w0 + wo, xe, xo, a0);
            a1 = stepRelaxed(w1 + wo, xe, xo, a1);
            a2 = stepRelaxed(w2 + wo, xe, xo, a2);
            a3 = stepRelaxed(w3 + wo, xe, xo, a3);
          }
          i0 = i32x4.add(i0, widen(a0));
          i1 = i32x4.add(i1, widen(a1));
          i2 = i32x4.add(i2, widen(a2));
          i3 = i32x4.add(i3, widen(a3));
        }
      } else {
        for (; k < kChunk; k++) {
          const wo = <usize>k << 4;
          const xb = xq16 + (<usize>k << 6);
          const p0 = v128.load(xb), p1 = v128.load(xb, 16), p2 = v128.load(xb, 32), p3 = v128.load(xb, 48);
          i0 = stepPlain(w0 + wo, p0, p1, p2, p3, i0);
          i1 = stepPlain(w1 + wo, p0, p1, p2, p3, i1);
          i2 = stepPlain(w2 + wo, p0, p1, p2, p3, i2);
          i3 = stepPlain(w3 + wo, p0, p1, p2, p3, i3);
        }
      }
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(lanesSum4(i0, i1, i2, i3)), h));
    }
  }
  v128.store(res, f32x4.sub(acc, corr));
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

// Computes rows [r0, r1). `res` is 16 bytes of scratch for one tile's results (one per thread).
export function matmul_q4(
  w: usize, scales: usize, zeros: usize, rows: i32, cols: i32, group: i32,
  xq: usize, xq16: usize, xs: usize, xsum: usize, batch: i32, out: usize, res: usize, r0: i32, r1: i32,
): void {
  const rowBytes = <usize>((cols + 1) >> 1);
  const ngroups = (cols + group - 1) / group;
  const nblk = (cols + 31) >> 5;
  const bpg = group >> 5; // 32-blocks per group
  const sBytes = <usize>ngroups << 2;
  if (ASC_FEATURE_SIMD) {
    for (let r = r0; r < r1; r += 4) {
      // A last tile past the end repeats the last row and stores only the real outputs.
      const ra = min<i32>(r + 1, r1 - 1), rb = min<i32>(r + 2, r1 - 1), rc = min<i32>(r + 3, r1 - 1);
      const z = zeros;
      for (let b = 0; b < batch; b++) {
        tileSimd(
          w + <usize>r * rowBytes, w + <usize>ra * rowBytes, w + <usize>rb * rowBytes, w + <usize>rc * rowBytes,
          scales + <usize>r * sBytes, scales + <usize>ra * sBytes, scales + <usize>rb * sBytes, scales + <usize>rc * sBytes,
          z != 0 ? z + <usize>r * sBytes : 0, z != 0 ? z + <usize>ra * sBytes : 0,
          z != 0 ? z + <usize>rb * sBytes : 0, z != 0 ? z + <usize>rc * sBytes : 0,
          ngroups, bpg, nblk,
          xq + <usize>b * (<usize>nblk << 5), xq16 + <usize>b * (<usize>nblk << 6),
          xs + <usize>b * sBytes, xsum + <usize>b * sBytes, res,
        );
        const ob = out + ((<usize>b * <usize>rows + <usize>r) << 2);
        const n = min<i32>(4, r1 - r);
        for (let i = 0; i < n; i++) store<f32>(ob + (<usize>i << 2), load<f32>(res + (<usize>i << 2)));
      }
    }
  } else {
    for (let r = r0; r < r1; r++) {
      const wr = w + <usize>r * rowBytes;
      const sr = scales + <usize>r * sBytes;
      const zr = zeros != 0 ? zeros + <usize>r * sBytes : 0;
      for (let b = 0; b < batch; b++) {
        const v = rowScalar(wr, sr, zr, ngroups, group, cols, xq + <usize>b * (<usize>nblk << 5), xs + <usize>b * sBytes, xsum + <usize>b * sBytes);
        store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), v);
      }
    }
  }
}
