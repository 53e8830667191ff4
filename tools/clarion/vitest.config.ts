import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // End-to-end suites start whole stacks: one file at a time on a 2-core machine.
    fileParallelism: false,
  },
});
