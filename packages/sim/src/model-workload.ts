// A model @lowbit/runtime loads, as a sim workload: every linear layer becomes a GEMM over `seq` tokens,
// weight codes come from the tensor's own storage format (the integers the hardware would multiply),
// and activations are the real inputs of each linear layer, captured while the runtime runs the
// calibration text, quantized per layer to `actBits` bits.
import { LowbitError } from '@lowbit/core';
import { GGML_BLOCK_BYTES, GGML_Q5_BLOCK_BYTES } from '@lowbit/kernels';
import { type LinearWeight, type DecoderModel, Session, q5Codes } from '@lowbit/runtime';
import type { GemmLayer } from './layers.js';
import type { GemmTensors } from './tensor-models.js';
import { detectedBits, isSignedTensor } from './terms.js';

export interface WeightCodes {
  codes: Int16Array;
  /** Bits of the stored code (8 for Q8_0, 4 for Q4_*, k for INT-k). */
  bits: number;
}

/** The per-element integer codes of a quantized weight; null for f32 weights (no codes). */
export function weightCodes(name: string, w: LinearWeight): WeightCodes | null {
  const [rows, cols] = w.shape;
  const out = new Int16Array(rows * cols);
  switch (w.format) {
    case 'f32':
      return null;
    case 'q8_0': {
      // llama.cpp block_q8_0: f16 d, then 32 int8 codes
      const need = (rows * cols / 32) * GGML_BLOCK_BYTES.q8_0;
      if (w.data.length !== need) throw new LowbitError('E_SHAPE', `${name}: ${w.data.length} bytes of q8_0 for [${rows}, ${cols}] (expected ${need})`);
      for (let i = 0, o = 0; o < out.length; i += GGML_BLOCK_BYTES.q8_0) for (let j = 0; j < 32; j++) out[o++] = (w.data[i + 2 + j] << 24) >> 24;
      return { codes: out, bits: 8 };
    }
    case 'q4_0':
    case 'q4_1': {
      // block_q4_0 {f16 d; u8 qs[16]}, block_q4_1 {f16 d; f16 m; u8 qs[16]}: byte j holds element j (low) and j+16 (high)
      const size = GGML_BLOCK_BYTES[w.format];
      const head = size - 16;
      const need = (rows * cols / 32) * size;
      if (w.data.length !== need) throw new LowbitError('E_SHAPE', `${name}: ${w.data.length} bytes of ${w.format} for [${rows}, ${cols}] (expected ${need})`);
      // q4_0 is symmetric around 8; q4_1's codes are unsigned with a per-block minimum added outside the MACs
      const zero = w.format === 'q4_0' ? 8 : 0;
      for (let i = 0, o = 0; o < out.length; i += size, o += 32) {
        for (let j = 0; j < 16; j++) {
          const b = w.data[i + head + j];
          out[o + j] = (b & 15) - zero;
          out[o + j + 16] = (b >> 4) - zero;
        }
      }
      return { codes: out, bits: 4 };
    }
    case 'q5_0':
    case 'q5_1': {
      // block_q5_0 {f16 d; u8 qh[4]; u8 qs[16]}, block_q5_1 {f16 d, m; u8 qh[4]; u8 qs[16]}: 5-bit codes
      // after the scale(s); Q5_0's are symmetric around 16, Q5_1's unsigned with m added outside the MACs
      const size = GGML_Q5_BLOCK_BYTES[w.format];
      const need = (rows * cols / 32) * size;
      if (w.data.length !== need) throw new LowbitError('E_SHAPE', `${name}: ${w.data.length} bytes of ${w.format} for [${rows}, ${cols}] (expected ${need})`);
      const zero = w.format === 'q5_0' ? 16 : 0;
      const q = new Uint8Array(32);
      for (let i = 0, o = 0; o < out.length; i += size, o += 32) {
        q5Codes(w.data, i + size - 20, i + size - 16, q);
        for (let j = 0; j < 32; j++) out[o + j] = q[j] - zero;
      }
      return { codes: out, bits: 5 };
    }
    case 'iq4_nl':
      throw new LowbitError('E_UNSUPPORTED', `${name}: IQ4_NL codes are table indices, not integers a bit-serial MAC multiplies; sim models INT-k, Q8_0, Q4_* and Q5_* weights`);
    case 'int4': {
      const rowBytes = Math.ceil(cols / 2);
      if (w.packed.length !== rows * rowBytes) throw new LowbitError('E_SHAPE', `${name}: ${w.packed.length} bytes of int4 codes for [${rows}, ${cols}]`);
      const zero = w.zeros ? 0 : 8;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = ((w.packed[r * rowBytes + (c >> 1)] >> ((c & 1) * 4)) & 15) - zero;
      return { codes: out, bits: 4 };
    }
    case 'mxfp4': // the codes its Q8_0 form multiplies (2·fp4)
      return weightCodes(name, w.fallback);
    case 'kquant':
      // K-quant codes are scaled twice (6-bit sub-block scales times an f16 super-scale) and some carry a
      // per-sub-block minimum: which integers a bit-serial MAC would see depends on a mapping no paper gives
      throw new LowbitError('E_UNSUPPORTED', `${name}: ${w.type} K-quant weights are not modelled; re-quantize with --format q4_0, q8_0 or int-k to simulate`);
    case 'lut4':
    case 'nf4':
      throw new LowbitError('E_UNSUPPORTED', `${name}: lut4 codes (NF4, codebook, BCQ) are table indices, not integers a bit-serial MAC multiplies; sim models INT-k, Q8_0 and Q4_* weights`);
    case 'any-precision':
      throw new LowbitError('E_UNSUPPORTED', `${name}: any-precision codes are table indices, not integers a bit-serial MAC multiplies; sim models INT-k, Q8_0 and Q4_* weights`);
    case 'packed': {
      const t = w.tensor as { kind?: string; bits?: number; symmetric?: boolean; codes?: Uint8Array };
      if (t.kind !== 'int' || !t.codes || !t.bits) {
        throw new LowbitError('E_UNSUPPORTED', `${name}: ${t.kind ?? 'packed'} codes are table indices, not integers a bit-serial MAC multiplies; sim models INT-k, Q8_0 and Q4_* weights`);
      }
      const bits = t.bits;
      if (bits > 16) throw new LowbitError('E_UNSUPPORTED', `${name}: ${bits}-bit codes exceed the 16-bit datapath`);
      const rowBytes = Math.ceil((cols * bits) / 8);
      if (t.codes.length < rows * rowBytes) throw new LowbitError('E_SHAPE', `${name}: ${t.codes.length} bytes of ${bits}-bit codes for [${rows}, ${cols}]`);
      const zero = t.symmetric ? 1 << (bits - 1) : 0;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const bit = c * bits;
          let u = 0;
          for (let k = 0; k < bits; k++) {
            const at = r * rowBytes + ((bit + k) >> 3);
            u |= ((t.codes[at] >> ((bit + k) & 7)) & 1) << k;
          }
          out[r * cols + c] = u - zero;
        }
      }
      return { codes: out, bits };
    }
  }
}

