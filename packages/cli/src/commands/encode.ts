import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import {
  decodeDpredWasm, decodeFcqWasm, decodeSeqencWasm, dequantizeBcq, dequantizeDpred, dequantizeFcq, dequantizeFlexor, dequantizeFlexorWasm, dequantizeInt, deserializeDpred,
  deserializeFcq, deserializeFlexor, dpredEntropyBits, dpredStreamBits, entropyBits, fcqStats, flexorStoredEntropy, intBitsPerWeight, quantizeBcq, quantizeDpred,
  quantizeFcq, quantizeFlexor, quantizeInt, serializeDpred, serializeFcq, serializeFlexor,
  dequantizeSeqenc, deserializeSeqenc, quantizeSeqenc, seqencPlaneBits, seqencStats, serializeSeqenc,
} from '@lowbit/formats';
import { loadKernels } from '@lowbit/kernels';
import { f32Weights } from '@lowbit/quantizers';
import { LowbitError, loadModel, npyMatrix, readNpy, writeFileAtomic } from '@lowbit/runtime';
import { defineCommand, UsageError } from '../command.js';
import { checkInputFile, checkOutputFile } from '../paths.js';

const METHODS = ['fcq', 'flexor', 'dpred', 'seqenc'] as const;
type Method = (typeof METHODS)[number];

interface Tensor {
  name: string;
  data: Float32Array;
  shape: [number, number];
}

interface Encoded {
  bytes: Uint8Array;
  decoded: Float32Array;
  decodedWasm?: Float32Array;
  encodeSeconds: number;
  decodeSeconds: number;
  decodeSecondsWasm?: number;
  /** Method-specific figures, summed over tensors (divided by the element count at the end). */
  sums: Record<string, number>;
}

const now = () => performance.now() / 1000;

