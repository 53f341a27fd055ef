// Decode-into-GEMV for @lowbit/formats' packed tensors: the weights stay as k-bit codes, each
// decoded through a value table on the way into the dot product, so a 4-bit matrix streams 8x fewer
// bytes than its f32 copy. One kernel serves every table-driven format (INT-k sym/asym, NF4, MXFP4/6/8,
// per-channel codebooks): they differ only in the table, the scale type and the zero point.
//
// Arithmetic (the TypeScript reference in src/formats-gemv.ts repeats it step for step, so results
// agree bit for bit): within a group, element c feeds lane (c − c0) mod 4 of an f32 accumulator,
// lane += (lut[code] − zero)·x[c], mul then add, each rounded to f32 (no fused multiply-add); the
// group's dot is ((l0 + l1) + l2) + l3; the row sum is sum += scale·dot, group after group.

// @ts-ignore: decorator
@inline function codeAt(codes: usize, bitPos: usize, mask: u32): u32 {
  // Two bytes cover a code of <= 8 bits; the JS heap keeps slack after every buffer for the second.
  const byte = bitPos >> 3;
  const word = <u32>load<u8>(codes + byte) | (<u32>load<u8>(codes + byte + 1) << 8);
  return (word >> <u32>(bitPos & 7)) & mask;
}

// @ts-ignore: decorator
@inline function valueAt(lut: usize, codes: usize, c: i32, bits: i32, mask: u32): f32 {
  return load<f32>(lut + (<usize>codeAt(codes, <usize>c * <usize>bits, mask) << 2));
}

// E8M0 (OCP MX v1.0 section 5.4): 2^(e − 127) from its bits; 0xFF is NaN; e = 0 is the f32 subnormal 2^-127.
// @ts-ignore: decorator
@inline function e8m0(e: u32): f32 {
  return e == 0xff ? NaN : e == 0 ? reinterpret<f32>(0x00400000) : reinterpret<f32>(e << 23);
}

// out[r] = Σ_g scale(r, g) · Σ_{c in g} (lut[code(r, c)] − zero(r, g)) · x[c]
//   codes: rows of `cols` k-bit codes (k = bits ≤ 8), little-endian bit streams, each row starting on a byte
//   lut: 2^bits f32 values, shared (lutStride 0) or one table per row (lutStride = 2^bits)
//   scales: f32 per (row, group) (scaleKind 0), E8M0 bytes per (row, group) (scaleKind 1), or none (ptr 0: 1)
//   zeros: f32 per (row, group), or none (ptr 0: 0)
//   group: columns per group; the last group of a row may be partial
export function gemv_lut_groups(codes: usize, rows: i32, cols: i32, bits: i32, lut: usize, lutStride: i32,
  scales: usize, scaleKind: i32, zeros: usize, group: i32, x: usize, out: usize): void {
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  for (let r = 0; r < rows; r++) {
    const src = codes + <usize>r * rowBytes;
    const tab = lut + ((<usize>r * <usize>lutStride) << 2);
    const sum = ASC_FEATURE_SIMD
      ? rowSimd(src, tab, r, cols, bits, scales, scaleKind, zeros, group, x)
      : rowScalar(src, tab, r, cols, bits, scales, scaleKind, zeros, group, x);
    store<f32>(out + (<usize>r << 2), sum);
  }
}

// @ts-ignore: decorator
@inline function scaled(sum: f32, dot: f32, scales: usize, scaleKind: i32, si: usize): f32 {
  if (scales == 0) return sum + dot;
  if (scaleKind == 1) return sum + e8m0(<u32>load<u8>(scales + si)) * dot;
  return sum + load<f32>(scales + (si << 2)) * dot;
}

