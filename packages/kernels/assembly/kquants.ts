// GEMV on llama.cpp's K-quant super-blocks as GGUF stores them (ggml-common.h block_q2_K … block_q6_K,
// 256 weights per block), with f32 activations: y[r] = Σ_c W[r, c]·x[c], nothing decoded to memory.
// f32 activations rather than ggml's Q8_K int8 ones: the result then equals dequantize-then-dot up to
// f32 summation order (no activation rounding), so K-quant models give the same log-probs as when
// their weights were decoded at load, and the kernel stays one streaming pass over the packed bytes.
// Every sub-block's affine part is folded out of the inner loop: with w = a·q − b per sub-block,
// Σ w·x = a·Σ q·x − b·Σ x, and the Σ x of every 16 activations (xs16) is computed once per call.
import { f16 } from './ggml';

// ggml type ids (ggml.h) and block bytes
const Q2_K: i32 = 10;
const Q3_K: i32 = 11;
const Q4_K: i32 = 12;
const Q5_K: i32 = 13;
const Q6_K: i32 = 14;

// @ts-ignore: decorator
@inline function kBlockBytes(t: i32): usize {
  return t == Q2_K ? 84 : t == Q3_K ? 110 : t == Q4_K ? 144 : t == Q5_K ? 176 : 210;
}

// Σ over 16 codes (u8 lanes) times 16 f32 activations at x, as four partial lanes.
// @ts-ignore: decorator
@inline function dot16(q: v128, x: usize): v128 {
  const a = i16x8.extend_low_i8x16_u(q);
  const b = i16x8.extend_high_i8x16_u(q);
  let s = f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(a)), v128.load(x));
  s = f32x4.add(s, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(a)), v128.load(x, 16)));
  s = f32x4.add(s, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_low_i16x8_u(b)), v128.load(x, 32)));
  return f32x4.add(s, f32x4.mul(f32x4.convert_i32x4_u(i32x4.extend_high_i16x8_u(b)), v128.load(x, 48)));
}

// 6-bit scale (k = 0) or min (k = 1) of sub-block j of Q4_K/Q5_K (get_scale_min_k4).
// @ts-ignore: decorator
@inline function scaleMinK4(j: i32, s: usize, k: i32): f32 {
  if (j < 4) return <f32>(load<u8>(s + <usize>(j + 4 * k)) & 63);
  const b = <u32>load<u8>(s + <usize>(j + 4));
  const hi = <u32>load<u8>(s + <usize>(j - 4 + 4 * k)) >> 6;
  return <f32>(k == 0 ? (b & 0xf) | (hi << 4) : (b >> 4) | (hi << 4));
}

// Q3_K's signed 6-bit scale of 16-group g (low 4 bits in bytes 0..7, high 2 bits in bytes 8..11, +32).
// @ts-ignore: decorator
@inline function scaleQ3K(g: i32, s: usize): f32 {
  const lo = g < 8 ? <i32>load<u8>(s + <usize>g) & 0xf : <i32>load<u8>(s + <usize>(g - 8)) >> 4;
  return <f32>((lo | (((<i32>load<u8>(s + <usize>(8 + (g & 3))) >> (2 * (g >> 2))) & 3) << 4)) - 32);
}

// The unsigned code of weight i of one block and its sub-block's (a, b) with w = a·q − b: the
// scalar build's path, and the definition the SIMD paths below reorder.
// @ts-ignore: decorator
@inline function codeAt(t: i32, o: usize, i: i32): i32 {
  if (t == Q2_K) return (<i32>load<u8>(o + 16 + <usize>(32 * (i >> 7) + (i & 31))) >> (2 * ((i >> 5) & 3))) & 3;
  if (t == Q3_K) {
    const lo = (<i32>load<u8>(o + 32 + <usize>(32 * (i >> 7) + (i & 31))) >> (2 * ((i >> 5) & 3))) & 3;
    return lo | (((<i32>load<u8>(o + <usize>(i & 31)) >> (i >> 5)) & 1) << 2);
  }
  if (t == Q6_K) {
    const h = i >> 7;
    const s = (i >> 5) & 3;
    const l = i & 31;
    const lb = <i32>load<u8>(o + <usize>(64 * h + 32 * (s & 1) + l));
    return (s < 2 ? lb & 0xf : lb >> 4) | (((<i32>load<u8>(o + 128 + <usize>(32 * h + l)) >> (2 * s)) & 3) << 4);
  }
  const s = i >> 5;
  const l = i & 31;
  const qs = o + (t == Q5_K ? 48 : 16);
  const byte = <i32>load<u8>(qs + <usize>(32 * (s >> 1) + l));
  let q = s & 1 ? byte >> 4 : byte & 0xf;
  if (t == Q5_K) q |= ((<i32>load<u8>(o + 16 + <usize>l) >> s) & 1) << 4;
  return q;
}