export const encodeCommand = defineCommand({
  name: 'encode',
  summary: 'compress weights with an encoding below the nominal bit-width (FCQ: Fibonacci codewords + rANS; FleXOR: XOR-network binary codes; DPRed: per-group dynamic precision; seqenc: sequential XOR encryption of pruned weights) and report bits/weight, error and the entropy bound',
  arguments: [
    { name: 'method', description: `the encoding: ${METHODS.join(', ')}` },
    { name: 'model.gguf', optional: true, description: 'a GGUF file (default: the embedded stories260K model); ignored with --weights' },
  ],
  options: {
    weights: { type: 'string', placeholder: 'W.npy', description: 'encode this f32/f64 .npy matrix instead of model tensors' },
    tensor: { type: 'string', placeholder: 'name', defaultText: 'every linear layer', description: 'one GGUF linear layer, e.g. blk.0.ffn_up.weight' },
    bits: { type: 'integer', min: 2, max: 15, defaultText: '4 (fcq, seqenc), 8 (dpred)', description: 'FCQ codeword width k (F(k+2) levels, at most 8); DPRed/seqenc INT-k codes of float weights' },
    sparsity: { type: 'number', min: 0, max: 1, defaultText: '0.7, or none for input that already has zeros (values then kept exactly)', description: 'seqenc: fraction pruned by magnitude' },
    'n-s': { type: 'integer', min: 0, max: 4, default: 2, description: 'seqenc: previous steps of inputs in the shift register (states 2^(n-s·n-in), at most 2^16)' },
    group: { type: 'integer', min: 1, max: 65535, default: 16, description: 'DPRed values per precision group (16 or 256 in the paper)' },
    scale: { type: 'string', choices: ['tensor', 'row'], default: 'tensor', description: 'DPRed INT-k scale of float input: one per tensor (fixed point per layer, as DPRed) or per row' },
    levels: { type: 'string', choices: ['kmeans', 'uniform'], default: 'kmeans', description: 'FCQ levels: optimal 1-D k-means or a uniform min-max grid' },
    'n-in': { type: 'integer', min: 1, max: 32, defaultText: '12 (flexor), 4 (seqenc)', description: 'FleXOR stored bits per slice; seqenc input bits per step (at most 8)' },
    'n-out': { type: 'integer', min: 1, max: 32, defaultText: '16 (flexor), n-in / (1 − sparsity) up to 32 (seqenc)', description: 'FleXOR reconstructed bits per slice (bits/weight ≈ n-in / n-out); seqenc output bits per step' },
    seed: { type: 'integer', min: 0, default: 1, description: 'FleXOR network seed' },
    out: { type: 'string', short: 'o', placeholder: 'file', defaultText: 'none (nothing written)', description: 'write the serialized encoding (one tensor: --weights or --tensor)' },
  },
  examples: [
    'lowbit encode fcq --bits 4 --json',
    'lowbit encode flexor --n-in 12 --n-out 16 --tensor blk.0.ffn_up.weight',
    'lowbit encode fcq --weights W.npy --bits 3 --levels uniform --out W.fcq',
    'lowbit encode dpred --group 16 --bits 8 --json',
    'lowbit encode seqenc --sparsity 0.9 --bits 4 --json',
  ],
  async run(ctx) {
    const v = ctx.values;
    const method = ctx.positionals[0] as Method | undefined;
    if (!method || !(METHODS as readonly string[]).includes(method)) throw new UsageError(`encode: the method must be one of ${METHODS.join(', ')}, got ${method ?? 'nothing'}`);
    const bits = ctx.values.bits ?? (method === 'dpred' ? 8 : 4);
    if (method === 'fcq' && bits > 8) throw new UsageError(`--bits: FCQ codewords have at most 8 bits, got ${bits}`);
    const nIn = v['n-in'] ?? (method === 'seqenc' ? 4 : 12);
    const nOutFlexor = v['n-out'] ?? 16;
    if (method === 'flexor' && nIn > nOutFlexor) throw new UsageError(`--n-in (${nIn}) must not exceed --n-out (${nOutFlexor})`);
    if (method === 'seqenc' && (nIn > 8 || v['n-s'] * nIn > 16)) throw new UsageError(`seqenc: --n-in must be at most 8 and --n-s × --n-in at most 16, got ${nIn} and ${v['n-s']}`);
    if (v.out && !v.weights && !v.tensor) throw new UsageError('--out writes one tensor: give --weights or --tensor');
    if (v.out) checkOutputFile(v.out);
    const tensors: Tensor[] = [];
    let source: string;
    if (v.weights) {
      checkInputFile(v.weights, 'a .npy file');
      const W = npyMatrix(await readNpy(v.weights), v.weights, 'weights');
      tensors.push({ name: v.weights, data: W.data, shape: W.shape });
      source = v.weights;
    } else {
      source = ctx.positionals[1] ?? fileURLToPath(defaultModelUrl);
      checkInputFile(source, 'a GGUF file');
      const model = await loadModel(source);
      try {
        const linears = v.tensor ? [model.linear(v.tensor)] : model.linears();
        for (const l of linears) {
          const w = f32Weights(l.name, l.source);
          tensors.push({ name: l.name, data: w.data.slice(), shape: [w.shape[0], w.shape[1]] });
        }
      } finally {
        model.free();
      }
    }
    const kernels = await loadKernels();
    let elements = 0;
    let bytes = 0;
    let sqErr = 0;
    let enc = 0;
    let dec = 0;
    let decWasm = 0;
    let wasmEqual = true;
    const sums: Record<string, number> = {};
    const baseline = { bcq1: { err: 0, bits: 0 }, int2: { err: 0, bits: 0 } };
    for (const [i, t] of tensors.entries()) {
      ctx.progress(i, tensors.length, t.name);
      const n = t.data.length;
      const e = method === 'fcq'
        ? encodeFcq(t, bits, v.levels as 'kmeans' | 'uniform', kernels)
        : method === 'dpred' ? encodeDpred(t, bits, v.group, v.scale as 'tensor' | 'row', kernels)
        : method === 'seqenc' ? encodeSeqenc(t, bits, v.sparsity, nIn, v['n-out'], v['n-s'], v.seed, kernels)
        : encodeFlexor(t, nIn, nOutFlexor, v.seed, kernels);
      elements += n;
      bytes += e.bytes.length;
      sqErr += sse(t.data, e.decoded);
      enc += e.encodeSeconds;
      dec += e.decodeSeconds;
      if (e.decodedWasm) {
        decWasm += e.decodeSecondsWasm ?? 0;
        wasmEqual &&= sameBits(e.decoded, e.decodedWasm);
      }
      for (const [k, x] of Object.entries(e.sums)) sums[k] = (sums[k] ?? 0) + x;
      if (method === 'flexor') {
        // the baselines the FleXOR paper compares with: 1-bit binary coding and 2-bit integers, per row
        const b = quantizeBcq(t.data, t.shape, { bits: 1 });
        baseline.bcq1.err += sse(t.data, dequantizeBcq(b));
        baseline.bcq1.bits += n + 32 * t.shape[0]; // sign bits + one f32 α per row
        const q = quantizeInt(t.data, t.shape, { bits: 2, granularity: 'per-oc', symmetric: false });
        baseline.int2.err += sse(t.data, dequantizeInt(q));
        baseline.int2.bits += intBitsPerWeight(q) * n;
      }
      if (v.out) {
        const body = e.bytes;
        await writeFileAtomic(v.out, async (sink) => {
          await sink.write(body);
        });
      }
    }
    ctx.progress(tensors.length, tensors.length);
    if (elements === 0) throw new LowbitError('E_SHAPE', `${source}: nothing to encode (0 elements)`);
    const per = (x: number) => x / elements;
    const bpw = (bytes * 8) / elements;
    const result: Record<string, unknown> = {
      method,
      source,
      tensors: tensors.length,
      elements,
      bytes,
      bits_per_weight: bpw,
      mse: per(sqErr),
      lossless: method !== 'flexor', // FCQ's rANS, DPRed's group packing and seqenc's patches are exact on the codes; FleXOR has no lossless stage
      encode_seconds: enc,
      decode_seconds: dec,
    };
    if (method === 'fcq') {
      Object.assign(result, {
        bits: bits,
        levels: v.levels,
        bits_per_weight_raw: bits,
        decode_seconds_wasm: decWasm,
        wasm_equal: wasmEqual,
        entropy_bound_bits_per_weight: per(sums.entropyBits),
        model_bits_per_weight: per(sums.modelBits),
        transitions_per_weight: per(sums.transitions),
        transitions_per_weight_binary: per(sums.transitionsBinary),
        ones_per_weight: per(sums.ones),
        ones_per_weight_binary: per(sums.onesBinary),
      });
      ctx.print(`fcq k=${bits} (${v.levels} levels) on ${tensors.length} tensor(s), ${elements} weights: mse ${per(sqErr).toExponential(4)}`);
      ctx.print(`  ${bits} bits/weight raw → ${bpw.toFixed(4)} coded (entropy of the codes ${per(sums.entropyBits).toFixed(4)}, everything stored counted)`);
      ctx.print(`  bit transitions/weight ${per(sums.transitions).toFixed(3)} vs ${per(sums.transitionsBinary).toFixed(3)} for plain binary codes of the same levels (${(100 * (1 - sums.transitions / sums.transitionsBinary)).toFixed(1)}% fewer); 1 bits/weight ${per(sums.ones).toFixed(3)} vs ${per(sums.onesBinary).toFixed(3)}`);
    } else if (method === 'dpred') {
      const fixed = per(sums.fixedBits);
      Object.assign(result, {
        bits,
        group: v.group,
        scale: v.scale,
        integer_input: sums.integerTensors === tensors.length,
        // the two-part model DPRed stores (widths per group, codes given the width): the stream
        // cannot go below it; the order-0 entropy of the codes is no bound (adaptive widths beat it)
        entropy_bound_bits_per_weight: per(sums.boundBits),
        code_entropy_bits_per_weight: per(sums.entropyBits),
        decode_seconds_wasm: decWasm,
        wasm_equal: wasmEqual,
        stream_bits_per_weight: per(sums.streamBits),
        mean_group_bits: sums.widthSum / sums.groups,
        fixed_bits_per_weight: fixed,
        traffic_reduction: 1 - bpw / fixed,
      });
      ctx.print(`dpred group ${v.group} on ${tensors.length} tensor(s), ${elements} weights: ${bpw.toFixed(4)} bits/weight stored vs ${fixed.toFixed(4)} at a fixed ${sums.integerTensors === tensors.length ? 'width' : `${bits} bits`} (${(100 * (1 - bpw / fixed)).toFixed(1)}% less traffic), mse ${per(sqErr).toExponential(4)}`);
      ctx.print(`  mean group width ${(sums.widthSum / sums.groups).toFixed(3)} bits + ${4} header bits per group; bound (widths + codes given the width) ${per(sums.boundBits).toFixed(4)}, order-0 entropy of the codes ${per(sums.entropyBits).toFixed(4)} bits`);
      ctx.print(`  decode ${dec.toFixed(3)} s TypeScript, ${decWasm.toFixed(3)} s WASM (${wasmEqual ? 'equal bit for bit' : 'DIFFERENT'})`);
    } else if (method === 'seqenc') {
      const density = sums.kept / elements;
      const planePos = sums.planePositions;
      Object.assign(result, {
        bits: sums.exact === tensors.length ? 32 : bits,
        exact_values: sums.exact === tensors.length,
        n_in: nIn,
        n_s: v['n-s'],
        density,
        // the mask at its order-1 empirical entropy plus the kept codes at their order-0 entropy
        entropy_bound_bits_per_weight: per(sums.boundBits),
        mask_bits_per_weight: per(sums.maskBits),
        mask_rans_tensors: sums.maskRans,
        mask_bitmap_bits_per_weight: 1,
        mask_entropy_bits_per_weight: per(sums.maskIid),
        mask_order1_bits_per_weight: per(sums.maskOrder1),
        code_entropy_bits_per_kept: sums.codeEntropy / Math.max(1, sums.kept),
        plane_bits_per_position: sums.planeBits / planePos,
        plane_bound_bits_per_position: sums.planeCare / planePos,
        patches_per_care_bit: sums.patches / Math.max(1, sums.planeCare),
        bitmap_bits_per_weight: per(sums.bitmapBits),
        csr_bits_per_weight: per(sums.csrBits),
        decode_seconds_wasm: decWasm,
        wasm_equal: wasmEqual,
      });
      ctx.print(`seqenc on ${tensors.length} tensor(s), ${elements} weights, density ${density.toFixed(4)}: ${bpw.toFixed(4)} bits/weight stored (bound ${per(sums.boundBits).toFixed(4)}), mse ${per(sqErr).toExponential(4)}`);
      ctx.print(`  mask: ${per(sums.maskBits).toFixed(4)} bits/weight stored (rANS in ${sums.maskRans} of ${tensors.length} tensors, else a bitmap) vs H(density) ${per(sums.maskIid).toFixed(4)}, order-1 ${per(sums.maskOrder1).toFixed(4)}`);
      ctx.print(`  value planes: ${(sums.planeBits / planePos).toFixed(4)} bits per plane position vs the care-bit fraction ${(sums.planeCare / planePos).toFixed(4)}; ${(sums.patches / Math.max(1, sums.planeCare)).toFixed(4)} patches per care bit`);
      ctx.print(`  baselines with the same codes: bitmap + packed codes ${per(sums.bitmapBits).toFixed(4)}, CSR ${per(sums.csrBits).toFixed(4)} bits/weight`);
      ctx.print(`  decode ${dec.toFixed(3)} s TypeScript, ${decWasm.toFixed(3)} s WASM (${wasmEqual ? 'equal bit for bit' : 'DIFFERENT'})`);
    } else {
      Object.assign(result, {
        n_in: nIn,
        n_out: nOutFlexor,
        seed: v.seed,
        // lossy sign coding: the bound is that of re-coding the stored bits losslessly (order 0)
        entropy_bound_bits_per_weight: per(sums.storedEntropy),
        payload_bits_per_weight: nIn / nOutFlexor,
        decode_seconds_wasm: decWasm,
        wasm_equal: wasmEqual,
        bcq1: { bits_per_weight: baseline.bcq1.bits / elements, mse: per(baseline.bcq1.err) },
        int2: { bits_per_weight: baseline.int2.bits / elements, mse: per(baseline.int2.err) },
      });
      ctx.print(`flexor ${nIn}/${nOutFlexor} on ${tensors.length} tensor(s), ${elements} weights: ${bpw.toFixed(4)} bits/weight, mse ${per(sqErr).toExponential(4)}`);
      ctx.print(`  1-bit BCQ: ${(baseline.bcq1.bits / elements).toFixed(4)} bits/weight, mse ${per(baseline.bcq1.err).toExponential(4)}; int2 per-row: ${(baseline.int2.bits / elements).toFixed(4)} bits/weight, mse ${per(baseline.int2.err).toExponential(4)}`);
      ctx.print(`  decode ${dec.toFixed(3)} s TypeScript, ${decWasm.toFixed(3)} s WASM (${wasmEqual ? 'equal bit for bit' : 'DIFFERENT'})`);
    }
    if (!wasmEqual) throw new LowbitError('E_WASM', 'encode: the WASM decoder disagrees with the TypeScript one');
    if (v.out) ctx.print(`wrote ${v.out} (${bytes} bytes)`);
    result.out = v.out ?? null;
    return result;
  },
});

