import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['*/test/**/*.test.ts'],
    globalSetup: ['test/src/suite-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites start real servers; two cores are all we have.
    maxWorkers: 2,
  },
});
