// Causal GQA attention where head h reads only the last spans[h] positions (Sukhbaatar et al. 2019,
// adaptive attention span: a head whose mass lies in its recent past skips the masked context, so
// reads and flops fall with the span, not the context). Arguments as attention_f32, plus spans: an
// i32 per head (this layer's). Position pos0 + t of head h sees max(0, pos0 + t + 1 − span)..pos0 + t;
// with every span ≥ pos0 + n it runs the same operations, in the same order, as attention_f32.
import { attendGroup } from './attention';

export function attention_span_f32(q: usize, kc: usize, vc: usize, out: usize, att: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, spans: usize, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  const width = <usize>(pos0 + n);
  for (let h = h0; h < h1; h++) {
    const kvo = (<usize>(h / group) * <usize>headDim) << 2;
    const span = load<i32>(spans + (<usize>h << 2));
    for (let t = 0; t < n; t++) {
      const end = pos0 + t + 1;
      const lo = max<i32>(0, end - span);
      const row = (<usize>t * dim) << 2;
      // one head per call: each head has its own first position
      attendGroup(q + row, out + row, kc + kvo + <usize>lo * kvStride, vc + kvo + <usize>lo * kvStride, att + ((<usize>h * width) << 2), 0, h, h + 1, end - lo, headDim, kvStride, scale);
    }
  }
}
