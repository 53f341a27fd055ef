// Any-precision GEMV over nested codes (@lowbit/formats quantizeAnyPrecision): the code of element
// (r, c) at `bits` bits is read MSB first from planes 0..bits−1 of [maxBits][rows, ⌈cols/8⌉], and planes
// bits..7 are never read, which is what lets one stored model serve every width. The arithmetic is
// gemv_lut_groups' with one group per row and a table per row (2^bits entries), no scale, no zero.
// Eight columns per step: the `bits` plane bytes that hold columns c..c+7 are loaded once and
// bit-transposed into eight codes; products are added per lane c mod 4, columns ascending, so the
// kernel equals @lowbit/kernels' gemvBitplanesReference bit for bit.

// @ts-ignore: decorator
@inline function codeAt(planes: usize, planeBytes: usize, rowOff: usize, c: i32, bits: i32): u32 {
  let code: u32 = 0;
  const byte = rowOff + <usize>(c >> 3);
  const sh = <u32>(c & 7);
  for (let b = 0; b < bits; b++) code = (code << 1) | ((<u32>load<u8>(planes + <usize>b * planeBytes + byte) >> sh) & 1);
  return code;
}

// Byte k of the result holds the code of column k: byte k of the input is plane (bits−1−k)'s byte,
// i.e. bit j of byte k is bit k of column j's code, and an 8×8 bit transpose (Hacker's Delight
// transpose8) swaps bit j of byte k with bit k of byte j.
// @ts-ignore: decorator
@inline function transpose8(x: u64): u64 {
  let t = (x ^ (x >> 7)) & 0x00aa00aa00aa00aa;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000cccc0000cccc;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000f0f0f0f0;
  return x ^ t ^ (t << 28);
}

// @ts-ignore: decorator
@inline function codes8(planes: usize, planeBytes: usize, at: usize, bits: i32): u64 {
  let m: u64 = 0;
  for (let b = 0; b < bits; b++) m |= (<u64>load<u8>(planes + <usize>b * planeBytes + at)) << (<u64>(8 * (bits - 1 - b)));
  return transpose8(m);
}

// @ts-ignore: decorator
@inline function val(tab: usize, m: u64, j: i32): f32 {
  return load<f32>(tab + ((<usize>((m >> (<u64>(8 * j))) & 0xff)) << 2));
}

export function gemv_anyprec(planes: usize, rows: i32, cols: i32, bits: i32, lut: usize, x: usize, out: usize): void {
  const rpb = <usize>((cols + 7) >> 3);
  const planeBytes = <usize>rows * rpb;
  for (let r = 0; r < rows; r++) {
    const rowOff = <usize>r * rpb;
    const tab = lut + ((<usize>r << <usize>bits) << 2);
    let dot: f32;
    if (ASC_FEATURE_SIMD) {
      let acc = f32x4.splat(0);
      let c = 0;
      for (; c + 8 <= cols; c += 8) {
        const m = codes8(planes, planeBytes, rowOff + <usize>(c >> 3), bits);
        let v = f32x4.splat(val(tab, m, 0));
        v = f32x4.replace_lane(v, 1, val(tab, m, 1));
        v = f32x4.replace_lane(v, 2, val(tab, m, 2));
        v = f32x4.replace_lane(v, 3, val(tab, m, 3));
        acc = f32x4.add(acc, f32x4.mul(v, v128.load(x + (<usize>c << 2))));
        let w = f32x4.splat(val(tab, m, 4));
        w = f32x4.replace_lane(w, 1, val(tab, m, 5));
        w = f32x4.replace_lane(w, 2, val(tab, m, 6));
        w = f32x4.replace_lane(w, 3, val(tab, m, 7));
        acc = f32x4.add(acc, f32x4.mul(w, v128.load(x + (<usize>(c + 4) << 2))));
      }
      for (; c + 4 <= cols; c += 4) {
        let v = f32x4.splat(load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c, bits) << 2)));
        v = f32x4.replace_lane(v, 1, load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c + 1, bits) << 2)));
        v = f32x4.replace_lane(v, 2, load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c + 2, bits) << 2)));
        v = f32x4.replace_lane(v, 3, load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c + 3, bits) << 2)));
        acc = f32x4.add(acc, f32x4.mul(v, v128.load(x + (<usize>c << 2))));
      }
      for (let j = 0; c + j < cols; j++) {
        const p: f32 = load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c + j, bits) << 2)) * load<f32>(x + (<usize>(c + j) << 2));
        if (j == 0) acc = f32x4.replace_lane(acc, 0, f32x4.extract_lane(acc, 0) + p);
        else if (j == 1) acc = f32x4.replace_lane(acc, 1, f32x4.extract_lane(acc, 1) + p);
        else acc = f32x4.replace_lane(acc, 2, f32x4.extract_lane(acc, 2) + p);
      }
      dot = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    } else {
      let a0: f32 = 0, a1: f32 = 0, a2: f32 = 0, a3: f32 = 0;
      let c = 0;
      for (; c + 8 <= cols; c += 8) {
        const m = codes8(planes, planeBytes, rowOff + <usize>(c >> 3), bits);
        a0 += val(tab, m, 0) * load<f32>(x + (<usize>c << 2));
        a1 += val(tab, m, 1) * load<f32>(x + (<usize>(c + 1) << 2));
        a2 += val(tab, m, 2) * load<f32>(x + (<usize>(c + 2) << 2));
        a3 += val(tab, m, 3) * load<f32>(x + (<usize>(c + 3) << 2));
        a0 += val(tab, m, 4) * load<f32>(x + (<usize>(c + 4) << 2));
        a1 += val(tab, m, 5) * load<f32>(x + (<usize>(c + 5) << 2));
        a2 += val(tab, m, 6) * load<f32>(x + (<usize>(c + 6) << 2));
        a3 += val(tab, m, 7) * load<f32>(x + (<usize>(c + 7) << 2));
      }
      for (; c < cols; c++) {
        const p: f32 = load<f32>(tab + (<usize>codeAt(planes, planeBytes, rowOff, c, bits) << 2)) * load<f32>(x + (<usize>c << 2));
        const lane = c & 3;
        if (lane == 0) a0 += p;
        else if (lane == 1) a1 += p;
        else if (lane == 2) a2 += p;
        else a3 += p;
      }
      dot = a0 + a1 + a2 + a3;
    }
    store<f32>(out + (<usize>r << 2), <f32>0 + dot);
  }
}
