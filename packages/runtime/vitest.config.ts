import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // the llama.cpp cross-checks load a native library and run the model several times
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
