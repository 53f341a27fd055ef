// Plain-TypeScript references. They define what every WASM kernel computes; tests hold the WASM
// builds to them. Float sums here run in f64 (the exact value, up to f64 rounding); the integer
// kernels reproduce the WASM's f32 activation quantization exactly via Math.fround.

import { GGML_BLOCK_BYTES, type GgmlBlockType } from './ggml-blocks.js';
import { f16ToF32, roundEven, roundToF16 } from './half.js';

// the conversions and the block table live in leaf modules; re-exported for reference.* users
export { GGML_BLOCK_BYTES, type GgmlBlockType, f16ToF32, roundEven, roundToF16 };

const fr = Math.fround;

export function dotF32(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function axpyF32(alpha: number, x: Float32Array, y: Float32Array): void {
  for (let i = 0; i < x.length; i++) y[i] = fr(y[i] + fr(fr(alpha) * x[i]));
}

/** out[b, r] = Σc w[r, c]·x[b, c]; w row-major [rows, cols], x [batch, cols], out [batch, rows]. */
export function matmulF32(w: Float32Array, rows: number, cols: number, x: Float32Array, batch = 1): Float32Array {
  const out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[b * cols + c];
      out[b * rows + r] = s;
    }
  }
  return out;
}

export function gemvF32(w: Float32Array, rows: number, cols: number, x: Float32Array): Float32Array {
  return matmulF32(w, rows, cols, x, 1);
}

export function dotI8(a: Int8Array, b: Int8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** int8 codes of one span with scale amax/127 (f32 arithmetic, as the kernel). null on NaN/Inf. */
export function quantizeSpan(x: Float32Array, start: number, n: number): { d: number; codes: Int8Array; sum: number } | null {
  const amax = finiteAbsMax(x, start, n);
  if (amax === null) return null;
  const d = fr(amax / 127);
  return { d, ...spanCodes(x, start, n, d !== 0 ? fr(1 / d) : 0) };
}

/** max |x| over the span, or null if it holds NaN/Inf. */
function finiteAbsMax(x: Float32Array, start: number, n: number): number | null {
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const v = x[start + i];
    if (!Number.isFinite(v)) return null;
    amax = Math.max(amax, Math.abs(v));
  }
  return amax;
}

/** Codes round-to-even(x·id) in f32 and their sum. */
function spanCodes(x: Float32Array, start: number, n: number, id: number): { codes: Int8Array; sum: number } {
  const codes = new Int8Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    codes[i] = roundEven(fr(x[start + i] * id));
    sum += codes[i];
  }
  return { codes, sum };
}

/**
 * int8 codes of one 32-value span as llama.cpp quantizes activations for its ggml dots
 * (quantize_row_q8_0, AVX path): codes round(x·(127/amax)) in f32, scale amax/127 rounded to f16.
 */
export function quantizeSpanGgml(x: Float32Array, start: number, n: number): { d: number; codes: Int8Array; sum: number } | null {
  const amax = finiteAbsMax(x, start, n);
  if (amax === null) return null;
  return { d: roundToF16(fr(amax / 127)), ...spanCodes(x, start, n, amax !== 0 ? fr(127 / amax) : 0) };
}

/**
 * int4 group GEMV (int-k packing, see CONTRIBUTING.md): w[r,c] = scale[r,g]·(u − zero[r,g]), zero 8
 * when `zeros` is null. Activations are quantized to int8 per group (scale amax/127, round to even),
 * exactly as the kernel does, then the sum runs in f64.
 */
export function matmulQ4(
  packed: Uint8Array, scales: Float32Array, zeros: Float32Array | null,
  rows: number, cols: number, group: number, x: Float32Array, batch = 1,
): Float32Array {
  const rowBytes = Math.ceil(cols / 2);
  const ngroups = Math.ceil(cols / group);
  const out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    const q = [] as { d: number; codes: Int8Array; sum: number }[];
    for (let g = 0; g < ngroups; g++) {
      const s = quantizeSpan(x, b * cols + g * group, Math.min(group, cols - g * group));
      if (!s) throw new Error('non-finite activation');
      q.push(s);
    }
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let g = 0; g < ngroups; g++) {
        const { d, codes, sum } = q[g];
        const f = fr(scales[r * ngroups + g] * d);
        const z = zeros ? zeros[r * ngroups + g] : 8;
        let dot = 0;
        for (let i = 0; i < codes.length; i++) {
          const c = g * group + i;
          const byte = packed[r * rowBytes + (c >> 1)];
          dot += ((c & 1) ? byte >> 4 : byte & 15) * codes[i];
        }
        acc += f * dot - f * z * sum;
      }
      out[b * rows + r] = acc;
    }
  }
  return out;
}

