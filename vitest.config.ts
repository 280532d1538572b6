import { availableParallelism } from 'node:os';
import { playwright } from '@vitest/browser-playwright';
import { configDefaults, defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';
import { CHROMIUM_ARGS, INSTALL_HINT, findChromium } from './test/browser/chromium.js';

/**
 * Test projects. `npm test` builds and type-checks first, then runs `vitest run` (extra CLI arguments,
 * e.g. reporters, pass through: `npm test -- --reporter=json --outputFile.json=vitest-report.json`).
 *
 * - node: unit, integration and conformance tests, plus test/build (checks of the built dist/).
 * - e2e: test/browser/*.test.ts, run in Node: they start the demo or a small page server on loopback
 *   and drive the system's Chromium with playwright-core (pages, CDP network emulation, screenshots
 *   in test-output/browser/). They use the built dist/.
 * - browser: test/browser/*.browser.test.ts, run inside Chromium by vitest's browser mode, against the
 *   reference server that test/browser/global-setup.ts starts.
 *
 * The node project runs first, then browser, then e2e (`sequence.groupOrder`): a busy Chromium would
 * otherwise compete for the CPU with the node project's tests of short heartbeat deadlines.
 *
 * No browser is downloaded: both use the system's Chromium (test/browser/chromium.ts). Without one,
 * the e2e tests fail with a message that says how to install it, and the browser project, which
 * cannot start without a browser, is left out.
 */
const chromium = findChromium();

const browserProject: TestProjectInlineConfiguration = {
  extends: true,
  test: {
    name: 'browser',
    include: ['test/browser/**/*.browser.test.ts'],
    globalSetup: ['test/browser/global-setup.ts'],
    sequence: { groupOrder: 1 },
    browser: {
      enabled: true,
      headless: true,
      provider: playwright({ launchOptions: { executablePath: chromium, args: CHROMIUM_ARGS } }),
      instances: [{ browser: 'chromium' }],
      screenshotFailures: false,
    },
  },
};

if (!chromium) console.warn(`[vitest.config] the browser project is left out. ${INSTALL_HINT}`);

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
          // Two files at a time even on 2 cores (vitest's default there is one): these tests mostly
          // wait on sockets and timers, and the project takes about half as long.
          maxWorkers: Math.max(2, availableParallelism() - 1),
          include: [
            'test/unit/**/*.test.ts',
            'test/integration/**/*.test.ts',
            'test/conformance/**/*.test.ts',
            'test/build/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          environment: 'node',
          include: ['test/browser/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/browser/**/*.browser.test.ts'],
          // Each file drives its own Chromium against timing-sensitive conditions: one file at a time.
          fileParallelism: false,
          sequence: { groupOrder: 2 },
          testTimeout: 60_000,
          hookTimeout: 30_000,
        },
      },
      ...(chromium ? [browserProject] : []),
    ],
  },
});