function encodeFcq(t: Tensor, bits: number, levels: 'kmeans' | 'uniform', kernels: Awaited<ReturnType<typeof loadKernels>>): Encoded {
  const t0 = now();
  const q = quantizeFcq(t.data, t.shape, { bits, levels });
  const bytes = serializeFcq(q);
  const t1 = now();
  const decoded = dequantizeFcq(deserializeFcq(bytes));
  const t2 = now();
  const decodedWasm = decodeFcqWasm(kernels, bytes).values;
  const t3 = now();
  const s = fcqStats(q, bytes);
  const n = t.data.length;
  return {
    bytes, decoded, decodedWasm, encodeSeconds: t1 - t0, decodeSeconds: t2 - t1, decodeSecondsWasm: t3 - t2,
    sums: {
      entropyBits: s.entropyBitsPerWeight * n, modelBits: s.modelBitsPerWeight * n, transitions: s.transitionsPerWeight * n,
      transitionsBinary: s.transitionsPerWeightBinary * n, ones: s.onesPerWeight * n, onesBinary: s.onesPerWeightBinary * n,
    },
  };
}

function encodeDpred(t: Tensor, bits: number, group: number, scale: 'tensor' | 'row', kernels: Awaited<ReturnType<typeof loadKernels>>): Encoded {
  const t0 = now();
  const q = quantizeDpred(t.data, t.shape, { bits, group, scale });
  const bytes = serializeDpred(q);
  const t1 = now();
  const decoded = dequantizeDpred(deserializeDpred(bytes));
  const t2 = now();
  const decodedWasm = decodeDpredWasm(kernels, bytes).values;
  const t3 = now();
  const s = dpredStreamBits(q);
  const n = t.data.length;
  let integer = true;
  let maxW = 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    if (q.scales[Math.floor(i / Math.max(1, t.shape[1]))] !== 1) integer = false;
    counts.set(q.codes[i], (counts.get(q.codes[i]) ?? 0) + 1);
    maxW = Math.max(maxW, Math.abs(q.codes[i]));
  }
  // the fixed-width baseline: every code at k bits (or, for integer input, at the width of the widest
  // code) plus the same per-row scales
  const width = integer ? Math.max(1, 33 - Math.clz32(maxW)) : bits;
  return {
    bytes, decoded, decodedWasm, encodeSeconds: t1 - t0, decodeSeconds: t2 - t1, decodeSecondsWasm: t3 - t2,
    sums: {
      boundBits: dpredEntropyBits(q), streamBits: s.bits, widthSum: s.widthSum, groups: s.groups, entropyBits: entropyBits([...counts.values()]) * n,
      fixedBits: width * n + 32 * t.shape[0], integerTensors: integer ? 1 : 0,
    },
  };
}

