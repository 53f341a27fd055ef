// Writes assembly/ggml-gemm-kernels.ts: the prefill GEMM's micro-kernels (ggml-gemm.ts), unrolled.
// Run after changing this file: node scripts/gen-ggml-gemm.mjs (the output is committed; the
// AssemblyScript build does not run this). Unrolled by hand because binaryen keeps the short loops
// over lane vectors and planes, whose branches and loop-carried registers V8 then spills. The
// activation pairs are addressed as p + constant in wasm, not by a load's offset immediate: V8 11
// (Node 20) hoists each (memory base + immediate) out of the loop into its own register and spills
// them (Q4_0 5632x2048 at batch 64: 24.7 -> 27.3 GMAC/s, CPU time on a busy machine).
import { writeFileSync, renameSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const L = [];
const e = (s) => L.push(s);
const lanes = ['v128.shuffle<i32>(t0, t1, 0, 1, 4, 5)', 'v128.shuffle<i32>(t0, t1, 2, 3, 6, 7)', 'v128.shuffle<i32>(t2, t3, 0, 1, 4, 5)', 'v128.shuffle<i32>(t2, t3, 2, 3, 6, 7)'];
function kernel(kind, T) {
  const q4 = kind === 'q4';
  const name = `${kind}x${T}`;
  e(`// ${q4 ? 'Q4_0' : 'Q8_0'}, ${T} token${T > 1 ? 's' : ''} (entries b..b+${T - 1} of each block) against one full tile.`);
  e('// @ts-ignore: decorator');
  e(`@inline export function ${name}(tile: usize, nblk: i32, pairs: usize, xs: usize, xsum: usize, batch: i32, b: i32, out: usize, rows: i32, r: i32): void {`);
  for (let t = 0; t < T; t++) e(`  let acc${t} = f32x4.splat(0);`);
  e('  let e = <usize>b;');
  e('  let rec = tile;');
  if (T === 1) e('  const o = out + ((<usize>b * <usize>rows + <usize>r) << 2);');
  e(`  for (let k = 0; k < nblk; k++, rec += ${q4 ? 80 : 144}, e += <usize>batch) {`);
  e('    const p = pairs + (e << 6);');
  for (let t = 0; t < T; t++) e(`    let s${t}: v128;`);
  let first = true;
  const halves = q4 ? [0] : [0, 1];
  for (const h of halves) {
    const base = q4 ? 16 : 16 + 16 * h;
    const st = q4 ? 16 : 32;
    e(`    {`);
    e(`      const v0 = v128.load(rec, ${base}), v1 = v128.load(rec, ${base + st}), v2 = v128.load(rec, ${base + 2 * st}), v3 = v128.load(rec, ${base + 3 * st});`);
    e('      const t0 = v128.shuffle<i32>(v0, v1, 0, 4, 1, 5), t1 = v128.shuffle<i32>(v2, v3, 0, 4, 1, 5);');
    e('      const t2 = v128.shuffle<i32>(v0, v1, 2, 6, 3, 7), t3 = v128.shuffle<i32>(v2, v3, 2, 6, 3, 7);');
    for (let m = 0; m < 4; m++) {
      e(`      const c${m} = ${lanes[m]};`);
    }
    for (let m = 0; m < 4; m++) {
      const planes = q4
        ? [`v128.and(c${m}, i16x8.splat(0x000f))`, `v128.and(c${m}, i16x8.splat(0x0f00))`, `v128.and(c${m}, i16x8.splat(0x00f0))`, `i16x8.shr_u(c${m}, 12)`]
        : [`i16x8.shl(c${m}, 8)`, `v128.and(c${m}, i16x8.splat(<i16>0xff00))`];
      planes.forEach((pl, j) => {
        e(`      {`);
        e(`        const w = ${pl};`);
        const off = q4 ? m * 16 + j * 4 : (h * 4 + m) * 8 + j * 4;
        for (let t = 0; t < T; t++) {
          const x = `i32x4.dot_i16x8_s(w, v128.load32_splat(p + ${off + 64 * t}))`;
          e(first ? `        s${t} = ${x};` : `        s${t} = i32x4.add(s${t}, ${x});`);
        }
        first = false;
        e(`      }`);
      });
      // One token: a partial dot stored into the output slot (overwritten by the result) pins V8 11's
      // schedule, which otherwise issues the block's loads first and spills (kernels README).
      if (T === 1 && ((q4 && m === 1) || (!q4 && (m === 1 || (h === 0 && m === 3))))) e('      v128.store(o, s0);');
    }
    e(`    }`);
  }
  e('    const d4 = v128.load(rec);');
  e('    const ex = xs + (e << 2);');
  if (q4) e('    const es = xsum + (e << 2);');
  for (let t = 0; t < T; t++) {
    if (q4) {
      e(`    acc${t} = f32x4.add(acc${t}, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(s${t}, i32x4.shl(v128.load32_splat(es, ${4 * t}), 11))), f32x4.mul(d4, f32x4.mul(v128.load32_splat(ex, ${4 * t}), f32x4.splat(0.00390625)))));`);
    } else {
      e(`    acc${t} = f32x4.add(acc${t}, f32x4.mul(f32x4.convert_i32x4_s(i32x4.shr_s(s${t}, 8)), f32x4.mul(d4, v128.load32_splat(ex, ${4 * t}))));`);
    }
  }
  e('  }');
  if (T !== 1) e('  const o = out + ((<usize>b * <usize>rows + <usize>r) << 2);');
  for (let t = 0; t < T; t++) e(`  v128.store(o + <usize>${t} * (<usize>rows << 2), acc${t});`);
  e('}');
  e('');
}
// Relaxed builds, Q4_0: the records are already by lanes (ggml-tiled.ts laneLayout) and the entries are
// act_splats records (160 B: dx as f32x4 at +0, 8·Σx as i32x4 at +16, the codes four at a time
// broadcast at +32 (elements 0..15) and +96 (16..31)), the decode GEMV's laneDots per token with the
// nibble split shared by the tokens (kind 4, matmul_ggml_gemm).
function relaxedQ4(T) {
  const name = `q4rvx${T}`;
  e(`// Q4_0 on the relaxed build's lane records, ${T} token${T > 1 ? 's' : ''} (entries b..b+${T - 1} of each block), by the accumulating dot.`);
  e('// @ts-ignore: decorator');
  e(`@inline export function ${name}(tile: usize, nblk: i32, sp: usize, batch: i32, b: i32, out: usize, rows: i32, r: i32): void {`);
  e('  if (!ASC_FEATURE_RELAXED_SIMD) return;');
  for (let t = 0; t < T; t++) e(`  let acc${t} = f32x4.splat(0);`);
  e('  let e = <usize>b;');
  e('  let rec = tile;');
  e('  for (let k = 0; k < nblk; k++, rec += 80, e += <usize>batch) {');
  e('    const p = sp + e * 160;');
  for (let t = 0; t < T; t++) e(`    let s${t} = i32x4.splat(0), u${t} = i32x4.splat(0);`);
  for (let m = 0; m < 4; m++) {
    e('    {');
    e(`      const c = v128.load(rec + ${16 + 16 * m});`);
    e('      const lo = v128.and(c, i8x16.splat(0x0f));');
    e('      const hi = v128.and(i16x8.shr_u(c, 4), i8x16.splat(0x0f));');
    for (let t = 0; t < T; t++) {
      // low and high nibbles in two chains: half the latency of one chain of eight dots
      e(`      s${t} = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(p + ${160 * t + 32 + 16 * m}), lo, s${t});`);
      e(`      u${t} = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load(p + ${160 * t + 96 + 16 * m}), hi, u${t});`);
    }
    e('    }');
  }
  e('    const d4 = v128.load(rec);');
  for (let t = 0; t < T; t++) {
    const dots = `i32x4.add(s${t}, u${t})`;
    e(`    acc${t} = f32x4.add(acc${t}, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(${dots}, v128.load(p + ${160 * t + 16}))), f32x4.mul(d4, v128.load(p + ${160 * t}))));`);
  }
  e('  }');
  e('  const o = out + ((<usize>b * <usize>rows + <usize>r) << 2);');
  for (let t = 0; t < T; t++) e(`  v128.store(o + <usize>${t} * (<usize>rows << 2), acc${t});`);
  e('}');
  e('');
}
// One token with compact activations: the codes by 32-bit broadcast loads from the int8 codes (xq,
// 32 B per entry), the scale and 8·code sum splatted from xs and xsum (4 B each), where the act_splats
// records hold: the same values, 40 of 160 bytes per block (ggml-gemm.ts has the
// measurements).
// MXFP4 (kind 5): the same records and activations, each nibble u looked up as 2·fp4(u) + 16 (4..28,
// unsigned: the relaxed dot's 7-bit operand) by one swizzle, the offset taken out as 16·Σx. Low and
// high nibbles keep separate i16 sums (four dots of ≤ 2·28·127 each: ≤ 28448), one widening each.
const FP4_LUT = [0, 1, 2, 3, 4, 6, 8, 12].map((v) => 16 + v).concat([0, 1, 2, 3, 4, 6, 8, 12].map((v) => 16 - v));
// NF4 (kind 6): QLoRA's 16 levels (Dettmers et al. 2023, their published table) as 7-bit integers
// round(63·v + 64): 1..127, with −1, 0 and 1 exact, so a weight moves by at most absmax/126. The
// offset is taken out as 64·Σx. A dot's pair sums reach 2·127·127 = 32258, so no second dot fits in
// the same i16 lane: each is widened by a pairwise i16 → i32 dot with ones and added to one i32 sum.
// The accumulating relaxed dot (i32x4.relaxed_dot_i8x16_i7x16_add_s) does the same in one
// instruction where an engine lowers it to VNNI, but Node 20 chains its three and the kernel took
// 1.81× Q4_0's time against 1.48× (4096×4096, one token, CPU time, one A/B). The record's f32 scales
// are the blocks' absmax; 1/63 scales the sums once, at the end.
const NF4 = [-1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1];
const NF4_LUT = NF4.map((v) => Math.round(63 * v + 64));
const COMPACT = {
  q4: { tag: 'r', title: 'Q4_0', lut: null, shift: 3 },
  mxfp4: { tag: 'l', title: 'MXFP4', lut: FP4_LUT, shift: 4 },
  nf4: { tag: 'n', title: 'NF4', lut: NF4_LUT, shift: 6 },
};
function relaxedQ4Compact(T, mode = 'q4') {
  const { tag, title, lut, shift } = COMPACT[mode];
  const wide = mode === 'nf4';
  const name = `q4${tag}cx${T}`;
  e(`// ${title} on the relaxed build's lane records, ${T} token${T > 1 ? 's' : ''} (entries b..b+${T - 1} of each block), compact activations.`);
  e('// @ts-ignore: decorator');
  e(`@inline export function ${name}(tile: usize, nblk: i32, xq: usize, xs: usize, xsum: usize, batch: i32, b: i32, out: usize, rows: i32, r: i32): void {`);
  e('  if (!ASC_FEATURE_RELAXED_SIMD) return;');
  if (lut) e(`  const lut = i8x16(${lut.join(', ')});`);
  for (let t = 0; t < T; t++) e(`  let acc${t} = f32x4.splat(0);`);
  e('  let e = <usize>b;');
  e('  let rec = tile;');
  e('  const o = out + ((<usize>b * <usize>rows + <usize>r) << 2);');
  e('  for (let k = 0; k < nblk; k++, rec += 80, e += <usize>batch) {');
  e('    const x = xq + (e << 5);');
  for (let t = 0; t < T; t++) e(wide ? `    let s${t} = i32x4.splat(0);` : lut ? `    let s${t}: v128, u${t}: v128;` : `    let s${t}: v128;`);
  for (let m = 0; m < 4; m++) {
    e('    {');
    e(`      const c = v128.load(rec + ${16 + 16 * m});`);
    if (lut) {
      e('      const lo = i8x16.relaxed_swizzle(lut, v128.and(c, i8x16.splat(0x0f)));');
      e('      const hi = i8x16.relaxed_swizzle(lut, v128.and(i16x8.shr_u(c, 4), i8x16.splat(0x0f)));');
    } else {
      e('      const lo = v128.and(c, i8x16.splat(0x0f));');
      e('      const hi = v128.and(i16x8.shr_u(c, 4), i8x16.splat(0x0f));');
    }
    for (let t = 0; t < T; t++) {
      const xl = `v128.load32_splat(x + ${32 * t + 4 * m})`;
      const xh = `v128.load32_splat(x + ${32 * t + 16 + 4 * m})`;
      const dl = `i16x8.relaxed_dot_i8x16_i7x16_s(${xl}, lo)`;
      const dh = `i16x8.relaxed_dot_i8x16_i7x16_s(${xh}, hi)`;
      if (wide) {
        e(`      s${t} = i32x4.add(s${t}, i32x4.add(i32x4.dot_i16x8_s(${dl}, i16x8.splat(1)), i32x4.dot_i16x8_s(${dh}, i16x8.splat(1))));`);
      } else if (lut) {
        e(m === 0 ? `      s${t} = ${dl};` : `      s${t} = i16x8.add(s${t}, ${dl});`);
        e(m === 0 ? `      u${t} = ${dh};` : `      u${t} = i16x8.add(u${t}, ${dh});`);
      } else {
        const x = `i16x8.add(${dl}, ${dh})`;
        e(m === 0 ? `      s${t} = ${x};` : `      s${t} = i16x8.add(s${t}, ${x});`);
      }
    }
    e('    }');
    // one token: the partial-dot store of kernel() above
    if (T === 1 && m === 1) {
      e('    v128.store(o, s0);');
      if (lut && !wide) e('    v128.store(o, u0);');
    }
  }
  e('    const d4 = v128.load(rec);');
  e('    const ex = xs + (e << 2);');
  e('    const es = xsum + (e << 2);');
  for (let t = 0; t < T; t++) {
    const dots = wide ? `s${t}` : lut ? `i32x4.add(i32x4.dot_i16x8_s(s${t}, i16x8.splat(1)), i32x4.dot_i16x8_s(u${t}, i16x8.splat(1)))` : `i32x4.dot_i16x8_s(s${t}, i16x8.splat(1))`;
    const dx = `v128.load32_splat(ex + ${4 * t})`;
    e(`    acc${t} = f32x4.add(acc${t}, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(${dots}, i32x4.shl(v128.load32_splat(es + ${4 * t}), ${shift}))), f32x4.mul(d4, ${dx})));`);
  }
  e('  }');
  for (let t = 0; t < T; t++) e(wide ? `  v128.store(o + <usize>${t} * (<usize>rows << 2), f32x4.mul(acc${t}, f32x4.splat(<f32>1 / 63)));` : `  v128.store(o + <usize>${t} * (<usize>rows << 2), acc${t});`);
  e('}');
  e('');
}
// Q5_0 (kind 7, relaxed builds): Q4_0's lane records plus 16 bytes of high bits at +80 (96-byte
// records), byte lane (i, t) holding, for code vector m, bit 2m = bit 4 of element 4m + t of row i and
// bit 2m + 1 = that of element 16 + 4m + t; each is shifted to bit 4 (a 16-bit shift by 4 − 2m or 3 − 2m:
// the bits crossing from the neighbouring byte land below bit 4 or above it), masked and or-ed into the
// nibble. Codes 0..31 against int8 activations: four dots' i16 pair sums reach 4·2·31·127 = 31496, so
// low and high nibbles keep separate sums, as MXFP4's do; 16·Σx is taken out.
function relaxedQ5Compact(T) {
  const name = `q5cx${T}`;
  e(`// Q5_0 on the relaxed build's lane records, ${T} token${T > 1 ? 's' : ''} (entries b..b+${T - 1} of each block), compact activations.`);
  e('// @ts-ignore: decorator');
  e(`@inline export function ${name}(tile: usize, nblk: i32, xq: usize, xs: usize, xsum: usize, batch: i32, b: i32, out: usize, rows: i32, r: i32): void {`);
  e('  if (!ASC_FEATURE_RELAXED_SIMD) return;');
  for (let t = 0; t < T; t++) e(`  let acc${t} = f32x4.splat(0);`);
  e('  let e = <usize>b;');
  e('  let rec = tile;');
  e('  const o = out + ((<usize>b * <usize>rows + <usize>r) << 2);');
  e('  for (let k = 0; k < nblk; k++, rec += 96, e += <usize>batch) {');
  e('    const x = xq + (e << 5);');
  e('    const h = v128.load(rec + 80);');
  for (let t = 0; t < T; t++) e(`    let s${t}: v128, u${t}: v128;`);
  const bit = (k) => (k > 0 ? `i16x8.shl(h, ${k})` : k < 0 ? `i16x8.shr_u(h, ${-k})` : 'h');
  for (let m = 0; m < 4; m++) {
    e('    {');
    e(`      const c = v128.load(rec + ${16 + 16 * m});`);
    e(`      const lo = v128.or(v128.and(c, i8x16.splat(0x0f)), v128.and(${bit(4 - 2 * m)}, i8x16.splat(0x10)));`);
    e(`      const hi = v128.or(v128.and(i16x8.shr_u(c, 4), i8x16.splat(0x0f)), v128.and(${bit(3 - 2 * m)}, i8x16.splat(0x10)));`);
    for (let t = 0; t < T; t++) {
      const dl = `i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x + ${32 * t + 4 * m}), lo)`;
      const dh = `i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(x + ${32 * t + 16 + 4 * m}), hi)`;
      e(m === 0 ? `      s${t} = ${dl};` : `      s${t} = i16x8.add(s${t}, ${dl});`);
      e(m === 0 ? `      u${t} = ${dh};` : `      u${t} = i16x8.add(u${t}, ${dh});`);
    }
    e('    }');
    if (T === 1 && m === 1) {
      e('    v128.store(o, s0);');
      e('    v128.store(o, u0);');
    }
  }
  e('    const d4 = v128.load(rec);');
  e('    const ex = xs + (e << 2);');
  e('    const es = xsum + (e << 2);');
  for (let t = 0; t < T; t++) {
    const dots = `i32x4.add(i32x4.dot_i16x8_s(s${t}, i16x8.splat(1)), i32x4.dot_i16x8_s(u${t}, i16x8.splat(1)))`;
    e(`    acc${t} = f32x4.add(acc${t}, f32x4.mul(f32x4.convert_i32x4_s(i32x4.sub(${dots}, i32x4.shl(v128.load32_splat(es + ${4 * t}), 4))), f32x4.mul(d4, v128.load32_splat(ex + ${4 * t}))));`);
  }
  e('  }');
  for (let t = 0; t < T; t++) e(`  v128.store(o + <usize>${t} * (<usize>rows << 2), acc${t});`);
  e('}');
  e('');
}
for (const k of ['q4', 'q8']) for (const T of [4, 1]) kernel(k, T);
kernel('q8', 8);
// Kind 4 only (matmul_ggml_gemm): i32x4.relaxed_dot_i8x16_i7x16_add_s, one vpdpbusd per 16 products
// where V8 lowers it to VNNI (Chromium 150, workerd), three instructions in Node 20's V8 (the engines
// benchmark area). Kind 1 runs the compact kernels below: the i16 relaxed-dot kernels on the act_splats
// records that they replaced are no longer generated.
for (const T of [8, 4, 1]) relaxedQ4(T);
for (const T of [8, 4, 1]) relaxedQ4Compact(T);
for (const T of [8, 4, 1]) relaxedQ4Compact(T, 'mxfp4');
for (const T of [8, 4, 1]) relaxedQ4Compact(T, 'nf4');
for (const T of [8, 4, 1]) relaxedQ5Compact(T);
const head = [
  '// Generated by scripts/gen-ggml-gemm.mjs: edit that script, not this file.',
  '// Micro-kernels of the plain-SIMD prefill GEMM (ggml-gemm.ts explains the layout): one full tile',
  '// of prepared Q4_0 / Q8_0 weights (ggml-tiled.ts) against 4 or 1 tokens. Activation entry k·batch + b',
  '// holds token b of block k; its pairs start at pairs + 64·entry.',
  '',
];
const out = fileURLToPath(new URL('../assembly/ggml-gemm-kernels.ts', import.meta.url));
writeFileSync(`${out}.tmp-${process.pid}`, `${head.join('\n')}${L.join('\n').trimEnd()}\n`);
renameSync(`${out}.tmp-${process.pid}`, out);
