// The lane GEMM (assembly/ggml-gemm.ts) against the tiled GEMV it replaces, on random prepared
// Q4_0 / Q8_0 matrices, in CPU time (steadier than wall time on a shared machine), outputs compared
// bit for bit. Run from packages/kernels after a build: node scripts/bench-ggml-gemm.mjs [simd|relaxed]
//   prefill: one matrix, 64 tokens, best of 3;
//   decode: one token over enough distinct 5632x2048 matrices (~0.8 GB) to stream past the L3 slice.
import { cpu, loadBuild, xorshift32 } from './bench-common.mjs';

const variant = process.argv[2] ?? 'relaxed';
const k = loadBuild(variant);
const E = k.exports;
const relaxed = variant === 'relaxed';
const rnd32 = xorshift32();

function matrix(type, rows, cols) {
  const per = type === 'q8_0' ? 34 : 18;
  const blocks = new Uint8Array((rows * cols * per) / 32);
  const u32 = new Uint32Array(blocks.buffer, 0, blocks.length >> 2);
  for (let j = 0; j < u32.length; j++) u32[j] = rnd32();
  for (let b = 0; b < (rows * cols) / 32; b++) {
    blocks[b * per] = rnd32() & 0xff;
    blocks[b * per + 1] = 0x20 + (rnd32() & 7); // f16 scales around 2^-7
  }
  return k.prepareGgml(type, blocks, rows, cols);
}

/** Activations of `batch` tokens laid out as matmulGgml lays them out for each path. */
function acts(type, cols, batch) {
  const kind = type === 'q4_0' ? 1 : 0;
  const n = batch * (cols / 32);
  const h = k.heap;
  const a = { kind, xp: h.alloc(cols * batch * 4), xq: h.alloc(n * 32), xq16: h.alloc(n * 160), xs: h.alloc(n * 4), xsum: h.alloc(n * 4), pairs: h.alloc(n * 64) };
  const x = new Float32Array(E.memory.buffer, a.xp, cols * batch);
  for (let i = 0; i < x.length; i++) x[i] = rnd32() / 2 ** 32 - 0.5;
  E.quantize_act_q8(a.xp, cols, batch, a.xq, kind === 1 && !relaxed ? a.xq16 : 0, a.xs, a.xsum);
  if (kind === 1 && relaxed) E.act_splats(a.xs, a.xsum, n, a.xq16, a.xq);
  E.gemm_act_pairs(kind, a.xq, n, a.pairs);
  a.p = kind === 1 && relaxed ? a.xq16 : a.pairs; // what matmulGgml hands the GEMM
  return a;
}

const tiled = (a, w, rows, cols, batch, o) => E.matmul_ggml_tiled(a.kind, w.ptr, rows, cols, a.xq, a.xq16, a.xs, a.xsum, batch, o, 0, rows);
const gemm = (a, w, rows, cols, batch, o) => E.matmul_ggml_gemm(a.kind, w.ptr, rows, cols, a.xq, a.xq16, a.xs, a.xsum, a.p, batch, o, 0, rows);

console.log(`build ${variant}; CPU ms (best of 3), tiled GEMV -> lane GEMM`);
for (const type of ['q4_0', 'q8_0']) {
  for (const [rows, cols] of [[5632, 2048], [2048, 5632]]) {
    const w = matrix(type, rows, cols);
    const batch = 64;
    const a = acts(type, cols, batch);
    const o1 = k.heap.alloc(batch * rows * 4);
    const o2 = k.heap.alloc(batch * rows * 4);
    let t1 = Infinity;
    let t2 = Infinity;
    for (let r = 0; r < 3; r++) {
      t1 = Math.min(t1, cpu(() => tiled(a, w, rows, cols, batch, o1)));
      t2 = Math.min(t2, cpu(() => gemm(a, w, rows, cols, batch, o2)));
    }
    const same = Buffer.compare(Buffer.from(E.memory.buffer, o1, batch * rows * 4), Buffer.from(E.memory.buffer, o2, batch * rows * 4)) === 0;
    console.log(`prefill ${type} ${rows}x${cols} batch ${batch}: ${t1.toFixed(1)} -> ${t2.toFixed(1)} ms (${(t1 / t2).toFixed(2)}x, ${((rows * cols * batch) / t2 / 1e6).toFixed(1)} GMAC/s), same bits: ${same}`);
    w.free();
  }
  const [rows, cols] = [5632, 2048];
  const ws = Array.from({ length: type === 'q4_0' ? 140 : 80 }, () => matrix(type, rows, cols));
  const a = acts(type, cols, 1);
  const o = k.heap.alloc(rows * 4);
  const bytes = ws.reduce((s, w) => s + w.byteLength, 0);
  let t1 = Infinity;
  let t2 = Infinity;
  for (let r = 0; r < 3; r++) {
    t1 = Math.min(t1, cpu(() => { for (const w of ws) tiled(a, w, rows, cols, 1, o); }));
    t2 = Math.min(t2, cpu(() => { for (const w of ws) gemm(a, w, rows, cols, 1, o); }));
  }
  console.log(`decode ${type} ${ws.length} x ${rows}x${cols} (${(bytes / 1e6).toFixed(0)} MB of prepared tiles): ${(bytes / t1 / 1e6).toFixed(1)} -> ${(bytes / t2 / 1e6).toFixed(1)} GB/s`);
  for (const w of ws) w.free();
}
