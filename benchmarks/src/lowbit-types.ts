import { type BcqTensor, type CodebookTensor, type MxFormatName, type Nf4Tensor, type PackedIntTensor, actOrderInt, gIdxBits, quantizeAnyPrecision, quantizeInt, quantizeMx } from '@lowbit/formats';
import { type Kernels, createKernels, f32ToF16, gemvBcqBiq, lut4Gemv } from '@lowbit/kernels';
import { Linear, type LinearWeight, keepExactAnyPrecision, linearWeightFromPacked } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const N = 4096;

/** Bytes the stored (file) form of a packed tensor holds: codes, fp16 scales, zero points at k bits or E8M0 bytes. */
function storedBytes(t: PackedIntTensor | { codes: Uint8Array; scales: Uint8Array; format: MxFormatName }): number {
  if ('kind' in t && t.kind === 'int') return t.codes.byteLength + t.scales.length * 2 + (t.zeros ? Math.ceil((t.zeros.length * t.bits) / 8) : 0) + (t.gIdx ? Math.ceil((t.gIdx.length * gIdxBits(t.shape[1], t.group)) / 8) : 0);
  const m = t as { codes: Uint8Array; scales: Uint8Array; format: MxFormatName };
  const bits = m.format === 'mxfp4' ? 4 : m.format.startsWith('mxfp6') ? 6 : 8;
  return Math.ceil((m.codes.length * bits) / 8) + m.scales.byteLength;
}

/**
 * lowbit's own tensor types as the runtime runs them (issue #20 item 3), one token through a
 * 4096×4096 layer (Linear.apply, batch 1): GB/s of the type's stored bytes, against Q4_0's prepared
 * tiles timed interleaved with them. INT-k and MX repack exactly onto ggml tiles or the int4 kernel
 * (runtime packed-fast.ts: FP8 / FP6 E3M2 as two int8 planes, act-order over x gathered in group
 * order) and run there; the rest on the formats' table GEMV.
 */