function rowSimd(src: usize, tab: usize, r: i32, cols: i32, bits: i32, scales: usize, scaleKind: i32, zeros: usize, group: i32, x: usize): f32 {
  const mask: u32 = (1 << bits) - 1;
  const ng = (cols + group - 1) / group;
  // 4-bit codes, 16 per step: the 16-entry table is split into its four byte planes (once per row),
  // each looked up for 16 nibbles at once with i8x16.swizzle, and the bytes interleaved back into
  // f32s. Lanes and their order of additions are the same as four steps of the 4-wide loop.
  // Group starts are even (so byte-aligned) when the group size is; plane k holds byte k of every
  // entry, and byte k of entry j sits at 4j + k of the table.
  const wide = bits == 4 && (group & 1) == 0;
  const e0 = wide ? v128.load(tab) : i32x4.splat(0);
  const e1 = wide ? v128.load(tab, 16) : i32x4.splat(0);
  const e2 = wide ? v128.load(tab, 32) : i32x4.splat(0);
  const e3 = wide ? v128.load(tab, 48) : i32x4.splat(0);
  const t0 = i8x16.shuffle(e0, e1, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const t1 = i8x16.shuffle(e0, e1, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  const t2 = i8x16.shuffle(e2, e3, 0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
  const t3 = i8x16.shuffle(e2, e3, 2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
  const plane0 = i8x16.shuffle(t0, t2, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const plane1 = i8x16.shuffle(t0, t2, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  const plane2 = i8x16.shuffle(t1, t3, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  const plane3 = i8x16.shuffle(t1, t3, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
  let sum: f32 = 0;
  for (let g = 0; g < ng; g++) {
    const si = <usize>r * <usize>ng + <usize>g;
    const z: f32 = zeros != 0 ? load<f32>(zeros + (si << 2)) : 0;
    const c0 = g * group;
    const c1 = min<i32>(cols, c0 + group);
    const zv = f32x4.splat(z);
    let acc = f32x4.splat(0);
    let c = c0;
    if (wide) {
      for (; c + 16 <= c1; c += 16) {
        const bytes = v128.load64_zero(src + (<usize>c >> 1));
        const idx = i8x16.shuffle(v128.and(bytes, i8x16.splat(15)), i8x16.shr_u(bytes, 4),
          0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const b0 = i8x16.swizzle(plane0, idx);
        const b1 = i8x16.swizzle(plane1, idx);
        const b2 = i8x16.swizzle(plane2, idx);
        const b3 = i8x16.swizzle(plane3, idx);
        const lo01 = i8x16.shuffle(b0, b1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const hi01 = i8x16.shuffle(b0, b1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const lo23 = i8x16.shuffle(b2, b3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const hi23 = i8x16.shuffle(b2, b3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const xp = x + (<usize>c << 2);
        acc = f32x4.add(acc, f32x4.mul(f32x4.sub(i16x8.shuffle(lo01, lo23, 0, 8, 1, 9, 2, 10, 3, 11), zv), v128.load(xp)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.sub(i16x8.shuffle(lo01, lo23, 4, 12, 5, 13, 6, 14, 7, 15), zv), v128.load(xp, 16)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.sub(i16x8.shuffle(hi01, hi23, 0, 8, 1, 9, 2, 10, 3, 11), zv), v128.load(xp, 32)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.sub(i16x8.shuffle(hi01, hi23, 4, 12, 5, 13, 6, 14, 7, 15), zv), v128.load(xp, 48)));
      }
    }
    for (; c + 4 <= c1; c += 4) {
      let v: v128;
      if (bits == 4 && (c & 1) == 0) {
        // Four nibbles in one 16-bit load (the common INT4/NF4/MXFP4 case: even group starts).
        const q = <usize>load<u16>(src + (<usize>c >> 1));
        v = f32x4.splat(load<f32>(tab + ((q & 15) << 2)));
        v = f32x4.replace_lane(v, 1, load<f32>(tab + (((q >> 4) & 15) << 2)));
        v = f32x4.replace_lane(v, 2, load<f32>(tab + (((q >> 8) & 15) << 2)));
        v = f32x4.replace_lane(v, 3, load<f32>(tab + ((q >> 12) << 2)));
      } else if (bits == 8) {
        const q = <usize>load<u32>(src + <usize>c);
        v = f32x4.splat(load<f32>(tab + ((q & 255) << 2)));
        v = f32x4.replace_lane(v, 1, load<f32>(tab + (((q >> 8) & 255) << 2)));
        v = f32x4.replace_lane(v, 2, load<f32>(tab + (((q >> 16) & 255) << 2)));
        v = f32x4.replace_lane(v, 3, load<f32>(tab + ((q >> 24) << 2)));
      } else {
        v = f32x4.splat(valueAt(tab, src, c, bits, mask));
        v = f32x4.replace_lane(v, 1, valueAt(tab, src, c + 1, bits, mask));
        v = f32x4.replace_lane(v, 2, valueAt(tab, src, c + 2, bits, mask));
        v = f32x4.replace_lane(v, 3, valueAt(tab, src, c + 3, bits, mask));
      }
      acc = f32x4.add(acc, f32x4.mul(f32x4.sub(v, zv), v128.load(x + (<usize>c << 2))));
    }
    // Tail of a partial group: only the lanes that have an element are touched.
    if (c < c1) acc = f32x4.replace_lane(acc, 0, f32x4.extract_lane(acc, 0) + (valueAt(tab, src, c, bits, mask) - z) * load<f32>(x + (<usize>c << 2)));
    if (c + 1 < c1) acc = f32x4.replace_lane(acc, 1, f32x4.extract_lane(acc, 1) + (valueAt(tab, src, c + 1, bits, mask) - z) * load<f32>(x + (<usize>(c + 1) << 2)));
    if (c + 2 < c1) acc = f32x4.replace_lane(acc, 2, f32x4.extract_lane(acc, 2) + (valueAt(tab, src, c + 2, bits, mask) - z) * load<f32>(x + (<usize>(c + 2) << 2)));
    const dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    sum = scaled(sum, dot, scales, scaleKind, si);
  }
  return sum;
}

function rowScalar(src: usize, tab: usize, r: i32, cols: i32, bits: i32, scales: usize, scaleKind: i32, zeros: usize, group: i32, x: usize): f32 {
  const mask: u32 = (1 << bits) - 1;
  const ng = (cols + group - 1) / group;
  let sum: f32 = 0;
  for (let g = 0; g < ng; g++) {
    const si = <usize>r * <usize>ng + <usize>g;
    const z: f32 = zeros != 0 ? load<f32>(zeros + (si << 2)) : 0;
    const c0 = g * group;
    const c1 = min<i32>(cols, c0 + group);
    let dot: f32;
    let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
    for (let c = c0; c < c1; c++) {
      const p: f32 = (valueAt(tab, src, c, bits, mask) - z) * load<f32>(x + (<usize>c << 2));
      const lane = (c - c0) & 3;
      if (lane == 0) a0 += p;
      else if (lane == 1) a1 += p;
      else if (lane == 2) a2 += p;
      else a3 += p;
    }
    dot = a0 + a1 + a2 + a3;
    sum = scaled(sum, dot, scales, scaleKind, si);
  }
  return sum;
}
