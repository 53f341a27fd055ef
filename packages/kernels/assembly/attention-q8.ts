// Causal GQA attention over an int8 KV cache: each position's kv head holds headDim int8 codes and
// one f32 scale (the value of code 1; runtime's CompressedKvCache rounds it to fp16), so a token's
// keys and values are read as a quarter of the f32 cache's bytes. score_p = (Σ q_i·c_i)·s_p·scale,
// out = Σ_p a_p·s_p·v_p, in f32; the codes are widened to f32 four at a time.
//
// kc, vc: this layer's codes, position p's kvDim bytes at p·kvDim; ks, vs: its scales, nKvHeads f32
// per position. Other arguments as attention_f32.
import { softmaxFrom } from './attention';

// @ts-ignore: decorator
@inline function widen4(p: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p))));
}

export function attention_q8(q: usize, kc: usize, ks: usize, vc: usize, vs: usize, out: usize, att: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvDim = <usize>nKvHeads * <usize>headDim;
  const width = <usize>(pos0 + n);
  const hb = <usize>headDim << 2;
  for (let h = h0; h < h1; h++) {
    const ah = att + ((<usize>h * width) << 2);
    const g = <usize>(h / group);
    const co = g * <usize>headDim; // byte offset of this kv head's codes in a position
    for (let t = 0; t < n; t++) {
      const npos = pos0 + t + 1;
      const row = (<usize>t * dim + <usize>h * <usize>headDim) << 2;
      const qh = q + row;
      let mx: f32 = -Infinity;
      for (let p = 0; p < npos; p++) {
        const kp = kc + <usize>p * kvDim + co;
        let s: f32 = 0;
        if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
          let a = f32x4.splat(0);
          for (let i = 0; i < headDim; i += 4) a = f32x4.add(a, f32x4.mul(v128.load(qh + (<usize>i << 2)), widen4(kp + <usize>i)));
          const b = f32x4.add(a, v128.shuffle<f32>(a, a, 2, 3, 0, 1));
          s = f32x4.extract_lane(f32x4.add(b, v128.shuffle<f32>(b, b, 1, 0, 3, 2)), 0);
        } else {
          for (let i = 0; i < headDim; i++) s += load<f32>(qh + (<usize>i << 2)) * <f32>load<i8>(kp + <usize>i);
        }
        s = s * load<f32>(ks + ((<usize>p * <usize>nKvHeads + g) << 2)) * scale;
        store<f32>(ah + (<usize>p << 2), s);
        mx = max<f32>(mx, s);
      }
      softmaxFrom(ah, ah, npos, mx);
      const o = out + row;
      if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
        for (let i: usize = 0; i < hb; i += 16) v128.store(o + i, f32x4.splat(0));
        for (let p = 0; p < npos; p++) {
          const vp = vc + <usize>p * kvDim + co;
          const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)) * load<f32>(vs + ((<usize>p * <usize>nKvHeads + g) << 2)));
          for (let i = 0; i < headDim; i += 4) {
            const oi = o + (<usize>i << 2);
            v128.store(oi, f32x4.add(v128.load(oi), f32x4.mul(a, widen4(vp + <usize>i))));
          }
        }
      } else {
        for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), 0);
        for (let p = 0; p < npos; p++) {
          const vp = vc + <usize>p * kvDim + co;
          const a = load<f32>(ah + (<usize>p << 2)) * load<f32>(vs + ((<usize>p * <usize>nKvHeads + g) << 2));
          for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) + a * <f32>load<i8>(vp + <usize>i));
        }
      }
    }
  }
}
