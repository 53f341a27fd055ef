// Mean squared error and bits per weight of every @lowbit/formats encoding on the real weight
// matrices of the embedded model (stories260K, @lowbit/data). Prints the markdown table of
// packages/formats/README.md. Run after building: node packages/formats/scripts/mse-table.mjs
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import * as F from '@lowbit/formats';

// A few lines of GGUF (v2/v3) reading: the key-value section is skipped value by value, tensor
// infos give name, dims (fastest first), type and offset; data starts at general.alignment (32).
// @lowbit/runtime has the full reader, but formats must not depend on runtime (runtime uses formats).
function readF32Matrices(buf) {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = 0;
  const u32 = () => ((o += 4), v.getUint32(o - 4, true));
  const u64 = () => ((o += 8), Number(v.getBigUint64(o - 8, true)));
  const str = () => { const n = u64(); o += n; return new TextDecoder().decode(buf.subarray(o - n, o)); };
  const SIZE = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const skip = (type) => {
    if (type === 8) str();
    else if (type === 9) { const et = u32(); const n = u64(); for (let i = 0; i < n; i++) skip(et); }
    else if (SIZE[type]) o += SIZE[type];
    else throw new Error(`GGUF: unknown value type ${type} at byte ${o}`);
  };
  if (u32() !== 0x46554747) throw new Error('not a GGUF file');
  u32(); // version
  const nt = u64();
  const nkv = u64();
  let align = 32;
  for (let i = 0; i < nkv; i++) {
    const key = str();
    const type = u32();
    if (key === 'general.alignment' && type === 4) align = u32();
    else skip(type);
  }
  const infos = [];
  for (let i = 0; i < nt; i++) {
    const name = str();
    const dims = Array.from({ length: u32() }, u64);
    infos.push({ name, dims, type: u32(), offset: u64() });
  }
  const base = Math.ceil(o / align) * align;
  return infos.filter((t) => t.dims.length === 2 && t.type === 0).map((t) => {
    const [cols, rows] = t.dims;
    const w = new Float32Array(rows * cols);
    new Uint8Array(w.buffer).set(buf.subarray(base + t.offset, base + t.offset + rows * cols * 4));
    return { name: t.name, rows, cols, w };
  });
}

const mats = readF32Matrices(new Uint8Array(await readFile(fileURLToPath(defaultModelUrl))));
const F32 = 32;

// Every format: `run` quantizes and decodes one matrix; `bits(rows, cols)` counts what is stored
// (codes, fp16 INT-k scales and packed zero points, f32 scales elsewhere, E8M0 block scales, tables), so it can also be evaluated for
// a 4096×4096 layer, where per-row tables cost far less than on this model's 64-wide rows.
const mx = (format, elemBits) => ({
  name: format, family: 'MX block',
  run: (w) => F.dequantizeMx(F.quantizeMx(w, { format })),
  bits: (r, c) => r * c * elemBits + Math.ceil((r * c) / 32) * 8,
});
const int = (bits, granularity, group, { symmetric = true, clipSearch = false } = {}) => ({
  name: `int${bits} ${{ 'per-oc': 'per-OC', 'per-ic': 'per-IC', 'group-cols': `g${group}`, 'group-rows': `g${group} along OC` }[granularity]}${symmetric ? '' : ' asym'}${clipSearch ? ' clip-search' : ''}`,
  family: 'integer',
  run: (w, r, c) => {
    const o = { bits, granularity, group, symmetric };
    return F.dequantizeInt(clipSearch ? F.quantizeIntClipSearch(w, [r, c], o) : F.quantizeInt(w, [r, c], o));
  },
  bits: (r, c) => {
    const n = { 'per-oc': r, 'per-ic': c, 'group-cols': r * Math.ceil(c / group), 'group-rows': Math.ceil(r / group) * c }[granularity];
    // as LB_INT* / LBPT store it: codes (rows byte-aligned), fp16 scales, zeros packed at `bits`
    return 8 * F.intSections({ rows: r, cols: c, bits, count: n, symmetric, group: group ?? c, gIdx: false }).total;
  },
});
// A plain element format with one f32 absmax scale per output channel (w/s lands on the format's range).
const scaled = (name) => {
  const f = F.getFormat(name);
  return {
    name: `${name} per-OC scale`, family: 'minifloat',
    run: (w, r, c) => {
      const out = new Float32Array(w.length);
      for (let i = 0; i < r; i++) {
        const row = w.subarray(i * c, (i + 1) * c);
        const amax = row.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
        const s = Math.fround(amax / f.max);
        const d = f.decode(f.encode(row.map((x) => x / s), { saturate: true }));
        for (let j = 0; j < c; j++) out[i * c + j] = d[j] * s;
      }
      return out;
    },
    bits: (r, c) => r * c * f.bits + r * F32,
  };
};
const cast = (name) => ({ name: `${name} (cast)`, family: 'minifloat', run: (w) => F.getFormat(name).decode(F.getFormat(name).encode(w)), bits: (r, c) => r * c * 16 });

