import { defineConfig } from 'vite';

// Cross-origin isolation: browsers give SharedArrayBuffer (the kernels' thread pool shares one
// WebAssembly memory between workers) only to pages served with these two headers. Static hosts
// need the same headers (README, "Hosting").
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

// Relative asset URLs: the built folder works from any path of any static host.
export default defineConfig({
  base: './',
  build: { target: 'es2022' },
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation },
});