export const lowbitTypesArea: Area = {
  name: 'lowbit-types',
  async run(ctx: Context): Promise<Row[]> {
    const n = N * N;
    const w = new Float32Array(n);
    let s = 11;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      w[i] = (s / 2 ** 32 - 0.5) * 0.1;
    }
    const x = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
    const k = await createKernels();
    const shape: [number, number] = [N, N];
    const int = (bits: number, group: number, symmetric = true) =>
      quantizeInt(w, shape, group ? { bits, granularity: 'group-cols', group, symmetric } : { bits, granularity: 'per-oc', symmetric });
    const mx = (format: MxFormatName) => quantizeMx(w, { format });
    // hMx-interleaved: every INT/MX layer is built first, then timed in rounds with Q4_0 tiles
    // (4 calls per layer per round, 7 rounds, median per layer), so a busy machine slows all alike
    const cases: { name: string; make: () => PackedIntTensor | ReturnType<typeof quantizeMx> }[] = [
      { name: 'INT2 g32 sym', make: () => int(2, 32) },
      { name: 'INT2 g32 asym', make: () => int(2, 32, false) },
      { name: 'INT3 g32 sym', make: () => int(3, 32) },
      { name: 'INT3 g128 sym', make: () => int(3, 128) },
      { name: 'INT3 g32 asym', make: () => int(3, 32, false) },
      { name: 'INT4 g128 sym', make: () => int(4, 128) },
      { name: 'INT4 g128 sym act-order', make: () => actOrder(int(4, 128)) },
      { name: 'INT4 g128 asym', make: () => int(4, 128, false) },
      { name: 'INT5 g32 sym', make: () => int(5, 32) },
      { name: 'INT8 per-channel sym', make: () => int(8, 0) },
      { name: 'MXFP4', make: () => mx('mxfp4') },
      { name: 'MXFP6 E2M3', make: () => mx('mxfp6_e2m3') },
      { name: 'MXFP6 E3M2', make: () => mx('mxfp6_e3m2') },
      { name: 'MXINT8', make: () => mx('mxint8') },
      { name: 'MXFP8 E4M3', make: () => mx('mxfp8_e4m3') },
      { name: 'MXFP8 E5M2', make: () => mx('mxfp8_e5m2') },
    ];
    const q4 = q4Blocks(int(4, 32));
    const layers: { name: string; lin: Linear; bytes: number; runs: string; streamed?: number }[] = [
      { name: 'Q4_0 (INT4 g32 sym as Q4_0 blocks)', lin: new Linear(k, 'Q4_0', { format: 'q4_0', shape, data: q4 }), bytes: q4.byteLength, runs: 'q4_0 tiles', streamed: q4.byteLength },
    ];
    const rows: Row[] = [];
    try {
      for (const c of cases) {
        ctx.log(`  lowbit-types: ${c.name}`);
        const t = c.make();
        const weight: LinearWeight = 'kind' in t && t.kind === 'int' ? linearWeightFromPacked(t) : linearWeightFromPacked(t, { shape });
        const g = weight as { gather?: Int32Array; residue?: { index: Int32Array }; plus?: LinearWeight; groupTerm?: { group: number } };
        const runs = weight.format === 'packed' ? 'formats table GEMV' : `${weight.format}${g.gather ? ` over ${g.gather.length} gathered columns` : ''}${g.plus ? ` + a ${g.plus.format} plane` : ''}${g.residue ? ` + ${g.residue.index.length} exact f32 rest weights` : ''}${g.groupTerm ? ` + an f32 term per ${g.groupTerm.group} columns` : ''}`;
        // bytes of ggml blocks the kernel streams (both planes), where the type runs on them: the
        // reason a type narrower than its tiles reads below 1× of its own stored bytes
        const blocks = (v: LinearWeight | undefined) => (v && (v.format === 'q4_0' || v.format === 'q8_0') ? v.data.byteLength : 0);
        const streamed = blocks(weight) ? blocks(weight) + blocks(g.plus) : undefined;
        layers.push({ name: c.name, lin: new Linear(k, c.name, weight), bytes: storedBytes(t as never), runs, streamed });
      }
      for (const l of layers) l.lin.apply(x, 1); // JIT warm-up, untimed
      const times: number[][] = layers.map(() => []);
      const reps = 4;
      for (let round = 0; round < 7; round++) {
        for (let i = 0; i < layers.length; i++) {
          const t = await ctx.timeRuns(() => {
            for (let j = 0; j < reps; j++) layers[i].lin.apply(x, 1);
          }, 1);
          times[i].push(t / reps);
        }
      }
      const med = (v: number[]) => v.slice().sort((a, b) => a - b)[v.length >> 1];
      layers.forEach((l, i) => {
        const ms = med(times[i]);
        const gbps = l.bytes / ms / 1e6;
        // the ratio is the median of each round's ratio to the Q4_0 tiles timed in that round: the
        // other jobs' load moves between rounds far more than within one
        const ratio = med(times[i].map((t, round) => (l.bytes / t) / (q4.byteLength / times[0][round])));
        rows.push({
          area: 'lowbit-types', name: `GEMV ${N}×${N} ${l.name}`, variant: `${l.runs}, wasm ${k.variant}`, ms, gbps, ratio,
          baseline: 'Q4_0 tiles interleaved (GB/s of stored bytes)',
          note: `stored ${((l.bytes * 8) / n).toFixed(2)} bits/weight${l.streamed ? `, streamed ${((l.streamed * 8) / n).toFixed(2)}` : ''}; ${perWeight(ms, med(times[0]), n)}; runs as ${l.runs}`,
        });
      });
    } finally {
      for (const l of layers) l.lin.free();
    }
    rows.push(...(await lutRows(ctx, k, x, q4Blocks(int(4, 32)))));
    return rows;
  },
};

/** Time per weight and its ratio to Q4_0's in the same run: what the kernel costs whatever the bytes. */
function perWeight(ms: number, q4ms: number, n: number): string {
  return `${((ms * 1e6) / n).toFixed(3)} ns/weight, ${(ms / q4ms).toFixed(2)}× Q4_0's time`;
}

/** INT4 g32 symmetric codes as ggml Q4_0 blocks (fp16 d, element j low nibble / j + 16 high nibble of byte j). */
function q4Blocks(t: PackedIntTensor): Uint8Array {
  const [rows, cols] = t.shape;
  const nb = cols / 32;
  const out = new Uint8Array(rows * nb * 18);
  const v = new DataView(out.buffer);
  const code = (r: number, c: number) => (t.codes[r * (cols / 2) + (c >> 1)] >> ((c & 1) * 4)) & 15;
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const o = (r * nb + b) * 18;
      v.setUint16(o, f32ToF16(t.scales[r * nb + b]), true); // fp16 by construction (quantizeInt)
      for (let j = 0; j < 16; j++) out[o + 2 + j] = code(r, b * 32 + j) | (code(r, b * 32 + j + 16) << 4);
    }
  }
  return out;
}