// Row of Q4_K or Q5_K blocks: sub-blocks of 32, nibble halves of 32 bytes per pair of sub-blocks.
// @ts-ignore: decorator
@inline function rowQ45K(five: bool, w: usize, nb: i32, x: usize, xs: usize): f32 {
  const bb: usize = five ? 176 : 144;
  let acc = f32x4.splat(0);
  let mins: f32 = 0;
  const m4 = i8x16.splat(0x0f);
  const one = i8x16.splat(1);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * bb;
    const d = f16(load<u16>(o));
    const dmin = f16(load<u16>(o, 2));
    const qs = o + (five ? 48 : 16);
    const xb = x + (<usize>b << 10);
    const sb = xs + (<usize>b << 6);
    for (let j = 0; j < 4; j++) {
      const s0 = 2 * j;
      let a0 = f32x4.splat(0);
      let a1 = f32x4.splat(0);
      for (let h = 0; h < 2; h++) {
        const v = v128.load(qs + <usize>(32 * j + 16 * h));
        let lo = v128.and(v, m4);
        let hi = i8x16.shr_u(v, 4);
        if (five) {
          const qh = v128.load(o + 16 + <usize>(16 * h));
          lo = v128.or(lo, i8x16.shl(v128.and(i8x16.shr_u(qh, s0), one), 4));
          hi = v128.or(hi, i8x16.shl(v128.and(i8x16.shr_u(qh, s0 + 1), one), 4));
        }
        a0 = f32x4.add(a0, dot16(lo, xb + <usize>(128 * s0 + 64 * h)));
        a1 = f32x4.add(a1, dot16(hi, xb + <usize>(128 * (s0 + 1) + 64 * h)));
      }
      const sc = o + 4;
      acc = f32x4.add(acc, f32x4.mul(a0, f32x4.splat(d * scaleMinK4(s0, sc, 0))));
      acc = f32x4.add(acc, f32x4.mul(a1, f32x4.splat(d * scaleMinK4(s0 + 1, sc, 0))));
      const x0 = load<f32>(sb + <usize>(8 * s0)) + load<f32>(sb + <usize>(8 * s0 + 4));
      const x1 = load<f32>(sb + <usize>(8 * s0 + 8)) + load<f32>(sb + <usize>(8 * s0 + 12));
      mins += dmin * (scaleMinK4(s0, sc, 1) * x0 + scaleMinK4(s0 + 1, sc, 1) * x1);
    }
  }
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3) - mins;
}

