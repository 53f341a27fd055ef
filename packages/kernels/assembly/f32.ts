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
      for (let b = 0; b < batch; b++) {
        const xb = x + <usize>b * rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        let c = 0;
        for (; c + 4 <= cols; c += 4) {
          const o = <usize>c << 2;
          const xv = v128.load(xb + o);
          if (ASC_FEATURE_RELAXED_SIMD) {
            // Fused multiply-add where the host has it (one instruction instead of two; rounding
            // once per step instead of twice, within the same tolerance against the reference).
            a0 = f32x4.relaxed_madd(v128.load(w0 + o), xv, a0);
            a1 = f32x4.relaxed_madd(v128.load(w1 + o), xv, a1);
            a2 = f32x4.relaxed_madd(v128.load(w2 + o), xv, a2);
            a3 = f32x4.relaxed_madd(v128.load(w3 + o), xv, a3);
          } else {
            a0 = f32x4.add(a0, f32x4.mul(v128.load(w0 + o), xv));
            a1 = f32x4.add(a1, f32x4.mul(v128.load(w1 + o), xv));
            a2 = f32x4.add(a2, f32x4.mul(v128.load(w2 + o), xv));
            a3 = f32x4.add(a3, f32x4.mul(v128.load(w3 + o), xv));
          }
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
