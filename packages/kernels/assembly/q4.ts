
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
  const m = i8x16.splat(0x0f);
  // Nibbles are 0..15, so the 7-bit operand's implementation-defined sign case never arises. The high
  // nibbles by a 16-bit shift and the mask: V8 lowers i8x16.shr_u to the same pair but rebuilds its
  // own mask at every use.
  acc = i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(xe, v128.and(bytes, m)));
  return i16x8.add(acc, i16x8.relaxed_dot_i8x16_i7x16_s(xo, v128.and(i16x8.shr_u(bytes, 4), m)));
}

// Four consecutive blocks of one row (64 bytes) against activations at xb (4 × 32 bytes).
// @ts-ignore: decorator
@inline function step4Relaxed(wb: usize, xb: usize, acc: v128): v128 {
  acc = stepRelaxed(wb, v128.load(xb), v128.load(xb, 16), acc);
  acc = stepRelaxed(wb + 16, v128.load(xb, 32), v128.load(xb, 48), acc);
  acc = stepRelaxed(wb + 32, v128.load(xb, 64), v128.load(xb, 80), acc);
  return stepRelaxed(wb + 48, v128.load(xb, 96), v128.load(xb, 112), acc);
}

// Plain SIMD: read the packed bytes as 16-bit lanes; nibble k of lane j is element 4j+k, which meets
// plane k of the i16 activation layout. Each nibble is isolated by one mask in place (no shift but
// for the top one) and i32x4.dot_i16x8_s (pmaddwd) multiplies and pair-sums into i32 at once; the
// planes are pre-scaled (256, 16, 1, 256) so that every product comes out as 256·u·x. Against
// shift+mask+i16 mul this is 13 instead of 15 ops per 16 bytes, and 5 instead of 7 on the two
// ports x86 has for shifts and multiplies.
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
  // Running pointers across the whole row, never recomputed from k: TurboFan otherwise rebuilds the
  // four row addresses (imul) inside the loop and spills (8.4 -> 9.4 GB/s plain at 4096x4096 g128).
  let q0 = w0, q1 = w1, q2 = w2, q3 = w3;
  let xb = ASC_FEATURE_RELAXED_SIMD ? xq : xq16;
  for (let g = 0; g < ngroups; g++) {
    const go = <usize>g << 2;
    const dx = load<f32>(xs + go);
    const dsx = dx * <f32>load<i32>(xsum + go);
    const sc = gather4(s0, s1, s2, s3, go);
    const zc = z0 != 0 ? gather4(z0, z1, z2, z3, go) : f32x4.splat(8);
    corr = f32x4.add(corr, f32x4.mul(f32x4.mul(sc, zc), f32x4.splat(dsx)));
    const h = f32x4.mul(sc, f32x4.splat(dx * unit));
    let n = min<i32>(bpg, nblk - g * bpg);
    if (ASC_FEATURE_RELAXED_SIMD) {
      // i32 sums cannot overflow within a group (each block adds at most 32·15·127 per row).
      let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
      for (; n >= 4; n -= 4) {
        i0 = i32x4.add(i0, widen(step4Relaxed(q0, xb, i16x8.splat(0))));
        i1 = i32x4.add(i1, widen(step4Relaxed(q1, xb, i16x8.splat(0))));
        i2 = i32x4.add(i2, widen(step4Relaxed(q2, xb, i16x8.splat(0))));
        i3 = i32x4.add(i3, widen(step4Relaxed(q3, xb, i16x8.splat(0))));
        q0 += 64; q1 += 64; q2 += 64; q3 += 64; xb += 128;
      }
      if (n > 0) {
        let a0 = i16x8.splat(0), a1 = i16x8.splat(0), a2 = i16x8.splat(0), a3 = i16x8.splat(0);
        for (; n > 0; n--) {
          const xe = v128.load(xb);
          const xo = v128.load(xb, 16);
          a0 = stepRelaxed(q0, xe, xo, a0);
          a1 = stepRelaxed(q1, xe, xo, a1);
          a2 = stepRelaxed(q2, xe, xo, a2);
          a3 = stepRelaxed(q3, xe, xo, a3);
          q0 += 16; q1 += 16; q2 += 16; q3 += 16; xb += 32;
        }
        i0 = i32x4.add(i0, widen(a0));
        i1 = i32x4.add(i1, widen(a1));
        i2 = i32x4.add(i2, widen(a2));
        i3 = i32x4.add(i3, widen(a3));
      }
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(lanesSum4(i0, i1, i2, i3)), h));
    } else {
      while (n > 0) {
        // A row gains at most 32·256·15·127 (1.6e7) per block, so the four rows' sums are moved to
        // f32 every 128 blocks (4096 columns) at the latest; they stay multiples of 256 below 2^31,
        // which f32 holds exactly.
        const m = min<i32>(n, 128);
        n -= m;
        let i0 = i32x4.splat(0), i1 = i32x4.splat(0), i2 = i32x4.splat(0), i3 = i32x4.splat(0);
        const xe = xb + (<usize>m << 6);
        while (xb < xe) {
          const p0 = v128.load(xb), p1 = v128.load(xb, 16), p2 = v128.load(xb, 32), p3 = v128.load(xb, 48);
          i0 = stepPlain(q0, p0, p1, p2, p3, i0);
          i1 = stepPlain(q1, p0, p1, p2, p3, i1);
          i2 = stepPlain(q2, p0, p1, p2, p3, i2);
          i3 = stepPlain(q3, p0, p1, p2, p3, i3);
          q0 += 16; q1 += 16; q2 += 16; q3 += 16; xb += 64;
        }
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(lanesSum4(i0, i1, i2, i3)), h));
      }
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