// Row of Q6_K blocks: per 128 weights, 64 bytes of low nibbles and 32 bytes of 2-bit high parts;
// weight i has scale i/16 (int8) and value d·scale·(q − 32).
// @ts-ignore: decorator
@inline function rowQ6K(w: usize, nb: i32, x: usize, xs: usize): f32 {
  let acc = f32x4.splat(0);
  let offs: f32 = 0;
  const m4 = i8x16.splat(0x0f);
  const m2 = i8x16.splat(3);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * 210;
    const d = f16(load<u16>(o, 208));
    const xb = x + (<usize>b << 10);
    const sb = xs + (<usize>b << 6);
    for (let h = 0; h < 2; h++) {
      for (let c = 0; c < 2; c++) {
        const l0 = v128.load(o + <usize>(64 * h + 16 * c));
        const l1 = v128.load(o + <usize>(64 * h + 32 + 16 * c));
        const qh = v128.load(o + 128 + <usize>(32 * h + 16 * c));
        const q0 = v128.or(v128.and(l0, m4), i8x16.shl(v128.and(qh, m2), 4));
        const q1 = v128.or(v128.and(l1, m4), i8x16.shl(v128.and(i8x16.shr_u(qh, 2), m2), 4));
        const q2 = v128.or(i8x16.shr_u(l0, 4), i8x16.shl(v128.and(i8x16.shr_u(qh, 4), m2), 4));
        const q3 = v128.or(i8x16.shr_u(l1, 4), i8x16.shl(i8x16.shr_u(qh, 6), 4));
        // group g = 8h + 2s + c holds weights 128h + 32s + 16c .. +15
        const g0 = 8 * h + c;
        const ds0 = d * <f32>load<i8>(o + 192 + <usize>g0);
        const ds1 = d * <f32>load<i8>(o + 192 + <usize>(g0 + 2));
        const ds2 = d * <f32>load<i8>(o + 192 + <usize>(g0 + 4));
        const ds3 = d * <f32>load<i8>(o + 192 + <usize>(g0 + 6));
        acc = f32x4.add(acc, f32x4.mul(dot16(q0, xb + <usize>(64 * g0)), f32x4.splat(ds0)));
        acc = f32x4.add(acc, f32x4.mul(dot16(q1, xb + <usize>(64 * (g0 + 2))), f32x4.splat(ds1)));
        acc = f32x4.add(acc, f32x4.mul(dot16(q2, xb + <usize>(64 * (g0 + 4))), f32x4.splat(ds2)));
        acc = f32x4.add(acc, f32x4.mul(dot16(q3, xb + <usize>(64 * (g0 + 6))), f32x4.splat(ds3)));
        offs += ds0 * load<f32>(sb + <usize>(4 * g0)) + ds1 * load<f32>(sb + <usize>(4 * (g0 + 2)))
          + ds2 * load<f32>(sb + <usize>(4 * (g0 + 4))) + ds3 * load<f32>(sb + <usize>(4 * (g0 + 6)));
      }
    }
  }
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3) - 32 * offs;
}

// Row of Q2_K or Q3_K blocks: four 2-bit planes of 32 bytes per 128 weights (Q3_K adds a high bit
// per weight from hmask); groups of 16 with 4-bit scale/min (Q2_K) or a signed 6-bit scale (Q3_K).
// @ts-ignore: decorator
@inline function rowQ23K(three: bool, w: usize, nb: i32, x: usize, xs: usize): f32 {
  const bb: usize = three ? 110 : 84;
  let acc = f32x4.splat(0);
  let offs: f32 = 0;
  const m2 = i8x16.splat(3);
  const one = i8x16.splat(1);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * bb;
    const d = f16(load<u16>(o + (three ? 108 : 80)));
    const dmin: f32 = three ? 0 : f16(load<u16>(o, 82));
    const qs = o + (three ? 32 : 16);
    const xb = x + (<usize>b << 10);
    const sb = xs + (<usize>b << 6);
    for (let h = 0; h < 2; h++) {
      for (let c = 0; c < 2; c++) {
        const v = v128.load(qs + <usize>(32 * h + 16 * c));
        const hm = three ? v128.load(o + <usize>(16 * c)) : v128.splat<i8>(0);
        for (let s = 0; s < 4; s++) {
          let q = v128.and(i8x16.shr_u(v, 2 * s), m2);
          if (three) q = v128.or(q, i8x16.shl(v128.and(i8x16.shr_u(hm, 4 * h + s), one), 2));
          const g = 8 * h + 2 * s + c;
          const xsum = load<f32>(sb + <usize>(4 * g));
          let a: f32;
          if (three) {
            a = d * scaleQ3K(g, o + 96);
            offs += 4 * a * xsum;
          } else {
            const sc = <i32>load<u8>(o + <usize>g);
            a = d * <f32>(sc & 0xf);
            offs += dmin * <f32>(sc >> 4) * xsum;
          }
          acc = f32x4.add(acc, f32x4.mul(dot16(q, xb + <usize>(64 * g)), f32x4.splat(a)));
        }
      }
    }
  }
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3) - offs;
}

