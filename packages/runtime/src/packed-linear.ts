// Layers quantized by @lowbit/formats / @lowbit/quantizers as runnable weights, kept packed where a
// kernel exists: INT4 with 32-multiple groups along the input (or one scale per output row) on Q4_0
// tiles on rows of whole blocks (packed-fast.ts int4Q4Weight), else on the int4 matmul kernel
// (batched, int8 activations); INT-k (act-order too) and MX (FP8 and FP6 E3M2 as
// two planes of ggml tiles, partial last blocks padded) that repack exactly onto the int4 kernel or
// Q8_0 / Q4_0 tiles run there (packed-fast.ts); NF4, codebooks of ≤ 16 entries and BCQ of ≤ 4 planes on
// the 16-entry-table GEMV (lut-fast.ts, int8 activations); the rest on the formats' table-driven GEMV
// (f32 activations, one token at a time), other BCQ decoded to f32 (`decode: true` forces that for all).
import { LowbitError } from '@lowbit/kernels';
import {
  type BcqTensor, type PackedTensor, dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, readAnyPrecision,
} from '@lowbit/formats';
import type { LinearWeight } from './linear.js';
import type { GgufTensorInfo } from './gguf-reader.js';
import { type LowbitIntParams, isLowbitType } from './ggml-types.js';
import { anyPrecisionFromBytes } from './any-precision-linear.js';
import { type MxRowsTensor, decodeLowbit, dequantizeMxRows, mxRowsAsFlat } from './lowbit-tensors.js';
import { int4Q4Weight, intFastWeight, mxFastWeight, mxRowsFastWeight } from './packed-fast.js';
import { type Lut4Host, bcqLutWeights, codebookLutWeights, nf4LutWeights, nf4TileBlocks } from './lut-fast.js';

export interface FromPackedOptions {
  /** For any-precision tensors: decode at this one width (default: keep the nested layout, every width servable). */
  bits?: number;
  /** The layer's [rows, cols] when the tensor does not carry it (MX tensors are flat). */
  shape?: [number, number];
  /** Decode to f32 instead of running packed (quality studies that want f32 activations everywhere). */
  decode?: boolean;
  /**
   * Keep INT-k and MX on the formats' table GEMV (f32 activations) instead of the integer kernels
   * they are exactly repacked for (packed-fast.ts: Q4_0 / Q8_0 tiles, int8 activations), and
   * NF4 / codebooks there and BCQ on f32 instead of lut4Gemv (lut-fast.ts).
   */
  tableGemv?: boolean;
}