// The activation side of matmul_q4 in SIMD: the same codes, scales and sums as quantize_act_groups
// (act-quant.ts), bit for bit (the same f32 multiply and nearest-even per element), in both layouts.
// The scalar one spends ~5 ns per element, which at 4096 columns is 3% of a 4096×4096 GEMV.
// Returns 0 done, 1 NaN/Inf in x, 2 not handled here (scalar build, or a partial last group: the
// caller then runs quantize_act_groups).
export function quantize_act_int4(x: usize, cols: i32, batch: i32, group: i32, xq: usize, xq16: usize, xs: usize, xsum: usize): i32 {
  if (!ASC_FEATURE_SIMD || cols % group != 0) return 2;
  const nblk = cols >> 5;
  const ngroups = cols / group;
  const zero = f32x4.splat(0);
  for (let b = 0; b < batch; b++) {
    const xb = x + (<usize>b * <usize>cols << 2);
    for (let g = 0; g < ngroups; g++) {
      const gx = xb + (<usize>(g * group) << 2);
      let am = zero;
      let bad = zero;
      for (let i = 0; i < group; i += 4) {
        const v = v128.load(gx + (<usize>i << 2));
        am = f32x4.max(am, f32x4.abs(v));
        bad = v128.or(bad, f32x4.ne(f32x4.sub(v, v), zero));
      }
      if (v128.any_true(bad)) return 1;
      const amax = max<f32>(max<f32>(f32x4.extract_lane(am, 0), f32x4.extract_lane(am, 1)), max<f32>(f32x4.extract_lane(am, 2), f32x4.extract_lane(am, 3)));
      const d: f32 = amax / 127;
      const idv = f32x4.splat(d != 0 ? <f32>1 / d : 0);
      let sum = i32x4.splat(0);
      for (let k = 0; k < (group >> 5); k++) {
        const kb = (g * group >> 5) + k;
        const src = gx + (<usize>k << 7);
        const c0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src), idv)));
        const c1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 16), idv)));
        const c2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 32), idv)));
        const c3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 48), idv)));
        const c4 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 64), idv)));
        const c5 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 80), idv)));
        const c6 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 96), idv)));
        const c7 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src, 112), idv)));
        sum = i32x4.add(sum, i32x4.add(i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)), i32x4.add(i32x4.add(c4, c5), i32x4.add(c6, c7))));
        const lo = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c0, c1), i16x8.narrow_i32x4_s(c2, c3)); // x0..x15
        const hi = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(c4, c5), i16x8.narrow_i32x4_s(c6, c7)); // x16..x31
        const dst = xq + <usize>b * (<usize>nblk << 5) + (<usize>kb << 5);
        v128.store(dst, i8x16.shuffle(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30));
        v128.store(dst, i8x16.shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31), 16);
        if (xq16 != 0) {
          const d16 = xq16 + <usize>b * (<usize>nblk << 6) + (<usize>kb << 6);
          v128.store(d16, i16x8.shl(i16x8.extend_low_i8x16_s(i8x16.shuffle(lo, hi, 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0)), 8));
          v128.store(d16, i16x8.shl(i16x8.extend_low_i8x16_s(i8x16.shuffle(lo, hi, 1, 5, 9, 13, 17, 21, 25, 29, 0, 0, 0, 0, 0, 0, 0, 0)), 4), 16);
          v128.store(d16, i16x8.extend_low_i8x16_s(i8x16.shuffle(lo, hi, 2, 6, 10, 14, 18, 22, 26, 30, 0, 0, 0, 0, 0, 0, 0, 0)), 32);
          v128.store(d16, i16x8.shl(i16x8.extend_low_i8x16_s(i8x16.shuffle(lo, hi, 3, 7, 11, 15, 19, 23, 27, 31, 0, 0, 0, 0, 0, 0, 0, 0)), 8), 48);
        }
      }
      const go = (<usize>b * <usize>ngroups + <usize>g) << 2;
      store<f32>(xs + go, d);
      store<i32>(xsum + go, i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3));
    }
  }
  return 0;
}
