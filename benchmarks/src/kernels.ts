import { GGML_BLOCK_BYTES, createKernelPool, createKernels, type Kernels, type KernelVariant, reference } from '@lowbit/kernels';
import { type Area, type Context, type Row, ratioRows } from './harness.js';

const N = 4096;
const GROUP = 128;

function fill(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return a;
}

/** A plain TypeScript f32 GEMV as a user would write it (the baseline every WASM row is divided by). */
function tsGemvF32(w: Float32Array, rows: number, cols: number, x: Float32Array, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    out[r] = s;
  }
}

/** Plain TypeScript int4 group GEMV on f32 activations (dequantize on the fly). */
function tsGemvQ4(packed: Uint8Array, scales: Float32Array, rows: number, cols: number, group: number, x: Float32Array, out: Float32Array): void {
  const rowBytes = cols >> 1;
  const ng = cols / group;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let g = 0; g < ng; g++) {
      let gs = 0;
      const base = r * rowBytes + (g * group) / 2;
      for (let j = 0; j < group / 2; j++) {
        const b = packed[base + j];
        gs += ((b & 15) - 8) * x[g * group + 2 * j] + ((b >> 4) - 8) * x[g * group + 2 * j + 1];
      }
      s += gs * scales[r * ng + g];
    }
    out[r] = s;
  }
}

async function variants(): Promise<Kernels[]> {
  const out: Kernels[] = [];
  for (const v of ['relaxed', 'simd', 'scalar'] as KernelVariant[]) {
    try {
      out.push(await createKernels({ variant: v }));
    } catch {
      // a build this host cannot run has no row
    }
  }
  return out;
}

