import { dequantBcq, dequantLutGroups, type Kernels, LowbitError } from '@lowbit/kernels';
import type { ElementCodec } from './element.js';
import { contiguousInt } from './int-quant.js';
import { decodeInt } from './integer.js';
import { MINIFLOATS, decodeMinifloat } from './minifloat.js';
import { NF4_TABLE } from './nf4.js';
import type { BcqTensor, CodebookTensor, MxFormatName, MxTensor, Nf4Tensor, PackedIntTensor } from './tensor-types.js';

// WASM fast paths (through @lowbit/kernels) of the decoders in this package. They are table-driven:
// the value of every code comes from the TypeScript codec, so both paths agree bit for bit.

const luts = new Map<string, Float32Array>();

function lutOf(key: string, size: number, value: (code: number) => number): Float32Array {
  let l = luts.get(key);
  if (!l) {
    l = new Float32Array(size);
    for (let c = 0; c < size; c++) l[c] = value(c);
    luts.set(key, l);
  }
  return l;
}

/** Decodes one-code-per-element values (as `codec.decode`) given bit-packed codes of `codec.bits`. */
export function decodePackedWasm(k: Kernels, codec: ElementCodec, packed: Uint8Array, rows: number, cols: number): Float32Array {
  if (codec.bits > 8) throw new LowbitError('E_UNSUPPORTED', `${codec.name}: the WASM decoder takes codes of up to 8 bits`);
  const lut = lutOf(codec.name, 2 ** codec.bits, (c) => codec.decode(Uint8Array.of(c))[0]);
  return k.decodeLut(packed, rows, cols, codec.bits, lut);
}

/** dequantizeInt for group-cols / per-oc tensors, in WASM. */
export function dequantizeIntWasm(k: Kernels, t: PackedIntTensor): Float32Array {
  const [rows, cols] = t.shape;
  if (t.granularity !== 'group-cols' && t.granularity !== 'per-oc') {
    throw new LowbitError('E_UNSUPPORTED', `WASM INT-k decoding handles groups along cols (and per-oc); got ${t.granularity}`);
  }
  if (t.gIdx) {
    // act-order groups: decode the contiguous re-packing, then put each column back in its place
    const c = contiguousInt(t);
    const d = dequantizeIntWasm(k, c.tensor);
    const out = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[r * cols + c.order[j]] = d[r * cols + j];
    return out;
  }
  const group = t.granularity === 'per-oc' ? Math.max(1, cols) : t.group;
  return k.dequantIntGroups(t.codes, t.scales, t.zeros, rows, cols, t.bits, group);
}

const MX_ELEMENT: Record<MxFormatName, (c: number) => number> = {
  mxfp8_e4m3: (c) => decodeMinifloat(MINIFLOATS.fp8_e4m3, c),
  mxfp8_e5m2: (c) => decodeMinifloat(MINIFLOATS.fp8_e5m2, c),
  mxfp6_e3m2: (c) => (c < 64 ? decodeMinifloat(MINIFLOATS.fp6_e3m2, c) : Number.NaN),
  mxfp6_e2m3: (c) => (c < 64 ? decodeMinifloat(MINIFLOATS.fp6_e2m3, c) : Number.NaN),
  mxfp4: (c) => (c < 16 ? decodeMinifloat(MINIFLOATS.fp4_e2m1, c) : Number.NaN),
  mxint8: (c) => decodeInt(8, c) / 64,
};

/** dequantizeMx in WASM. */
export function dequantizeMxWasm(k: Kernels, t: MxTensor): Float32Array {
  const value = MX_ELEMENT[t.format];
  if (!value) throw new LowbitError('E_FORMAT', `unknown MX format "${t.format}"`);
  return k.dequantMx(t.codes, t.scales, lutOf(t.format, 256, value));
}


/** dequantizeNf4 in WASM. */
export function dequantizeNf4Wasm(k: Kernels, t: Nf4Tensor): Float32Array {
  const [rows, cols] = t.shape;
  return dequantLutGroups(k, { codes: t.codes, rows, cols, bits: 4, lut: NF4_TABLE, scales: t.scales, zeros: null, group: t.group });
}

/** dequantizeCodebook in WASM (one table per row). */
export function dequantizeCodebookWasm(k: Kernels, t: CodebookTensor): Float32Array {
  const [rows, cols] = t.shape;
  return dequantLutGroups(k, { codes: t.codes, rows, cols, bits: t.bits, lut: t.lut, lutPerRow: true, scales: null, zeros: null, group: Math.max(1, cols) });
}

/** dequantizeBcq in WASM. */
export function dequantizeBcqWasm(k: Kernels, t: BcqTensor): Float32Array {
  return dequantBcq(k, t.planes, t.alphas, t.shape[0], t.shape[1], t.bits, t.group);
}
