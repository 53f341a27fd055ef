// Causal grouped-query attention over an f32 KV cache kept in WASM memory (llama2.c run.c order):
// per head, scores q·k_p·scale for p = 0..pos, softmax, then Σ_p a_p·v_p. In JS this was ~15% of a
// 1B decode token (f64 scalar loops, on the calling thread only); here it is f32 SIMD and a row
// kernel over heads, so a thread pool splits it like a matmul. The query heads of one kv head go
// through its keys and values together, a block of positions at a time (attendGroup).
//
// q, out: n rows of nHeads·headDim f32 (token t at t·dim); kc, vc: this layer's caches, position p's
// kvDim = nKvHeads·headDim values at p·kvDim, already holding positions 0..pos0+n−1;
// att: nHeads·(pos0+n) f32 scratch, one span per head (threads work on disjoint heads).
// Head h reads kv head h / (nHeads / nKvHeads). scaleBits: the f32 bits of the score scale (the
// pool passes i32 arguments only).
import { madd, wholeToI32 } from './f32';

// @ts-ignore: decorator
@inline function dotScalar(a: usize, b: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let i = 0; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

// @ts-ignore: decorator
@inline function hsum4(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(s, v128.shuffle<f32>(s, s, 1, 0, 3, 2)), 0);
}

// Four dot accumulators to their four sums, each as hsum4 adds its lanes ((v0 + v2) + (v1 + v3)), so a
// position's score is the same whichever path below computes it.
// @ts-ignore: decorator
@inline function sums4(a0: v128, a1: v128, a2: v128, a3: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

// @ts-ignore: decorator
@inline function max4(s: v128): f32 {
  const m = f32x4.max(s, v128.shuffle<f32>(s, s, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2)), 0);
}

// Scores of positions [0, npos) of one head into att (scaled), returns their maximum.
// @ts-ignore: decorator
@inline export function scores(qh: usize, kh: usize, kvStride: usize, att: usize, npos: i32, headDim: i32, scale: f32): f32 {
  let mx: f32 = -Infinity;
  let p = 0;
  if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
    const hb = <usize>headDim << 2;
    const sc = f32x4.splat(scale);
    // Four positions at a time: each q vector is loaded once for four keys (eight at a time spilled:
    // 14 → 17-19 ns per head and position at the 1B shape).
    for (; p + 4 <= npos; p += 4) {
      const k0 = kh + <usize>p * kvStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i: usize = 0; i < hb; i += 16) {
        const qv = v128.load(qh + i);
        a0 = madd(qv, v128.load(k0 + i), a0);
        a1 = madd(qv, v128.load(k0 + kvStride + i), a1);
        a2 = madd(qv, v128.load(k0 + 2 * kvStride + i), a2);
        a3 = madd(qv, v128.load(k0 + 3 * kvStride + i), a3);
      }
      const s0 = f32x4.mul(sums4(a0, a1, a2, a3), sc);
      v128.store(att + (<usize>p << 2), s0);
      mx = max<f32>(mx, max4(s0));
    }
    for (; p < npos; p++) {
      const kp = kh + <usize>p * kvStride;
      let a = f32x4.splat(0);
      for (let i: usize = 0; i < hb; i += 16) a = madd(v128.load(qh + i), v128.load(kp + i), a);
      const s = hsum4(a) * scale;
      store<f32>(att + (<usize>p << 2), s);
      mx = max<f32>(mx, s);
    }
    return mx;
  }
  for (; p < npos; p++) {
    const s = dotScalar(qh, kh + <usize>p * kvStride, headDim) * scale;
    store<f32>(att + (<usize>p << 2), s);
    mx = max<f32>(mx, s);
  }
  return mx;
}

// e^x for four lanes: x = k·ln2 + r (|r| ≤ ln2/2), e^r by its degree-6 Taylor polynomial (relative
// error < 2e-7 there), 2^k from the exponent bits. Mathf.exp is a scalar software routine that cost
// ~25 ns a value here: the softmax of a 256-token window was most of the training forward, and a
// third of a decode token's attention. Lanes below −87.3 give ~1e-38 instead of 0 (a softmax sum is
// ≥ 1, so they weigh nothing); NaN stays NaN.
// @ts-ignore: decorator
@inline export function exp4(x: v128): v128 {
  x = f32x4.max(x, f32x4.splat(-87.3));
  const k = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(k, f32x4.splat(0.693359375))), f32x4.mul(k, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.add(f32x4.mul(r, f32x4.splat(1.0 / 720)), f32x4.splat(1.0 / 120));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 24));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.0 / 6));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(0.5));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1));
  const e = i32x4.shl(i32x4.add(wholeToI32(k), i32x4.splat(127)), 23);
  return f32x4.mul(p, e);
}

