// GEMV on llama.cpp's K-quant super-blocks as GGUF stores them (ggml-common.h block_q2_K … block_q6_K,
// 256 weights per block), with f32 activations: y[r] = Σ_c W[r, c]·x[c], nothing decoded to memory.
// f32 activations rather than ggml's Q8_K int8 ones: the result then equals dequantize-then-dot up to
// f32 summation order (no activation rounding), so K-quant models give the same log-probs as when
// their weights were decoded at load, and the kernel stays one streaming pass over the packed bytes.
// Every sub-block's affine part is folded out of the inner loop: with w = a·q − b per sub-block,
// Σ w·x = a·Σ q·x − b·Σ x, and the Σ x of every 16 activations (xs16) is computed once per call.
import { wholeToI32 } from './f32';
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
      const r0 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p), id)));
      const r1 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 16), id)));
      const r2 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 32), id)));
      const r3 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 48), id)));
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

// ---- prepared tiles (repacked once at load): four rows interleaved, int8 activations, relaxed dot ----
// Per four-row tile and 256-column super-block, one record, 16-byte aligned:
//   Q4_K: f32 d[4] | f32 dmin[4] | i8 sc[8][4] | i8 mn[8][4] | P4             608 B (4.75 bits/weight; stored 4.5)
//   Q5_K: f32 d[4] | f32 dmin[4] | i8 sc[8][4] | i8 mn[8][4] | P4 | P1        736 B (5.75; stored 5.5)
//   Q6_K: f32 d[4] | i8 sc[16][4] | P4 | P2 (high 2 bits)                    848 B (6.625; stored 6.5625)
//   Q3_K: f32 d[4] | i8 sc[16][4] | P2 | P1 (high bit)                       464 B (3.625; stored 3.4375)
//   Q2_K: f32 d[4] | f32 dmin[4] | u8 sc|mn<<4 [16][4] | P2                  352 B (2.75; stored 2.625)
// The unsigned code of a weight is q, its value d·sc·q − dmin·mn (Q4/Q5/Q2) or d·sc·(q − o) with o = 32
// (Q6) / 4 (Q3): the offset term is o·d·Σ sc·Σx, the mins' form with mn = sc, so one kernel shape
// serves all five. Codes are laid out by lanes as ggml-tiled.ts does for Q4_0: code vector m (0..63)
// holds columns 4m..4m+3 of rows 0, 1, 2, 3 in turn (byte 4i + j), so the relaxed i8·i7 dot against
// four activation codes broadcast per 32-bit lane puts row i in i16 lanes 2i, 2i+1, and one pairwise
// widening per sub-block gives four row sums. Vectors m = p + 16s (p = 0..15, s = 0..3) share the
// packed bytes of p: P4 holds per p two 16-byte vectors (V_p | V_{p+16} << 4, V_{p+32} | V_{p+48} << 4),
// P2 one (V_{p+16s} at bits 2s), P1 one per pair p = 2u, 2u + 1 (bit s + 4t for p = 2u + t): every
// unpack is a 16-bit shift and a byte mask. Sub-block of vector m: m >> 2 (16 columns) or m >> 3 (32).

// @ts-ignore: decorator
@inline function tileRecBytes(t: i32): usize {
  return t == Q2_K ? 352 : t == Q3_K ? 464 : t == Q4_K ? 608 : t == Q5_K ? 736 : 848;
}

// Bytes of the prepared form of a [rows, cols] matrix (cols % 256 == 0).
export function kquant_tiles_bytes(t: i32, rows: i32, cols: i32): usize {
  return <usize>((rows + 3) >> 2) * <usize>(cols >> 8) * tileRecBytes(t);
}

// Offsets of a record's parts.
// @ts-ignore: decorator
@inline function offP4(t: i32): usize {
  return t == Q6_K ? 80 : 96;
}
// @ts-ignore: decorator
@inline function offP2(t: i32): usize {
  return t == Q6_K ? 592 : t == Q3_K ? 80 : 96;
}
// @ts-ignore: decorator
@inline function offP1(t: i32): usize {
  return t == Q5_K ? 608 : 336;
}

// Byte offset of sub-block g's four row bytes (rows 0..3) in a record's scale or min table: grouped as
// the kernel's loops take them, 16 bytes per group: 16-column sub-blocks g = g4 + 4s in group g4 at
// place s, 32-column ones g = h + 2s in group h at place s. One load then serves a group.
// @ts-ignore: decorator
@inline function sc16At(g: i32): usize {
  return <usize>(16 * (g & 3) + 4 * (g >> 2));
}
// @ts-ignore: decorator
@inline function sc32At(g: i32): usize {
  return <usize>(16 * (g & 1) + 4 * (g >> 1));
}

// The definition of prepare_kquant, weight by weight from codeAt (kept for the tests and the benchmark,
// which hold the SIMD repack to it byte for byte): dst zeroed, then every code's bits ORed into place.
export function prepare_kquant_ref(t: i32, src: usize, rows: i32, cols: i32, dst: usize): i32 {
  if (!ASC_FEATURE_SIMD) return 0;
  const nb = cols >> 8;
  const bb = kBlockBytes(t);
  const rb = tileRecBytes(t);
  const tiles = (rows + 3) >> 2;
  memory.fill(dst, 0, <usize>tiles * <usize>nb * rb);
  for (let r = 0; r < rows; r++) {
    const i = <usize>(r & 3);
    for (let b = 0; b < nb; b++) {
      const o = src + (<usize>r * <usize>nb + <usize>b) * bb;
      const rec = dst + (<usize>(r >> 2) * <usize>nb + <usize>b) * rb;
      if (t == Q4_K || t == Q5_K) {
        store<f32>(rec + (i << 2), f16(load<u16>(o)));
        store<f32>(rec + 16 + (i << 2), f16(load<u16>(o, 2)));
        for (let g = 0; g < 8; g++) {
          store<i8>(rec + 32 + sc32At(g) + i, <i8>scaleMinK4(g, o + 4, 0));
          store<i8>(rec + 64 + sc32At(g) + i, <i8>scaleMinK4(g, o + 4, 1));
        }
      } else if (t == Q6_K) {
        store<f32>(rec + (i << 2), f16(load<u16>(o, 208)));
        for (let g = 0; g < 16; g++) store<i8>(rec + 16 + sc16At(g) + i, load<i8>(o + 192 + <usize>g));
      } else if (t == Q3_K) {
        store<f32>(rec + (i << 2), f16(load<u16>(o, 108)));
        for (let g = 0; g < 16; g++) store<i8>(rec + 16 + sc16At(g) + i, <i8>scaleQ3K(g, o + 96));
      } else {
        store<f32>(rec + (i << 2), f16(load<u16>(o, 80)));
        store<f32>(rec + 16 + (i << 2), f16(load<u16>(o, 82)));
        for (let g = 0; g < 16; g++) store<u8>(rec + 32 + sc16At(g) + i, load<u8>(o + <usize>g));
      }
      for (let c = 0; c < 256; c++) {
        const q = codeAt(t, o, c);
        const m = c >> 2;
        const p = m & 15;
        const s = m >> 4;
        const k = (i << 2) + <usize>(c & 3);
        let lo2 = -1;
        let hi = -1;
        let hiBits = 0;
        if (t == Q4_K || t == Q5_K || t == Q6_K) {
          const a = rec + offP4(t) + <usize>(32 * p + 16 * (s >> 1)) + k;
          store<u8>(a, load<u8>(a) | <u8>((q & 15) << (4 * (s & 1))));
          if (t == Q6_K) lo2 = q >> 4;
          if (t == Q5_K) {
            hi = q >> 4;
            hiBits = 1;
          }
        } else {
          lo2 = q & 3;
          if (t == Q3_K) {
            hi = q >> 2;
            hiBits = 1;
          }
        }
        if (lo2 >= 0) {
          const a = rec + offP2(t) + <usize>(16 * p) + k;
          store<u8>(a, load<u8>(a) | <u8>(lo2 << (2 * s)));
        }
        if (hiBits) {
          const a = rec + offP1(t) + <usize>(16 * (p >> 1)) + k;
          store<u8>(a, load<u8>(a) | <u8>(hi << (s + 4 * (p & 1))));
        }
      }
    }
  }
  return 1;
}

// ---- prepare_kquant in SIMD: one record (four rows × one super-block) at a time ----
// Every 16-byte vector of a record holds row i in 32-bit lane i (codes, d, dmin) or in byte i of each
// lane (scale tables). So each row computes, from its block's planes as ggml groups them, one vector
// per four record vectors (lane v: its share of record vector v), and a 4×4 transpose of the four rows'
// vectors gives the record's vectors whole: shifts and masks per row instead of per-weight stores
// (4096×11008, one thread: Q4_K 0.16 -> 7.5 GB/s of blocks, Q6_K 0.16 -> 9.0; bench-kquant-prepare.mjs).

