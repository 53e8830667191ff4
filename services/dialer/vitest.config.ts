import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The pacing test measures real arrival times: keep other test files off the CPU meanwhile.
    fileParallelism: false,
  },
});
