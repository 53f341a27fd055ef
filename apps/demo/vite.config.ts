import { defineConfig } from 'vite';

// Relative asset URLs: the built folder works from any path of any static host.
export default defineConfig({
  base: './',
  build: { target: 'es2022' },
  worker: { format: 'es' },
});
