import { type MxFormatName, type PackedIntTensor, quantizeInt, quantizeMx } from '@lowbit/formats';
import { createKernels, f32ToF16 } from '@lowbit/kernels';
import { Linear, type LinearWeight, linearWeightFromPacked } from '@lowbit/runtime';
import type { Area, Context, Row } from './harness.js';

const N = 4096;

/** Bytes the stored (file) form of a packed tensor holds: codes, fp16 scales, zero points at k bits or E8M0 bytes. */
function storedBytes(t: PackedIntTensor | { codes: Uint8Array; scales: Uint8Array; format: MxFormatName }): number {
  if ('kind' in t && t.kind === 'int') return t.codes.byteLength + t.scales.length * 2 + (t.zeros ? Math.ceil((t.zeros.length * t.bits) / 8) : 0);
  const m = t as { codes: Uint8Array; scales: Uint8Array; format: MxFormatName };
  const bits = m.format === 'mxfp4' ? 4 : m.format.startsWith('mxfp6') ? 6 : 8;
  return Math.ceil((m.codes.length * bits) / 8) + m.scales.byteLength;
}

/**
 * lowbit's own tensor types as the runtime runs them (issue #20 item 3), one token through a
 * 4096×4096 layer (Linear.apply, batch 1): GB/s of the type's stored bytes, against Q4_0's prepared
 * tiles in the same run. INT-k and MX that repack exactly onto ggml tiles or the int4 kernel
 * (runtime packed-fast.ts) run there; the rest on the formats' table GEMV.
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
    const cases: { name: string; make: () => PackedIntTensor | ReturnType<typeof quantizeMx> }[] = [
      { name: 'Q4_0 (INT4 g32 sym as Q4_0 blocks)', make: () => int(4, 32) },
      { name: 'INT2 g32 asym', make: () => int(2, 32, false) },
      { name: 'INT3 g32 sym', make: () => int(3, 32) },
      { name: 'INT3 g128 sym', make: () => int(3, 128) },
      { name: 'INT3 g32 asym', make: () => int(3, 32, false) },
      { name: 'INT4 g128 sym', make: () => int(4, 128) },
      { name: 'INT5 g32 sym', make: () => int(5, 32) },
      { name: 'INT8 per-channel sym', make: () => int(8, 0) },
      { name: 'MXFP4', make: () => mx('mxfp4') },
      { name: 'MXFP6 E2M3', make: () => mx('mxfp6_e2m3') },
      { name: 'MXINT8', make: () => mx('mxint8') },
      { name: 'MXFP8 E4M3', make: () => mx('mxfp8_e4m3') },
    ];
    const rows: Row[] = [];
    let baseGbps = 0;
    for (const c of cases) {
      ctx.log(`  lowbit-types: ${c.name}`);
      const t = c.make();
      if (c.name.startsWith('Q4_0')) {
        // the baseline: Q4_0 blocks as a GGUF stores them, prepared into tiles at load
        const lin = new Linear(k, c.name, { format: 'q4_0', shape, data: q4Blocks(t as PackedIntTensor) });
        const ms = await ctx.timeRuns(() => lin.apply(x, 1), 9);
        lin.free();
        baseGbps = (n / 32) * 18 / ms / 1e6;
        rows.push({ area: 'lowbit-types', name: `GEMV ${N}×${N} ${c.name}`, variant: `q4_0 tiles, wasm ${k.variant}`, ms, gbps: baseGbps, ratio: 1, baseline: 'Q4_0 tiles', note: 'stored 4.50 bits/weight' });
        continue;
      }
      const weight: LinearWeight = 'kind' in t && t.kind === 'int' ? linearWeightFromPacked(t) : linearWeightFromPacked(t, { shape });
      const lin = new Linear(k, c.name, weight);
      const ms = await ctx.timeRuns(() => lin.apply(x, 1), weight.format === 'packed' ? 3 : 9);
      lin.free();
      const bytes = storedBytes(t as never);
      const gbps = bytes / ms / 1e6;
      rows.push({
        area: 'lowbit-types', name: `GEMV ${N}×${N} ${c.name}`, variant: `${weight.format === 'packed' ? 'formats GEMV (gemvMxFp8 for MXFP8)' : `${weight.format} tiles/kernel`}, wasm ${k.variant}`,
        ms, gbps, ratio: gbps / baseGbps, baseline: 'Q4_0 tiles (GB/s of stored bytes)',
        note: `stored ${((bytes * 8) / n).toFixed(2)} bits/weight; runs as ${weight.format}`,
      });
    }
    return rows;
  },
};

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
