// Elementwise steps of a transformer block that ran as JS loops between the matmuls.
import { wholeToI32 } from './f32';

// e^x for f32 lanes: n = round(x·log2 e), r = x − n·ln 2 (ln 2 in two parts, Cody–Waite), e^r by
// the Cephes expf polynomial, times 2^n built in the exponent bits. Within ~2 ulp of the exact value
// on [−87.3, 88.3] (inputs are clamped there: 2^n stays a normal f32).
// @ts-ignore: decorator
@inline function expF32x4(x: v128): v128 {
  const v = f32x4.pmin(f32x4.pmax(x, f32x4.splat(-87.3)), f32x4.splat(88.3));
  const n = f32x4.nearest(f32x4.mul(v, f32x4.splat(1.44269504089)));
  const r = f32x4.sub(f32x4.sub(v, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1));
  return f32x4.mul(p, i32x4.shl(i32x4.add(wholeToI32(n), i32x4.splat(127)), 23));
}

// SwiGLU: u[i] = u[i]·silu(g[i]) = u[i]·g[i]/(1 + e^−g[i]), in place on u. n values.
export function silu_mul_f32(g: usize, u: usize, n: i32): void {
  let i = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      const gv = v128.load(g + o);
      const s = f32x4.div(gv, f32x4.add(f32x4.splat(1), expF32x4(f32x4.neg(gv))));
      v128.store(u + o, f32x4.mul(v128.load(u + o), s));
    }
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gv = load<f32>(g + o);
    store<f32>(u + o, load<f32>(u + o) * (gv / (1 + Mathf.exp(-gv))));
  }
}
