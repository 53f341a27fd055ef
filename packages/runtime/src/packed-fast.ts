// lowbit's own tensor types onto the kernels that stream fastest (issue #20 item 3): the formats'
// table GEMV decodes every code through an f32 table, one token at a time, with the codes copied into
// WASM memory per call (int3 g32 eval 28.6 s, MXFP4 14.1 s against F32's 3.25 s). Most types are,
// exactly, weights one of the integer kernels already multiplies on prepared tiles:
// - INT-k, groups of 32k (or one scale per row) on rows of whole 32-blocks: u − zero is an integer
//   (the zero is 2^(k−1), or a stored integer), a Q4_0 code minus 8 when in [−8, 7] and an int8
//   when in [−128, 127], and the scales are fp16 by the type's contract, so each 32-block is a
//   Q4_0 / Q8_0 block, prepared into their tiles.
// - other INT-k, k ≤ 4 (zero points, rows not whole blocks): a k-bit code is a 4-bit code with the
//   symmetric zero moved from 2^(k−1) to 8, which the int4 kernel runs as is.
// - MX whose element values are small integers times a power of two (FP4 E2M1 ×2, FP6 E2M3 ×8,
//   INT8 ×64): a block of 32 with E8M0 scale e is a Q8_0 block with d = 2^(e − 127 − p), exact
//   while d is an fp16 (2^−24..2^15, which real weights' block scales are).
// The results differ from the table GEMV's only by the activations being int8 (the kernels' own
// rounding), the same trade every ggml type makes. What does not fit (act-order INT-k, groups not a
// multiple of 32, FP8, FP6 E3M2, scales outside fp16) keeps the table GEMV.
import { type MxFormatName, type MxTensor, type PackedIntTensor, dequantizeMx, readBits } from '@lowbit/formats';
import { f16ToF32, f32ToF16 } from '@lowbit/kernels';
import type { LinearWeight } from './linear.js';

const Q8_BLOCK = 34;

/** INT-k (k ≤ 8) as Q4_0 / Q8_0 blocks or int4-kernel weights, or null when the tensor has no such exact form. */
export function intFastWeight(t: PackedIntTensor): LinearWeight | null {
  if (t.gIdx || t.bits < 1 || t.bits > 8) return null;
  const [rows, cols] = t.shape;
  if (t.granularity !== 'group-cols' && t.granularity !== 'per-oc' && t.granularity !== 'tensor') return null;
  // one scale per row: a single group as wide as the row rounded up to 32 (the int4 kernel's groups
  // are whole 32-blocks; the last one may be partial)
  const perRow = t.granularity !== 'group-cols';
  const group = perRow ? Math.ceil(cols / 32) * 32 : t.group;
  if (group <= 0 || group % 32 !== 0) return null;
  const ng = Math.ceil(cols / group);
  const spread = (v: Float32Array | null): Float32Array | null => {
    if (!v || t.granularity === 'group-cols' || t.granularity === 'per-oc') return v;
    return new Float32Array(rows * ng).fill(v[0]);
  };
  const scales = spread(t.scales) as Float32Array;
  const zeros = spread(t.zeros);
  if (scales.length !== rows * ng || (zeros && zeros.length !== rows * ng)) return null;
  const rb = Math.ceil((cols * t.bits) / 8);
  const code = (r: number, c: number) => readBits(t.codes, r * rb * 8 + c * t.bits, t.bits);
  // rows of whole 32-blocks with integer zero points (the symmetric 2^(k−1), or the stored ones):
  // q = u − zero is an integer, so each 32-block is a ggml block, Q4_0 (d·(q + 8 − 8)) when every q
  // is in [−8, 7] (any k ≤ 3, symmetric k = 4), Q8_0 when in [−128, 127]; their prepared tiles stream
  // fastest and share one activation quantization across Q/K/V and gate/up
  const zeroAt = (r: number, c: number) => (zeros ? zeros[r * ng + Math.floor(c / group)] : 2 ** (t.bits - 1));
  if (cols % 32 === 0 && (!zeros || zeros.every(Number.isInteger))) {
    let lo = 0;
    let hi = 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const q = code(r, c) - zeroAt(r, c);
        lo = Math.min(lo, q);
        hi = Math.max(hi, q);
      }
    }
    const q4 = lo >= -8 && hi <= 7;
    const per = q4 ? 18 : Q8_BLOCK;
    const nblk = cols / 32;
    const data = new Uint8Array(rows * nblk * per);
    const view = new DataView(data.buffer);
    let exact = q4 || (lo >= -128 && hi <= 127);
    for (let r = 0; r < rows && exact; r++) {
      for (let b = 0; b < nblk; b++) {
        const s = scales[r * ng + Math.floor((b * 32) / group)];
        const h = f32ToF16(s);
        // not an fp16: the type's contract is broken; keep a path that takes f32 scales
        if (f16ToF32(h) !== s) {
          exact = false;
          break;
        }
        const o = (r * nblk + b) * per;
        view.setUint16(o, h, true);
        const q = (j: number) => code(r, b * 32 + j) - zeroAt(r, b * 32 + j);
        // Q4_0: element j in the low nibble of byte j, j + 16 in its high nibble, value d·(nibble − 8)
        if (q4) for (let j = 0; j < 16; j++) data[o + 2 + j] = (q(j) + 8) | ((q(j + 16) + 8) << 4);
        else for (let j = 0; j < 32; j++) view.setInt8(o + 2 + j, q(j));
      }
    }
    if (exact) return { format: q4 ? 'q4_0' : 'q8_0', shape: [rows, cols], data };
  }
  if (t.bits > 4) return null;
  // zero points all at 2^(k−1) are the symmetric grid (GPTQ checkpoints store them explicitly): one
  // form for both, so a model reloaded from either file gives the same outputs bit for bit (the int4
  // kernel's zero correction rounds differently for z = 8 than for an explicit 2^(k−1))
  const sym = !zeros || zeros.every((z) => z === 2 ** (t.bits - 1));
  const shift = sym ? 8 - 2 ** (t.bits - 1) : 0;
  const nb = Math.ceil(cols / 2);
  const packed = new Uint8Array(rows * nb);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) packed[r * nb + (c >> 1)] |= (code(r, c) + shift) << ((c & 1) * 4);
  return { format: 'int4', shape: [rows, cols], packed, scales, zeros: sym ? null : zeros, group };
}

