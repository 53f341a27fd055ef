import { type Granularity, type PackedIntTensor, dequantizeInt, quantizeInt } from '@lowbit/formats';

export interface RtnOptions {
  bits: number;
  symmetric?: boolean;
  /** Which weights share a scale (default 'group-cols' when `group` is set, else 'per-oc'). */
  granularity?: Granularity;
  group?: number;
  clip?: number;
}

export interface RtnResult {
  weights: Float32Array;
  packed: PackedIntTensor;
}

/** Round-to-nearest: every weight independently to the nearest grid point (the baseline of every PTQ paper). */
export function rtnQuantize(w: Float32Array, shape: [number, number], o: RtnOptions): RtnResult {
  const granularity = o.granularity ?? (o.group ? 'group-cols' : 'per-oc');
  const packed = quantizeInt(w, shape, { bits: o.bits, symmetric: o.symmetric ?? true, granularity, group: o.group, clip: o.clip });
  return { weights: dequantizeInt(packed), packed };
}
