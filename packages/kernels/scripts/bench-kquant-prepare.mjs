// prepare_kquant (K-quant super-blocks -> prepared tiles, the load-time repack) on a random 4096x11008
// matrix per type, in CPU time (steadier than wall time on a shared machine), best of 3, as GB/s of
// source blocks. Where the build still has the scalar reference (prepare_kquant_ref), it runs
// interleaved with the SIMD path on the same blocks and the tiles are compared byte for byte.
// Run from packages/kernels after a build: node scripts/bench-kquant-prepare.mjs [simd|relaxed] [rows] [cols]
import { cpu, loadBuild, xorshift32 } from './bench-common.mjs';

const variant = process.argv[2] ?? 'relaxed';
const k = loadBuild(variant);
const E = k.exports;
const rows = Number(process.argv[3] ?? 4096);
const cols = Number(process.argv[4] ?? 11008);
const rnd32 = xorshift32();

// type -> [ggml id, block bytes, offsets of the f16 scales]
const TYPES = { Q2_K: [10, 84, [80, 82]], Q3_K: [11, 110, [108]], Q4_K: [12, 144, [0, 2]], Q5_K: [13, 176, [0, 2]], Q6_K: [14, 210, [208]] };
const hasRef = typeof E.prepare_kquant_ref === 'function';
console.log(`build ${variant}, ${rows}x${cols}; CPU ms (best of 3) of prepare_kquant${hasRef ? ': scalar reference -> SIMD' : ''}`);
for (const [type, [id, bb, f16At]] of Object.entries(TYPES)) {
  const bytes = ((rows * cols) / 256) * bb;
  const src = k.heap.alloc(bytes);
  const u8 = () => new Uint8Array(E.memory.buffer, src, bytes);
  const blocks = u8();
  for (let i = 0; i < bytes; i++) blocks[i] = rnd32() & 0xff;
  // finite f16 scales (exponent field 7..14), as a quantizer writes them
  for (let o = 0; o < bytes; o += bb) for (const at of f16At) blocks[o + at + 1] = (blocks[o + at + 1] & 0x83) | ((7 + (rnd32() & 7)) << 2);
  const size = E.kquant_tiles_bytes(id, rows, cols) >>> 0;
  const dst = k.heap.alloc(size);
  const dstRef = hasRef ? k.heap.alloc(size) : 0;
  let tNew = Infinity;
  let tRef = Infinity;
  for (let r = 0; r < 3; r++) {
    if (hasRef) tRef = Math.min(tRef, cpu(() => E.prepare_kquant_ref(id, src, rows, cols, dstRef)));
    tNew = Math.min(tNew, cpu(() => E.prepare_kquant(id, src, rows, cols, dst)));
  }
  const gbs = (t) => `${(bytes / t / 1e6).toFixed(2)} GB/s`;
  if (hasRef) {
    const same = Buffer.compare(Buffer.from(E.memory.buffer, dst, size), Buffer.from(E.memory.buffer, dstRef, size)) === 0;
    console.log(`${type}: ${tRef.toFixed(1)} ms (${gbs(tRef)}) -> ${tNew.toFixed(1)} ms (${gbs(tNew)}), ${(tRef / tNew).toFixed(1)}x, same bytes: ${same}`);
    k.heap.free(dstRef);
  } else console.log(`${type}: ${tNew.toFixed(1)} ms (${gbs(tNew)})`);
  k.heap.free(dst);
  k.heap.free(src);
}
