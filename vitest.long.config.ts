import { defineConfig } from 'vitest/config';

/**
 * The long runs of `npm run chaos` that are vitest suites (`*.long.ts`): larger versions of checks
 * whose short version is in `npm test`. They use the built dist/ and the system's Chromium.
 */
export default defineConfig({
  test: {
    include: ['test/**/*.long.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    passWithNoTests: false,
  },
});
