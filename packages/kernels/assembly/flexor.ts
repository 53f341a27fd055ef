// Decoder of @lowbit/formats' FleXOR tensors: each slice of nOut signs is the GF(2) product of a
// fixed XOR network (nIn column masks) with nIn stored bits; every sign becomes ±α of its row.
// Only copies and negations of f32 values, so the result equals the TypeScript reference bit for bit.

// stored: bits LSB first, row after row, slice after slice (nIn bits each); colMasks: u32[nIn];
// alphas: f32[rows]; out: f32[rows·cols].
export function flexor_decode(stored: usize, rows: i32, cols: i32, nIn: i32, nOut: i32, colMasks: usize, alphas: usize, out: usize): void {
  const slices = (cols + nOut - 1) / nOut;
  let bit: usize = 0;
  for (let r = 0; r < rows; r++) {
    const a = load<f32>(alphas + (<usize>r << 2));
    const dst = out + ((<usize>r * <usize>cols) << 2);
    for (let s = 0; s < slices; s++) {
      let o: u32 = 0;
      for (let i = 0; i < nIn; i++, bit++) {
        // branch-free select: XOR in the column when the stored bit is set
        const b = (<u32>load<u8>(stored + (bit >> 3)) >> <u32>(bit & 7)) & 1;
        o ^= load<u32>(colMasks + (<usize>i << 2)) & (0 - b);
      }
      const c0 = s * nOut;
      const m = min<i32>(nOut, cols - c0);
      for (let j = 0; j < m; j++) store<f32>(dst + (<usize>(c0 + j) << 2), (o >> <u32>j) & 1 ? a : -a);
    }
  }
}