export const kernelsArea: Area = {
  name: 'kernels',
  async run(ctx: Context): Promise<Row[]> {
    const rows: Row[] = [];
    const ks = await variants();
    const w = fill(N * N, 1);
    const x = fill(N, 2);
    const out = new Float32Array(N);
    const wBytes = N * N * 4;

    // Bandwidth ceiling: memory.copy of the f32 weight matrix's size inside WASM memory.
    {
      const k = ks[0];
      const src = k.heap.alloc(wBytes);
      const dst = k.heap.alloc(wBytes);
      const ms = await ctx.measure(() => k.exports.copy_bytes(dst, src, wBytes));
      const readMs = await ctx.measure(() => k.exports.read_bytes(src, wBytes));
      k.heap.free(dst);
      k.heap.free(src);
      rows.push(
        ...ratioRows('kernels', `memory bandwidth, ${wBytes / 2 ** 20} MiB`, [
          { variant: 'wasm memory.copy', ms, bytes: wBytes, note: 'bytes copied per second (each also written)' },
          { variant: 'wasm read', ms: readMs, bytes: wBytes, note: 'bytes read per second (read_bytes): the ceiling for a decode GEMV, which only reads' },
        ]),
      );
    }

    // f32 GEMV 4096×4096: weights resident in WASM memory, as a runtime keeps them.
    {
      const m = [{ variant: 'plain TypeScript', ms: await ctx.measure(() => tsGemvF32(w, N, N, x, out)), bytes: wBytes, flops: 2 * N * N }];
      for (const k of ks) {
        const t = k.upload(w);
        m.push({ variant: `wasm ${k.variant}`, ms: await ctx.measure(() => k.gemvF32(t, N, N, x, out)), bytes: wBytes, flops: 2 * N * N });
        t.free();
      }
      rows.push(...ratioRows('kernels', `f32 GEMV ${N}×${N}`, m));
    }

    // int4 group-128 GEMV 4096×4096: GB/s of packed weights (scales excluded).
    {
      const packed = new Uint8Array(N * (N / 2));
      for (let i = 0; i < packed.length; i++) packed[i] = (i * 2654435761) >>> 24;
      const scales = fill((N * N) / GROUP, 3).map((v) => Math.abs(v) * 0.01 + 0.001);
      const pBytes = packed.length;
      const m = [{ variant: 'plain TypeScript', ms: await ctx.measure(() => tsGemvQ4(packed, scales, N, N, GROUP, x, out)), bytes: pBytes, flops: 2 * N * N }];
      for (const k of ks) {
        const tp = k.upload(packed);
        const ts = k.upload(scales);
        m.push({ variant: `wasm ${k.variant}`, ms: await ctx.measure(() => k.gemvQ4(tp, ts, null, N, N, GROUP, x, out)), bytes: pBytes, flops: 2 * N * N });
        tp.free();
        ts.free();
      }
      rows.push(...ratioRows('kernels', `int4 g${GROUP} GEMV ${N}×${N}`, m));
    }

    // Threads: the same GEMVs split by rows over a pool sharing one memory, 1 thread vs 2.
    {
      const packed = new Uint8Array(N * (N / 2));
      for (let i = 0; i < packed.length; i++) packed[i] = (i * 2654435761) >>> 24;
      const scales = fill((N * N) / GROUP, 3).map((v) => Math.abs(v) * 0.01 + 0.001);
      const single = ks[0];
      const pool = await createKernelPool({ threads: 2 });
      for (const [name, bytes, make] of [
        [`f32 GEMV ${N}×${N}`, wBytes, (k: Kernels) => { const t = k.upload(w); return { run: () => k.gemvF32(t, N, N, x, out), free: () => t.free() }; }],
        [`int4 g${GROUP} GEMV ${N}×${N}`, packed.length, (k: Kernels) => {
          const tp = k.upload(packed);
          const ts = k.upload(scales);
          return { run: () => k.gemvQ4(tp, ts, null, N, N, GROUP, x, out), free: () => { tp.free(); ts.free(); } };
        }],
      ] as const) {
        const m = [];
        for (const [label, k] of [[`1 thread (${single.variant})`, single], [`2 threads (${pool.variant})`, pool]] as const) {
          const job = make(k);
          m.push({ variant: label, ms: await ctx.measure(job.run), bytes });
          job.free();
        }
        rows.push(...ratioRows('kernels', `${name}, threads`, m));
      }
      await pool.close();
    }

    // llama.cpp block types through the same loader (what the runtime streams per decoded token).
    for (const type of ['q8_0', 'q4_0', 'q4_1'] as const) {
      const bytes = (N * N * reference.GGML_BLOCK_BYTES[type]) / 32;
      const blocks = new Uint8Array(bytes);
      for (let i = 0; i < bytes; i++) blocks[i] = (i * 2654435761) >>> 24;
      const view = new DataView(blocks.buffer);
      for (let o = 0; o < bytes; o += reference.GGML_BLOCK_BYTES[type]) view.setUint16(o, 0x2000, true);
      const m = [];
      for (const k of ks) {
        const t = k.upload(blocks);
        m.push({ variant: `wasm ${k.variant}`, ms: await ctx.measure(() => k.matmulGgml(type, t, N, N, x, 1, out)), bytes, flops: 2 * N * N });
        t.free();
        if (k.variant === 'scalar') continue;
        // Tiles repacked once at load (what the runtime decodes with): GB/s of the bytes it streams,
        // f32 scales included (Q4_0 20 B per block instead of 18).
        const p = k.prepareGgml(type, blocks, N, N);
        m.push({ variant: `wasm ${k.variant}, prepared tiles`, ms: await ctx.measure(() => k.matmulGgml(type, p, N, N, x, 1, out)), bytes: p.byteLength, flops: 2 * N * N });
        p.free();
      }
      rows.push(...ratioRows('kernels', `${type} GEMV ${N}×${N}`, m.reverse()));
    }
    // Prefill: batch 64 through the same matmuls (what a prompt or a perplexity window costs).
    {
      const R = 2048;
      const C = 2048;
      const B = 64;
      const xb = fill(B * C, 4);
      const ob = new Float32Array(B * R);
      const wf = fill(R * C, 5);
      const blocks = new Uint8Array((R * C * GGML_BLOCK_BYTES.q4_0) / 32);
      for (let i = 0; i < blocks.length; i++) blocks[i] = (i * 2654435761) >>> 24;
      const view = new DataView(blocks.buffer);
      for (let o = 0; o < blocks.length; o += GGML_BLOCK_BYTES.q4_0) view.setUint16(o, 0x2000, true);
      for (const [name, data, run] of [
        [`f32 matmul ${R}×${C} batch ${B}`, wf, (k: Kernels, t: ReturnType<Kernels['upload']>) => k.matmulF32(t, R, C, xb, B, ob)],
        [`q4_0 matmul ${R}×${C} batch ${B}`, blocks, (k: Kernels, t: ReturnType<Kernels['upload']>) => k.matmulQ4_0(t, R, C, xb, B, ob)],
      ] as const) {
        const m = [];
        for (const k of [...ks].reverse()) {
          const t = k.upload(data);
          const ms = k.variant === 'scalar' ? await ctx.timeRuns(() => run(k, t), 3) : await ctx.measure(() => run(k, t));
          m.push({ variant: `wasm ${k.variant}`, ms, flops: 2 * R * C * B });
          t.free();
        }
        rows.push(...ratioRows('kernels', name, m));
      }
    }
    return rows;
  },
};
