// Entry of the lowbit kernel module. Memory is owned by the JS allocator above __heap_base:
// kernels only read and write the byte ranges they are handed.
export { dot_f32, axpy_f32, matmul_f32 } from './f32';
export { dot_i8 } from './int8';
export { quantize_act_groups, quantize_act_q8 } from './act-quant';
export { matmul_q4, quantize_act_int4 } from './q4';
export { matmul_ggml } from './ggml';
export { matmul_ggml_tiled, prepare_ggml, unprepare_ggml, ggml_tiled_bytes, act_splats } from './ggml-tiled';

export function heap_base(): usize {
  return __heap_base;
}

// A one-instruction probe: the JS loader runs it on the very first call of a fresh instance
// and after warm-up, and drops the relaxed build if the two answers differ.
export function probe_relaxed_dot(a: usize, b: usize, c: usize, out: usize): void {
  if (ASC_FEATURE_RELAXED_SIMD) {
    v128.store(out, i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(a), v128.load(b), v128.load(c)));
  } else {
    // Same arithmetic without relaxed SIMD: lane i = c[i] + Σ_{j<4} a[4i+j]·b[4i+j].
    for (let i = 0; i < 4; i++) {
      let s = load<i32>(c + (<usize>i << 2));
      for (let j = 0; j < 4; j++) s += <i32>load<i8>(a + <usize>(4 * i + j)) * <i32>load<i8>(b + <usize>(4 * i + j));
      store<i32>(out + (<usize>i << 2), s);
    }
  }
}

// memory.copy of n bytes: the bandwidth ceiling the benchmark compares the streaming kernels to.
export function copy_bytes(dst: usize, src: usize, n: usize): void {
  memory.copy(dst, src, n);
}

// Reads n bytes (a multiple of 64) and returns a sum of them as i32 lanes: a decode GEMV only reads
// its weights, and one core reads faster than it copies (a copy also writes every byte), so this is
// the streaming kernels' ceiling. Four independent sums keep many loads in flight.
export function read_bytes(src: usize, n: usize): i32 {
  if (ASC_FEATURE_SIMD) {
    let a = i32x4.splat(0);
    let b = i32x4.splat(0);
    let c = i32x4.splat(0);
    let d = i32x4.splat(0);
    for (let p = src; p < src + n; p += 64) {
      a = i32x4.add(a, v128.load(p));
      b = i32x4.add(b, v128.load(p, 16));
      c = i32x4.add(c, v128.load(p, 32));
      d = i32x4.add(d, v128.load(p, 48));
    }
    const s = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
    return i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
  }
  let s: u32 = 0;
  for (let p = src; p < src + n; p += 4) s += load<u32>(p);
  return <i32>s;
}
export { decode_lut, dequant_int_groups, dequant_mx } from './formats-decode';
export { gemv_lut_groups } from './formats-gemv';
export { dequant_lut_groups, dequant_bcq } from './formats-lut-decode';
export { int_group_params, encode_int_groups, quantize_mx, quantize_absmax_lut } from './formats-encode';
export { attention_block_bytes, attention_f32 } from './attention';
export { silu_mul_f32 } from './elementwise';
export { matmul_ggml_tiled_multi } from './ggml-tiled';
export { flexor_decode } from './flexor';
export { fcq_decode, rans_decode_u8 } from './fcq';
export { gemv_anyprec } from './anyprec';
export { attention_span_f32 } from './attention-span';
export { dpred_decode } from './dpred';
export { seqenc_plane, seqenc_values, unpack_bits } from './seqenc';
export { attention_q8 } from './attention-q8';
export { gemv_kquant, gemv_kquant_q8, prepare_kquant, prepare_kquant_ref, unprepare_kquant, quantize_act_q8k, gemv_kquant_tiles, kquant_tiles_bytes, kquant_tiles_rows } from './kquants';
export { attn_train_fwd_f32, attn_train_bwd_f32, swiglu_fwd_f32, swiglu_bwd_f32, xent_fwd_f32 } from './grad';
export { gemv_mx_fp8 } from './mx-fp8';
export { gemm_act_pairs, matmul_ggml_gemm, matmul_ggml_gemm_multi } from './ggml-gemm';
export { lut4_quantize, lut4_rows, lut4_scratch_bytes, lut4_simd, bcq_biq_gemv } from './lut-gemv';
export { anyprec_fast_rows, anyprec_fast_simd } from './anyprec-fast';
