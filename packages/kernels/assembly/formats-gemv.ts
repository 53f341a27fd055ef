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
  const mask: u32 = (1 << bits) - 1;
  const ng = (cols + group - 1) / group;
  for (let r = 0; r < rows; r++) {
    const src = codes + <usize>r * rowBytes;
    const tab = lut + ((<usize>r * <usize>lutStride) << 2);
    let sum: f32 = 0;
    for (let g = 0; g < ng; g++) {
      const si = <usize>r * <usize>ng + <usize>g;
      const z: f32 = zeros != 0 ? load<f32>(zeros + (si << 2)) : 0;
      const c0 = g * group;
      const c1 = min<i32>(cols, c0 + group);
      let dot: f32;
      if (ASC_FEATURE_SIMD) {
        const zv = f32x4.splat(z);
        let acc = f32x4.splat(0);
        let c = c0;
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
        dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
      } else {
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
      }
      if (scales == 0) sum += dot;
      else if (scaleKind == 1) sum += e8m0(<u32>load<u8>(scales + si)) * dot;
      else sum += load<f32>(scales + (si << 2)) * dot;
    }
    store<f32>(out + (<usize>r << 2), sum);
  }
}
