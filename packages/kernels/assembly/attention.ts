// Causal grouped-query attention over an f32 KV cache kept in WASM memory (llama2.c run.c order):
// per head, scores q·k_p·scale for p = 0..pos, softmax, then Σ_p a_p·v_p. In JS this was ~15% of a
// 1B decode token (f64 scalar loops, on the calling thread only); here it is f32 SIMD and a row
// kernel over heads, so a thread pool splits it like a matmul.
//
// q, out: n rows of nHeads·headDim f32 (token t at t·dim); kc, vc: this layer's caches, position p's
// kvDim = nKvHeads·headDim values at p·kvDim, already holding positions 0..pos0+n−1;
// att: nHeads·(pos0+n) f32 scratch, one span per head (threads work on disjoint heads).
// Head h reads kv head h / (nHeads / nKvHeads). scaleBits: the f32 bits of the score scale (the
// pool passes i32 arguments only).

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

// Scores of positions [0, npos) of one head into att (scaled), returns their maximum.
// @ts-ignore: decorator
@inline export function scores(qh: usize, kh: usize, kvStride: usize, att: usize, npos: i32, headDim: i32, scale: f32): f32 {
  let mx: f32 = -Infinity;
  let p = 0;
  if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
    const hb = <usize>headDim << 2;
    // Four positions at a time: each q vector is loaded once for four keys.
    for (; p + 4 <= npos; p += 4) {
      const k0 = kh + <usize>p * kvStride;
      const k1 = k0 + kvStride;
      const k2 = k1 + kvStride;
      const k3 = k2 + kvStride;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let i: usize = 0; i < hb; i += 16) {
        const qv = v128.load(qh + i);
        a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(k0 + i)));
        a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + i)));
        a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + i)));
        a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + i)));
      }
      const ab = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
      const cd = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
      const s = f32x4.mul(f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7)), f32x4.splat(scale));
      v128.store(att + (<usize>p << 2), s);
      const m = f32x4.max(s, v128.shuffle<f32>(s, s, 2, 3, 0, 1));
      mx = max<f32>(mx, f32x4.extract_lane(f32x4.max(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2)), 0));
    }
    for (; p < npos; p++) {
      const kp = kh + <usize>p * kvStride;
      let a = f32x4.splat(0);
      for (let i: usize = 0; i < hb; i += 16) a = f32x4.add(a, f32x4.mul(v128.load(qh + i), v128.load(kp + i)));
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

export function attention_f32(q: usize, kc: usize, vc: usize, out: usize, att: usize, n: i32, pos0: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  const span = <usize>(pos0 + n);
  const hb = <usize>headDim << 2;
  for (let h = h0; h < h1; h++) {
    const ah = att + ((<usize>h * span) << 2);
    const kvo = (<usize>(h / group) * <usize>headDim) << 2;
    for (let t = 0; t < n; t++) {
      const npos = pos0 + t + 1; // causal: position pos0 + t sees 0..pos0 + t
      const row = ((<usize>t * dim + <usize>h * <usize>headDim) << 2);
      const max = scores(q + row, kc + kvo, kvStride, ah, npos, headDim, scale);
      let sum: f32 = 0;
      for (let p = 0; p < npos; p++) {
        const e = Mathf.exp(load<f32>(ah + (<usize>p << 2)) - max);
        store<f32>(ah + (<usize>p << 2), e);
        sum += e;
      }
      const inv: f32 = 1 / sum;
      const o = out + row;
      if (ASC_FEATURE_SIMD && (headDim & 31) == 0) {
        // 32 outputs at a time held in registers across all positions.
        for (let c: usize = 0; c < hb; c += 128) {
          let o0 = f32x4.splat(0), o1 = f32x4.splat(0), o2 = f32x4.splat(0), o3 = f32x4.splat(0);
          let o4 = f32x4.splat(0), o5 = f32x4.splat(0), o6 = f32x4.splat(0), o7 = f32x4.splat(0);
          let vp = vc + kvo + c;
          for (let p = 0; p < npos; p++, vp += kvStride) {
            const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)) * inv);
            o0 = f32x4.add(o0, f32x4.mul(a, v128.load(vp)));
            o1 = f32x4.add(o1, f32x4.mul(a, v128.load(vp, 16)));
            o2 = f32x4.add(o2, f32x4.mul(a, v128.load(vp, 32)));
            o3 = f32x4.add(o3, f32x4.mul(a, v128.load(vp, 48)));
            o4 = f32x4.add(o4, f32x4.mul(a, v128.load(vp, 64)));
            o5 = f32x4.add(o5, f32x4.mul(a, v128.load(vp, 80)));
            o6 = f32x4.add(o6, f32x4.mul(a, v128.load(vp, 96)));
            o7 = f32x4.add(o7, f32x4.mul(a, v128.load(vp, 112)));
          }
          v128.store(o + c, o0);
          v128.store(o + c, o1, 16);
          v128.store(o + c, o2, 32);
          v128.store(o + c, o3, 48);
          v128.store(o + c, o4, 64);
          v128.store(o + c, o5, 80);
          v128.store(o + c, o6, 96);
          v128.store(o + c, o7, 112);
        }
      } else if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
        for (let i: usize = 0; i < hb; i += 16) v128.store(o + i, f32x4.splat(0));
        let vp = vc + kvo;
        for (let p = 0; p < npos; p++, vp += kvStride) {
          const a = f32x4.splat(load<f32>(ah + (<usize>p << 2)) * inv);
          for (let i: usize = 0; i < hb; i += 16) v128.store(o + i, f32x4.add(v128.load(o + i), f32x4.mul(a, v128.load(vp + i))));
        }
      } else {
        for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), 0);
        let vp = vc + kvo;
        for (let p = 0; p < npos; p++, vp += kvStride) {
          const a = load<f32>(ah + (<usize>p << 2)) * inv;
          for (let i = 0; i < headDim; i++) store<f32>(o + (<usize>i << 2), load<f32>(o + (<usize>i << 2)) + a * load<f32>(vp + (<usize>i << 2)));
        }
      }
    }
  }
}