const fmts = [
  cast('bf16'), cast('fp16'),
  int(8, 'per-oc'), mx('mxint8', 8), mx('mxfp8_e4m3', 8), mx('mxfp8_e5m2', 8), scaled('fp8_e4m3'), scaled('fp8_e5m2'),
  mx('mxfp6_e2m3', 6), mx('mxfp6_e3m2', 6), scaled('fp6_e2m3'), scaled('fp6_e3m2'), int(6, 'group-cols', 32),
  int(4, 'group-cols', 32), int(4, 'group-cols', 32, { symmetric: false }), int(4, 'group-cols', 32, { clipSearch: true }), int(4, 'group-cols', 128),
  int(4, 'per-oc'), int(4, 'per-ic'), int(4, 'group-rows', 32), mx('mxfp4', 4), scaled('fp4_e2m1'),
  { name: 'nf4 g64', family: 'codebook', run: (w, r, c) => F.dequantizeNf4(F.quantizeNf4(w, [r, c], { group: 64 })), bits: (r, c) => r * c * 4 + r * Math.ceil(c / 64) * F32 },
  { name: 'nf4 g32', family: 'codebook', run: (w, r, c) => F.dequantizeNf4(F.quantizeNf4(w, [r, c], { group: 32 })), bits: (r, c) => r * c * 4 + r * Math.ceil(c / 32) * F32 },
  ...[4, 3].map((b) => ({ name: `codebook ${b}-bit per-OC (k-means)`, family: 'codebook', run: (w, r, c) => F.dequantizeCodebook(F.quantizeCodebook(w, [r, c], { bits: b })), bits: (r, c) => r * c * b + r * 2 ** b * F32 })),
  int(3, 'group-cols', 32), int(3, 'per-oc'), int(3, 'group-cols', 32, { clipSearch: true }),
  ...[4, 3, 2].map((b) => ({ name: `bcq ${b} g32`, family: 'binary coding', run: (w, r, c) => F.dequantizeBcq(F.quantizeBcq(w, [r, c], { bits: b, group: 32 })), bits: (r, c) => r * c * b + r * Math.ceil(c / 32) * b * F32 })),
  int(2, 'group-cols', 32, { symmetric: false }),
  ...[6, 5, 4, 3].map((b) => ({ name: `any-precision ${b} of 3..6`, family: 'any-precision', anyBits: b, bits: (r, c) => r * c * b + r * 2 ** b * F32 })),
];

const out = [];
const anyCache = new Map();
for (const f of fmts) {
  let se = 0;
  let sq = 0;
  let n = 0;
  let bits = 0;
  for (const m of mats) {
    let d;
    if (f.anyBits) {
      let t = anyCache.get(m.name);
      if (!t) anyCache.set(m.name, (t = F.quantizeAnyPrecision(m.w, [m.rows, m.cols], { seedBits: 3, maxBits: 6 })));
      d = F.readAnyPrecision(t, f.anyBits); // one stored model; b bits read b planes and the b-bit tables
    } else d = f.run(m.w, m.rows, m.cols);
    for (let i = 0; i < d.length; i++) {
      se += (d[i] - m.w[i]) ** 2;
      sq += m.w[i] ** 2;
    }
    n += d.length;
    bits += f.bits(m.rows, m.cols);
  }
  out.push({ name: f.name, family: f.family, bpw: bits / n, bpw4k: f.bits(4096, 4096) / 4096 ** 2, mse: se / n, rel: se / sq });
}
out.sort((a, b) => b.bpw4k - a.bpw4k || a.mse - b.mse);
console.log('| format | family | bits/weight here | bits/weight at 4096×4096 | MSE | MSE / mean w² |');
console.log('|---|---|---:|---:|---:|---:|');
for (const r of out) console.log(`| ${r.name} | ${r.family} | ${r.bpw.toFixed(3)} | ${r.bpw4k.toFixed(3)} | ${r.mse.toExponential(3)} | ${r.rel.toExponential(3)} |`);
console.log(`\n${mats.length} matrices, ${mats.reduce((s, m) => s + m.rows * m.cols, 0)} weights.`);