/** A packed tensor of @lowbit/formats (or MX with blocks per row) as weights for `model.setLinear`. */
export function linearWeightFromPacked(t: PackedTensor | MxRowsTensor, options: FromPackedOptions = {}): LinearWeight {
  const kind = 'kind' in t && t.kind ? t.kind : 'mx';
  if (kind === 'mx-rows') {
    const m = t as MxRowsTensor;
    if (options.decode) return { format: 'f32', shape: m.shape, data: dequantizeMxRows(m) };
    // rows of whole blocks are the formats' flat MX; otherwise blocks per row (a partial last one)
    const flat = m.shape[1] % 32 === 0 ? mxRowsAsFlat(m) : null;
    return repacked(options.tableGemv ? null : mxRowsFastWeight(m), { format: 'packed', shape: m.shape, tensor: flat ?? m });
  }
  const shape = ('shape' in t ? t.shape : options.shape) as [number, number] | undefined;
  if (!shape) throw new LowbitError('E_ARG', 'linearWeightFromPacked: an MX tensor needs options.shape ([rows, cols])');
  switch (kind) {
    case 'int': {
      const it = t as Extract<PackedTensor, { kind: 'int' }>;
      const [, cols] = it.shape;
      const group = it.granularity === 'group-cols' ? it.group : it.granularity === 'per-oc' ? cols : 0;
      if (options.decode) return { format: 'f32', shape, data: dequantizeInt(it) };
      if (it.bits === 4 && group > 0 && group % 32 === 0 && !it.gIdx) {
        // on whole blocks: Q4_0 tiles (zero points other than 8 as a group term), which keep no JS copy
        // of the codes (`int` reads them back for `source`); rows not whole blocks on the int4 kernel
        const q4 = options.tableGemv ? null : int4Q4Weight(it);
        if (q4) {
          const { codes: _, ...form } = it;
          return Object.assign(q4, { int: form });
        }
        return { format: 'int4', shape, packed: it.codes, scales: it.scales, zeros: it.zeros, group };
      }
      // per-ic / group-rows with zero points have no GEMV (formats says so): decode those
      if (it.zeros && (it.granularity === 'per-ic' || it.granularity === 'group-rows')) return { format: 'f32', shape, data: dequantizeInt(it) };
      return repacked(options.tableGemv ? null : intFastWeight(it), { format: 'packed', shape, tensor: it });
    }
    case 'mx': {
      const m = t as Parameters<typeof dequantizeMx>[0];
      if (m.length !== shape[0] * shape[1]) throw new LowbitError('E_SHAPE', `linearWeightFromPacked: MX tensor has ${m.length} values, shape [${shape}] needs ${shape[0] * shape[1]}`);
      if (options.decode || shape[1] % 32 !== 0) return { format: 'f32', shape, data: dequantizeMx(m) };
      const tensor = { ...m, shape };
      return repacked(options.tableGemv ? null : mxFastWeight(m, shape), { format: 'packed', shape, tensor });
    }
    // NF4, codebooks (≤ 4 bits) and BCQ (≤ 4 planes) on the 16-entry-table GEMV (lut-fast.ts) where
    // their blocks are whole 32-column blocks; `tableGemv` keeps the formats' table GEMV (BCQ: f32)
    case 'codebook': {
      const cb = t as Parameters<typeof dequantizeCodebook>[0];
      if (options.decode) return { format: 'f32', shape, data: dequantizeCodebook(cb) };
      return repacked(options.tableGemv ? null : lut4Weight(shape, codebookLutWeights(cb)), { format: 'packed', shape, tensor: cb });
    }
    case 'nf4': {
      const nf = t as Parameters<typeof dequantizeNf4>[0];
      if (options.decode) return { format: 'f32', shape, data: dequantizeNf4(nf) };
      const origin: LinearWeight = { format: 'packed', shape, tensor: nf };
      if (options.tableGemv) return origin;
      // the kernels' NF4 tiles on relaxed-SIMD builds (rows in fours), lut4Gemv elsewhere
      const lut = lut4Weight(shape, nf4LutWeights(nf));
      const tiles = nf4TileBlocks(nf);
      return repacked(tiles ? { format: 'nf4', shape, data: tiles, fallback: lut ?? { ...origin } } : lut, origin);
    }
    case 'bcq': {
      const b = t as BcqTensor;
      const lut = options.decode || options.tableGemv ? null : lut4Weight(shape, bcqLutWeights(b));
      return lut ? repacked(lut, lazyBcqOrigin(b)) : { format: 'f32', shape, data: dequantizeBcq(b) };
    }
    case 'any-precision': {
      const ap = t as Parameters<typeof readAnyPrecision>[0];
      // kept nested (one copy serves every width) unless a fixed width is asked for or decode is
      if (options.decode || options.bits !== undefined) return { format: 'f32', shape, data: readAnyPrecision(ap, options.bits ?? ap.maxBits) };
      return { format: 'any-precision', shape, tensor: ap };
    }
    default:
      throw new LowbitError('E_FORMAT', `linearWeightFromPacked: unknown packed tensor kind ${String(kind)}`);
  }
}

function lut4Weight(shape: [number, number], w: Lut4Host | null): LinearWeight | null {
  return w ? { format: 'lut4', shape, weights: w } : null;
}

/** The repacked weights (or, when there are none, the packed ones), remembering what they came from. */
function repacked(fast: LinearWeight | null, origin: LinearWeight): LinearWeight {
  return fast ? Object.assign(fast, { origin }) : origin;
}

/**
 * A lowbit-typed GGUF tensor (LB_INT*, LB_MX*) as the packed weights of a linear layer: INT4 groups
 * of 32k on Q4_0 tiles (whole blocks) or the int4 kernel, INT-k and MX that repack exactly on ggml tiles or the int4 kernel
 * (packed-fast.ts), the rest on the formats' table GEMV (nothing decoded to f32).
 */
export function lowbitLinearWeight(t: GgufTensorInfo, bytes: Uint8Array, where = `tensor ${t.name}`): LinearWeight {
  if (!isLowbitType(t.type)) throw new LowbitError('E_ARG', `${where}: ${t.type} is not a lowbit tensor type`);
  if (t.type === 'LB_ANYPREC') {
    const ap = anyPrecisionFromBytes(where, t.params, t.shape, bytes);
    return { format: 'any-precision', shape: ap.shape, tensor: ap };
  }
  return linearWeightFromPacked(decodeLowbit(t.type, t.shape, t.params as LowbitIntParams | undefined, bytes, where));
}

/**
 * BCQ's f32 values, decoded on first read and kept: what `Linear.source` hands out for a BCQ layer
 * (as before it had a GEMV), without holding an f32 copy beside the packed one until someone asks.
 */
export function lazyBcqOrigin(t: BcqTensor): LinearWeight {
  let data: Float32Array | null = null;
  return {
    format: 'f32',
    shape: [t.shape[0], t.shape[1]],
    get data() {
      data ??= dequantizeBcq(t);
      return data;
    },
  } as LinearWeight;
}