// Record vectors dst, dst + stride, dst + 2·stride, dst + 3·stride from the rows' vectors r0..r3; lanes
// of rows past the matrix (live 0) zeroed; bytes: scale vectors (row vectors r[4v + L] → byte 4L + i).
// @ts-ignore: decorator
@inline function storeQuad(r0: v128, r1: v128, r2: v128, r3: v128, live: v128, bytes: bool, dst: usize, stride: usize): void {
  const t0 = v128.shuffle<i32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<i32>(r0, r1, 2, 6, 3, 7);
  const t2 = v128.shuffle<i32>(r2, r3, 0, 4, 1, 5);
  const t3 = v128.shuffle<i32>(r2, r3, 2, 6, 3, 7);
  let w0 = v128.and(v128.shuffle<i32>(t0, t2, 0, 1, 4, 5), live);
  let w1 = v128.and(v128.shuffle<i32>(t0, t2, 2, 3, 6, 7), live);
  let w2 = v128.and(v128.shuffle<i32>(t1, t3, 0, 1, 4, 5), live);
  let w3 = v128.and(v128.shuffle<i32>(t1, t3, 2, 3, 6, 7), live);
  if (bytes) {
    w0 = v128.shuffle<i8>(w0, w0, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    w1 = v128.shuffle<i8>(w1, w1, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    w2 = v128.shuffle<i8>(w2, w2, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    w3 = v128.shuffle<i8>(w3, w3, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  }
  v128.store(dst, w0);
  v128.store(dst + stride, w1);
  v128.store(dst + 2 * stride, w2);
  v128.store(dst + 3 * stride, w3);
}

// Byte shifts as i16 shifts and a mask (x64 has no byte shifts; V8 emulates i8x16.shl / shr_u with
// extra masks per use): the mask also drops the bits that crossed from the neighbouring byte.
// @ts-ignore: decorator
@inline function shl8(v: v128, n: i32, m: i32): v128 {
  return v128.and(i16x8.shl(v, n), i8x16.splat(<i8>m));
}
// @ts-ignore: decorator
@inline function shr8(v: v128, n: i32, m: i32): v128 {
  return v128.and(i16x8.shr_u(v, n), i8x16.splat(<i8>m));
}

// A row's scale vector in storeQuad's order: sc[g] of 16-column sub-block g at byte 4·(g & 3) + (g >> 2)
// (sc16At), Q4_K/Q5_K's sc then mn of 32-column ones at 4·(g & 1) + (g >> 1) and 8 + the same (sc32At).
// @ts-ignore: decorator
@inline function scaleRow(t: i32, o: usize): v128 {
  if (t == Q4_K || t == Q5_K) {
    // get_scale_min_k4: sub-blocks 0..3 are the low 6 bits of bytes 0..7, 4..7 a nibble of bytes 8..11
    // with the high 2 bits from the tops of bytes 0..7
    const S = v128.load(o + 4);
    const X = v128.shuffle<i8>(S, S, 0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 8, 10, 5, 7, 9, 11);
    const Y = i8x16.swizzle(S, i8x16(-1, -1, 0, 2, -1, -1, 1, 3, -1, -1, 4, 6, -1, -1, 5, 7));
    const lo = v128.and(X, i8x16(63, 63, 15, 15, 63, 63, 15, 15, 63, 63, 0, 0, 63, 63, 0, 0));
    const mnHi = v128.and(i16x8.shr_u(X, 4), i8x16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 0, 0, 15, 15));
    return v128.or(v128.or(lo, mnHi), shr8(Y, 2, 0x30));
  }
  if (t == Q3_K) {
    // 6-bit scales − 32: a nibble of bytes 0..7 (sub-blocks 8..15 the high ones), 2 bits of bytes 8..11
    // at 2·(g >> 2); loaded from 94 so that the 16 bytes end inside the block
    const S = v128.load(o + 94);
    const X = v128.shuffle<i8>(S, S, 2, 6, 2, 6, 3, 7, 3, 7, 4, 8, 4, 8, 5, 9, 5, 9);
    const Y = v128.shuffle<i8>(S, S, 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13);
    const lo = v128.or(v128.and(X, i8x16(15, 15, 0, 0, 15, 15, 0, 0, 15, 15, 0, 0, 15, 15, 0, 0)), v128.and(i16x8.shr_u(X, 4), i8x16(0, 0, 15, 15, 0, 0, 15, 15, 0, 0, 15, 15, 0, 0, 15, 15)));
    const h01 = v128.or(v128.and(i16x8.shl(Y, 4), i8x16(0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0)), v128.and(i16x8.shl(Y, 2), i8x16(0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0)));
    const h23 = v128.or(v128.and(Y, i8x16(0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0)), v128.and(i16x8.shr_u(Y, 2), i8x16(0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30, 0, 0, 0, 0x30)));
    return i8x16.sub(v128.or(lo, v128.or(h01, h23)), i8x16.splat(32));
  }
  // Q6_K: int8 scales at 192; Q2_K: scale | min << 4 at 0, stored as they are
  const S = v128.load(o + (t == Q6_K ? 192 : 0));
  return v128.shuffle<i8>(S, S, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}

// Row vector q (0..3) of P4 half h (record vectors offP4 + 32·(4q + l) + 16h, l = 0..3): columns
// 128h + 16q .. +15 in the low nibbles, the same columns + 64 in the high ones. Q4_K/Q5_K store 64
// columns per 32 bytes (low nibbles: the first 32, high: the next); Q6_K's ql is already P4's layout.
// @ts-ignore: decorator
@inline function p4Row(t: i32, o: usize, h: i32, q: i32): v128 {
  if (t == Q6_K) return v128.load(o + <usize>(64 * h + 16 * q));
  const a = o + (t == Q5_K ? 48 : 16) + <usize>(64 * h + 16 * (q & 1));
  const A = v128.load(a);
  const B = v128.load(a + 32);
  if (q < 2) return v128.or(v128.and(A, i8x16.splat(0x0f)), shl8(B, 4, 0xf0));
  return v128.or(shr8(A, 4, 0x0f), v128.and(B, i8x16.splat(<i8>0xf0)));
}

// Row vector q of P2 (record vectors offP2 + 16·(4q + l)): column x = 16q..16q+15 of each quarter S
// at bits 2S. The 2-bit planes of Q2_K/Q3_K qs and Q6_K's qh share one layout: 32 bytes per 128
// columns, quarter S's column x at byte 32·(S >> 1) + (x & 31), bits 2·(2·(S & 1) + (x >> 5)).
// @ts-ignore: decorator
@inline function p2Row(base: usize, q: i32): v128 {
  const A = v128.load(base + <usize>(16 * (q & 1)));
  const B = v128.load(base + <usize>(32 + 16 * (q & 1)));
  if (q < 2) return v128.or(v128.or(v128.and(A, i8x16.splat(3)), shr8(A, 2, 0x0c)), v128.or(shl8(B, 4, 0x30), shl8(B, 2, 0xc0)));
  return v128.or(v128.or(shr8(A, 2, 0x03), shr8(A, 4, 0x0c)), v128.or(shl8(B, 2, 0x30), v128.and(B, i8x16.splat(<i8>0xc0))));
}

// Row vector q (0, 1) of P1 (record vectors offP1 + 16·(4q + L)): byte 4L + j holds, for p = 2u + t
// (u = 4q + L), quarter S's column 4p + j at bit S + 4t. Q3_K's hmask and Q5_K's qh share one layout:
// column x of quarter S is bit 2S + (x >> 5) of byte x & 31; here x = 32q + 8L + 4t + j.
// @ts-ignore: decorator
@inline function p1Row(base: usize, q: i32): v128 {
  const H0 = v128.load(base);
  const H1 = v128.load(base + 16);
  const E = v128.shuffle<i32>(H0, H1, 0, 2, 4, 6); // t = 0: bytes 8L + j
  const F = v128.shuffle<i32>(H0, H1, 1, 3, 5, 7); // t = 1: bytes 8L + 4 + j
  // bits q, q + 2, q + 4, q + 6 (quarters 0..3) gathered to the bottom nibble
  let e = shr8(E, q, 0x55);
  let f = shr8(F, q, 0x55);
  e = v128.and(v128.or(e, i16x8.shr_u(e, 1)), i8x16.splat(0x33));
  f = v128.and(v128.or(f, i16x8.shr_u(f, 1)), i8x16.splat(0x33));
  e = v128.and(v128.or(e, i16x8.shr_u(e, 2)), i8x16.splat(0x0f));
  f = v128.and(v128.or(f, i16x8.shr_u(f, 2)), i8x16.splat(0x0f));
  return v128.or(e, i16x8.shl(f, 4));
}

// One record from the blocks o0..o3 of its four rows (a row past the matrix repeats o0; live zeroes it).
// @ts-ignore: decorator
@inline function prepRecord(t: i32, o0: usize, o1: usize, o2: usize, o3: usize, n: i32, live: v128, rec: usize): void {
  const two = t == Q2_K;
  const wide = t == Q4_K || t == Q5_K;
  // f32 d (and dmin) per row: f16 at the type's offsets
  const dAt: usize = t == Q2_K ? 80 : t == Q3_K ? 108 : t == Q6_K ? 208 : 0;
  store<f32>(rec, f16(load<u16>(o0 + dAt)));
  store<f32>(rec, n > 1 ? f16(load<u16>(o1 + dAt)) : 0, 4);
  store<f32>(rec, n > 2 ? f16(load<u16>(o2 + dAt)) : 0, 8);
  store<f32>(rec, n > 3 ? f16(load<u16>(o3 + dAt)) : 0, 12);
  if (wide || two) {
    store<f32>(rec, f16(load<u16>(o0 + dAt + 2)), 16);
    store<f32>(rec, n > 1 ? f16(load<u16>(o1 + dAt + 2)) : 0, 20);
    store<f32>(rec, n > 2 ? f16(load<u16>(o2 + dAt + 2)) : 0, 24);
    store<f32>(rec, n > 3 ? f16(load<u16>(o3 + dAt + 2)) : 0, 28);
  }
  storeQuad(scaleRow(t, o0), scaleRow(t, o1), scaleRow(t, o2), scaleRow(t, o3), live, true, rec + (wide || two ? 32 : 16), 16);
  if (t != Q2_K && t != Q3_K) {
    const p4 = rec + offP4(t);
    for (let h = 0; h < 2; h++) {
      for (let q = 0; q < 4; q++) {
        storeQuad(p4Row(t, o0, h, q), p4Row(t, o1, h, q), p4Row(t, o2, h, q), p4Row(t, o3, h, q), live, false, p4 + <usize>(128 * q + 16 * h), 32);
      }
    }
  }
  if (t != Q4_K && t != Q5_K) {
    const at: usize = t == Q6_K ? 128 : t == Q3_K ? 32 : 16;
    const p2 = rec + offP2(t);
    for (let q = 0; q < 4; q++) storeQuad(p2Row(o0 + at, q), p2Row(o1 + at, q), p2Row(o2 + at, q), p2Row(o3 + at, q), live, false, p2 + <usize>(64 * q), 16);
  }
  if (t == Q3_K || t == Q5_K) {
    const at: usize = t == Q5_K ? 16 : 0;
    const p1 = rec + offP1(t);
    for (let q = 0; q < 2; q++) storeQuad(p1Row(o0 + at, q), p1Row(o1 + at, q), p1Row(o2 + at, q), p1Row(o3 + at, q), live, false, p1 + <usize>(64 * q), 16);
  }
}

// @ts-ignore: decorator
@inline function prepOf(t: i32, src: usize, rows: i32, nb: i32, dst: usize): void {
  const bb = kBlockBytes(t);
  const rb = tileRecBytes(t);
  const rowBytes = <usize>nb * bb;
  for (let tile = 0; tile < (rows + 3) >> 2; tile++) {
    const n = min(4, rows - (tile << 2));
    const live = i32x4.gt_s(i32x4.splat(n), i32x4(0, 1, 2, 3));
    const r0 = src + <usize>(tile << 2) * rowBytes;
    const r1 = n > 1 ? r0 + rowBytes : r0;
    const r2 = n > 2 ? r0 + 2 * rowBytes : r0;
    const r3 = n > 3 ? r0 + 3 * rowBytes : r0;
    for (let b = 0; b < nb; b++) {
      const ob = <usize>b * bb;
      prepRecord(t, r0 + ob, r1 + ob, r2 + ob, r3 + ob, n, live, dst + (<usize>tile * <usize>nb + <usize>b) * rb);
    }
  }
}
function prepQ4K(src: usize, rows: i32, nb: i32, dst: usize): void {
  prepOf(Q4_K, src, rows, nb, dst);
}
function prepQ5K(src: usize, rows: i32, nb: i32, dst: usize): void {
  prepOf(Q5_K, src, rows, nb, dst);
}
function prepQ6K(src: usize, rows: i32, nb: i32, dst: usize): void {
  prepOf(Q6_K, src, rows, nb, dst);
}
function prepQ3K(src: usize, rows: i32, nb: i32, dst: usize): void {
  prepOf(Q3_K, src, rows, nb, dst);
}
function prepQ2K(src: usize, rows: i32, nb: i32, dst: usize): void {
  prepOf(Q2_K, src, rows, nb, dst);
}

// src: rows × (cols/256) blocks of type t as GGUF stores them; dst: kquant_tiles_bytes bytes, every one
// written (rows past the matrix in the last tile all zero), equal to prepare_kquant_ref's. Returns 0 on
// a build without SIMD (the tiles kernel needs it; callers then keep the blocks as stored).
export function prepare_kquant(t: i32, src: usize, rows: i32, cols: i32, dst: usize): i32 {
  if (!ASC_FEATURE_SIMD) return 0;
  const nb = cols >> 8;
  if (t == Q4_K) prepQ4K(src, rows, nb, dst);
  else if (t == Q6_K) prepQ6K(src, rows, nb, dst);
  else if (t == Q5_K) prepQ5K(src, rows, nb, dst);
  else if (t == Q3_K) prepQ3K(src, rows, nb, dst);
  else prepQ2K(src, rows, nb, dst);
  return 1;
}

// x[cols] → int8 codes xq (cols bytes), dx (f32 per 256), bs (48 bytes per 256: i16 Σ codes per 16
// then per 32, in the order of the records' scale tables): Q8_K's rounding,
// the same as quantizeActQ8K (and kquantActivationsQ8 in JS).
export function quantize_act_q8k(x: usize, cols: i32, xq: usize, dx: usize, bs: usize): void {
  if (!ASC_FEATURE_SIMD) return;
  const nb = cols >> 8;
  for (let b = 0; b < nb; b++) {
    const xb = x + (<usize>b << 10);
    let m = f32x4.splat(0);
    for (let i = 0; i < 256; i += 4) m = f32x4.max(m, f32x4.abs(v128.load(xb + (<usize>i << 2))));
    const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
    const id = f32x4.splat(amax > 0 ? <f32>127 / amax : 0);
    store<f32>(dx + (<usize>b << 2), amax / 127);
    for (let g = 0; g < 16; g++) {
      const p = xb + (<usize>g << 6);
      const r0 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p), id)));
      const r1 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 16), id)));
      const r2 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 32), id)));
      const r3 = wholeToI32(f32x4.nearest(f32x4.mul(v128.load(p, 48), id)));
      v128.store(xq + <usize>(256 * b + 16 * g), i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(r0, r1), i16x8.narrow_i32x4_s(r2, r3)));
      // |Σ of 16 codes| <= 2032 and of 32 <= 4064: i16, in the kernels' group order (sc16At / sc32At)
      const sum = hsumI(i32x4.add(i32x4.add(r0, r1), i32x4.add(r2, r3)));
      const sb = bs + <usize>(48 * b);
      store<i16>(sb + (sc16At(g) >> 1), <i16>sum);
      const a32 = sb + 32 + (sc32At(g >> 1) >> 1);
      store<i16>(a32, <i16>(((g & 1) ? <i32>load<i16>(a32) : 0) + sum));
    }
  }
}