function encodeFlexor(t: Tensor, nIn: number, nOut: number, seed: number, kernels: Awaited<ReturnType<typeof loadKernels>>): Encoded {
  const t0 = now();
  const bytes = serializeFlexor(quantizeFlexor(t.data, t.shape, { nIn, nOut, seed }));
  const t1 = now();
  const back = deserializeFlexor(bytes);
  const decoded = dequantizeFlexor(back);
  const t2 = now();
  const decodedWasm = dequantizeFlexorWasm(kernels, back);
  const t3 = now();
  return { bytes, decoded, decodedWasm, encodeSeconds: t1 - t0, decodeSeconds: t2 - t1, decodeSecondsWasm: t3 - t2, sums: { storedEntropy: flexorStoredEntropy(back) * t.data.length } };
}

function encodeSeqenc(t: Tensor, bits: number, sparsity: number | undefined, nIn: number, nOutOpt: number | undefined, nS: number, seed: number,
  kernels: Awaited<ReturnType<typeof loadKernels>>): Encoded {
  const n = t.data.length;
  let zeros = 0;
  for (let i = 0; i < n; i++) if (t.data[i] === 0) zeros++;
  // already-sparse input is encoded as it is, its values bit for bit (32 f32 planes)
  const exact = sparsity === undefined && zeros > 0;
  const s = exact ? zeros / n : (sparsity ?? 0.7);
  const nOut = nOutOpt ?? Math.max(nIn, Math.min(32, Math.round(nIn / Math.max(1e-9, 1 - s))));
  const t0 = now();
  const q = quantizeSeqenc(t.data, t.shape, { bits: exact ? 32 : bits, sparsity: exact ? 0 : s, nIn, nOut, nS, seed });
  const bytes = serializeSeqenc(q);
  const t1 = now();
  const decoded = dequantizeSeqenc(deserializeSeqenc(bytes));
  const t2 = now();
  const decodedWasm = decodeSeqencWasm(kernels, bytes).values;
  const t3 = now();
  const st = seqencStats(q, bytes);
  const kept = Math.round(st.density * n);
  const k = q.bits;
  const idxBits = Math.max(1, Math.ceil(Math.log2(Math.max(2, t.shape[1]))));
  return {
    bytes, decoded, decodedWasm, encodeSeconds: t1 - t0, decodeSeconds: t2 - t1, decodeSecondsWasm: t3 - t2,
    sums: {
      boundBits: st.entropyBoundBitsPerWeight * n, maskBits: st.maskBitsPerWeight * n, maskRans: st.maskCoding === 'rans' ? 1 : 0,
      maskIid: st.maskEntropyIid * n, maskOrder1: st.maskEntropyOrder1 * n, codeEntropy: st.codeEntropy * kept,
      kept, exact: exact ? 1 : 0, planePositions: k * n, planeCare: k * kept,
      planeBits: q.planes.reduce((a, p) => a + seqencPlaneBits(p), 0), patches: q.planes.reduce((a, p) => a + p.patches.length, 0),
      // baselines with the same codes and scale: a bitmap + packed kept codes; CSR with column indices and 32-bit row pointers
      bitmapBits: n + k * kept + 32, csrBits: kept * (k + idxBits) + 32 * (t.shape[0] + 1) + 32,
    },
  };
}

function sse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}
