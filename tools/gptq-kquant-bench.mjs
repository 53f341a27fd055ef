#!/usr/bin/env node
// Seconds of GPTQ on the K-quant grid (gptqKQuantize, Q4_K) per layer shape, f64 path against the
// kernel path (f32 WASM matmuls, what gptqQuantizeModelK takes for layers of 512+ inputs), on random
// weights and H = 2XᵀX/N of correlated random inputs (AR(1) along the channels, N = cols + 256).
// One run each; the machine load is printed with the figures.
//   npx turbo run build --filter=@lowbit/quantizers...
//   node tools/gptq-kquant-bench.mjs [--shapes 2048x2048,2048x5632] [--f64-max-cols 2048]
// Shapes are rows x cols (cols = inputs). The f64 path is run up to --f64-max-cols inputs (it grows as cols³ + rows·cols²).
import { loadavg } from 'node:os';
import { loadKernels } from '@lowbit/kernels';
import { gptqKQuantize } from '@lowbit/quantizers';

const argv = process.argv.slice(2);
const opt = (n, d) => (argv.includes(`--${n}`) ? argv[argv.indexOf(`--${n}`) + 1] : d);
const shapes = opt('shapes', '2048x2048,2048x5632').split(',').map((s) => s.split('x').map(Number));
const f64Max = Number(opt('f64-max-cols', '2048'));
const k = await loadKernels();
let seed = 1;
const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;

for (const [rows, cols] of shapes) {
  const w = Float32Array.from({ length: rows * cols }, () => rnd() * 0.05);
  const N = cols + 256;
  const XT = new Float32Array(cols * N);
  for (let t = 0; t < N; t++) {
    let a = 0;
    for (let c = 0; c < cols; c++) {
      a = 0.7 * a + rnd();
      XT[c * N + t] = a;
    }
  }
  const H = Float64Array.from(k.matmulF32(XT, cols, N, XT, cols), (v) => (2 * v) / N);
  for (const path of cols <= f64Max ? ['kernels', 'f64'] : ['kernels']) {
    const t = performance.now();
    const g = gptqKQuantize(w, [rows, cols], H, { type: 'Q4_K', ...(path === 'kernels' ? { kernels: k } : {}) });
    const s = (performance.now() - t) / 1000;
    console.log(`${rows}x${cols} Q4_K ${g.kernelPath ? 'kernel path' : 'f64 path'}: ${s.toFixed(1)} s (load average ${loadavg()[0].toFixed(1)})`);
  }
}
