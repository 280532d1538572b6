/**
 * 20 tabs of one origin on SSE and on long polling, in Chromium (`npm run chaos`): every tab opens
 * within 10 s and a plain fetch from the last one answers within 1 s. The 8-tab proof, with the
 * holder tab closing and freezing, runs in `npm test` (shared-tabs.test.ts).
 */
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startServer, type StartedServer } from '../helpers/start-server.js';
import { launchChromium } from './chromium.js';
import { TABS_PAGE, expectAllOpen, openTabs } from './shared-tabs.test.js';

describe.each(['sse', 'long-polling'] as const)('20 tabs on %s', (transport) => {
  let browser: Browser;
  let server: StartedServer;
  let context: BrowserContext | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
    server = await startServer({ httpHandler: (request, response) => void TABS_PAGE.serve(request, response), retry: 50, heartbeatInterval: 5_000 });
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.close();
  });

  it('opens all 20 tabs within 10 s, and a plain fetch from the last one answers within 1 s', async () => {
    const opened = await openTabs(browser, server.port, transport, 20);
    context = opened.context;
    await expectAllOpen(opened.pages, transport);
  });
});