// i16 lane k = a[2k]·b[2k] + a[2k+1]·b[2k+1], a signed, b in [0, 127]: the relaxed instruction, or the
// same sums from even/odd byte halves where relaxed SIMD is absent.
// @ts-ignore: decorator
@inline function pairDot(a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return i16x8.relaxed_dot_i8x16_i7x16_s(a, b);
  const ae = i16x8.shr_s(i16x8.shl(a, 8), 8);
  const ao = i16x8.shr_s(a, 8);
  const be = v128.and(b, i16x8.splat(0xff));
  const bo = i16x8.shr_u(b, 8);
  return i16x8.add(i16x8.mul(ae, be), i16x8.mul(ao, bo));
}

// Bit `src` of every byte of v moved to bit `dst` (other bits cleared): a 16-bit shift, then the byte
// mask of dst (a bit that crosses into the lane's other byte lands elsewhere than dst and is cleared).
// @ts-ignore: decorator
@inline function bitTo(v: v128, src: i32, dst: i32): v128 {
  // shift first, then one mask per destination (a constant V8 keeps, where four masks were rebuilt)
  const m = i32x4.splat(0x01010101 << dst);
  return src == dst ? v128.and(v, m) : src < dst ? v128.and(i16x8.shl(v, dst - src), m) : v128.and(i16x8.shr_u(v, src - dst), m);
}

