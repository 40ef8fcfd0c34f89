import { defineConfig } from 'vitest/config';

/** Every package's test settings; tools/test-summary.mjs reads the JSON report each package writes. */
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    // forks, not vmThreads: onnxruntime-node and the native addon need a real process
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-result.json' },
  },
});
