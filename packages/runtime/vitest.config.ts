import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // the llama.cpp cross-checks load a native library and run the model several times
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // tests import src/ modules directly, not the Node entry: install Node's file functions as it does
    setupFiles: ['./src/file-system-node.ts'],
  },
});