// i16 lanes 2r, 2r+1 = byte 4s + r of v (row r's scale at place s of a group), zero- or sign-extended:
// multiplied into a sub-block's i16 pair sums by i32x4.dot_i16x8_s, which also widens them (one
// pmaddwd where a widening dot and an i32 multiply took four instructions).
// @ts-ignore: decorator
@inline function pairsOf(v: v128, s: i32, signed: bool): v128 {
  const z = i8x16.splat(0);
  if (signed) {
    let u: v128;
    if (s == 0) u = i8x16.shuffle(z, v, 0, 16, 0, 16, 0, 17, 0, 17, 0, 18, 0, 18, 0, 19, 0, 19);
    else if (s == 1) u = i8x16.shuffle(z, v, 0, 20, 0, 20, 0, 21, 0, 21, 0, 22, 0, 22, 0, 23, 0, 23);
    else if (s == 2) u = i8x16.shuffle(z, v, 0, 24, 0, 24, 0, 25, 0, 25, 0, 26, 0, 26, 0, 27, 0, 27);
    else u = i8x16.shuffle(z, v, 0, 28, 0, 28, 0, 29, 0, 29, 0, 30, 0, 30, 0, 31, 0, 31);
    return i16x8.shr_s(u, 8);
  }
  if (s == 0) return i8x16.shuffle(v, z, 0, 16, 0, 16, 1, 16, 1, 16, 2, 16, 2, 16, 3, 16, 3, 16);
  if (s == 1) return i8x16.shuffle(v, z, 4, 16, 4, 16, 5, 16, 5, 16, 6, 16, 6, 16, 7, 16, 7, 16);
  if (s == 2) return i8x16.shuffle(v, z, 8, 16, 8, 16, 9, 16, 9, 16, 10, 16, 10, 16, 11, 16, 11, 16);
  return i8x16.shuffle(v, z, 12, 16, 12, 16, 13, 16, 13, 16, 14, 16, 14, 16, 15, 16, 15, 16);
}

// i16 lanes 2r, 2r+1 = bytes 4s + r, 4s + 4 + r of v (row r's mins at places s, s + 1; s = 0 or 2): one
// dot against the activation sums of those two sub-blocks (broadcast i16 pair) gives Σ mn·bsum per row.
// @ts-ignore: decorator
@inline function minPairs(v: v128, s: i32, signed: bool): v128 {
  const z = i8x16.splat(0);
  if (signed) {
    const u = s == 0
      ? i8x16.shuffle(z, v, 0, 16, 0, 20, 0, 17, 0, 21, 0, 18, 0, 22, 0, 19, 0, 23)
      : i8x16.shuffle(z, v, 0, 24, 0, 28, 0, 25, 0, 29, 0, 26, 0, 30, 0, 27, 0, 31);
    return i16x8.shr_s(u, 8);
  }
  return s == 0
    ? i8x16.shuffle(v, z, 0, 16, 4, 16, 1, 16, 5, 16, 2, 16, 6, 16, 3, 16, 7, 16)
    : i8x16.shuffle(v, z, 8, 16, 12, 16, 9, 16, 13, 16, 10, 16, 14, 16, 11, 16, 15, 16);
}

// One tile × one super-block of Q4_K / Q5_K: d·Σ sc·dot − dmin·Σ mn·bsum32 per row.
// @ts-ignore: decorator
@inline function tileQ45(five: bool, rec: usize, xb: usize, sb: usize): v128 {
  const m4 = i8x16.splat(0x0f);
  let dots = i32x4.splat(0);
  let mins = i32x4.splat(0);
  for (let h = 0; h < 2; h++) {
    const S = v128.load(rec + 32 + <usize>(16 * h));
    const M = v128.load(rec + 64 + <usize>(16 * h));
    const sc0 = pairsOf(S, 0, false);
    const sc1 = pairsOf(S, 1, false);
    const sc2 = pairsOf(S, 2, false);
    const sc3 = pairsOf(S, 3, false);
    // Q5: codes <= 31, i16 lanes of four vectors <= 8·127·31 = 31496; Q4: eight <= 16·127·15 = 30480
    const halves = five ? 2 : 1;
    const steps = five ? 4 : 8;
    for (let half = 0; half < halves; half++) {
      let a0 = i16x8.splat(0);
      let a1 = i16x8.splat(0);
      let a2 = i16x8.splat(0);
      let a3 = i16x8.splat(0);
      for (let u = 0; u < steps; u++) {
        const p = 8 * h + (five ? 4 * half : 0) + u;
        const A = v128.load(rec + 96 + <usize>(32 * p));
        const B = v128.load(rec + 112 + <usize>(32 * p));
        let c0 = v128.and(A, m4);
        let c1 = v128.and(i16x8.shr_u(A, 4), m4);
        let c2 = v128.and(B, m4);
        let c3 = v128.and(i16x8.shr_u(B, 4), m4);
        if (five) {
          const D = v128.load(rec + 608 + <usize>(16 * (p >> 1)));
          // this p's four bits to the bottom of each byte's low half (no bit crosses a byte: see bitTo)
          const Ds = i16x8.shr_u(D, 4 * (p & 1));
          c0 = v128.or(c0, bitTo(Ds, 0, 4));
          c1 = v128.or(c1, bitTo(Ds, 1, 4));
          c2 = v128.or(c2, bitTo(Ds, 2, 4));
          c3 = v128.or(c3, bitTo(Ds, 3, 4));
        }
        a0 = i16x8.add(a0, pairDot(v128.load32_splat(xb + <usize>(4 * p)), c0));
        a1 = i16x8.add(a1, pairDot(v128.load32_splat(xb + <usize>(4 * p + 64)), c1));
        a2 = i16x8.add(a2, pairDot(v128.load32_splat(xb + <usize>(4 * p + 128)), c2));
        a3 = i16x8.add(a3, pairDot(v128.load32_splat(xb + <usize>(4 * p + 192)), c3));
      }
      // vectors p + 16s of p in 8h..8h+7 make up 32-column sub-block h + 2s (place s of group h)
      dots = i32x4.add(dots, i32x4.add(i32x4.dot_i16x8_s(a0, sc0), i32x4.dot_i16x8_s(a1, sc1)));
      dots = i32x4.add(dots, i32x4.add(i32x4.dot_i16x8_s(a2, sc2), i32x4.dot_i16x8_s(a3, sc3)));
    }
    mins = i32x4.add(mins, i32x4.dot_i16x8_s(minPairs(M, 0, false), v128.load32_splat(sb + 32 + <usize>(8 * h))));
    mins = i32x4.add(mins, i32x4.dot_i16x8_s(minPairs(M, 2, false), v128.load32_splat(sb + 36 + <usize>(8 * h))));
  }
  return f32x4.sub(f32x4.mul(v128.load(rec), f32x4.convert_i32x4_s(dots)), f32x4.mul(v128.load(rec, 16), f32x4.convert_i32x4_s(mins)));
}

