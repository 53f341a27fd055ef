import { LowbitError } from '@lowbit/kernels';
import type { Granularity, PackedIntTensor } from './int-quant.js';

// Byte layout: "LBPT" | u32 header length | UTF-8 JSON header | zero padding to 4 | f32 scales |
// f32 zeros (if any) | codes. Everything needed to decode is inside; lengths are checked on read.
const MAGIC = 0x5450424c; // "LBPT" little-endian

interface Header {
  kind: 'int';
  bits: number;
  symmetric: boolean;
  shape: [number, number];
  granularity: Granularity;
  group: number;
  scales: number;
  zeros: number;
  codes: number;
}

export function serializeTensor(t: PackedIntTensor): Uint8Array {
  const header: Header = {
    kind: t.kind, bits: t.bits, symmetric: t.symmetric, shape: t.shape, granularity: t.granularity, group: t.group,
    scales: t.scales.length, zeros: t.zeros ? t.zeros.length : 0, codes: t.codes.length,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const hlen = Math.ceil((8 + json.length) / 4) * 4;
  const total = hlen + 4 * (header.scales + header.zeros) + header.codes;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, json.length, true);
  out.set(json, 8);
  let o = hlen;
  for (const a of [t.scales, t.zeros]) {
    if (!a) continue;
    for (let i = 0; i < a.length; i++, o += 4) view.setFloat32(o, a[i], true);
  }
  out.set(t.codes, o);
  return out;
}

export function deserializeTensor(bytes: Uint8Array): PackedIntTensor {
  if (!(bytes instanceof Uint8Array)) throw new LowbitError('E_DTYPE', 'deserializeTensor: expected a Uint8Array');
  if (bytes.length < 8) throw new LowbitError('E_TRUNCATED', `packed tensor: ${bytes.length} bytes is shorter than its 8-byte preamble`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new LowbitError('E_BAD_FILE', 'packed tensor: wrong magic (expected "LBPT")');
  const jlen = view.getUint32(4, true);
  if (8 + jlen > bytes.length) throw new LowbitError('E_TRUNCATED', `packed tensor: header of ${jlen} bytes runs past the end (${bytes.length} bytes)`);
  let h: Header;
  try {
    h = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + jlen))) as Header;
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', 'packed tensor: header is not valid JSON', { cause: e });
  }
  const hlen = Math.ceil((8 + jlen) / 4) * 4;
  const need = hlen + 4 * (h.scales + h.zeros) + h.codes;
  if (bytes.length < need) throw new LowbitError('E_TRUNCATED', `packed tensor: ${bytes.length} bytes, its header describes ${need}`);
  let o = hlen;
  const readF32 = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++, o += 4) a[i] = view.getFloat32(o, true);
    return a;
  };
  const scales = readF32(h.scales);
  const zeros = h.zeros ? readF32(h.zeros) : null;
  const codes = bytes.slice(o, o + h.codes);
  return { kind: 'int', bits: h.bits, symmetric: h.symmetric, shape: h.shape, granularity: h.granularity, group: h.group, scales, zeros, codes };
}