// The scalar build: the same sums element by element from codeAt.
function rowScalar(t: i32, w: usize, nb: i32, x: usize): f32 {
  const bb = kBlockBytes(t);
  let sum: f32 = 0;
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * bb;
    const xb = x + (<usize>b << 10);
    for (let g = 0; g < 16; g++) {
      let dot: f32 = 0;
      let xsum: f32 = 0;
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        const xi = load<f32>(xb + (<usize>i << 2));
        dot += <f32>codeAt(t, o, i) * xi;
        xsum += xi;
      }
      let a: f32;
      let off: f32;
      if (t == Q2_K) {
        const sc = <i32>load<u8>(o + <usize>g);
        a = f16(load<u16>(o, 80)) * <f32>(sc & 0xf);
        off = f16(load<u16>(o, 82)) * <f32>(sc >> 4);
      } else if (t == Q3_K) {
        a = f16(load<u16>(o, 108)) * scaleQ3K(g, o + 96);
        off = 4 * a;
      } else if (t == Q6_K) {
        a = f16(load<u16>(o, 208)) * <f32>load<i8>(o + 192 + <usize>g);
        off = 32 * a;
      } else {
        a = f16(load<u16>(o)) * scaleMinK4(g >> 1, o + 4, 0);
        off = f16(load<u16>(o, 2)) * scaleMinK4(g >> 1, o + 4, 1);
      }
      sum += a * dot - off * xsum;
    }
  }
  return sum;
}

// out[r] = Σ_c W[r, c]·x[c] for `rows` rows of cols/256 blocks of ggml type `t` (10..14) at w.
// xs: scratch of cols/16 f32 (the sums of every 16 activations). Rows r0..r1 only (thread split).
export function gemv_kquant(t: i32, w: usize, rows: i32, cols: i32, x: usize, xs: usize, out: usize, r0: i32, r1: i32): void {
  const nb = cols >> 8;
  const bb = kBlockBytes(t);
  const rowBytes = <usize>nb * bb;
  if (ASC_FEATURE_SIMD) {
    kquantRowsSimd(t, w, rowBytes, nb, cols, x, xs, out, r0, r1);
  } else {
    for (let r = r0; r < r1; r++) store<f32>(out + (<usize>r << 2), rowScalar(t, w + <usize>r * rowBytes, nb, x));
  }
}

function kquantRowsSimd(t: i32, w: usize, rowBytes: usize, nb: i32, cols: i32, x: usize, xs: usize, out: usize, r0: i32, r1: i32): void {
  for (let g = 0; g < cols >> 4; g++) {
    const p = x + (<usize>g << 6);
    const v = f32x4.add(f32x4.add(v128.load(p), v128.load(p, 16)), f32x4.add(v128.load(p, 32), v128.load(p, 48)));
    store<f32>(xs + (<usize>g << 2), f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
  }
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    let y: f32;
    if (t == Q4_K) y = rowQ45K(false, wr, nb, x, xs);
    else if (t == Q6_K) y = rowQ6K(wr, nb, x, xs);
    else if (t == Q5_K) y = rowQ45K(true, wr, nb, x, xs);
    else if (t == Q3_K) y = rowQ23K(true, wr, nb, x, xs);
    else y = rowQ23K(false, wr, nb, x, xs);
    store<f32>(out + (<usize>r << 2), y);
  }
}

// ---- int8 activations (Q2_K..Q6_K): ggml's vec_dot with Q8_K, in WASM SIMD ----
// x is rounded once per call to int8 per 256-block (d = max|x|/127, like quantize_row_q8_K), held as
// i16 so that i32x4.dot_i16x8_s multiplies 8 codes by 8 activations in one instruction; the sums of
// every 16 rounded activations (Q8_K's bsums) carry the mins / the −32 offset. Integer sums per block,
// one f32 multiply by d·dx per sub-block: ~8 SIMD operations per 16 weights instead of ~18.

