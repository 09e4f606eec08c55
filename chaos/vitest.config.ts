import { defineConfig } from 'vitest/config';

/** `npm run chaos`: the full fault-injection run, one scenario at a time. */
export default defineConfig({
  test: {
    include: ['chaos/**/*.chaos.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