/** Per MX format: p and the element values times 2^p as integers, or null when they are not int8. */
const mxInts = new Map<MxFormatName, { p: number; ints: Int8Array } | null>();

function mxIntTable(format: MxFormatName): { p: number; ints: Int8Array } | null {
  if (mxInts.has(format)) return mxInts.get(format) ?? null;
  // the element values themselves: 256 codes in blocks of scale 2^0 (E8M0 127); codes past 2^bits
  // wrap, which is harmless (the table is read at code & (2^bits − 1))
  const n = 256;
  const vals = dequantizeMx({ format, length: n, scales: new Uint8Array(n / 32).fill(127), codes: Uint8Array.from({ length: n }, (_, i) => i & (format === 'mxfp4' ? 15 : format.startsWith('mxfp6') ? 63 : 255)) });
  let found: { p: number; ints: Int8Array } | null = null;
  for (let p = 0; p <= 8 && !found; p++) {
    const ints = new Int8Array(n);
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const v = vals[i] * 2 ** p;
      // −128 is a valid Q8_0 code (its tiles then take the exact kind; MXINT8 has −2.0)
      ok = Number.isInteger(v) && v >= -128 && v <= 127;
      ints[i] = v;
    }
    if (ok) found = { p, ints };
  }
  mxInts.set(format, found);
  return found;
}

/** MX with whole blocks along rows (the flat layout with cols % 32 = 0) as Q8_0 weights, or null. */
export function mxFastWeight(m: MxTensor, shape: [number, number]): LinearWeight | null {
  const [rows, cols] = shape;
  if (cols % 32 !== 0 || m.length !== rows * cols || m.codes.length !== rows * cols || m.scales.length !== (rows * cols) / 32) return null;
  const tab = mxIntTable(m.format);
  if (!tab) return null;
  const nb = m.scales.length;
  const data = new Uint8Array(nb * Q8_BLOCK);
  const view = new DataView(data.buffer);
  for (let b = 0; b < nb; b++) {
    const e = m.scales[b];
    const x = e - 127 - tab.p;
    // 0xFF is NaN; d must be an fp16 (normal or subnormal) power of two
    if (e === 0xff || x < -24 || x > 15) return null;
    const o = b * Q8_BLOCK;
    view.setUint16(o, f32ToF16(2 ** x), true);
    for (let j = 0; j < 32; j++) view.setInt8(o + 2 + j, tab.ints[m.codes[b * 32 + j]]);
  }
  return { format: 'q8_0', shape, data };
}