// x[cols] → xq (i16, cols), dx (f32 per block), bs (i32 per 16).
function quantizeActQ8K(x: usize, cols: i32, xq: usize, dx: usize, bs: usize): void {
  const nb = cols >> 8;
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 10);
    let m = f32x4.splat(0);
    for (let i = 0; i < 256; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(xb + (<usize>i << 2))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const d: f32 = amax / 127;
    const id = f32x4.splat(amax > 0 ? <f32>127 / amax : 0);
    store<f32>(dx + (<usize>b << 2), d);
    for (let g = 0; g < 16; g++) {
      const p = xb + (<usize>g << 6);
      const r0 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), id)));
      const r1 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), id)));
      const r2 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), id)));
      const r3 = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), id)));
      const q = xq + (<usize>(256 * b + 16 * g) << 1);
      v128.store(q, i16x8.narrow_i32x4_s(r0, r1));
      v128.store(q, i16x8.narrow_i32x4_s(r2, r3), 16);
      const s = i32x4.add(i32x4.add(r0, r1), i32x4.add(r2, r3));
      store<i32>(bs + (<usize>(16 * b + g) << 2), i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
    }
  }
}

// Σ over 16 codes (u8 lanes, < 128) times 16 i16 activations at xq, as four i32 lanes.
// @ts-ignore: decorator
@inline function idot16(q: v128, xq: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(q), v128.load(xq)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(q), v128.load(xq, 16)));
}

// @ts-ignore: decorator
@inline function hsumI(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}

function rowQ4KQ8(w: usize, nb: i32, xq: usize, dx: usize, bs: usize): f32 {
  let sum: f32 = 0;
  const m4 = i8x16.splat(0x0f);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * 144;
    const xb = xq + (<usize>b << 9);
    const sb = bs + (<usize>b << 6);
    let acc = i32x4.splat(0);
    let mins: i32 = 0;
    for (let j = 0; j < 4; j++) {
      const s0 = 2 * j;
      const v0 = v128.load(o + 16 + <usize>(32 * j));
      const v1 = v128.load(o + 32 + <usize>(32 * j));
      // sub-block s0: low nibbles of the 32 bytes; s0 + 1: high nibbles
      const a0 = i32x4.add(idot16(v128.and(v0, m4), xb + <usize>(64 * s0)), idot16(v128.and(v1, m4), xb + <usize>(64 * s0 + 32)));
      const a1 = i32x4.add(idot16(i8x16.shr_u(v0, 4), xb + <usize>(64 * s0 + 64)), idot16(i8x16.shr_u(v1, 4), xb + <usize>(64 * s0 + 96)));
      acc = i32x4.add(acc, i32x4.mul(a0, i32x4.splat(<i32>scaleMinK4(s0, o + 4, 0))));
      acc = i32x4.add(acc, i32x4.mul(a1, i32x4.splat(<i32>scaleMinK4(s0 + 1, o + 4, 0))));
      const x0 = load<i32>(sb + <usize>(8 * s0)) + load<i32>(sb + <usize>(8 * s0 + 4));
      const x1 = load<i32>(sb + <usize>(8 * s0 + 8)) + load<i32>(sb + <usize>(8 * s0 + 12));
      mins += <i32>scaleMinK4(s0, o + 4, 1) * x0 + <i32>scaleMinK4(s0 + 1, o + 4, 1) * x1;
    }
    const d = load<f32>(dx + (<usize>b << 2));
    sum += d * (f16(load<u16>(o)) * <f32>hsumI(acc) - f16(load<u16>(o, 2)) * <f32>mins);
  }
  return sum;
}

