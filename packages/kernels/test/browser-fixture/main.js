// Bundled by Vite in the browser test: @lowbit/kernels resolves through its `browser` export
// condition and Vite emits the .wasm builds as assets from `new URL(..., import.meta.url)`.
import { loadKernels, reference } from '@lowbit/kernels';

try {
  const k = await loadKernels();
  const rows = 9;
  const cols = 70;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.3));
  const x = Float32Array.from({ length: cols }, (_, i) => Math.cos(i * 0.2));
  const y = k.gemvF32(w, rows, cols, x);
  const packed = Uint8Array.from({ length: rows * 64 }, (_, i) => (i * 97) & 255);
  const scales = Float32Array.from({ length: rows * 4 }, (_, i) => 0.01 + i * 0.001);
  const x4 = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i));
  const q = k.gemvQ4(packed, scales, null, rows, 128, 32, x4);
  window.result = {
    variant: k.variant,
    y: Array.from(y),
    yRef: Array.from(reference.gemvF32(w, rows, cols, x)),
    q: Array.from(q),
    qRef: Array.from(reference.gemvQ4(packed, scales, null, rows, 128, 32, x4)),
  };
} catch (e) {
  window.result = { error: String(e?.stack || e) };
}
document.getElementById('out').textContent = JSON.stringify(window.result);