// One tile × one super-block of Q6_K, Q3_K or Q2_K (16-column sub-blocks).
// @ts-ignore: decorator
@inline function tile16(t: i32, rec: usize, xb: usize, sb: usize): v128 {
  const m4 = i8x16.splat(0x0f);
  const m3 = i8x16.splat(3);
  const m30 = i8x16.splat(0x30);
  const six = t == Q6_K;
  const two = t == Q2_K;
  const scOff: usize = two ? 32 : 16;
  let dots = i32x4.splat(0);
  let mins = i32x4.splat(0);
  for (let g4 = 0; g4 < 4; g4++) {
    const raw = v128.load(rec + scOff + <usize>(16 * g4));
    // Q2: scale in the low nibble, min in the high one; Q3 / Q6: signed scales, the mins' role too
    const S = two ? v128.and(raw, m4) : raw;
    const M = two ? v128.and(i16x8.shr_u(raw, 4), m4) : raw;
    const sc0 = pairsOf(S, 0, !two);
    const sc1 = pairsOf(S, 1, !two);
    const sc2 = pairsOf(S, 2, !two);
    const sc3 = pairsOf(S, 3, !two);
    // Q6: codes <= 63, i16 lanes of two vectors <= 4·127·63 = 32004; Q2/Q3: four <= 8·127·7 = 7112
    const halves = six ? 2 : 1;
    const steps = six ? 2 : 4;
    for (let half = 0; half < halves; half++) {
      let a0 = i16x8.splat(0);
      let a1 = i16x8.splat(0);
      let a2 = i16x8.splat(0);
      let a3 = i16x8.splat(0);
      for (let u = 0; u < steps; u++) {
        const p = 4 * g4 + (six ? 2 * half : 0) + u;
        const C = v128.load(rec + offP2(t) + <usize>(16 * p));
        let c0: v128;
        let c1: v128;
        let c2: v128;
        let c3: v128;
        if (six) {
          const A = v128.load(rec + 80 + <usize>(32 * p));
          const B = v128.load(rec + 96 + <usize>(32 * p));
          c0 = v128.or(v128.and(A, m4), v128.and(i16x8.shl(C, 4), m30));
          c1 = v128.or(v128.and(i16x8.shr_u(A, 4), m4), v128.and(i16x8.shl(C, 2), m30));
          c2 = v128.or(v128.and(B, m4), v128.and(C, m30));
          c3 = v128.or(v128.and(i16x8.shr_u(B, 4), m4), v128.and(i16x8.shr_u(C, 2), m30));
        } else {
          c0 = v128.and(C, m3);
          c1 = v128.and(i16x8.shr_u(C, 2), m3);
          c2 = v128.and(i16x8.shr_u(C, 4), m3);
          c3 = v128.and(i16x8.shr_u(C, 6), m3);
          if (t == Q3_K) {
            const D = v128.load(rec + 336 + <usize>(16 * (p >> 1)));
            const Ds = i16x8.shr_u(D, 4 * (p & 1));
            c0 = v128.or(c0, bitTo(Ds, 0, 2));
            c1 = v128.or(c1, bitTo(Ds, 1, 2));
            c2 = v128.or(c2, bitTo(Ds, 2, 2));
            c3 = v128.or(c3, bitTo(Ds, 3, 2));
          }
        }
        a0 = i16x8.add(a0, pairDot(v128.load32_splat(xb + <usize>(4 * p)), c0));
        a1 = i16x8.add(a1, pairDot(v128.load32_splat(xb + <usize>(4 * p + 64)), c1));
        a2 = i16x8.add(a2, pairDot(v128.load32_splat(xb + <usize>(4 * p + 128)), c2));
        a3 = i16x8.add(a3, pairDot(v128.load32_splat(xb + <usize>(4 * p + 192)), c3));
      }
      // vectors p + 16s of p in 4g4..4g4+3 make up 16-column sub-block g4 + 4s (place s of group g4)
      dots = i32x4.add(dots, i32x4.add(i32x4.dot_i16x8_s(a0, sc0), i32x4.dot_i16x8_s(a1, sc1)));
      dots = i32x4.add(dots, i32x4.add(i32x4.dot_i16x8_s(a2, sc2), i32x4.dot_i16x8_s(a3, sc3)));
    }
    mins = i32x4.add(mins, i32x4.dot_i16x8_s(minPairs(M, 0, !two), v128.load32_splat(sb + <usize>(8 * g4))));
    mins = i32x4.add(mins, i32x4.dot_i16x8_s(minPairs(M, 2, !two), v128.load32_splat(sb + 4 + <usize>(8 * g4))));
  }
  const d = v128.load(rec);
  // dmin: stored (Q2), or the offset o·d (Q6: 32, Q3: 4)
  const dm = two ? v128.load(rec, 16) : f32x4.mul(d, f32x4.splat(six ? 32 : 4));
  return f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(dots)), f32x4.mul(dm, f32x4.convert_i32x4_s(mins)));
}

// @ts-ignore: decorator
@inline function tilesOf(t: i32, w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  const rb = tileRecBytes(t);
  for (let tile = t0; tile < t1; tile++) {
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const rec = w + (<usize>tile * <usize>nb + <usize>b) * rb;
      const xb = xq + (<usize>b << 8);
      const sb = bs + <usize>(48 * b);
      const part = t == Q4_K ? tileQ45(false, rec, xb, sb) : t == Q5_K ? tileQ45(true, rec, xb, sb) : tile16(t, rec, xb, sb);
      acc = f32x4.add(acc, f32x4.mul(part, f32x4.splat(load<f32>(dx + (<usize>b << 2)))));
    }
    const r = tile << 2;
    if (r + 4 <= rows) v128.store(out + (<usize>r << 2), acc);
    else {
      store<f32>(out + (<usize>r << 2), f32x4.extract_lane(acc, 0));
      if (r + 1 < rows) store<f32>(out + (<usize>(r + 1) << 2), f32x4.extract_lane(acc, 1));
      if (r + 2 < rows) store<f32>(out + (<usize>(r + 2) << 2), f32x4.extract_lane(acc, 2));
    }
  }
}

// out[r] = Σ_c W[r, c]·x[c] on prepared tiles w (prepare_kquant), x already quantized by
// quantize_act_q8k (xq, dx, bs); tiles t0..t1 of four rows (a thread's share).
export function gemv_kquant_tiles(t: i32, w: usize, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  if (!ASC_FEATURE_SIMD) return;
  const nb = cols >> 8;
  if (t == Q4_K) tilesQ4K(w, nb, rows, xq, dx, bs, out, t0, t1);
  else if (t == Q6_K) tilesQ6K(w, nb, rows, xq, dx, bs, out, t0, t1);
  else if (t == Q5_K) tilesQ5K(w, nb, rows, xq, dx, bs, out, t0, t1);
  else if (t == Q3_K) tilesQ3K(w, nb, rows, xq, dx, bs, out, t0, t1);
  else tilesQ2K(w, nb, rows, xq, dx, bs, out, t0, t1);
}

// One function per type, each with its type a constant from the start: inlined into one function,
// the five bodies were left partly shared, with the type tested inside the inner loops.
function tilesQ4K(w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  tilesOf(Q4_K, w, nb, rows, xq, dx, bs, out, t0, t1);
}
function tilesQ5K(w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  tilesOf(Q5_K, w, nb, rows, xq, dx, bs, out, t0, t1);
}
function tilesQ6K(w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  tilesOf(Q6_K, w, nb, rows, xq, dx, bs, out, t0, t1);
}
function tilesQ3K(w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  tilesOf(Q3_K, w, nb, rows, xq, dx, bs, out, t0, t1);
}
function tilesQ2K(w: usize, nb: i32, rows: i32, xq: usize, dx: usize, bs: usize, out: usize, t0: i32, t1: i32): void {
  tilesOf(Q2_K, w, nb, rows, xq, dx, bs, out, t0, t1);
}

// The binary16 bits of an f32 that f16() produced (exactly representable), NaN payloads included: the
// inverse of f16() (as ggml-tiled.ts's f16Bits).
// @ts-ignore: decorator
@inline function f16BitsK(v: f32): u16 {
  const b = reinterpret<u32>(v);
  const sign = (b >> 16) & 0x8000;
  const e = (b >> 23) & 0xff;
  const m = b & 0x7fffff;
  if (e == 0xff) return <u16>(sign | 0x7c00 | (m >> 13));
  if (e == 0) return <u16>sign;
  if (<i32>e <= 112) return <u16>(sign | <u32>(abs<f32>(v) * reinterpret<f32>(0x4b800000)));
  return <u16>(sign | ((e - 112) << 10) | (m >> 13));
}

// OR the bits of code q of weight i into a zeroed block at o: the inverse of codeAt.
// @ts-ignore: decorator
@inline function putCode(t: i32, o: usize, i: i32, q: i32): void {
  let a: usize;
  let v: i32;
  if (t == Q2_K || t == Q3_K) {
    a = o + (t == Q3_K ? 32 : 16) + <usize>(32 * (i >> 7) + (i & 31));
    store<u8>(a, load<u8>(a) | <u8>((q & 3) << (2 * ((i >> 5) & 3))));
    if (t == Q3_K) {
      a = o + <usize>(i & 31);
      store<u8>(a, load<u8>(a) | <u8>(((q >> 2) & 1) << (i >> 5)));
    }
    return;
  }
  if (t == Q6_K) {
    const h = i >> 7;
    const s = (i >> 5) & 3;
    const l = i & 31;
    a = o + <usize>(64 * h + 32 * (s & 1) + l);
    v = s < 2 ? q & 15 : (q & 15) << 4;
    store<u8>(a, load<u8>(a) | <u8>v);
    a = o + 128 + <usize>(32 * h + l);
    store<u8>(a, load<u8>(a) | <u8>((q >> 4) << (2 * s)));
    return;
  }
  const s = i >> 5;
  const l = i & 31;
  a = o + (t == Q5_K ? 48 : 16) + <usize>(32 * (s >> 1) + l);
  store<u8>(a, load<u8>(a) | <u8>((q & 15) << (4 * (s & 1))));
  if (t == Q5_K) {
    a = o + 16 + <usize>l;
    store<u8>(a, load<u8>(a) | <u8>(((q >> 4) & 1) << s));
  }
}

