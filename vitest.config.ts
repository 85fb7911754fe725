import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // PostgreSQL, Redis and Chromium are brought up (or named as missing) before any test runs
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Browser and load tests start real servers; two cores are shared between files.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
