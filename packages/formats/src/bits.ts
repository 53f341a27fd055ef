// Little-endian bit packing, the int-k convention every packed format here uses (CONTRIBUTING.md):
// element i of a row at bit offset i·k, each row starting on a byte boundary. A leaf module.

/** Bytes of one row of `cols` codes of `bits` bits. */
export function rowBytes(cols: number, bits: number): number {
  return Math.ceil((cols * bits) / 8);
}

/** Little-endian bit stream: bit i of the stream is bit (i mod 8) of byte ⌊i/8⌋. ORs into `buf` (start from zeros). */
export function writeBits(buf: Uint8Array, bitPos: number, bits: number, value: number): void {
  for (let b = 0; b < bits; b++) {
    const p = bitPos + b;
    if ((value >> b) & 1) buf[p >> 3] |= 1 << (p & 7);
  }
}

export function readBits(buf: Uint8Array, bitPos: number, bits: number): number {
  let v = 0;
  for (let b = 0; b < bits; b++) {
    const p = bitPos + b;
    v |= ((buf[p >> 3] >> (p & 7)) & 1) << b;
  }
  return v;
}