// The code of weight c of row i from a prepared record (the inverse of prepare_kquant's placement).
// @ts-ignore: decorator
@inline function tileCode(t: i32, rec: usize, i: usize, c: i32): i32 {
  const m = c >> 2;
  const p = m & 15;
  const s = m >> 4;
  const k = (i << 2) + <usize>(c & 3);
  let q = 0;
  if (t == Q4_K || t == Q5_K || t == Q6_K) q = (<i32>load<u8>(rec + offP4(t) + <usize>(32 * p + 16 * (s >> 1)) + k) >> (4 * (s & 1))) & 15;
  if (t == Q6_K) q |= ((<i32>load<u8>(rec + offP2(t) + <usize>(16 * p) + k) >> (2 * s)) & 3) << 4;
  if (t == Q2_K || t == Q3_K) q = (<i32>load<u8>(rec + offP2(t) + <usize>(16 * p) + k) >> (2 * s)) & 3;
  if (t == Q5_K || t == Q3_K) q |= ((<i32>load<u8>(rec + offP1(t) + <usize>(16 * (p >> 1)) + k) >> (s + 4 * (p & 1))) & 1) << (t == Q5_K ? 4 : 2);
  return q;
}

// The blocks back from prepare_kquant's tiles, byte for byte (dst: rows × cols/256 blocks), so a model
// keeps one copy of its weights (the prepared one) and still saves what it loaded.
export function unprepare_kquant(t: i32, src: usize, rows: i32, cols: i32, dst: usize): void {
  const nb = cols >> 8;
  const bb = kBlockBytes(t);
  const rb = tileRecBytes(t);
  memory.fill(dst, 0, <usize>rows * <usize>nb * bb);
  for (let r = 0; r < rows; r++) {
    const i = <usize>(r & 3);
    for (let b = 0; b < nb; b++) {
      const o = dst + (<usize>r * <usize>nb + <usize>b) * bb;
      const rec = src + (<usize>(r >> 2) * <usize>nb + <usize>b) * rb;
      const d = f16BitsK(load<f32>(rec + (i << 2)));
      if (t == Q4_K || t == Q5_K) {
        store<u16>(o, d);
        store<u16>(o, f16BitsK(load<f32>(rec + 16 + (i << 2))), 2);
        for (let j = 0; j < 8; j++) {
          const sc = <i32>load<u8>(rec + 32 + sc32At(j) + i);
          const mn = <i32>load<u8>(rec + 64 + sc32At(j) + i);
          if (j < 4) {
            store<u8>(o + 4 + <usize>j, load<u8>(o + 4 + <usize>j) | <u8>sc);
            store<u8>(o + 8 + <usize>j, load<u8>(o + 8 + <usize>j) | <u8>mn);
          } else {
            store<u8>(o + 4 + <usize>(j + 4), <u8>((sc & 15) | ((mn & 15) << 4)));
            store<u8>(o + 4 + <usize>(j - 4), load<u8>(o + 4 + <usize>(j - 4)) | <u8>((sc >> 4) << 6));
            store<u8>(o + 4 + <usize>j, load<u8>(o + 4 + <usize>j) | <u8>((mn >> 4) << 6));
          }
        }
      } else if (t == Q6_K) {
        store<u16>(o, d, 208);
        for (let g = 0; g < 16; g++) store<i8>(o + 192 + <usize>g, load<i8>(rec + 16 + sc16At(g) + i));
      } else if (t == Q3_K) {
        store<u16>(o, d, 108);
        for (let g = 0; g < 16; g++) {
          const v = <i32>load<i8>(rec + 16 + sc16At(g) + i) + 32;
          const a = o + 96 + <usize>(g & 7);
          store<u8>(a, load<u8>(a) | <u8>((v & 15) << (g < 8 ? 0 : 4)));
          const h = o + 104 + <usize>(g & 3);
          store<u8>(h, load<u8>(h) | <u8>(((v >> 4) & 3) << (2 * (g >> 2))));
        }
      } else {
        store<u16>(o, d, 80);
        store<u16>(o, f16BitsK(load<f32>(rec + 16 + (i << 2))), 82);
        for (let g = 0; g < 16; g++) store<u8>(o + <usize>g, load<u8>(rec + 32 + sc16At(g) + i));
      }
      for (let c = 0; c < 256; c++) putCode(t, o, c, tileCode(t, rec, i, c));
    }
  }
}

// ---- batched (prefill): each tile × super-block decoded once for four tokens ----
// The GEMV above decodes a record's codes and scales once per token; a prompt of n tokens then pays
// the unpacking n times over. Here a record's code vectors are unpacked once per place and multiplied
// against four tokens' int8 activations, each token keeping its own i16 / i32 sums and f32 running
// sum. Each token's integer sums are the GEMV's exactly (every i16 sum groups at most the code vectors
// the GEMV groups, so none overflows; integer addition commutes), and its f32 operations are the
// GEMV's in the same order (per super-block d·dots − dmin·mins, then acc += part·dx), so the results
// are bit-identical to gemv_kquant_tiles token by token.

// One token's i16 pair sums of four code vectors against its activations at x, x+4, x+8, x+12: one
// 16-byte load and a lane broadcast per vector (pshufd), where four broadcast loads (load32_splat)
// made the memory operations the limit (2048×2048 × 64 tokens, Q4_K: 58 -> 77 GOP/s, V8 12 on AMD).
// @ts-ignore: decorator
@inline function pd4(x: usize, c0: v128, c1: v128, c2: v128, c3: v128): v128 {
  const X = v128.load(x);
  const a = i16x8.add(pairDot(i32x4.shuffle(X, X, 0, 0, 0, 0), c0), pairDot(i32x4.shuffle(X, X, 1, 1, 1, 1), c1));
  return i16x8.add(a, i16x8.add(pairDot(i32x4.shuffle(X, X, 2, 2, 2, 2), c2), pairDot(i32x4.shuffle(X, X, 3, 3, 3, 3), c3)));
}

// Two code vectors against lanes 0, 1 (hi false) or 2, 3 (hi true) of the activations X (pd4's loads).
// @ts-ignore: decorator
@inline function pd2(X: v128, hi: bool, c0: v128, c1: v128): v128 {
  if (hi) return i16x8.add(pairDot(i32x4.shuffle(X, X, 2, 2, 2, 2), c0), pairDot(i32x4.shuffle(X, X, 3, 3, 3, 3), c1));
  return i16x8.add(pairDot(i32x4.shuffle(X, X, 0, 0, 0, 0), c0), pairDot(i32x4.shuffle(X, X, 1, 1, 1, 1), c1));
}

// Code vector of place s of packed position p of a record (the GEMV's unpacking, s at run time).
// @ts-ignore: decorator
@inline function codeVec(t: i32, rec: usize, p: i32, s: i32): v128 {
  if (t == Q4_K || t == Q5_K) {
    let c = v128.and(i16x8.shr_u(v128.load(rec + 96 + <usize>(32 * p + 16 * (s >> 1))), 4 * (s & 1)), i8x16.splat(0x0f));
    if (t == Q5_K) c = v128.or(c, v128.and(i16x8.shl(i16x8.shr_u(v128.load(rec + 608 + <usize>(16 * (p >> 1))), 4 * (p & 1)), 4 - s), i8x16.splat(0x10)));
    return c;
  }
  if (t == Q6_K) {
    const lo = v128.and(i16x8.shr_u(v128.load(rec + 80 + <usize>(32 * p + 16 * (s >> 1))), 4 * (s & 1)), i8x16.splat(0x0f));
    const C = v128.load(rec + 592 + <usize>(16 * p));
    const hi = s < 2 ? i16x8.shl(C, 4 - 2 * s) : i16x8.shr_u(C, 2 * s - 4);
    return v128.or(lo, v128.and(hi, i8x16.splat(0x30)));
  }
  let c = v128.and(i16x8.shr_u(v128.load(rec + offP2(t) + <usize>(16 * p)), 2 * s), i8x16.splat(3));
  if (t == Q3_K) {
    const Ds = i16x8.shr_u(v128.load(rec + 336 + <usize>(16 * (p >> 1))), 4 * (p & 1));
    const m = i8x16.splat(4);
    c = v128.or(c, s < 2 ? v128.and(i16x8.shl(Ds, 2 - s), m) : s == 2 ? v128.and(Ds, m) : v128.and(i16x8.shr_u(Ds, 1), m));
  }
  return c;
}

