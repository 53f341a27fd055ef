// Decoders for @lowbit/formats' packed tensors. The TypeScript codecs define the values; these
// loops only move bits and look values up, so they reproduce the reference bit for bit.

// Code i of a little-endian bit stream of k-bit codes (bit i·k of the stream onwards).
// @ts-ignore: decorator
@inline function codeAt(codes: usize, bitPos: usize, bits: i32, mask: u32): u32 {
  // Two bytes always cover a code of <= 8 bits; reading one byte past the end is inside the slack
  // the JS heap keeps after every buffer.
  const byte = bitPos >> 3;
  const word = <u32>load<u8>(codes + byte) | (<u32>load<u8>(codes + byte + 1) << 8);
  return (word >> <u32>(bitPos & 7)) & mask;
}

// out[r, c] = lut[code(r, c)], rows of `cols` codes each starting on a byte boundary.
export function decode_lut(codes: usize, rows: i32, cols: i32, bits: i32, lut: usize, out: usize): void {
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  const mask: u32 = (1 << bits) - 1;
  if (bits == 4 || bits == 8) {
    // Whole bytes: no bit-stream arithmetic, one or two table lookups per byte.
    for (let r = 0; r < rows; r++) {
      const src = codes + <usize>r * rowBytes;
      const dst = out + (<usize>r * <usize>cols << 2);
      if (bits == 8) {
        for (let c = 0; c < cols; c++) store<f32>(dst + (<usize>c << 2), load<f32>(lut + (<usize>load<u8>(src + <usize>c) << 2)));
        continue;
      }
      let c = 0;
      for (; c + 2 <= cols; c += 2) {
        const byte = <usize>load<u8>(src + <usize>(c >> 1));
        store<f32>(dst + (<usize>c << 2), load<f32>(lut + ((byte & 15) << 2)));
        store<f32>(dst + (<usize>c << 2), load<f32>(lut + ((byte >> 4) << 2)), 4);
      }
      if (c < cols) store<f32>(dst + (<usize>c << 2), load<f32>(lut + ((<usize>load<u8>(src + <usize>(c >> 1)) & 15) << 2)));
    }
    return;
  }
  for (let r = 0; r < rows; r++) {
    const src = codes + <usize>r * rowBytes;
    const dst = out + (<usize>r * <usize>cols << 2);
    for (let c = 0; c < cols; c++) {
      const code = codeAt(src, <usize>c * <usize>bits, bits, mask);
      store<f32>(dst + (<usize>c << 2), load<f32>(lut + (<usize>code << 2)));
    }
  }
}

// INT-k with scales (and optional zeros) per group of `group` along cols: scale·(u − zero).
export function dequant_int_groups(codes: usize, scales: usize, zeros: usize, rows: i32, cols: i32, bits: i32, group: i32, out: usize): void {
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  const mask: u32 = (1 << bits) - 1;
  const ng = (cols + group - 1) / group;
  const zsym = <f32>(1 << (bits - 1));
  for (let r = 0; r < rows; r++) {
    const src = codes + <usize>r * rowBytes;
    const dst = out + (<usize>r * <usize>cols << 2);
    for (let g = 0; g < ng; g++) {
      const si = (<usize>r * <usize>ng + <usize>g) << 2;
      const s = load<f32>(scales + si);
      const z = zeros != 0 ? load<f32>(zeros + si) : zsym;
      const c1 = min<i32>(cols, (g + 1) * group);
      for (let c = g * group; c < c1; c++) {
        const u = <f32>codeAt(src, <usize>c * <usize>bits, bits, mask);
        store<f32>(dst + (<usize>c << 2), s * (u - z));
      }
    }
  }
}

// OCP MX: out[i] = lut[code_i] · 2^(scale[i/32] − 127), one code per byte; scale 0xFF → NaN.
export function dequant_mx(codes: usize, scales: usize, n: i32, lut: usize, out: usize): void {
  for (let b = 0; b < n; b += 32) {
    const e = <i32>load<u8>(scales + <usize>(b >> 5));
    // 2^(e−127) built from its bits: exact for every E8M0 code (e = 0 is 2^-127, an f32 subnormal).
    const x: f32 = e == 0xff ? NaN : e == 0 ? reinterpret<f32>(0x00400000) : reinterpret<f32>(<u32>e << 23);
    const end = min<i32>(n, b + 32);
    for (let i = b; i < end; i++) {
      store<f32>(out + (<usize>i << 2), load<f32>(lut + (<usize>load<u8>(codes + <usize>i) << 2)) * x);
    }
  }
}
