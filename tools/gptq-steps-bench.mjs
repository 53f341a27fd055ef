#!/usr/bin/env node
// Before/after of GPTQ's dense steps on the 1B-class layer shapes (issue #8): the f64 TypeScript path
// (as before the kernel path existed) against the kernel path (f32 WASM matmuls), on random weights
// and correlated random inputs of 256 samples. Seconds per step, one run each (machine load printed).
//   npx turbo run build --filter=@lowbit/quantizers...
//   node tools/gptq-steps-bench.mjs [--shapes 2048x2048,5632x2048,2048x5632] [--f64-max-cols 2048]
// The f64 factorization and updates grow as cols³ and rows·cols²: above --f64-max-cols only the f64
// Hessian accumulation is measured and the factorization is extrapolated from the largest measured
// one by (cols/measured)³ (printed as such).
import { loadavg } from 'node:os';
import { loadKernels } from '@lowbit/kernels';
import { Gptq, IntGrid, gptqQuantize, outputError } from '@lowbit/quantizers';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const shapes = opt('shapes', '2048x2048,5632x2048,2048x5632').split(',').map((s) => s.split('x').map(Number));
const f64Max = Number(opt('f64-max-cols', '2048'));
const k = await loadKernels();
let seed = 3;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
const time = (fn) => {
  const t = performance.now();
  const r = fn();
  return [r, (performance.now() - t) / 1000];
};
console.log(`load ${loadavg()[0].toFixed(2)} at the start; kernels ${k.variant}`);
console.log('| layer [rows, cols] | step | f64 TypeScript s | kernel path s | speed-up |');
console.log('|---|---|---:|---:|---:|');
let measuredFactor = null; // [cols, seconds] of the largest f64 factorization measured
for (const [rows, cols] of shapes) {
  const T = 256;
  const x = new Float32Array(T * cols);
  for (let t = 0; t < T; t++) {
    let a = 0;
    for (let c = 0; c < cols; c++) x[t * cols + c] = a = 0.7 * a + rnd();
  }
  const w = Float32Array.from({ length: rows * cols }, rnd);
  const row = (step, a, b, note = '') => console.log(`| ${rows}x${cols} | ${step} | ${a === null ? 'not run' : a.toFixed(2) + note} | ${b.toFixed(2)} | ${a === null ? '' : (a / b).toFixed(1) + 'x'} |`);
  const g64 = new Gptq(cols);
  const gk = new Gptq(cols, { kernels: k });
  const [, hA] = time(() => g64.addBatch(x, T));
  const [, hB] = time(() => gk.addBatch(x, T));
  row('H += 2XᵀX, 256 samples', hA, hB);
  const H = gk.hessian();
  const o = { grid: new IntGrid({ bits: 4 }), group: 128 };
  const [rk] = time(() => gptqQuantize(w, [rows, cols], H, { ...o, kernels: k }));
  let r64 = null;
  if (cols <= f64Max) {
    r64 = gptqQuantize(w, [rows, cols], H, o);
    if (!measuredFactor || cols >= measuredFactor[0]) measuredFactor = [cols, r64.timing.factor];
  }
  const est = !r64 && measuredFactor ? measuredFactor[1] * (cols / measuredFactor[0]) ** 3 : null;
  row('factor H (f64: inverse + Cholesky of H⁻¹; kernels: blocked M·D·Mᵀ)', r64 ? r64.timing.factor : est, rk.timing.factor, r64 ? '' : ' (extrapolated n³)');
  row('column loop inside blocks', r64 ? r64.timing.columns : null, rk.timing.columns);
  row('lazy batch updates', r64 ? r64.timing.update : null, rk.timing.update);
  if (r64) {
    let diff = 0;
    for (let i = 0; i < rk.codes.length; i++) if (rk.codes[i] !== r64.codes[i]) diff++;
    console.log(`|  | codes that differ (f32 rounding) | ${(100 * diff / rk.codes.length).toFixed(3)}% | | |`);
  }
  const G = gk.gram();
  const [, eB] = time(() => outputError(w, rk.weights, [rows, cols], G, { kernels: k }));
  const eA = cols <= f64Max ? time(() => outputError(w, rk.weights, [rows, cols], G))[1] : null;
  row('output error ‖ΔW·Xᵀ‖² from XᵀX', eA, eB);
}
console.log(`load ${loadavg()[0].toFixed(2)} at the end`);
