import { createKernels } from '@lowbit/kernels';
import {
  dequantizeBcq, dequantizeBcqWasm, dequantizeInt, dequantizeIntWasm, dequantizeMx, dequantizeMxWasm, dequantizeNf4, dequantizeNf4Wasm,
  gemvPacked, type GemvTensor, quantizeBcq, quantizeInt, quantizeIntWasm, quantizeMx, quantizeMxWasm, quantizeNf4, quantizeNf4Wasm, uploadGemv,
} from '@lowbit/formats';
import type { Area, Context, Row } from './harness.js';

const N = 4096;

type Encoded = { scales: Float32Array | Uint8Array; zeros?: Float32Array | null; codes: Uint8Array };

/** The WASM encoders must give the reference's bytes; a benchmark of a wrong encoder means nothing. */
function sameEncoding(name: string, a: Encoded, b: Encoded): void {
  const bytes = (v: ArrayBufferView | null | undefined) => (v ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : new Uint8Array(0));
  for (const key of ['scales', 'zeros', 'codes'] as const) {
    const x = bytes(a[key]);
    const y = bytes(b[key]);
    if (x.length !== y.length || x.some((v, i) => v !== y[i])) throw new Error(`formats bench: ${name} WASM encode ${key} differ from the TypeScript encoder's`);
  }
}

/**
 * @lowbit/formats on a 4096×4096 tensor (elements/s): encode and decode (TypeScript reference vs
 * WASM, ratio to the reference; the WASM encoders' output is checked equal to the reference's), and
 * decode-into-GEMV y = W·x with W left packed (TypeScript definition vs WASM with the codes
 * resident; the dense f32 GEMV is the row beside it).
 */
export const formatsArea: Area = {
  name: 'formats',
  async run(ctx: Context): Promise<Row[]> {
    const n = N * N;
    const w = new Float32Array(n);
    let s = 7;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      w[i] = (s / 2 ** 32 - 0.5) * 0.1;
    }
    const x = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
    const k = await createKernels();
    const rows: Row[] = [];
    const push = (name: string, variant: string, ms: number, baseMs: number, baseline: string, note?: string) =>
      rows.push({ area: 'formats', name, variant, ms, rate: { value: n / ms / 1e3, unit: 'M elem/s' }, ratio: baseMs / ms, baseline, ...(note ? { note } : {}) });
    const shape: [number, number] = [N, N];

    const cases: { name: string; encode: () => unknown; encodeWasm?: () => unknown; decodeTs: (t: never) => Float32Array; decodeWasm: (t: never) => Float32Array; gemv?: (t: never) => GemvTensor }[] = [
      { name: 'INT4 g128', encode: () => quantizeInt(w, shape, { bits: 4, granularity: 'group-cols', group: 128 }), encodeWasm: () => quantizeIntWasm(k, w, shape, { bits: 4, granularity: 'group-cols', group: 128 }), decodeTs: dequantizeInt, decodeWasm: (t) => dequantizeIntWasm(k, t), gemv: (t) => t },
      { name: 'MXFP4', encode: () => quantizeMx(w, { format: 'mxfp4' }), encodeWasm: () => quantizeMxWasm(k, w, { format: 'mxfp4' }), decodeTs: dequantizeMx, decodeWasm: (t) => dequantizeMxWasm(k, t), gemv: (t: object) => ({ ...t, shape }) as GemvTensor },
      { name: 'MXFP8 E4M3', encode: () => quantizeMx(w, { format: 'mxfp8_e4m3' }), encodeWasm: () => quantizeMxWasm(k, w, { format: 'mxfp8_e4m3' }), decodeTs: dequantizeMx, decodeWasm: (t) => dequantizeMxWasm(k, t) },
      { name: 'NF4 g64', encode: () => quantizeNf4(w, shape, { group: 64 }), encodeWasm: () => quantizeNf4Wasm(k, w, shape, { group: 64 }), decodeTs: dequantizeNf4, decodeWasm: (t) => dequantizeNf4Wasm(k, t), gemv: (t) => t },
      { name: 'BCQ-3 g128', encode: () => quantizeBcq(w, shape, { bits: 3, group: 128, iterations: 2 }), decodeTs: dequantizeBcq, decodeWasm: (t) => dequantizeBcqWasm(k, t) },
    ];
    const wv = k.upload(w);
    let f32Ms = 0;
    for (const c of cases) {
      ctx.log(`  formats: ${c.name}`);
      let t: unknown;
      const encMs = await ctx.timeRuns(() => {
        t = c.encode();
      }, 1);
      push(`${c.name} encode ${N}×${N}`, 'TypeScript', encMs, encMs, 'TypeScript',
        c.encodeWasm ? undefined : 'TypeScript only: its alternating least squares (scales refit per plane) is not in WASM');
      if (c.encodeWasm) {
        let tw: unknown;
        const encWasm = await ctx.timeRuns(() => {
          tw = c.encodeWasm!();
        }, 3);
        sameEncoding(c.name, t as Encoded, tw as Encoded);
        push(`${c.name} encode ${N}×${N}`, `wasm ${k.variant}`, encWasm, encMs, 'TypeScript', 'one-shot: the f32 matrix is copied into WASM memory per call; output equal to TypeScript\'s');
      }
      const decTs = await ctx.timeRuns(() => c.decodeTs(t as never), 3);
      push(`${c.name} decode ${N}×${N}`, 'TypeScript', decTs, decTs, 'TypeScript');
      push(`${c.name} decode ${N}×${N}`, `wasm ${k.variant}`, await ctx.timeRuns(() => c.decodeWasm(t as never), 5), decTs, 'TypeScript');
      if (c.gemv) {
        const g = c.gemv(t as never);
        const gTs = await ctx.timeRuns(() => gemvPacked(g, x), 3);
        push(`${c.name} GEMV ${N}×${N}`, 'TypeScript', gTs, gTs, 'TypeScript');
        const resident = uploadGemv(k, g);
        push(`${c.name} GEMV ${N}×${N}`, `wasm ${k.variant}, resident`, await ctx.timeRuns(() => resident.gemv(x), 5), gTs, 'TypeScript', 'codes uploaded once (uploadGemv), as model weights are');
        resident.free();
        if (!f32Ms) f32Ms = await ctx.timeRuns(() => k.gemvF32(wv, N, N, x), 5);
        push(`${c.name} GEMV ${N}×${N}`, `f32 GEMV (wasm ${k.variant}, resident)`, f32Ms, gTs, 'TypeScript', 'dense f32 weights already in WASM memory');
      }
    }
    wv.free();
    return rows;
  },
};