// Tile `tile` of type t against tokens tok..tok+3 (activations as kquant_tiles_rows takes them).
// Places: Q4_K/Q5_K 2 groups h × 4 places s × 8 positions p (32-column sub-blocks), the others 4
// groups × 4 places × 4 positions (16-column ones); a code vector's i16 sums are dotted with its
// sub-block's scales after at most the positions the GEMV sums (Q5_K 4, Q6_K 2, Q4_K 8, Q2/Q3_K 4).
// @ts-ignore: decorator
@inline function tileX4(t: i32, w: usize, nb: i32, rows: i32, tile: i32, xq: usize, cols: i32, dx: usize, bs: usize, out: usize, tok: i32): void {
  const rb = tileRecBytes(t);
  const wide = t == Q4_K || t == Q5_K;
  const two = t == Q2_K;
  const six = t == Q6_K;
  const groups = wide ? 2 : 4;
  const perGroup = wide ? 8 : 4;
  const cs = <usize>cols;
  const x0 = xq + <usize>tok * cs;
  const x1 = x0 + cs;
  const x2 = x1 + cs;
  const x3 = x2 + cs;
  const bstride = <usize>(nb * 48);
  const s0 = bs + <usize>tok * bstride;
  const s1 = s0 + bstride;
  const s2 = s1 + bstride;
  const s3 = s2 + bstride;
  const dstride = <usize>(nb << 2);
  const e0 = dx + <usize>tok * dstride;
  // the running sums live in out (a full tile's four rows of each token), not in registers
  const ostride = <usize>rows << 2;
  const o0 = out + <usize>tok * ostride + (<usize>(tile << 2) << 2);
  const o1 = o0 + ostride;
  const o2 = o1 + ostride;
  const o3 = o2 + ostride;
  v128.store(o0, f32x4.splat(0));
  v128.store(o1, f32x4.splat(0));
  v128.store(o2, f32x4.splat(0));
  v128.store(o3, f32x4.splat(0));
  for (let b = 0; b < nb; b++) {
    const rec = w + (<usize>tile * <usize>nb + <usize>b) * rb;
    const xo = <usize>b << 8;
    const so = <usize>(48 * b);
    let d0 = i32x4.splat(0);
    let d1 = i32x4.splat(0);
    let d2 = i32x4.splat(0);
    let d3 = i32x4.splat(0);
    for (let g = 0; g < groups; g++) {
      let S: v128;
      if (wide) S = v128.load(rec + 32 + <usize>(16 * g));
      else {
        const raw = v128.load(rec + (two ? 32 : 16) + <usize>(16 * g));
        S = two ? v128.and(raw, i8x16.splat(0x0f)) : raw;
      }
      // the four places written out, so that every shift and shuffle has a constant operand; four code
      // vectors at a time (Q6_K: two i16 runs of two), each token's pair sums dotted with the scales at
      // once: few values live, so the tokens' sums stay in registers
      {
        const sc = pairsOf(S, 0, !wide && !two);
        for (let u = 0; u < perGroup; u += 4) {
          const p = perGroup * g + u;
          const xs = xo + <usize>(4 * p + 0);
          const c0 = codeVec(t, rec, p, 0);
          const c1 = codeVec(t, rec, p + 1, 0);
          const c2 = codeVec(t, rec, p + 2, 0);
          const c3 = codeVec(t, rec, p + 3, 0);
          if (six) {
            const X0 = v128.load(x0 + xs);
            d0 = i32x4.add(d0, i32x4.add(i32x4.dot_i16x8_s(pd2(X0, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X0, true, c2, c3), sc)));
            const X1 = v128.load(x1 + xs);
            d1 = i32x4.add(d1, i32x4.add(i32x4.dot_i16x8_s(pd2(X1, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X1, true, c2, c3), sc)));
            const X2 = v128.load(x2 + xs);
            d2 = i32x4.add(d2, i32x4.add(i32x4.dot_i16x8_s(pd2(X2, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X2, true, c2, c3), sc)));
            const X3 = v128.load(x3 + xs);
            d3 = i32x4.add(d3, i32x4.add(i32x4.dot_i16x8_s(pd2(X3, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X3, true, c2, c3), sc)));
          } else {
            d0 = i32x4.add(d0, i32x4.dot_i16x8_s(pd4(x0 + xs, c0, c1, c2, c3), sc));
            d1 = i32x4.add(d1, i32x4.dot_i16x8_s(pd4(x1 + xs, c0, c1, c2, c3), sc));
            d2 = i32x4.add(d2, i32x4.dot_i16x8_s(pd4(x2 + xs, c0, c1, c2, c3), sc));
            d3 = i32x4.add(d3, i32x4.dot_i16x8_s(pd4(x3 + xs, c0, c1, c2, c3), sc));
          }
        }
      }
      {
        const sc = pairsOf(S, 1, !wide && !two);
        for (let u = 0; u < perGroup; u += 4) {
          const p = perGroup * g + u;
          const xs = xo + <usize>(4 * p + 64);
          const c0 = codeVec(t, rec, p, 1);
          const c1 = codeVec(t, rec, p + 1, 1);
          const c2 = codeVec(t, rec, p + 2, 1);
          const c3 = codeVec(t, rec, p + 3, 1);
          if (six) {
            const X0 = v128.load(x0 + xs);
            d0 = i32x4.add(d0, i32x4.add(i32x4.dot_i16x8_s(pd2(X0, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X0, true, c2, c3), sc)));
            const X1 = v128.load(x1 + xs);
            d1 = i32x4.add(d1, i32x4.add(i32x4.dot_i16x8_s(pd2(X1, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X1, true, c2, c3), sc)));
            const X2 = v128.load(x2 + xs);
            d2 = i32x4.add(d2, i32x4.add(i32x4.dot_i16x8_s(pd2(X2, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X2, true, c2, c3), sc)));
            const X3 = v128.load(x3 + xs);
            d3 = i32x4.add(d3, i32x4.add(i32x4.dot_i16x8_s(pd2(X3, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X3, true, c2, c3), sc)));
          } else {
            d0 = i32x4.add(d0, i32x4.dot_i16x8_s(pd4(x0 + xs, c0, c1, c2, c3), sc));
            d1 = i32x4.add(d1, i32x4.dot_i16x8_s(pd4(x1 + xs, c0, c1, c2, c3), sc));
            d2 = i32x4.add(d2, i32x4.dot_i16x8_s(pd4(x2 + xs, c0, c1, c2, c3), sc));
            d3 = i32x4.add(d3, i32x4.dot_i16x8_s(pd4(x3 + xs, c0, c1, c2, c3), sc));
          }
        }
      }
      {
        const sc = pairsOf(S, 2, !wide && !two);
        for (let u = 0; u < perGroup; u += 4) {
          const p = perGroup * g + u;
          const xs = xo + <usize>(4 * p + 128);
          const c0 = codeVec(t, rec, p, 2);
          const c1 = codeVec(t, rec, p + 1, 2);
          const c2 = codeVec(t, rec, p + 2, 2);
          const c3 = codeVec(t, rec, p + 3, 2);
          if (six) {
            const X0 = v128.load(x0 + xs);
            d0 = i32x4.add(d0, i32x4.add(i32x4.dot_i16x8_s(pd2(X0, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X0, true, c2, c3), sc)));
            const X1 = v128.load(x1 + xs);
            d1 = i32x4.add(d1, i32x4.add(i32x4.dot_i16x8_s(pd2(X1, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X1, true, c2, c3), sc)));
            const X2 = v128.load(x2 + xs);
            d2 = i32x4.add(d2, i32x4.add(i32x4.dot_i16x8_s(pd2(X2, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X2, true, c2, c3), sc)));
            const X3 = v128.load(x3 + xs);
            d3 = i32x4.add(d3, i32x4.add(i32x4.dot_i16x8_s(pd2(X3, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X3, true, c2, c3), sc)));
          } else {
            d0 = i32x4.add(d0, i32x4.dot_i16x8_s(pd4(x0 + xs, c0, c1, c2, c3), sc));
            d1 = i32x4.add(d1, i32x4.dot_i16x8_s(pd4(x1 + xs, c0, c1, c2, c3), sc));
            d2 = i32x4.add(d2, i32x4.dot_i16x8_s(pd4(x2 + xs, c0, c1, c2, c3), sc));
            d3 = i32x4.add(d3, i32x4.dot_i16x8_s(pd4(x3 + xs, c0, c1, c2, c3), sc));
          }
        }
      }
      {
        const sc = pairsOf(S, 3, !wide && !two);
        for (let u = 0; u < perGroup; u += 4) {
          const p = perGroup * g + u;
          const xs = xo + <usize>(4 * p + 192);
          const c0 = codeVec(t, rec, p, 3);
          const c1 = codeVec(t, rec, p + 1, 3);
          const c2 = codeVec(t, rec, p + 2, 3);
          const c3 = codeVec(t, rec, p + 3, 3);
          if (six) {
            const X0 = v128.load(x0 + xs);
            d0 = i32x4.add(d0, i32x4.add(i32x4.dot_i16x8_s(pd2(X0, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X0, true, c2, c3), sc)));
            const X1 = v128.load(x1 + xs);
            d1 = i32x4.add(d1, i32x4.add(i32x4.dot_i16x8_s(pd2(X1, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X1, true, c2, c3), sc)));
            const X2 = v128.load(x2 + xs);
            d2 = i32x4.add(d2, i32x4.add(i32x4.dot_i16x8_s(pd2(X2, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X2, true, c2, c3), sc)));
            const X3 = v128.load(x3 + xs);
            d3 = i32x4.add(d3, i32x4.add(i32x4.dot_i16x8_s(pd2(X3, false, c0, c1), sc), i32x4.dot_i16x8_s(pd2(X3, true, c2, c3), sc)));
          } else {
            d0 = i32x4.add(d0, i32x4.dot_i16x8_s(pd4(x0 + xs, c0, c1, c2, c3), sc));
            d1 = i32x4.add(d1, i32x4.dot_i16x8_s(pd4(x1 + xs, c0, c1, c2, c3), sc));
            d2 = i32x4.add(d2, i32x4.dot_i16x8_s(pd4(x2 + xs, c0, c1, c2, c3), sc));
            d3 = i32x4.add(d3, i32x4.dot_i16x8_s(pd4(x3 + xs, c0, c1, c2, c3), sc));
          }
        }
      }
    }
    // the mins (Q6_K/Q3_K: the offsets) after the dots, so their sums are live only here
    let n0 = i32x4.splat(0);
    let n1 = i32x4.splat(0);
    let n2 = i32x4.splat(0);
    let n3 = i32x4.splat(0);
    for (let g = 0; g < groups; g++) {
      let M: v128;
      if (wide) M = v128.load(rec + 64 + <usize>(16 * g));
      else {
        const raw = v128.load(rec + (two ? 32 : 16) + <usize>(16 * g));
        M = two ? v128.and(i16x8.shr_u(raw, 4), i8x16.splat(0x0f)) : raw;
      }
      const mp0 = minPairs(M, 0, !wide && !two);
      const mp2 = minPairs(M, 2, !wide && !two);
      // activation sums: per 32 columns from byte 32 (wide), per 16 from byte 0
      const mo = so + (wide ? 32 : 0) + <usize>(8 * g);
      n0 = i32x4.add(n0, i32x4.add(i32x4.dot_i16x8_s(mp0, v128.load32_splat(s0 + mo)), i32x4.dot_i16x8_s(mp2, v128.load32_splat(s0 + mo + 4))));
      n1 = i32x4.add(n1, i32x4.add(i32x4.dot_i16x8_s(mp0, v128.load32_splat(s1 + mo)), i32x4.dot_i16x8_s(mp2, v128.load32_splat(s1 + mo + 4))));
      n2 = i32x4.add(n2, i32x4.add(i32x4.dot_i16x8_s(mp0, v128.load32_splat(s2 + mo)), i32x4.dot_i16x8_s(mp2, v128.load32_splat(s2 + mo + 4))));
      n3 = i32x4.add(n3, i32x4.add(i32x4.dot_i16x8_s(mp0, v128.load32_splat(s3 + mo)), i32x4.dot_i16x8_s(mp2, v128.load32_splat(s3 + mo + 4))));
    }
    const d = v128.load(rec);
    // the GEMV's f32 steps, in its order: d·dots − dmin·mins, then the running sum += part·dx
    const dm = wide || two ? v128.load(rec, 16) : f32x4.mul(d, f32x4.splat(six ? 32 : 4));
    const e = e0 + (<usize>b << 2);
    v128.store(o0, f32x4.add(v128.load(o0), f32x4.mul(f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(d0)), f32x4.mul(dm, f32x4.convert_i32x4_s(n0))), f32x4.splat(load<f32>(e)))));
    v128.store(o1, f32x4.add(v128.load(o1), f32x4.mul(f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(d1)), f32x4.mul(dm, f32x4.convert_i32x4_s(n1))), f32x4.splat(load<f32>(e + dstride)))));
    v128.store(o2, f32x4.add(v128.load(o2), f32x4.mul(f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(d2)), f32x4.mul(dm, f32x4.convert_i32x4_s(n2))), f32x4.splat(load<f32>(e + 2 * dstride)))));
    v128.store(o3, f32x4.add(v128.load(o3), f32x4.mul(f32x4.sub(f32x4.mul(d, f32x4.convert_i32x4_s(d3)), f32x4.mul(dm, f32x4.convert_i32x4_s(n3))), f32x4.splat(load<f32>(e + 3 * dstride)))));
  }
}