// dst[i] = e^(src[i] − mx) / Σ over n values (dst may be src); returns Σ. Shared by the attention
// rows and the training rows so all round the same way.
// @ts-ignore: decorator
@inline export function softmaxFrom(src: usize, dst: usize, n: i32, mx: f32): f32 {
  let sum: f32 = 0;
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const m4 = f32x4.splat(mx);
    let s4 = f32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const e = exp4(f32x4.sub(v128.load(src + (<usize>i << 2)), m4));
      v128.store(dst + (<usize>i << 2), e);
      s4 = f32x4.add(s4, e);
    }
    sum = f32x4.extract_lane(s4, 0) + f32x4.extract_lane(s4, 1) + f32x4.extract_lane(s4, 2) + f32x4.extract_lane(s4, 3);
  }
  for (; i < n; i++) {
    const e = Mathf.exp(load<f32>(src + (<usize>i << 2)) - mx);
    store<f32>(dst + (<usize>i << 2), e);
    sum += e;
  }
  const inv: f32 = 1 / sum;
  i = 0;
  if (ASC_FEATURE_SIMD) {
    const i4 = f32x4.splat(inv);
    for (; i + 4 <= n; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v128.load(dst + (<usize>i << 2)), i4));
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), load<f32>(dst + (<usize>i << 2)) * inv);
  return sum;
}

// Maximum of n f32 (NaN if any is NaN, as f32.max).
// @ts-ignore: decorator
@inline function maxOf(a: usize, n: i32): f32 {
  let mx: f32 = -Infinity;
  let i = 0;
  if (ASC_FEATURE_SIMD && n >= 4) {
    let m = v128.load(a);
    for (i = 4; i + 4 <= n; i += 4) m = f32x4.max(m, v128.load(a + (<usize>i << 2)));
    m = f32x4.max(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    mx = f32x4.extract_lane(f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2)), 0);
  }
  for (; i < n; i++) mx = max<f32>(mx, load<f32>(a + (<usize>i << 2)));
  return mx;
}

// Positions per block: one kv head's keys (or values) of a block, 16 KiB, stay in L1 while every
// query head of its group reads them. Without blocks each query head streamed them again from L2 or
// memory: GQA's 8 heads per kv head read the cache 8 times.
// @ts-ignore: decorator
@inline export function blockLen(headDim: i32): i32 {
  return max<i32>(4, (4096 / headDim) & ~3);
}

// The three phases of one kv head's query heads h0..h1−1 attending, for one token, to a run of
// positions: scores block by block, the softmax of each head, then the weighted values block by
// block. Head h's query is at q + h·headDim, its output at o + h·headDim (f32), its scores at att +
// (h − h0)·attStride bytes. A head's result is the same whichever heads share the call (the blocks
// only change which head reads a block first), so attention_span_f32 runs one head at a time.

// Scores of len positions (keys at kb, kStride bytes apart) into each head's att from position p0.
// @ts-ignore: decorator
@inline export function scoreBlock(q: usize, kb: usize, kStride: usize, att: usize, attStride: usize, h0: i32, h1: i32, p0: i32, len: i32, headDim: i32, scale: f32): void {
  const hb = <usize>headDim << 2;
  for (let h = h0; h < h1; h++) scores(q + <usize>h * hb, kb, kStride, att + <usize>(h - h0) * attStride + (<usize>p0 << 2), len, headDim, scale);
}

// Each head's npos scores to softmax weights, in place.
// @ts-ignore: decorator
@inline export function softmaxHeads(att: usize, attStride: usize, h0: i32, h1: i32, npos: i32): void {
  for (let h = h0; h < h1; h++) {
    const ah = att + <usize>(h - h0) * attStride;
    softmaxFrom(ah, ah, npos, maxOf(ah, npos));
  }
}

