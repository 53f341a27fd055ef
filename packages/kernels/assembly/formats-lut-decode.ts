// Decoders for @lowbit/formats' table-driven group codes (NF4, codebooks, INT-k with any zero
// point) and binary-coding (BCQ) bit-planes. The TypeScript decoders of that package compute in
// f64 and round once to f32 on store; these do the same f64 operations in the same order, so the
// results agree bit for bit (f32 arithmetic would round twice).

// @ts-ignore: decorator
@inline function codeAt(codes: usize, bitPos: usize, mask: u32): u32 {
  // Two bytes cover a code of <= 8 bits; the JS heap keeps slack after every buffer for the second.
  const byte = bitPos >> 3;
  const word = <u32>load<u8>(codes + byte) | (<u32>load<u8>(codes + byte + 1) << 8);
  return (word >> <u32>(bitPos & 7)) & mask;
}

// out[r, c] = scale(r, g)·(lut[code(r, c)] − zero(r, g)), g = ⌊c / group⌋; arguments as gemv_lut_groups
// (lutStride 0 or 2^bits; scales f32 (scaleKind 0), E8M0 bytes (1) or none (ptr 0); zeros f32 or none).
export function dequant_lut_groups(codes: usize, rows: i32, cols: i32, bits: i32, lut: usize, lutStride: i32,
  scales: usize, scaleKind: i32, zeros: usize, group: i32, out: usize): void {
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  const mask: u32 = (1 << bits) - 1;
  const ng = (cols + group - 1) / group;
  for (let r = 0; r < rows; r++) {
    const src = codes + <usize>r * rowBytes;
    const tab = lut + ((<usize>r * <usize>lutStride) << 2);
    const dst = out + (<usize>r * <usize>cols << 2);
    for (let g = 0; g < ng; g++) {
      const si = <usize>r * <usize>ng + <usize>g;
      let s: f64 = 1;
      if (scales != 0) {
        if (scaleKind == 1) {
          const e = <i32>load<u8>(scales + si);
          // 2^(e − 127) from its f64 bits: exact for every E8M0 code, 0xFF is NaN (OCP MX v1.0 5.4).
          s = e == 0xff ? NaN : reinterpret<f64>(<u64>(e - 127 + 1023) << 52);
        } else s = <f64>load<f32>(scales + (si << 2));
      }
      const z: f64 = zeros != 0 ? <f64>load<f32>(zeros + (si << 2)) : 0;
      const c1 = min<i32>(cols, (g + 1) * group);
      for (let c = g * group; c < c1; c++) {
        const v = <f64>load<f32>(tab + (<usize>codeAt(src, <usize>c * <usize>bits, mask) << 2));
        store<f32>(dst + (<usize>c << 2), <f32>(scales != 0 ? s * (v - z) : v - z));
      }
    }
  }
}

// BCQ: out[r, c] = Σ_i ±α(r, g, i), the sign from bit c of plane i's row r (1 = +1), planes
// [bits][rows, ⌈cols/8⌉], alphas [rows, ngroups, bits]; summed in f64 in plane order.
export function dequant_bcq(planes: usize, alphas: usize, rows: i32, cols: i32, bits: i32, group: i32, out: usize): void {
  const rpb = <usize>((cols + 7) >> 3);
  const ng = (cols + group - 1) / group;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const a = alphas + ((<usize>r * <usize>ng + <usize>(c / group)) * <usize>bits << 2);
      let s: f64 = 0;
      for (let i = 0; i < bits; i++) {
        const bit = (load<u8>(planes + (<usize>i * <usize>rows + <usize>r) * rpb + <usize>(c >> 3)) >> <u8>(c & 7)) & 1;
        const al = <f64>load<f32>(a + (<usize>i << 2));
        s += bit ? al : -al;
      }
      store<f32>(out + ((<usize>r * <usize>cols + <usize>c) << 2), <f32>s);
    }
  }
}