function rowQ6KQ8(w: usize, nb: i32, xq: usize, dx: usize, bs: usize): f32 {
  let sum: f32 = 0;
  const m4 = i8x16.splat(0x0f);
  const m2 = i8x16.splat(3);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * 210;
    const xb = xq + (<usize>b << 9);
    const sb = bs + (<usize>b << 6);
    let acc = i32x4.splat(0);
    let offs: i32 = 0;
    for (let h = 0; h < 2; h++) {
      for (let c = 0; c < 2; c++) {
        const l0 = v128.load(o + <usize>(64 * h + 16 * c));
        const l1 = v128.load(o + <usize>(64 * h + 32 + 16 * c));
        const qh = v128.load(o + 128 + <usize>(32 * h + 16 * c));
        const q0 = v128.or(v128.and(l0, m4), i8x16.shl(v128.and(qh, m2), 4));
        const q1 = v128.or(v128.and(l1, m4), i8x16.shl(v128.and(i8x16.shr_u(qh, 2), m2), 4));
        const q2 = v128.or(i8x16.shr_u(l0, 4), i8x16.shl(v128.and(i8x16.shr_u(qh, 4), m2), 4));
        const q3 = v128.or(i8x16.shr_u(l1, 4), i8x16.shl(i8x16.shr_u(qh, 6), 4));
        const g0 = 8 * h + c;
        const sc0 = <i32>load<i8>(o + 192 + <usize>g0);
        const sc1 = <i32>load<i8>(o + 192 + <usize>(g0 + 2));
        const sc2 = <i32>load<i8>(o + 192 + <usize>(g0 + 4));
        const sc3 = <i32>load<i8>(o + 192 + <usize>(g0 + 6));
        acc = i32x4.add(acc, i32x4.mul(idot16(q0, xb + <usize>(32 * g0)), i32x4.splat(sc0)));
        acc = i32x4.add(acc, i32x4.mul(idot16(q1, xb + <usize>(32 * (g0 + 2))), i32x4.splat(sc1)));
        acc = i32x4.add(acc, i32x4.mul(idot16(q2, xb + <usize>(32 * (g0 + 4))), i32x4.splat(sc2)));
        acc = i32x4.add(acc, i32x4.mul(idot16(q3, xb + <usize>(32 * (g0 + 6))), i32x4.splat(sc3)));
        offs += sc0 * load<i32>(sb + <usize>(4 * g0)) + sc1 * load<i32>(sb + <usize>(4 * (g0 + 2)))
          + sc2 * load<i32>(sb + <usize>(4 * (g0 + 4))) + sc3 * load<i32>(sb + <usize>(4 * (g0 + 6)));
      }
    }
    sum += load<f32>(dx + (<usize>b << 2)) * f16(load<u16>(o, 208)) * <f32>(hsumI(acc) - 32 * offs);
  }
  return sum;
}

function rowQ5KQ8(w: usize, nb: i32, xq: usize, dx: usize, bs: usize): f32 {
  let sum: f32 = 0;
  const m4 = i8x16.splat(0x0f);
  const one = i8x16.splat(1);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * 176;
    const xb = xq + (<usize>b << 9);
    const sb = bs + (<usize>b << 6);
    const h0 = v128.load(o + 16);
    const h1 = v128.load(o + 32);
    let acc = i32x4.splat(0);
    let mins: i32 = 0;
    for (let j = 0; j < 4; j++) {
      const s0 = 2 * j;
      const v0 = v128.load(o + 48 + <usize>(32 * j));
      const v1 = v128.load(o + 64 + <usize>(32 * j));
      // the fifth bit of sub-block s is bit s of qh[l]
      const lo0 = v128.or(v128.and(v0, m4), i8x16.shl(v128.and(i8x16.shr_u(h0, s0), one), 4));
      const lo1 = v128.or(v128.and(v1, m4), i8x16.shl(v128.and(i8x16.shr_u(h1, s0), one), 4));
      const hi0 = v128.or(i8x16.shr_u(v0, 4), i8x16.shl(v128.and(i8x16.shr_u(h0, s0 + 1), one), 4));
      const hi1 = v128.or(i8x16.shr_u(v1, 4), i8x16.shl(v128.and(i8x16.shr_u(h1, s0 + 1), one), 4));
      const a0 = i32x4.add(idot16(lo0, xb + <usize>(64 * s0)), idot16(lo1, xb + <usize>(64 * s0 + 32)));
      const a1 = i32x4.add(idot16(hi0, xb + <usize>(64 * s0 + 64)), idot16(hi1, xb + <usize>(64 * s0 + 96)));
      acc = i32x4.add(acc, i32x4.mul(a0, i32x4.splat(<i32>scaleMinK4(s0, o + 4, 0))));
      acc = i32x4.add(acc, i32x4.mul(a1, i32x4.splat(<i32>scaleMinK4(s0 + 1, o + 4, 0))));
      const x0 = load<i32>(sb + <usize>(8 * s0)) + load<i32>(sb + <usize>(8 * s0 + 4));
      const x1 = load<i32>(sb + <usize>(8 * s0 + 8)) + load<i32>(sb + <usize>(8 * s0 + 12));
      mins += <i32>scaleMinK4(s0, o + 4, 1) * x0 + <i32>scaleMinK4(s0 + 1, o + 4, 1) * x1;
    }
    const d = load<f32>(dx + (<usize>b << 2));
    sum += d * (f16(load<u16>(o)) * <f32>hsumI(acc) - f16(load<u16>(o, 2)) * <f32>mins);
  }
  return sum;
}