/** The same INT-k weights in act-order: column j stored at (7919·j) mod cols, a stride permutation. */
function actOrder(t: PackedIntTensor): PackedIntTensor {
  return actOrderInt(t, Int32Array.from({ length: t.shape[1] }, (_, j) => (7919 * j) % t.shape[1]));
}

/**
 * NF4 (the kernels' NF4 tiles, and lut4Gemv), codebooks, BCQ (lut4Gemv, runtime lut-fast.ts) and
 * any-precision (top b planes) on 4096×4096,
 * one token: GB/s of each type's stored bytes against Q4_0 tiles timed interleaved with them (rounds
 * of 8 calls each, median per type). Codes are random (speed does not depend on the values);
 * any-precision clones one quantized row's codebook to every row, as the anyprec area does. BCQ also
 * on BiQGEMM's f32 tables of 256 sums per 8 activations (gemvBcqBiq), the alternative lut4 replaced.
 */
async function lutRows(ctx: Context, k: Kernels, x: Float32Array, q4: Uint8Array): Promise<Row[]> {
  const n = N * N;
  const shape: [number, number] = [N, N];
  let s = 29;
  const rnd = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const bytes = (len: number) => Uint8Array.from({ length: len }, () => Math.floor(rnd() * 256));
  const sorted = (rows: number, size: number) => {
    const v = Float32Array.from({ length: rows * size }, () => rnd() - 0.5);
    for (let r = 0; r < rows; r++) v.subarray(r * size, (r + 1) * size).sort();
    return v;
  };
  const nf4 = (): Nf4Tensor => ({ kind: 'nf4', shape, group: 64, scales: Float32Array.from({ length: n / 64 }, () => 0.01 + rnd() * 0.1), codes: bytes(n / 2) });
  const codebook = (bits: number): CodebookTensor => ({ kind: 'codebook', bits, shape, lut: sorted(N, 2 ** bits), codes: bytes((N * N * bits) / 8) });
  const bcq = (bits: number): BcqTensor => ({ kind: 'bcq', bits, shape, group: 128, alphas: Float32Array.from({ length: (n / 128) * bits }, () => rnd() * 0.05), planes: bytes((bits * n) / 8) });
  const one = quantizeAnyPrecision(Float32Array.from({ length: N }, () => rnd() - 0.5), [1, N], { seedBits: 3, maxBits: 4 });
  const rpb = N / 8;
  const planes = new Uint8Array(4 * N * rpb);
  for (let b = 0; b < 4; b++) for (let r = 0; r < N; r++) planes.set(one.planes.subarray(b * rpb, (b + 1) * rpb), (b * N + r) * rpb);
  const luts = one.luts.map((l) => {
    const out = new Float32Array(N * l.length);
    for (let r = 0; r < N; r++) out.set(l, r * l.length);
    return out;
  });
  // the runtime's default (gemvAnyprecFast at <= 4 bits) and the exact kernel (gemv_anyprec, f32 tables)
  const anyprec = new Linear(k, 'any-precision 3..4', { format: 'any-precision', shape, tensor: { kind: 'any-precision', seedBits: 3, maxBits: 4, shape, luts, planes } });
  const anyprecExact = new Linear(k, 'any-precision 3..4 exact', { format: 'any-precision', shape, tensor: keepExactAnyPrecision({ kind: 'any-precision', seedBits: 3, maxBits: 4, shape, luts, planes }) });
  const layers: { name: string; run: () => unknown; bytes: number; runs: string; free: () => void }[] = [];
  const q4lin = new Linear(k, 'Q4_0', { format: 'q4_0', shape, data: q4 });
  layers.push({ name: 'Q4_0 (interleaved baseline)', run: () => q4lin.apply(x, 1), bytes: q4.byteLength, runs: q4lin.format, free: () => q4lin.free() });
  const packed: [string, Nf4Tensor | CodebookTensor | BcqTensor, number][] = [
    ['NF4 g64 (f32 absmax)', nf4(), n / 2 + (n / 64) * 4],
    ...[4, 3, 2].map((b): [string, CodebookTensor, number] => [`codebook ${2 ** b} entries per row`, codebook(b), (n * b) / 8 + N * 2 ** b * 4]),
    ...[2, 3, 4].map((b): [string, BcqTensor, number] => [`BCQ ${b}-bit g128`, bcq(b), (n * b) / 8 + (n / 128) * b * 4]),
  ];
  for (const [name, t, stored] of packed) {
    ctx.log(`  lowbit-types: ${name}`);
    const w = linearWeightFromPacked(t);
    const lin = new Linear(k, name, w);
    layers.push({ name, run: () => lin.apply(x, 1), bytes: stored, runs: lin.format === 'nf4' ? 'nf4 tiles' : lin.format, free: () => lin.free() });
    // NF4 on the kernels' NF4 tiles (relaxed builds), and on lut4Gemv, the form other builds run
    if (w.format === 'nf4' && lin.format === 'nf4') {
      const lut = new Linear(k, `${name} lut4Gemv`, w.fallback);
      layers.push({ name: `${name} on lut4Gemv`, run: () => lut.apply(x, 1), bytes: stored, runs: lut.format, free: () => lut.free() });
    }
    if (t.kind === 'bcq') {
      const planes = k.upload(t.planes);
      const alphas = k.upload(t.alphas);
      const w = { bits: t.bits, rows: N, cols: N, group: t.group, planes, alphas };
      layers.push({ name: `${name} BiQGEMM`, run: () => gemvBcqBiq(k, w, x), bytes: stored, runs: 'gemvBcqBiq', free: () => (planes.free(), alphas.free()) });
    }
  }
  // what limits lut4Gemv: the same random codes at 4 and 2 bits with one (step) per block of 32, 64,
  // 128 columns or per row (tables per tensor), against Q4_0's time per weight (the note)
  const codes4 = k.upload(bytes(n / 2));
  const codes2 = k.upload(bytes(n / 4));
  const table = k.upload(Uint8Array.from({ length: 16 }, (_, i) => i * 8));
  for (const cb of [4, 2] as const) {
    for (const block of [32, 64, 128, N]) {
      const params = k.upload(Float32Array.from({ length: N * (N / block) }, () => rnd() / 64));
      const w = { rows: N, cols: N, block, codes: cb === 4 ? codes4 : codes2, tables: table, tableRowStride: 0, tableBlockStride: 0, params, loRatio: -63.5, codeBits: cb };
      layers.push({ name: `lut4Gemv ${cb}-bit codes, a step per ${block === N ? 'row' : `${block} columns`}`, run: () => lut4Gemv(k, w, x, 1), bytes: (n * cb) / 8 + (n / block) * 4, runs: 'lut4Gemv', free: () => params.free() });
    }
  }
  // GB/s of the stored width's bytes (top b planes and that width's f32 table) for both kernels: the
  // fast pass reads the same planes and 24 bytes of levels and (step, lo) per row instead of the table
  for (const b of [3, 4]) {
    layers.push({ name: `any-precision ${b}-bit (top planes of 3..4)`, run: () => anyprec.apply(x, 1, undefined, b), bytes: anyprec.bytesAt(b), runs: 'gemvAnyprecFast', free: () => undefined });
    layers.push({ name: `any-precision ${b}-bit exact (top planes of 3..4)`, run: () => anyprecExact.apply(x, 1, undefined, b), bytes: anyprecExact.bytesAt(b), runs: 'gemv_anyprec', free: () => undefined });
  }
  const times: number[][] = layers.map(() => []);
  try {
    for (const l of layers) l.run(); // JIT warm-up, untimed
    const reps = 8;
    for (let round = 0; round < 7; round++) {
      for (let i = 0; i < layers.length; i++) {
        const t = await ctx.timeRuns(() => {
          for (let j = 0; j < reps; j++) layers[i].run();
        }, 1);
        times[i].push(t / reps);
      }
    }
  } finally {
    for (const l of layers) l.free();
    for (const t of [codes4, codes2, table]) t.free();
    anyprec.free();
    anyprecExact.free();
  }
  const med = (v: number[]) => v.slice().sort((a, b) => a - b)[v.length >> 1];
  const base = q4.byteLength / med(times[0]) / 1e6;
  return layers.map((l, i) => {
    const ms = med(times[i]);
    const gbps = l.bytes / ms / 1e6;
    return {
      area: 'lowbit-types', name: `GEMV ${N}×${N} ${l.name}`, variant: `${l.runs}, wasm ${k.variant}`, ms, gbps, ratio: gbps / base,
      baseline: 'Q4_0 tiles interleaved (GB/s of stored bytes)', note: `stored ${((l.bytes * 8) / n).toFixed(2)} bits/weight; ${perWeight(ms, med(times[0]), n)}; runs as ${l.runs}`,
    };
  });
}
