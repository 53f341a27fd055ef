// f32 vector kernels. All pointers are byte offsets into linear memory, laid out by the JS
// allocator; arrays carry no headers (the runtime is `stub`: no AssemblyScript objects here).

export function dot_f32(a: usize, b: usize, n: i32): f32 {
  let i = 0;
  let s: f32 = 0;
  if (ASC_FEATURE_SIMD) {
    // Two accumulators hide the add latency (4 cycles) behind independent chains.
    let acc0 = f32x4.splat(0);
    let acc1 = f32x4.splat(0);
    for (; i + 8 <= n; i += 8) {
      const o = <usize>i << 2;
      acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
      acc1 = f32x4.add(acc1, f32x4.mul(v128.load(a + o, 16), v128.load(b + o, 16)));
    }
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      acc0 = f32x4.add(acc0, f32x4.mul(v128.load(a + o), v128.load(b + o)));
    }
    s = hsum(f32x4.add(acc0, acc1));
  }
  for (; i < n; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

// y += alpha * x
export function axpy_f32(alpha: f32, x: usize, y: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    const va = f32x4.splat(alpha);
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(va, v128.load(x + o))));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// acc + a·b: fused multiply-add where the host has relaxed SIMD (one instruction instead of two;
// rounding once per step instead of twice, within the same tolerance against the reference).
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, acc: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

// Lanes already whole numbers inside i32 (rounded codes, exponents) to i32: relaxed builds convert
// with one instruction (cvttps2dq), where the saturating form costs V8 about six to handle NaN and
// overflow; for such lanes both give the same integers.
// @ts-ignore: decorator
@inline export function wholeToI32(v: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i32x4.relaxed_trunc_f32x4_s(v);
  return i32x4.trunc_sat_f32x4_s(v);
}

// out[b*rows + r] = sum_c w[r*cols + c] * x[b*cols + c]. Rows go in tiles of 4 so each x load
// feeds four weight streams; the batch loop sits inside the tile so a tile's weights (4 rows)
// stay in L1 while every input vector passes over them (prefill).
// Computes rows [r0, r1) only, so threads can split one call by rows.
export function matmul_f32(w: usize, rows: i32, cols: i32, x: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  const rowBytes = <usize>cols << 2;
  let r = r0;
  if (ASC_FEATURE_SIMD) {
    for (; r + 4 <= r1; r += 4) {
      const w0 = w + <usize>r * rowBytes;
      const w1 = w0 + rowBytes;
      const w2 = w1 + rowBytes;
      const w3 = w2 + rowBytes;
      let b = 0;
      // Prefill: two input vectors per pass over the tile, 8 accumulators, so each weight vector
      // loaded feeds two multiply-adds (the loop was bound by loads: 5 per 4 multiply-adds).
      for (; b + 2 <= batch; b += 2) {
        const xa = x + <usize>b * rowBytes;
        const xb = xa + rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let e0 = f32x4.splat(0), e1 = f32x4.splat(0), e2 = f32x4.splat(0), e3 = f32x4.splat(0);
        let c = 0;
        for (; c + 4 <= cols; c += 4) {
          const o = <usize>c << 2;
          const va = v128.load(xa + o);
          const vb = v128.load(xb + o);
          let v = v128.load(w0 + o);
          a0 = madd(v, va, a0);
          e0 = madd(v, vb, e0);
          v = v128.load(w1 + o);
          a1 = madd(v, va, a1);
          e1 = madd(v, vb, e1);
          v = v128.load(w2 + o);
          a2 = madd(v, va, a2);
          e2 = madd(v, vb, e2);
          v = v128.load(w3 + o);
          a3 = madd(v, va, a3);
          e3 = madd(v, vb, e3);
        }
        let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        let t0 = hsum(e0), t1 = hsum(e1), t2 = hsum(e2), t3 = hsum(e3);
        for (; c < cols; c++) {
          const o = <usize>c << 2;
          const ua = load<f32>(xa + o);
          const ub = load<f32>(xb + o);
          const v0 = load<f32>(w0 + o), v1 = load<f32>(w1 + o), v2 = load<f32>(w2 + o), v3 = load<f32>(w3 + o);
          s0 += v0 * ua;
          s1 += v1 * ua;
          s2 += v2 * ua;
          s3 += v3 * ua;
          t0 += v0 * ub;
          t1 += v1 * ub;
          t2 += v2 * ub;
          t3 += v3 * ub;
        }
        const oa = out + ((<usize>b * <usize>rows + <usize>r) << 2);
        const ob = oa + (<usize>rows << 2);
        store<f32>(oa, s0);
        store<f32>(oa, s1, 4);
        store<f32>(oa, s2, 8);
        store<f32>(oa, s3, 12);
        store<f32>(ob, t0);
        store<f32>(ob, t1, 4);
        store<f32>(ob, t2, 8);
        store<f32>(ob, t3, 12);
      }
      for (; b < batch; b++) {
        const xb = x + <usize>b * rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let c = 0;
        for (; c + 4 <= cols; c += 4) {
          const o = <usize>c << 2;
          const xv = v128.load(xb + o);
          a0 = madd(v128.load(w0 + o), xv, a0);
          a1 = madd(v128.load(w1 + o), xv, a1);
          a2 = madd(v128.load(w2 + o), xv, a2);
          a3 = madd(v128.load(w3 + o), xv, a3);
        }
        let s0 = hsum(a0), s1 = hsum(a1), s2 = hsum(a2), s3 = hsum(a3);
        for (; c < cols; c++) {
          const o = <usize>c << 2;
          const xv = load<f32>(xb + o);
          s0 += load<f32>(w0 + o) * xv;
          s1 += load<f32>(w1 + o) * xv;
          s2 += load<f32>(w2 + o) * xv;
          s3 += load<f32>(w3 + o) * xv;
        }
        const ob = out + ((<usize>b * <usize>rows + <usize>r) << 2);
        store<f32>(ob, s0);
        store<f32>(ob, s1, 4);
        store<f32>(ob, s2, 8);
        store<f32>(ob, s3, 12);
      }
    }
  }
  for (; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let b = 0; b < batch; b++) {
      store<f32>(out + ((<usize>b * <usize>rows + <usize>r) << 2), dot_f32(wr, x + <usize>b * rowBytes, cols));
    }
  }
}