// o += Σ weight·value over len positions (values at vb, vStride bytes apart; weights from position
// p0 of each head's att); the first block (p0 = 0) starts the outputs from zero.
// @ts-ignore: decorator
@inline export function valueBlock(o: usize, vb: usize, vStride: usize, att: usize, attStride: usize, h0: i32, h1: i32, p0: i32, len: i32, headDim: i32): void {
  const hb = <usize>headDim << 2;
  for (let h = h0; h < h1; h++) {
    const ah = att + <usize>(h - h0) * attStride + (<usize>p0 << 2);
    const oh = o + <usize>h * hb;
    if (ASC_FEATURE_SIMD && (headDim & 31) == 0) {
      // 32 outputs at a time held in registers across the block's positions.
      for (let c: usize = 0; c < hb; c += 128) {
        const first = p0 == 0;
        let o0 = first ? f32x4.splat(0) : v128.load(oh + c);
        let o1 = first ? f32x4.splat(0) : v128.load(oh + c, 16);
        let o2 = first ? f32x4.splat(0) : v128.load(oh + c, 32);
        let o3 = first ? f32x4.splat(0) : v128.load(oh + c, 48);
        let o4 = first ? f32x4.splat(0) : v128.load(oh + c, 64);
        let o5 = first ? f32x4.splat(0) : v128.load(oh + c, 80);
        let o6 = first ? f32x4.splat(0) : v128.load(oh + c, 96);
        let o7 = first ? f32x4.splat(0) : v128.load(oh + c, 112);
        let vp = vb + c;
        for (let p = 0; p < len; p++, vp += vStride) {
          const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)));
          o0 = madd(a, v128.load(vp), o0);
          o1 = madd(a, v128.load(vp, 16), o1);
          o2 = madd(a, v128.load(vp, 32), o2);
          o3 = madd(a, v128.load(vp, 48), o3);
          o4 = madd(a, v128.load(vp, 64), o4);
          o5 = madd(a, v128.load(vp, 80), o5);
          o6 = madd(a, v128.load(vp, 96), o6);
          o7 = madd(a, v128.load(vp, 112), o7);
        }
        v128.store(oh + c, o0);
        v128.store(oh + c, o1, 16);
        v128.store(oh + c, o2, 32);
        v128.store(oh + c, o3, 48);
        v128.store(oh + c, o4, 64);
        v128.store(oh + c, o5, 80);
        v128.store(oh + c, o6, 96);
        v128.store(oh + c, o7, 112);
      }
    } else if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
      if (p0 == 0) memory.fill(oh, 0, hb);
      let vp = vb;
      for (let p = 0; p < len; p++, vp += vStride) {
        const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)));
        for (let i: usize = 0; i < hb; i += 16) v128.store(oh + i, madd(a, v128.load(vp + i), v128.load(oh + i)));
      }
    } else {
      if (p0 == 0) memory.fill(oh, 0, hb);
      let vp = vb;
      for (let p = 0; p < len; p++, vp += vStride) {
        const a = load<f32>(ah + (<usize>p << 2));
        for (let i = 0; i < headDim; i++) store<f32>(oh + (<usize>i << 2), load<f32>(oh + (<usize>i << 2)) + a * load<f32>(vp + (<usize>i << 2)));
      }
    }
  }
}

// The three phases over npos positions whose keys and values start at kh and vh (this kv head's
// lanes of the first position; kvStride bytes per position).
export function attendGroup(q: usize, o: usize, kh: usize, vh: usize, att: usize, attStride: usize, h0: i32, h1: i32, npos: i32, headDim: i32, kvStride: usize, scale: f32): void {
  const blk = blockLen(headDim);
  for (let p0 = 0; p0 < npos; p0 += blk) scoreBlock(q, kh + <usize>p0 * kvStride, kvStride, att, attStride, h0, h1, p0, min<i32>(blk, npos - p0), headDim, scale);
  softmaxHeads(att, attStride, h0, h1, npos);
  for (let p0 = 0; p0 < npos; p0 += blk) valueBlock(o, vh + <usize>p0 * kvStride, kvStride, att, attStride, h0, h1, p0, min<i32>(blk, npos - p0), headDim);
}

// Bytes of one block of f32 keys or values of one kv head: attention_q8's scratch per query head.
export function attention_block_bytes(headDim: i32): i32 {
  return blockLen(headDim) * headDim * 4;
}

export function attention_f32(q: usize, kc: usize, vc: usize, out: usize, att: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  const span = <usize>(pos0 + n) << 2;
  for (let t = 0; t < n; t++) {
    const row = (<usize>t * dim) << 2;
    // causal: position pos0 + t sees 0..pos0 + t
    for (let g = h0 / group; g * group < h1; g++) {
      const a = max<i32>(h0, g * group);
      const kvo = (<usize>g * <usize>headDim) << 2;
      attendGroup(q + row, out + row, kc + kvo, vc + kvo, att + <usize>a * span, span, a, min<i32>(h1, (g + 1) * group), pos0 + t + 1, headDim, kvStride, scale);
    }
  }
}
