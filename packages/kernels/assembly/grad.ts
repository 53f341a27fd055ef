// Training attention (forward keeping the softmax weights, and its backward) over one window of n
// tokens at positions 0..n−1, all heads in one call. In TypeScript this was half of a training step
// on the embedded model: per head two full n×n matmuls (twice the causal work), a JS softmax, and
// gather/transpose copies; here each row touches only its causal triangle and nothing is copied.
//
// q, out, dout, dq: n rows of nHeads·headDim f32; k, v, dk, dv: n rows of nKvHeads·headDim;
// probs: nHeads·n·n f32 (head h's softmax weights, row t at (h·n + t)·n, zero above the diagonal).
// Head h reads kv head h / (nHeads / nKvHeads). scaleBits: the f32 bits of 1/√headDim.
import { exp4, scores, softmaxFrom } from './attention';

// @ts-ignore: decorator
@inline function axpy(alpha: f32, x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const a = f32x4.splat(alpha);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(a, v128.load(x + o))));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

// o = Σ_{j<npos} w_j·x_j (x_j at x + j·stride, headDim wide), four outputs per register across all j.
// @ts-ignore: decorator
@inline function weightedSum(w: usize, x: usize, stride: usize, npos: i32, headDim: i32, o: usize): void {
  if (ASC_FEATURE_SIMD && (headDim & 15) == 0) {
    // a cache line (16 outputs) per pass over the rows, not a 16-byte piece
    const hb = <usize>headDim << 2;
    for (let c: usize = 0; c < hb; c += 64) {
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let xp = x + c;
      for (let j = 0; j < npos; j++, xp += stride) {
        const wj = f32x4.splat(load<f32>(w + (<usize>j << 2)));
        a0 = f32x4.add(a0, f32x4.mul(wj, v128.load(xp)));
        a1 = f32x4.add(a1, f32x4.mul(wj, v128.load(xp, 16)));
        a2 = f32x4.add(a2, f32x4.mul(wj, v128.load(xp, 32)));
        a3 = f32x4.add(a3, f32x4.mul(wj, v128.load(xp, 48)));
      }
      v128.store(o + c, a0);
      v128.store(o + c, a1, 16);
      v128.store(o + c, a2, 32);
      v128.store(o + c, a3, 48);
    }
    return;
  }
  if (ASC_FEATURE_SIMD && (headDim & 3) == 0) {
    const hb = <usize>headDim << 2;
    for (let c: usize = 0; c < hb; c += 16) {
      let a = f32x4.splat(0);
      let xp = x + c;
      for (let j = 0; j < npos; j++, xp += stride) a = f32x4.add(a, f32x4.mul(f32x4.splat(load<f32>(w + (<usize>j << 2))), v128.load(xp)));
      v128.store(o + c, a);
    }
    return;
  }
  memory.fill(o, 0, <usize>headDim << 2);
  let xp = x;
  for (let j = 0; j < npos; j++, xp += stride) axpy(load<f32>(w + (<usize>j << 2)), xp, o, headDim);
}

// The lower triangle (t ≥ j) of an n×n row-major matrix into dst transposed, so that column j of
// src is contiguous (dst row j from entry j on).
// @ts-ignore: decorator
@inline function transposeLower(src: usize, dst: usize, n: i32): void {
  // contiguous writes, strided reads: a store that misses costs more than a load
  const nb = <usize>n << 2;
  for (let j = 0; j < n; j++) {
    const dr = dst + <usize>j * nb;
    let sp = src + <usize>j * nb + (<usize>j << 2);
    for (let t = j; t < n; t++, sp += nb) store<f32>(dr + (<usize>t << 2), load<f32>(sp));
  }
}

/** out_t = Σ_{j≤t} P[t, j]·v_j for heads [h0, h1) (a row kernel over heads: threads split them); probs receives P. */
export function attn_train_fwd_f32(q: usize, k: usize, v: usize, out: usize, probs: usize, n: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  for (let h = h0; h < h1; h++) {
    const kvo = (<usize>(h / group) * <usize>headDim) << 2;
    for (let t = 0; t < n; t++) {
      const pr = probs + ((<usize>h * <usize>n + <usize>t) * <usize>n << 2);
      const row = (<usize>t * dim + <usize>h * <usize>headDim) << 2;
      const npos = t + 1;
      const mx = scores(q + row, k + kvo, kvStride, pr, npos, headDim, scale);
      softmaxFrom(pr, pr, npos, mx);
      memory.fill(pr + (<usize>npos << 2), 0, <usize>(n - npos) << 2);
      weightedSum(pr, v + kvo, kvStride, npos, headDim, out + row);
    }
  }
}

/**
 * Given P and dOut, for heads [h0, h1) (a row kernel over heads: threads split them): dP = dO·Vᵀ,
 * dS = scale·P⊙(dP − rowsum(P⊙dP)), dq = dS·K, and head h's own dk_h = dSᵀ·Q and dv_h = Pᵀ·dO into
 * dkh and dvh (nHeads·n rows of headDim f32, overwritten; the caller sums the heads of each group,
 * which on threads would race if written into one dk). ds: per head 3·n·n + headDim f32 of scratch
 * (its dS, dS's transpose and P's). dq goes by rows of dS; dk_h and dv_h by rows of the transposes,
 * so every output sums in registers.
 */