// Tiles t0..t1 against tokens 0..quads·4 (tile-major, so a tile's records stay in cache across the
// token quads); one function per type, as tilesQ4K … tilesQ2K.
// @ts-ignore: decorator
@inline function gemmOf(t: i32, w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  for (let tile = t0; tile < t1; tile++) for (let q = 0; q < quads; q++) tileX4(t, w, nb, rows, tile, xq, cols, dx, bs, out, q << 2);
}
function gemmQ4K(w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  gemmOf(Q4_K, w, nb, rows, cols, xq, dx, bs, quads, out, t0, t1);
}
function gemmQ5K(w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  gemmOf(Q5_K, w, nb, rows, cols, xq, dx, bs, quads, out, t0, t1);
}
function gemmQ6K(w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  gemmOf(Q6_K, w, nb, rows, cols, xq, dx, bs, quads, out, t0, t1);
}
function gemmQ3K(w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  gemmOf(Q3_K, w, nb, rows, cols, xq, dx, bs, quads, out, t0, t1);
}
function gemmQ2K(w: usize, nb: i32, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, quads: i32, out: usize, t0: i32, t1: i32): void {
  gemmOf(Q2_K, w, nb, rows, cols, xq, dx, bs, quads, out, t0, t1);
}

// gemv_kquant_tiles for `batch` tokens quantized by quantize_act_q8k back to back (xq: cols bytes, dx:
// cols/64 bytes, bs: cols·3/16 bytes per token; out: rows f32 per token), over rows r0..r1: the thread
// pool's row-kernel form (its chunks are whole 4-row tiles, so r0 is a multiple of four). Tokens go
// four at a time through the batched kernel (each full tile unpacked once per four tokens), the
// last batch % 4 and a partial last tile one at a time through the GEMV; the results are the GEMV's bit for bit either way.
export function kquant_tiles_rows(t: i32, w: usize, rows: i32, cols: i32, xq: usize, dx: usize, bs: usize, batch: i32, out: usize, r0: i32, r1: i32): void {
  if (!ASC_FEATURE_SIMD) return;
  const nb = cols >> 8;
  const t0 = r0 >> 2;
  const t1 = (r1 + 3) >> 2;
  const quads = batch >> 2;
  // the batched kernel keeps its running sums in out, so it takes only full tiles
  const tf = min(t1, rows >> 2);
  if (quads > 0 && t0 < tf) {
    if (t == Q4_K) gemmQ4K(w, nb, rows, cols, xq, dx, bs, quads, out, t0, tf);
    else if (t == Q6_K) gemmQ6K(w, nb, rows, cols, xq, dx, bs, quads, out, t0, tf);
    else if (t == Q5_K) gemmQ5K(w, nb, rows, cols, xq, dx, bs, quads, out, t0, tf);
    else if (t == Q3_K) gemmQ3K(w, nb, rows, cols, xq, dx, bs, quads, out, t0, tf);
    else gemmQ2K(w, nb, rows, cols, xq, dx, bs, quads, out, t0, tf);
  }
  for (let b = 0; b < batch; b++) {
    // tokens past the last four: every tile; the others: the partial last tile, if any
    const from = b < quads << 2 ? max(t0, tf) : t0;
    if (from < t1) gemv_kquant_tiles(t, w, rows, cols, xq + <usize>b * <usize>cols, dx + <usize>(b * nb * 4), bs + <usize>(b * nb * 48), out + <usize>b * (<usize>rows << 2), from, t1);
  }
}
