// `npm run bench -w @lowbit/benchmarks -- encodings`: the compressed encodings of @lowbit/formats
// (#17) on a 4096×4096 tensor, M elements/s. Encode is TypeScript only (the searches: k-means,
// FleXOR's exhaustive slices, seqenc's Viterbi); it is timed on the first ENCODE_ROWS rows, a
// rate that does not depend on the row count. Decode runs on the whole 4096×4096: the encoded
// rows tiled down the matrix (FCQ, DPRed, FleXOR), or, for seqenc, synthetic planes of the same
// configuration (random inputs, a random 30% mask, patches at 3% of the care bits, as on the
// embedded model); TypeScript (deserialize + dequantize) vs WASM (decode*Wasm), checked equal.
import {
  decodeDpredWasm, decodeFcqWasm, decodeSeqencWasm, dequantizeDpred, dequantizeFcq, dequantizeFlexor, dequantizeFlexorWasm, dequantizeSeqenc,
  deserializeDpred, deserializeFcq, deserializeFlexor, deserializeSeqenc, type DpredTensor, type FcqTensor, type FlexorTensor, quantizeDpred, quantizeFcq,
  quantizeFlexor, quantizeSeqenc, type SeqencTensor, seqencSteps, serializeDpred, serializeFcq, serializeFlexor, serializeSeqenc,
} from '@lowbit/formats';
import { createKernels } from '@lowbit/kernels';
import type { Area, Context, Row } from './harness.js';

const N = 4096;
const ENCODE_ROWS = 256;
const TILES = N / ENCODE_ROWS;

function tile<T extends Float32Array | Uint8Array | Int16Array>(a: T): T {
  const out = new (a.constructor as new (n: number) => T)(a.length * TILES);
  for (let i = 0; i < TILES; i++) out.set(a, i * a.length);
  return out;
}

function sameBits(name: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (a.length !== b.length || ua.some((v, i) => v !== ub[i])) throw new Error(`encodings bench: ${name}: the WASM decode differs from the TypeScript one`);
}

/** A seqenc tensor of n = N·N positions with the planes' layout but random content (speed only). */
function syntheticSeqenc(o: { bits: number; nIn: number; nOut: number; nS: number; block: number }): SeqencTensor {
  let s = 11;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const n = N * N;
  const mask = new Uint8Array(n / 8);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (next() < 0.3) {
      mask[i >> 3] |= 1 << (i & 7);
      kept++;
    }
  }
  const ib = Math.ceil((seqencSteps(n, o.nOut) * o.nIn) / 8);
  const planes = Array.from({ length: o.bits }, (_, b) => {
    const inputs = Uint8Array.from({ length: ib }, () => (next() * 256) | 0);
    const np = Math.round(0.03 * kept);
    const patches = new Uint32Array(np);
    for (let k = 0, p = 0; k < np; k++) patches[k] = p = Math.min(n - np + k, p + 1 + ((next() * (2 * (n / np) - 1)) | 0));
    return { n, nIn: o.nIn, nOut: o.nOut, nS: o.nS, seed: 1 + b, block: o.block, inputs, patches };
  });
  return { kind: 'seqenc', shape: [N, N], bits: o.bits, scale: 0.01, mask, planes };
}

export const encodingsArea: Area = {
  name: 'encodings',
  async run(ctx: Context): Promise<Row[]> {
    const n = N * N;
    const m = ENCODE_ROWS * N;
    const w = new Float32Array(m);
    let s = 7;
    for (let i = 0; i < m; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      w[i] = (s / 2 ** 32 - 0.5) * 0.1;
    }
    const part: [number, number] = [ENCODE_ROWS, N];
    const k = await createKernels();
    const rows: Row[] = [];
    const push = (name: string, variant: string, ms: number, elements: number, baseMs: number, note?: string) =>
      rows.push({ area: 'encodings', name, variant, ms, rate: { value: elements / ms / 1e3, unit: 'M elem/s' }, ratio: baseMs / ms, baseline: 'TypeScript', ...(note ? { note } : {}) });
    const cases: { name: string; encode: () => unknown; read: (b: Uint8Array) => unknown; full: (t: never) => Uint8Array; decodeTs: (b: Uint8Array) => Float32Array; decodeWasm: (b: Uint8Array) => Float32Array }[] = [
      {
        name: 'FCQ k=4 uniform', encode: () => serializeFcq(quantizeFcq(w, part, { bits: 4 })), read: deserializeFcq,
        full: (t: FcqTensor) => serializeFcq({ ...t, shape: [N, N], indices: tile(t.indices) }),
        decodeTs: (b) => dequantizeFcq(deserializeFcq(b)), decodeWasm: (b) => decodeFcqWasm(k, b).values,
      },
      {
        name: 'DPRed g16 INT8', encode: () => serializeDpred(quantizeDpred(w, part, { bits: 8, group: 16, scale: 'tensor' })), read: deserializeDpred,
        full: (t: DpredTensor) => serializeDpred({ ...t, shape: [N, N], scales: tile(t.scales), codes: tile(t.codes) }),
        decodeTs: (b) => dequantizeDpred(deserializeDpred(b)), decodeWasm: (b) => decodeDpredWasm(k, b).values,
      },
      {
        name: 'FleXOR 8/16', encode: () => serializeFlexor(quantizeFlexor(w, part, { nIn: 8, nOut: 16 })), read: deserializeFlexor,
        full: (t: FlexorTensor) => serializeFlexor({ ...t, shape: [N, N], alphas: tile(t.alphas), stored: tile(t.stored) }),
        decodeTs: (b) => dequantizeFlexor(deserializeFlexor(b)), decodeWasm: (b) => dequantizeFlexorWasm(k, deserializeFlexor(b)),
      },
      {
        name: 'seqenc 70% INT4, n-in 2, n-s 1, n-out 7', encode: () => serializeSeqenc(quantizeSeqenc(w, part, { bits: 4, sparsity: 0.7, nIn: 2, nOut: 7, nS: 1 })), read: deserializeSeqenc,
        full: () => serializeSeqenc(syntheticSeqenc({ bits: 4, nIn: 2, nOut: 7, nS: 1, block: 64 })),
        decodeTs: (b) => dequantizeSeqenc(deserializeSeqenc(b)), decodeWasm: (b) => decodeSeqencWasm(k, b).values,
      },
    ];
    for (const c of cases) {
      ctx.log(`  encodings: ${c.name}`);
      let enc: Uint8Array = new Uint8Array(0);
      const encMs = await ctx.timeRuns(() => {
        enc = c.encode() as Uint8Array;
      }, 1);
      push(`${c.name} encode (${ENCODE_ROWS}×${N} rows)`, 'TypeScript', encMs, m, encMs, 'TypeScript only; quantize + serialize');
      const full = c.full(c.read(enc) as never);
      let ref: Float32Array = new Float32Array(0);
      const decTs = await ctx.timeRuns(() => {
        ref = c.decodeTs(full);
      }, 1);
      push(`${c.name} decode ${N}×${N}`, 'TypeScript', decTs, n, decTs, 'deserialize + dequantize');
      let got: Float32Array = new Float32Array(0);
      const decWasm = await ctx.timeRuns(() => {
        got = c.decodeWasm(full);
      }, 3);
      sameBits(c.name, got, ref);
      push(`${c.name} decode ${N}×${N}`, `wasm ${k.variant}`, decWasm, n, decTs, 'header parsed in TypeScript, stream decoded in WASM; equal bit for bit');
    }
    return rows;
  },
};
