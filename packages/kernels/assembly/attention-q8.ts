// Causal GQA attention over an int8 KV cache: each position's kv head holds headDim int8 codes and
// one f32 scale (the value of code 1; runtime's CompressedKvCache rounds it to fp16), so a token's
// keys and values are read as a quarter of the f32 cache's bytes. score_p = Σ q_i·(c_i·s_p)·scale,
// out = Σ_p a_p·(s_p·v_p), in f32. The query heads of a kv head go through its codes together, a
// block of positions at a time as attention_f32 does: each block's codes are widened to f32 and
// scaled once, into the first head's scratch, for all the group's heads. Head by head, each of the 8
// widened every code again: a 1B-class decode token at position 2047 took 40.1 ms against 21.5 for
// the f32 cache, now 29.5 against 21.6 (attention benchmark area).
//
// kc, vc: this layer's codes, position p's kvDim bytes at p·kvDim; ks, vs: its scales, nKvHeads f32
// per position; scratch: attention_block_bytes(headDim) bytes per query head. Other arguments as
// attention_f32.
import { blockLen, scoreBlock, softmaxHeads, valueBlock } from './attention';

// @ts-ignore: decorator
@inline function widen4(p: usize): v128 {
  return f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(i16x8.extend_low_i8x16_s(v128.load32_zero(p))));
}

// len positions' codes of one kv head (kvDim bytes apart) times their scales (nKvHeads f32 apart)
// as f32 into dst, headDim per position.
// @ts-ignore: decorator
@inline function widenBlock(src: usize, kvDim: usize, sc: usize, nKvHeads: usize, dst: usize, len: i32, headDim: i32): void {
  for (let p = 0; p < len; p++) {
    const c = src + <usize>p * kvDim;
    const d = dst + ((<usize>p * <usize>headDim) << 2);
    const s = load<f32>(sc + ((<usize>p * nKvHeads) << 2));
    let i = 0;
    if (ASC_FEATURE_SIMD) {
      const s4 = f32x4.splat(s);
      for (; i + 4 <= headDim; i += 4) v128.store(d + (<usize>i << 2), f32x4.mul(widen4(c + <usize>i), s4));
    }
    for (; i < headDim; i++) store<f32>(d + (<usize>i << 2), <f32>load<i8>(c + <usize>i) * s);
  }
}

export function attention_q8(q: usize, kc: usize, ks: usize, vc: usize, vs: usize, out: usize, att: usize, scratch: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvDim = <usize>nKvHeads * <usize>headDim;
  const span = <usize>(pos0 + n) << 2;
  const blk = blockLen(headDim);
  const hb = <usize>headDim << 2;
  const kvh = <usize>nKvHeads;
  for (let t = 0; t < n; t++) {
    const row = (<usize>t * dim) << 2;
    const npos = pos0 + t + 1;
    for (let g = h0 / group; g * group < h1; g++) {
      const a = max<i32>(h0, g * group);
      const z = min<i32>(h1, (g + 1) * group);
      const ag = att + <usize>a * span;
      const buf = scratch + <usize>a * <usize>(blk * headDim * 4); // a's own: threads split by heads
      const co = <usize>g * <usize>headDim;
      for (let p0 = 0; p0 < npos; p0 += blk) {
        const len = min<i32>(blk, npos - p0);
        widenBlock(kc + <usize>p0 * kvDim + co, kvDim, ks + ((<usize>p0 * kvh + <usize>g) << 2), kvh, buf, len, headDim);
        scoreBlock(q + row, buf, hb, ag, span, a, z, p0, len, headDim, scale);
      }
      softmaxHeads(ag, span, a, z, npos);
      for (let p0 = 0; p0 < npos; p0 += blk) {
        const len = min<i32>(blk, npos - p0);
        widenBlock(vc + <usize>p0 * kvDim + co, kvDim, vs + ((<usize>p0 * kvh + <usize>g) << 2), kvh, buf, len, headDim);
        valueBlock(out + row, buf, hb, ag, span, a, z, p0, len, headDim);
      }
    }
  }
}
