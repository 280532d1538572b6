import { defineConfig } from 'vitest/config';

/**
 * Test projects. `npm test` builds and type-checks first, then runs `vitest run` (extra CLI arguments,
 * e.g. reporters, pass through: `npm test -- --reporter=json --outputFile.json=vitest-report.json`).
 *
 * - node: unit, integration and conformance tests, plus test/build (checks of the built dist/).
 * - browser: to come — add a second project here, e.g.
 *     {
 *       extends: true,
 *       test: {
 *         name: 'browser',
 *         include: ['test/browser/**\/*.test.ts'],
 *         browser: {
 *           enabled: true,
 *           headless: true,
 *           provider: playwright({ launchOptions: { executablePath: '/usr/bin/chromium', args: [...] } }),
 *           instances: [{ browser: 'chromium' }],
 *         },
 *       },
 *     }
 *   (`import { playwright } from '@vitest/browser-playwright'`, see /work/shared/STACK.md).
 */
export default defineConfig({
  test: {
    // Shared by every project (`extends: true`).
    testTimeout: 20_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // Fail `vitest run` when a filter or glob matches no test file instead of passing silently.
    passWithNoTests: false,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          environment: 'node',
          include: [
            'test/unit/**/*.test.ts',
            'test/integration/**/*.test.ts',
            'test/conformance/**/*.test.ts',
            'test/build/**/*.test.ts',
          ],
        },
      },
    ],
  },
});