/** Symmetric per-layer quantization of captured activations to `bits` bits (scale from the largest |x|). */
export function quantizeActivations(x: Float32Array, bits: number): Int16Array {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) throw new LowbitError('E_ARG', `activation bits must be an integer in 2..16, got ${bits}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  const q = (1 << (bits - 1)) - 1;
  const out = new Int16Array(x.length);
  if (m === 0) return out;
  const s = m / q;
  for (let i = 0; i < x.length; i++) out[i] = Math.max(-q, Math.min(q, Math.round(x[i] / s)));
  return out;
}

/** The precision a layer's codes actually use: the widest detectedBits (two's-complement width on a signed tensor). */
export function measuredPrecision(codes: ArrayLike<number>): number {
  const signed = isSignedTensor(codes);
  let m = 1;
  for (let i = 0; i < codes.length; i++) m = Math.max(m, detectedBits(codes[i], signed));
  return m;
}

export interface ModelWorkload {
  model: string;
  seq: number;
  layers: GemmLayer[];
  /** Captured inputs per layer name, [seq, cols] f32. */
  inputs: Map<string, Float32Array>;
  /** The stored weight precision of layer i, or null for f32 weights. */
  weightBits(i: number): number | null;
  /** Builds the integer tensors of layer i (weights decoded now: one layer's codes in memory at a time). */
  tensors(i: number, actBits: number): GemmTensors & { quantized: boolean };
}

/**
 * Runs the model on the first `seq` tokens of `text` and keeps every linear layer's input. The LM head
 * (output.weight) is left out unless asked for: on a 1B-class model it is a vocabulary-sized GEMM that
 * would dominate both the capture and the simulation.
 */
export function modelWorkload(model: DecoderModel, text: string, options: { seq?: number; includeOutput?: boolean } = {}): ModelWorkload {
  const seqWanted = options.seq ?? 256;
  if (!Number.isInteger(seqWanted) || seqWanted < 1) throw new LowbitError('E_ARG', `--seq must be a positive integer, got ${seqWanted}`);
  const tokens = model.tokenizer.encode(text, { bos: true }).slice(0, Math.min(seqWanted, model.config.contextLength));
  if (tokens.length < 2) throw new LowbitError('E_ARG', `${model.name}: the calibration text gives ${tokens.length} tokens; need at least 2`);
  const seq = tokens.length;
  const linears = model.linears().filter((l) => options.includeOutput || l.name !== 'output.weight');
  const wanted = new Set(linears.map((l) => l.name));
  const inputs = new Map<string, Float32Array>();
  const session = new Session(model, {
    ctx: seq,
    onLinearInput: (name, x, batch, cols) => {
      if (wanted.has(name) && batch === seq) inputs.set(name, x.slice(0, batch * cols));
    },
  });
  try {
    session.forward(tokens, { logits: 'last' });
  } finally {
    session.free();
  }
  const layers: GemmLayer[] = linears.map((l) => ({ type: 'gemm', name: l.name, inC: l.cols, outC: l.rows, rows: seq }));
  for (const l of layers) if (!inputs.has(l.name)) throw new LowbitError('E_MISSING', `${model.name}: no input was captured for ${l.name}`);
  return {
    model: model.name, seq, layers, inputs,
    weightBits(i) {
      // the stored tensor, not the kernel form it runs as: an INT2 layer repacked onto Q4_0 tiles is 2-bit
      const w = linears[i].source;
      if (w.format === 'f32') return null;
      if (w.format === 'q8_0') return 8;
      if (w.format !== 'packed') return 4;
      const t = w.tensor as { kind?: string; bits?: number };
      return t.kind === 'int' && t.bits ? t.bits : 4;
    },
    tensors(i, actBits) {
      const l = layers[i];
      const w = weightCodes(l.name, linears[i].source);
      const acts = quantizeActivations(inputs.get(l.name)!, actBits);
      if (!w) return { layer: l, weights: new Int16Array(0), wgtBits: 16, acts, actBits: measuredPrecision(acts), quantized: false };
      return { layer: l, weights: w.codes, wgtBits: w.bits, acts, actBits: measuredPrecision(acts), quantized: true };
    },
  };
}
