// Page side of the browser KernelPool test: a comlink proxy to the pool in pool-host.js.
import { wrap } from 'comlink';
import { reference } from '@lowbit/kernels';

try {
  const pool = wrap(new Worker(new URL('./pool-host.js', import.meta.url), { type: 'module' }));
  const rows = 133; // several chunks per thread and a partial last tile
  const cols = 256;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37));
  const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.11));
  const packed = Uint8Array.from({ length: rows * (cols / 2) }, (_, i) => (i * 151) & 255);
  const scales = Float32Array.from({ length: rows * (cols / 64) }, (_, i) => 0.01 + (i % 7) * 0.003);
  window.result = {
    isolated: self.crossOriginIsolated,
    variant: await pool.variant(),
    y: Array.from(await pool.gemvF32(w, rows, cols, x)),
    yRef: Array.from(reference.gemvF32(w, rows, cols, x)),
    q: Array.from(await pool.gemvQ4(packed, scales, rows, cols, 64, x)),
    qRef: Array.from(reference.gemvQ4(packed, scales, null, rows, cols, 64, x)),
  };
  await pool.close();
} catch (e) {
  window.result = { error: String(e?.stack || e) };
}
document.getElementById('out').textContent = JSON.stringify(window.result);
