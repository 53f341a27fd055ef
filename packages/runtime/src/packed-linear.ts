// Layers quantized by @lowbit/formats / @lowbit/quantizers as runnable weights. INT4 with groups along
// the input dimension (or one scale per output row) runs packed on the int4 kernel; every other format
// (other bit widths, MX, NF4, codebooks, BCQ, any-precision) is decoded to f32 by its own reference
// decoder, which is exact for evaluating quality: a packed kernel would compute the same values.
import { LowbitError } from '@lowbit/kernels';
import {
  type PackedTensor, dequantizeBcq, dequantizeCodebook, dequantizeInt, dequantizeMx, dequantizeNf4, readAnyPrecision,
} from '@lowbit/formats';
import type { LinearWeight } from './linear.js';

export interface FromPackedOptions {
  /** For any-precision tensors: the bit width to read (default: the largest stored). */
  bits?: number;
  /** The layer's [rows, cols] when the tensor does not carry it (MX tensors are flat). */
  shape?: [number, number];
}

/** A packed tensor of @lowbit/formats as weights for `model.setLinear`. */
export function linearWeightFromPacked(t: PackedTensor, options: FromPackedOptions = {}): LinearWeight {
  const kind = 'kind' in t && t.kind ? t.kind : 'mx';
  const shape = ('shape' in t ? t.shape : options.shape) as [number, number] | undefined;
  if (!shape) throw new LowbitError('E_ARG', 'linearWeightFromPacked: an MX tensor needs options.shape ([rows, cols])');
  switch (kind) {
    case 'int': {
      const it = t as Extract<PackedTensor, { kind: 'int' }>;
      const [, cols] = it.shape;
      const group = it.granularity === 'group-cols' ? it.group : it.granularity === 'per-oc' ? cols : 0;
      if (it.bits === 4 && group > 0 && group % 32 === 0) {
        return { format: 'int4', shape, packed: it.codes, scales: it.scales, zeros: it.zeros, group };
      }
      return { format: 'f32', shape, data: dequantizeInt(it) };
    }
    case 'mx': {
      const data = dequantizeMx(t as Parameters<typeof dequantizeMx>[0]);
      if (data.length !== shape[0] * shape[1]) throw new LowbitError('E_SHAPE', `linearWeightFromPacked: MX tensor has ${data.length} values, shape [${shape}] needs ${shape[0] * shape[1]}`);
      return { format: 'f32', shape, data };
    }
    case 'codebook':
      return { format: 'f32', shape, data: dequantizeCodebook(t as Parameters<typeof dequantizeCodebook>[0]) };
    case 'nf4':
      return { format: 'f32', shape, data: dequantizeNf4(t as Parameters<typeof dequantizeNf4>[0]) };
    case 'bcq':
      return { format: 'f32', shape, data: dequantizeBcq(t as Parameters<typeof dequantizeBcq>[0]) };
    case 'any-precision': {
      const ap = t as Parameters<typeof readAnyPrecision>[0];
      return { format: 'f32', shape, data: readAnyPrecision(ap, options.bits ?? ap.maxBits) };
    }
    default:
      throw new LowbitError('E_FORMAT', `linearWeightFromPacked: unknown packed tensor kind ${String(kind)}`);
  }
}
