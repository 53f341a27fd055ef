// Mean squared error and bits per weight of every @lowbit/formats encoding on the real weight
// matrices of the embedded model (stories260K). Prints the markdown table of packages/formats/README.md.
//   node tools/formats-mse-table.mjs
import { fileURLToPath } from 'node:url';
import { defaultModelUrl } from '@lowbit/data';
import * as F from '@lowbit/formats';
import { readGguf, readTensorBytes, toF32 } from '@lowbit/runtime';

const file = await readGguf(fileURLToPath(defaultModelUrl));
const mats = [];
for (const t of file.tensors.values()) {
  if (t.shape.length !== 2) continue;
  const [cols, rows] = t.shape; // GGUF lists the fastest dimension first
  mats.push({ name: t.name, rows, cols, w: toF32(t.type, await readTensorBytes(file, t.name), rows * cols) });
}
await file.source.close();

const F32 = 32;
const mx = (format, elemBits) => ({
  name: format, run: (w, rows, cols) => ({ d: F.dequantizeMx(F.quantizeMx(w, { format })), bits: rows * cols * elemBits + Math.ceil((rows * cols) / 32) * 8 }),
});
const int = (bits, granularity, group, symmetric = true) => ({
  name: `int${bits} ${granularity === 'per-oc' ? 'per-channel' : `g${group}`}${symmetric ? '' : ' asym'}`,
  run: (w, rows, cols) => {
    const t = F.quantizeInt(w, [rows, cols], { bits, granularity, group, symmetric });
    return { d: F.dequantizeInt(t), bits: rows * cols * bits + t.scales.length * F32 * (symmetric ? 1 : 2) };
  },
});
const fmts = [
  int(8, 'per-oc'), int(4, 'group-cols', 32), int(4, 'group-cols', 32, false), int(4, 'per-oc'), int(3, 'group-cols', 32), int(3, 'per-oc'), int(2, 'group-cols', 32, false),
  mx('mxint8', 8), mx('mxfp8_e4m3', 8), mx('mxfp8_e5m2', 8), mx('mxfp6_e3m2', 6), mx('mxfp6_e2m3', 6), mx('mxfp4', 4),
  { name: 'nf4 g64', run: (w, rows, cols) => { const t = F.quantizeNf4(w, [rows, cols], { group: 64 }); return { d: F.dequantizeNf4(t), bits: rows * cols * 4 + t.scales.length * F32 }; } },
  ...[4, 3].map((b) => ({ name: `codebook ${b}-bit per-channel`, run: (w, rows, cols) => ({ d: F.dequantizeCodebook(F.quantizeCodebook(w, [rows, cols], { bits: b })), bits: rows * cols * b + rows * 2 ** b * F32 }) })),
  ...[4, 3, 2].map((b) => ({ name: `bcq ${b} g32`, run: (w, rows, cols) => ({ d: F.dequantizeBcq(F.quantizeBcq(w, [rows, cols], { bits: b, group: 32 })), bits: rows * cols * b + rows * Math.ceil(cols / 32) * b * F32 }) })),
  ...[6, 5, 4, 3].map((b) => ({ name: `any-precision ${b} of 3..6`, anyBits: b })),
];

const rows = [];
const anyCache = new Map();
for (const f of fmts) {
  let se = 0;
  let n = 0;
  let bits = 0;
  let sq = 0;
  const t0 = performance.now();
  for (const m of mats) {
    let d;
    let b;
    if (f.anyBits) {
      let t = anyCache.get(m.name);
      if (!t) anyCache.set(m.name, (t = F.quantizeAnyPrecision(m.w, [m.rows, m.cols], { seedBits: 3, maxBits: 6 })));
      d = F.readAnyPrecision(t, f.anyBits);
      // One stored model: reading b bits touches b planes and the b-bit tables.
      b = m.rows * m.cols * f.anyBits + m.rows * 2 ** f.anyBits * F32;
    } else ({ d, bits: b } = f.run(m.w, m.rows, m.cols));
    for (let i = 0; i < d.length; i++) {
      se += (d[i] - m.w[i]) ** 2;
      sq += m.w[i] ** 2;
    }
    n += d.length;
    bits += b;
  }
  rows.push({ name: f.name, bpw: bits / n, mse: se / n, rel: se / sq, ms: performance.now() - t0 });
}
console.log(`| format | bits/weight (as stored) | MSE | MSE / mean w² |`);
console.log(`|---|---:|---:|---:|`);
for (const r of rows) console.log(`| ${r.name} | ${r.bpw.toFixed(3)} | ${r.mse.toExponential(3)} | ${r.rel.toExponential(3)} |`);
console.log(`\n${mats.length} matrices, ${mats.reduce((s, m) => s + m.rows * m.cols, 0)} weights.`);
