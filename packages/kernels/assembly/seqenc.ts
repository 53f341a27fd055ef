// Decoder of @lowbit/formats' sequentially encrypted bit-planes: step t emits nOut bits, the XOR of
// the network columns selected by the nIn fresh input bits and the nS·nIn bits of the previous nS
// steps (a shift register cleared every `block` steps), then the patch positions are flipped.
// Integer operations only, so the planes equal the TypeScript reference bit for bit.

// inputs: ceil(steps·nIn/8) bytes followed by at least 3 readable bytes; cols: u32[(nS+1)·nIn];
// patches: u32[np], each < n (checked by the caller); codes: u32[n], bit b of each is set from the
// plane; scratch: 4·(2^nIn + 2^(nS·nIn)) bytes for the two output tables.
export function seqenc_plane(inputs: usize, n: i32, nIn: i32, nOut: i32, nS: i32, block: i32, cols: usize,
  patches: usize, np: i32, codes: usize, b: i32, scratch: usize): void {
  const X = 1 << nIn;
  const sBits = nS * nIn;
  const S = 1 << sBits;
  const outX = scratch;
  const outS = scratch + (<usize>X << 2);
  // table[s] = table[s without its lowest set bit] ^ the column of that bit
  store<u32>(outX, 0);
  for (let x = 1; x < X; x++) store<u32>(outX + (<usize>x << 2), load<u32>(outX + (<usize>(x & (x - 1)) << 2)) ^ load<u32>(cols + (<usize>ctz(x) << 2)));
  store<u32>(outS, 0);
  for (let s = 1; s < S; s++) store<u32>(outS + (<usize>s << 2), load<u32>(outS + (<usize>(s & (s - 1)) << 2)) ^ load<u32>(cols + (<usize>(nIn + ctz(s)) << 2)));
  const steps = (n + nOut - 1) / nOut;
  const xMask: u32 = <u32>X - 1;
  const sMask: u32 = <u32>S - 1;
  const bit: u32 = <u32>1 << <u32>b;
  let state: u32 = 0;
  let ib: usize = 0;
  for (let t = 0; t < steps; t++) {
    if (t % block == 0) state = 0;
    const x = (load<u32>(inputs + (ib >> 3)) >> <u32>(ib & 7)) & xMask;
    ib += <usize>nIn;
    const o = load<u32>(outX + (<usize>x << 2)) ^ load<u32>(outS + (<usize>state << 2));
    const p0 = t * nOut;
    const m = min<i32>(nOut, n - p0);
    const dst = codes + (<usize>p0 << 2);
    for (let j = 0; j < m; j++) {
      const q = dst + (<usize>j << 2);
      store<u32>(q, load<u32>(q) | (((o >> <u32>j) & 1) << <u32>b));
    }
    state = ((state << <u32>nIn) | x) & sMask;
  }
  for (let k = 0; k < np; k++) {
    const q = codes + (<usize>load<u32>(patches + (<usize>k << 2)) << 2);
    store<u32>(q, load<u32>(q) ^ bit);
  }
}

// Kept positions (mask: one 0/1 byte per position) become their values: with bits 32 the code is
// the f32 bit pattern, else a two's-complement `bits`-bit code times `scale` (exact in f64, so the
// f32 product rounds like the TypeScript's); pruned positions are +0. codes may alias out.
export function seqenc_values(codes: usize, mask: usize, n: i32, bits: i32, scale: f32, out: usize): void {
  const sh: u32 = <u32>(32 - bits);
  for (let i = 0; i < n; i++) {
    const c = load<u32>(codes + (<usize>i << 2));
    const q = out + (<usize>i << 2);
    if (!load<u8>(mask + <usize>i)) store<u32>(q, 0);
    else if (bits == 32) store<u32>(q, c);
    else store<f32>(q, <f32>(<i32>(c << sh) >> sh) * scale);
  }
}

// One 0/1 byte per position from a bitmap (LSB first).
export function unpack_bits(src: usize, n: i32, dst: usize): void {
  for (let i = 0; i < n; i++) store<u8>(dst + <usize>i, (load<u8>(src + (<usize>i >> 3)) >> <u8>(i & 7)) & 1);
}