export function gemvQ4(
  packed: Uint8Array, scales: Float32Array, zeros: Float32Array | null,
  rows: number, cols: number, group: number, x: Float32Array,
): Float32Array {
  return matmulQ4(packed, scales, zeros, rows, cols, group, x, 1);
}

/** Dequantized value j (0..31) of a ggml block starting at `o` (llama.cpp's dequantize_row_*). */
function ggmlWeight(type: GgmlBlockType, blocks: Uint8Array, view: DataView, o: number, j: number): { d: number; m: number; u: number } {
  const d = f16ToF32(view.getUint16(o, true));
  if (type === 'q8_0') return { d, m: 0, u: (blocks[o + 2 + j] << 24) >> 24 };
  const qo = type === 'q4_1' ? 4 : 2;
  const byte = blocks[o + qo + (j & 15)];
  const u = j < 16 ? byte & 15 : byte >> 4;
  if (type === 'q4_0') return { d, m: 0, u: u - 8 };
  return { d, m: f16ToF32(view.getUint16(o + 2, true)), u };
}

/**
 * ggml block matmul with llama.cpp's int8 activations per 32 values (quantizeSpanGgml):
 * out[b, r] = Σ_blocks d·xs·Σ u·xq (+ m·xs·Σ xq for q4_1).
 */
export function matmulGgml(type: GgmlBlockType, blocks: Uint8Array, rows: number, cols: number, x: Float32Array, batch = 1): Float32Array {
  const nblk = cols / 32;
  const bsize = GGML_BLOCK_BYTES[type];
  const view = new DataView(blocks.buffer, blocks.byteOffset, blocks.byteLength);
  const out = new Float32Array(batch * rows);
  for (let b = 0; b < batch; b++) {
    const q = [] as { d: number; codes: Int8Array; sum: number }[];
    for (let k = 0; k < nblk; k++) {
      const s = quantizeSpanGgml(x, b * cols + k * 32, 32);
      if (!s) throw new Error('non-finite activation');
      q.push(s);
    }
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let k = 0; k < nblk; k++) {
        const o = (r * nblk + k) * bsize;
        const { d: xd, codes, sum } = q[k];
        let dot = 0;
        let d = 0;
        let m = 0;
        for (let j = 0; j < 32; j++) {
          const wv = ggmlWeight(type, blocks, view, o, j);
          d = wv.d;
          m = wv.m;
          dot += wv.u * codes[j];
        }
        acc += fr(d * xd) * dot + (type === 'q4_1' ? fr(m * xd) * sum : 0);
      }
      out[b * rows + r] = acc;
    }
  }
  return out;
}

/**
 * Causal grouped-query attention of n tokens at positions pos..pos+n−1 (the kernels' `attention`):
 * keys/values are [≥ pos+n, nKvHeads·headDim] (this layer's cache, new tokens already stored), q and
 * the result [n, nHeads·headDim]; head h reads kv head h / (nHeads / nKvHeads); scores q·k·scale,
 * softmax over positions 0..pos+t. f32 rounding per step as the kernel's scalar build (its SIMD
 * builds sum the dots in another order: equal to ~1e-6 relative).
 */
