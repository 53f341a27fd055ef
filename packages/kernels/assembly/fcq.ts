// Decoder of @lowbit/formats' FCQ streams: static byte-wise rANS (12-bit frequencies, state in
// [2^23, 2^31)) over level indices, each index replaced by its f32 level. Integer arithmetic and
// f32 copies only, so it equals the TypeScript reference bit for bit.

const PREC: u32 = 12;
const L: u32 = 1 << 23;

// freqs: u16[nl] summing to 2^12 (checked by the caller); scratch: 4096 + 4·(nl + 1) bytes.
// Returns 0 when the stream decodes to exactly n symbols and ends in the initial state, 1 when it
// runs out, 2 when the state leaves its interval or bytes or state are left over.
export function fcq_decode(stream: usize, len: i32, freqs: usize, nl: i32, n: i32, levels: usize, out: usize, scratch: usize): i32 {
  if (len < 4) return 1;
  const slot = scratch;
  const cum = scratch + 4096;
  let c: u32 = 0;
  for (let s = 0; s < nl; s++) {
    store<u32>(cum + (<usize>s << 2), c);
    const f = <u32>load<u16>(freqs + (<usize>s << 1));
    memory.fill(slot + <usize>c, <u8>s, <usize>f);
    c += f;
  }
  let x: u32 = (<u32>load<u8>(stream) << 24) | (<u32>load<u8>(stream + 1) << 16) | (<u32>load<u8>(stream + 2) << 8) | <u32>load<u8>(stream + 3);
  let pos: i32 = 4;
  for (let i = 0; i < n; i++) {
    if (x < L) return 2;
    const r = x & ((1 << PREC) - 1);
    const s = <usize>load<u8>(slot + <usize>r);
    store<f32>(out + (<usize>i << 2), load<f32>(levels + (s << 2)));
    x = <u32>load<u16>(freqs + (s << 1)) * (x >> PREC) + r - load<u32>(cum + (s << 2));
    while (x < L) {
      if (pos >= len) return 1;
      x = (x << 8) | <u32>load<u8>(stream + <usize>pos);
      pos++;
    }
  }
  return pos == len && x == L ? 0 : 2;
}

// The same rANS decoder writing each symbol as one byte (seqenc's entropy-coded keep mask):
// freqs u16[nl] summing to 2^12; scratch 4096 + 4·(nl + 1) bytes; return codes as fcq_decode.
export function rans_decode_u8(stream: usize, len: i32, freqs: usize, nl: i32, n: i32, out: usize, scratch: usize): i32 {
  if (len < 4) return 1;
  const slot = scratch;
  const cum = scratch + 4096;
  let c: u32 = 0;
  for (let s = 0; s < nl; s++) {
    store<u32>(cum + (<usize>s << 2), c);
    const f = <u32>load<u16>(freqs + (<usize>s << 1));
    memory.fill(slot + <usize>c, <u8>s, <usize>f);
    c += f;
  }
  let x: u32 = (<u32>load<u8>(stream) << 24) | (<u32>load<u8>(stream + 1) << 16) | (<u32>load<u8>(stream + 2) << 8) | <u32>load<u8>(stream + 3);
  let pos: i32 = 4;
  for (let i = 0; i < n; i++) {
    if (x < L) return 2;
    const r = x & ((1 << PREC) - 1);
    const s = <usize>load<u8>(slot + <usize>r);
    store<u8>(out + <usize>i, <u8>s);
    x = <u32>load<u16>(freqs + (s << 1)) * (x >> PREC) + r - load<u32>(cum + (s << 2));
    while (x < L) {
      if (pos >= len) return 1;
      x = (x << 8) | <u32>load<u8>(stream + <usize>pos);
      pos++;
    }
  }
  return pos == len && x == L ? 0 : 2;
}