// Q2_K (q = 2 bits, w = d·(sc & 15)·q − dmin·(sc >> 4)) and Q3_K (q' = 2 bits | high bit << 2,
// w = d·sc·(q' − 4)) with int8 activations.
function rowQ23KQ8(three: bool, w: usize, nb: i32, xq: usize, dx: usize, bs: usize): f32 {
  const bb: usize = three ? 110 : 84;
  let sum: f32 = 0;
  const m2 = i8x16.splat(3);
  const one = i8x16.splat(1);
  for (let b = 0; b < nb; b++) {
    const o = w + <usize>b * bb;
    const qs = o + (three ? 32 : 16);
    const xb = xq + (<usize>b << 9);
    const sb = bs + (<usize>b << 6);
    let acc = i32x4.splat(0);
    let offs: i32 = 0;
    for (let h = 0; h < 2; h++) {
      for (let c = 0; c < 2; c++) {
        const v = v128.load(qs + <usize>(32 * h + 16 * c));
        const hm = three ? v128.load(o + <usize>(16 * c)) : v128.splat<i8>(0);
        for (let s = 0; s < 4; s++) {
          let q = v128.and(i8x16.shr_u(v, 2 * s), m2);
          if (three) q = v128.or(q, i8x16.shl(v128.and(i8x16.shr_u(hm, 4 * h + s), one), 2));
          const g = 8 * h + 2 * s + c;
          const xsum = load<i32>(sb + <usize>(4 * g));
          let sc: i32;
          if (three) {
            sc = <i32>scaleQ3K(g, o + 96);
            offs += 4 * sc * xsum;
          } else {
            const sm = <i32>load<u8>(o + <usize>g);
            sc = sm & 0xf;
            offs += (sm >> 4) * xsum;
          }
          acc = i32x4.add(acc, i32x4.mul(idot16(q, xb + <usize>(32 * g)), i32x4.splat(sc)));
        }
      }
    }
    const d = load<f32>(dx + (<usize>b << 2));
    if (three) sum += d * f16(load<u16>(o + 108)) * <f32>(hsumI(acc) - offs);
    else sum += d * (f16(load<u16>(o + 80)) * <f32>hsumI(acc) - f16(load<u16>(o + 82)) * <f32>offs);
  }
  return sum;
}

// Q2_K..Q6_K rows r0..r1 with int8 activations; scratch: xq (2·cols bytes), dx (cols/64 bytes),
// bs (cols/4 bytes). Returns 0 when this build has no SIMD (callers then use gemv_kquant).
export function gemv_kquant_q8(t: i32, w: usize, rows: i32, cols: i32, x: usize, xq: usize, dx: usize, bs: usize, out: usize, r0: i32, r1: i32): i32 {
  if (!ASC_FEATURE_SIMD) return 0;
  kquantQ8Simd(t, w, rows, cols, x, xq, dx, bs, out, r0, r1);
  return 1;
}

function kquantQ8Simd(t: i32, w: usize, rows: i32, cols: i32, x: usize, xq: usize, dx: usize, bs: usize, out: usize, r0: i32, r1: i32): void {
  const nb = cols >> 8;
  quantizeActQ8K(x, cols, xq, dx, bs);
  const rowBytes = <usize>nb * kBlockBytes(t);
  for (let r = r0; r < r1; r++) {
    const wr = w + <usize>r * rowBytes;
    let y: f32;
    if (t == Q4_K) y = rowQ4KQ8(wr, nb, xq, dx, bs);
    else if (t == Q6_K) y = rowQ6KQ8(wr, nb, xq, dx, bs);
    else if (t == Q5_K) y = rowQ5KQ8(wr, nb, xq, dx, bs);
    else if (t == Q3_K) y = rowQ23KQ8(true, wr, nb, xq, dx, bs);
    else y = rowQ23KQ8(false, wr, nb, xq, dx, bs);
    store<f32>(out + (<usize>r << 2), y);
  }
}
