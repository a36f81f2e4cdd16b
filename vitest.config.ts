import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Two cores: keep parallelism modest so socket tests are not starved.
    pool: 'forks',
    maxWorkers: 2,
    // Generous: tests that start hookwire processes wait for their log lines, which takes long on a loaded machine.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
