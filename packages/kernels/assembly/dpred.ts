// Decoder of @lowbit/formats' DPRed group streams: per group a 4-bit width p, then p-bit two's-
// complement codes, bits LSB first; each code times its row's f32 scale. An i16 code times an f32
// scale is exact in f64, so the f32 product here rounds like the TypeScript's Math.fround(code·scale).

// stream: sb bytes followed by at least 4 readable bytes (the bit window reads up to 3 bytes past a
// field); scales: f32[rows]; out: f32[rows·cols]. Returns 0, 1 when the stream ends inside a group,
// 2 when 8 or more bits are left over: the TypeScript reader's E_TRUNCATED and E_FORMAT.
export function dpred_decode(stream: usize, sb: i32, rows: i32, cols: i32, group: i32, scales: usize, out: usize): i32 {
  const limit: u64 = <u64>sb << 3;
  let pos: u64 = 0;
  for (let r = 0; r < rows; r++) {
    const a = load<f32>(scales + (<usize>r << 2));
    const dst = out + ((<usize>r * <usize>cols) << 2);
    for (let c0 = 0; c0 < cols; c0 += group) {
      const n = min<i32>(group, cols - c0);
      if (pos + 4 > limit) return 1;
      const p = (load<u32>(stream + <usize>(pos >> 3)) >> <u32>(pos & 7)) & 15;
      pos += 4;
      // the TypeScript reader fails at the first value that runs past the end: the same groups fail here
      if (p > 0 && pos + <u64>p * <u64>n > limit) return 1;
      const sh = 32 - p;
      for (let c = 0; c < n; c++) {
        let v: i32 = 0;
        if (p > 0) {
          const u = load<u32>(stream + <usize>(pos >> 3)) >> <u32>(pos & 7);
          v = <i32>(u << sh) >> sh;
          pos += p;
        }
        store<f32>(dst + (<usize>(c0 + c) << 2), <f32>v * a);
      }
    }
  }
  return limit - pos >= 8 ? 2 : 0;
}
