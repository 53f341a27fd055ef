// Causal GQA attention where head h reads only the last spans[h] positions (Sukhbaatar et al. 2019,
// adaptive attention span: a head whose mass lies in its recent past skips the masked context, so
// reads and flops fall with the span, not the context). Arguments as attention_f32, plus spans: an
// i32 per head (this layer's). Position pos0 + t of head h sees max(0, pos0 + t + 1 − span)..pos0 + t;
// with every span ≥ pos0 + n it runs the same operations, in the same order, as attention_f32.
import { scores } from './attention';

export function attention_span_f32(q: usize, kc: usize, vc: usize, out: usize, att: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, spans: usize, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  const width = <usize>(pos0 + n);
  const hb = <usize>headDim << 2;
  for (let h = h0; h < h1; h++) {
    const ah = att + ((<usize>h * width) << 2);
    const kvo = (<usize>(h / group) * <usize>headDim) << 2;
    const span = load<i32>(spans + (<usize>h << 2));
    for (let t = 0; t < n; t++) {
      const end = pos0 + t + 1;
      const lo = max<i32>(0, end - span);
      const npos = end - lo;
      const row = (<usize>t * dim + <usize>h * <usize>headDim) << 2;
      const kh = kc + kvo + <usize>lo * kvStride;
      const vh = vc + kvo + <usize>lo * kvStride;
      const mx = scores(q + row, kh, kvStride, ah, npos, headDim, scale);
      let sum: f32 = 0;
      for (let p = 0; p < npos; p++) {
        const e = Mathf.exp(load<f32>(ah + (<usize>p << 2)) - mx);
        store<f32>(ah + (<usize>p << 2), e);
        sum += e;
      }
      const inv: f32 = 1 / sum;
      const o = out + row;
      if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
        for (let i: usize = 0; i < hb; i += 16) v128.store(o + i, f32x4.splat(0));
        let vp = vh;
        for (let p = 0; p < npos; p++, vp += kvStride) {
          const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)) * inv);
          for (let i: usize = 0; i < hb; i += 16) v128.store(o + i, f32x4.add(v128.load(o + i), f32x4.mul(a, v128.load(vp + i))));
        }
      } else {
        for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), 0);
        let vp = vh;
        for (let p = 0; p < npos; p++, vp += kvStride) {
          const a = load<f32>(ah + (<usize>p << 2)) * inv;
          for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) + a * load<f32>(vp + (<usize>i << 2)));
        }
      }
    }
  }
}