export function attn_train_bwd_f32(q: usize, k: usize, v: usize, probs: usize, dout: usize, dq: usize, dkh: usize, dvh: usize, ds: usize, n: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scaleBits: i32, h0: i32, h1: i32): void {
  const scale = reinterpret<f32>(scaleBits);
  const group = nHeads / nKvHeads;
  const dim = <usize>nHeads * <usize>headDim;
  const qStride = dim << 2;
  const kvStride = (<usize>nKvHeads * <usize>headDim) << 2;
  const hb = <usize>headDim << 2;
  const nn = (<usize>n * <usize>n) << 2;
  for (let h = h0; h < h1; h++) {
    const dsh = ds + <usize>h * (3 * nn + hb);
    const dt = dsh + nn; // dS transposed
    const pt = dt + nn; // P transposed
    const kvo = (<usize>(h / group) * <usize>headDim) << 2;
    const qo = (<usize>h * <usize>headDim) << 2;
    const ph = probs + ((<usize>h * <usize>n * <usize>n) << 2);
    for (let t = 0; t < n; t++) {
      const pr = ph + ((<usize>t * <usize>n) << 2);
      const dr = dsh + ((<usize>t * <usize>n) << 2);
      const row = <usize>t * qStride + qo;
      const npos = t + 1;
      scores(dout + row, v + kvo, kvStride, dr, npos, headDim, 1);
      let sum: f32 = 0;
      for (let j = 0; j < npos; j++) sum += load<f32>(pr + (<usize>j << 2)) * load<f32>(dr + (<usize>j << 2));
      for (let j = 0; j < npos; j++) store<f32>(dr + (<usize>j << 2), scale * load<f32>(pr + (<usize>j << 2)) * (load<f32>(dr + (<usize>j << 2)) - sum));
      weightedSum(dr, k + kvo, kvStride, npos, headDim, dq + row);
    }
    // column j of dS (or P), rows t ≥ j, is row j of its transpose from entry j on
    transposeLower(dsh, dt, n);
    transposeLower(ph, pt, n);
    for (let j = 0; j < n; j++) {
      const from = (<usize>j * <usize>n + <usize>j) << 2;
      const xr = <usize>j * qStride + qo;
      const o = (<usize>h * <usize>n + <usize>j) * hb;
      weightedSum(dt + from, q + xr, qStride, n - j, headDim, dkh + o);
      weightedSum(pt + from, dout + xr, qStride, n - j, headDim, dvh + o);
    }
  }
}

// ---- elementwise ops of the training step (SwiGLU, cross-entropy): V8's Math.exp costs ~10 ns a
// value, and a stories260K step takes ~0.7 M of them in these two ops alone ----

// exp4 for any input: above 88 e^x overflows f32 (and exp4's exponent bits would wrap), so clamp there.
// @ts-ignore: decorator
@inline function expAny4(x: v128): v128 {
  return exp4(f32x4.min(x, f32x4.splat(88)));
}

/** out = silu(g)·u = g·σ(g)·u over n values. */
export function swiglu_fwd_f32(g: usize, u: usize, out: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const one = f32x4.splat(1);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const gv = v128.load(g + o);
      const sg = f32x4.div(one, f32x4.add(one, expAny4(f32x4.neg(gv))));
      v128.store(out + o, f32x4.mul(f32x4.mul(gv, sg), v128.load(u + o)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gv = load<f32>(g + o);
    store<f32>(out + o, (gv / (1 + Mathf.exp(-gv))) * load<f32>(u + o));
  }
}

/** Backward of out = silu(g)·u: du = dh·silu(g), dg = dh·u·σ(g)·(1 + g·(1 − σ(g))). */
export function swiglu_bwd_f32(g: usize, u: usize, dh: usize, dg: usize, du: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const one = f32x4.splat(1);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const gv = v128.load(g + o);
      const d = v128.load(dh + o);
      const sg = f32x4.div(one, f32x4.add(one, expAny4(f32x4.neg(gv))));
      v128.store(du + o, f32x4.mul(d, f32x4.mul(gv, sg)));
      const t = f32x4.add(one, f32x4.mul(gv, f32x4.sub(one, sg)));
      v128.store(dg + o, f32x4.mul(f32x4.mul(d, v128.load(u + o)), f32x4.mul(sg, t)));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gv = load<f32>(g + o);
    const d = load<f32>(dh + o);
    const sg: f32 = 1 / (1 + Mathf.exp(-gv));
    store<f32>(du + o, d * gv * sg);
    store<f32>(dg + o, d * load<f32>(u + o) * sg * (1 + gv * (1 - sg)));
  }
}

/**
 * Softmax of each of `rows` rows of `vocab` logits into probs, and Σ_rows (logsumexp − logit[target])
 * (the summed cross-entropy, accumulated in f64). targets: rows i32 ids, each in 0..vocab−1 (checked
 * by the caller).
 */
export function xent_fwd_f32(logits: usize, targets: usize, probs: usize, rows: i32, vocab: i32): f64 {
  let loss: f64 = 0;
  const rb = <usize>vocab << 2;
  for (let t = 0; t < rows; t++) {
    const x = logits + <usize>t * rb;
    const p = probs + <usize>t * rb;
    let mx: f32 = -Infinity;
    for (let i = 0; i < vocab; i++) mx = max(mx, load<f32>(x + (<usize>i << 2)));
    const sum = softmaxFrom(x, p, vocab, mx);
    const target = load<i32>(targets + (<usize>t << 2));
    loss += <f64>mx + Math.log(<f64>sum) - <f64>load<f32>(x + (<usize>target << 2));
  }
  return loss;
}
