import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // the real-layer tests run the embedded model over calibration text
    testTimeout: 120_000,
  },
});