export function attentionF32(q: Float32Array, keys: Float32Array, values: Float32Array, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number): Float32Array {
  const dim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(n * dim);
  const att = new Float32Array(pos + n);
  const sc = fr(scale);
  for (let h = 0; h < nHeads; h++) {
    const kvo = Math.floor(h / group) * headDim;
    for (let t = 0; t < n; t++) {
      const npos = pos + t + 1;
      const qo = t * dim + h * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let p = 0; p < npos; p++) {
        let s = 0;
        for (let i = 0; i < headDim; i++) s = fr(s + fr(q[qo + i] * keys[p * kvDim + kvo + i]));
        att[p] = fr(s * sc);
        max = Math.max(max, att[p]);
      }
      let sum = 0;
      for (let p = 0; p < npos; p++) {
        att[p] = fr(Math.exp(fr(att[p] - max)));
        sum = fr(sum + att[p]);
      }
      const inv = fr(1 / sum);
      for (let p = 0; p < npos; p++) {
        const a = fr(att[p] * inv);
        for (let i = 0; i < headDim; i++) out[qo + i] = fr(out[qo + i] + fr(a * values[p * kvDim + kvo + i]));
      }
    }
  }
  return out;
}

/**
 * `attentionF32` where head h sees only its last spans[h] positions (the kernels' `attentionSpan`):
 * position pos + t attends to max(0, pos + t + 1 − spans[h])..pos + t. f32 rounding as attentionF32.
 */
export function attentionSpanF32(q: Float32Array, keys: Float32Array, values: Float32Array, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number, spans: Int32Array): Float32Array {
  const dim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(n * dim);
  const att = new Float32Array(pos + n);
  const sc = fr(scale);
  for (let h = 0; h < nHeads; h++) {
    const kvo = Math.floor(h / group) * headDim;
    for (let t = 0; t < n; t++) {
      const end = pos + t + 1;
      const lo = Math.max(0, end - spans[h]);
      const qo = t * dim + h * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let p = lo; p < end; p++) {
        let s = 0;
        for (let i = 0; i < headDim; i++) s = fr(s + fr(q[qo + i] * keys[p * kvDim + kvo + i]));
        att[p] = fr(s * sc);
        max = Math.max(max, att[p]);
      }
      let sum = 0;
      for (let p = lo; p < end; p++) {
        att[p] = fr(Math.exp(fr(att[p] - max)));
        sum = fr(sum + att[p]);
      }
      const inv = fr(1 / sum);
      for (let p = lo; p < end; p++) {
        const a = fr(att[p] * inv);
        for (let i = 0; i < headDim; i++) out[qo + i] = fr(out[qo + i] + fr(a * values[p * kvDim + kvo + i]));
      }
    }
  }
  return out;
}

/**
 * `attentionF32` over int8 codes with one scale per position and kv head (the kernels'
 * `attentionQ8`): score = (Σ q_i·c_i)·s_p·scale, out = Σ a_p·s_p·c_p, f32 rounding per step.
 */
export function attentionQ8(q: Float32Array, keys: Int8Array, keyScales: Float32Array, values: Int8Array, valueScales: Float32Array, pos: number, n: number, nHeads: number, nKvHeads: number, headDim: number, scale: number): Float32Array {
  const dim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const out = new Float32Array(n * dim);
  const att = new Float32Array(pos + n);
  const sc = fr(scale);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    const kvo = g * headDim;
    for (let t = 0; t < n; t++) {
      const npos = pos + t + 1;
      const qo = t * dim + h * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let p = 0; p < npos; p++) {
        let s = 0;
        for (let i = 0; i < headDim; i++) s = fr(s + fr(q[qo + i] * keys[p * kvDim + kvo + i]));
        att[p] = fr(fr(s * keyScales[p * nKvHeads + g]) * sc);
        max = Math.max(max, att[p]);
      }
      let sum = 0;
      for (let p = 0; p < npos; p++) {
        att[p] = fr(Math.exp(fr(att[p] - max)));
        sum = fr(sum + att[p]);
      }
      const inv = fr(1 / sum);
      for (let p = 0; p < npos; p++) {
        const a = fr(fr(att[p] * inv) * valueScales[p * nKvHeads + g]);
        for (let i = 0; i < headDim; i++) out[qo + i] = fr(out[qo + i] + fr(a * values[p * kvDim + kvo + i]));
      }
    }
  }
  return out;
}

/** SwiGLU's gating, in place: u[i] = u[i]·g[i]/(1 + e^−g[i]) (the kernels' siluMul). Returns u. */
export function siluMul(g: Float32Array, u: Float32Array): Float32Array {
  for (let i = 0; i < u.length; i++) u[i] *= g[i] / (1 + Math.exp(-g[i]));
  return u;
}
