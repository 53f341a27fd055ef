import { LowbitError } from '@lowbit/kernels';
import type { Granularity, ScaleLayout } from './tensor-types.js';

// Which scale each element of an INT-k tensor uses (a leaf module: the encoder, the decoder and
// validation all need it).

export function scaleLayout(shape: [number, number], granularity: Granularity, group: number): ScaleLayout {
  const [rows, cols] = shape;
  switch (granularity) {
    case 'tensor':
      return { count: 1, index: () => 0 };
    case 'per-oc':
      return { count: rows, index: (r) => r };
    case 'per-ic':
      return { count: cols, index: (_r, c) => c };
    case 'group-cols': {
      const ng = Math.ceil(cols / group);
      return { count: rows * ng, index: (r, c) => r * ng + Math.floor(c / group) };
    }
    case 'group-rows':
      return { count: Math.ceil(rows / group) * cols, index: (r, c) => Math.floor(r / group) * cols + c };
    default:
      throw new LowbitError('E_ARG', `unknown granularity "${granularity as string}"`);
  }
}
