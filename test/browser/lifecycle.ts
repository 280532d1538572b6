/**
 * The page-lifecycle checks in a real Chromium (PROTOCOL.md §11: the client SHOULD ping at once when
 * the network comes back, the tab becomes visible or the page is shown again): with a 30 s heartbeat
 * (a 60 s deadline) and a link that died without closing, only that check can explain a recovery
 * within seconds. liveness.test.ts runs `online` (the only one the browser fires itself here, from
 * CDP's network emulation) in `npm test`; liveness.long.ts runs the dispatched ones in `npm run chaos`,
 * which the client's unit tests also cover (test/unit/client-fallback.test.ts).
 */
import type { Browser, CDPSession } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.mjs';
import { launchChromium } from './chromium.js';
import { type DemoPage, openDemo } from './demo-page.js';

/** The client stays on WebSocket here, so each recovery is a plain reconnection. */
export const QUERY = { transports: 'websocket', connectTimeout: 2000, reconnectDelay: 100, maxReconnectDelay: 500 };

export async function setOffline(cdp: CDPSession, offline: boolean): Promise<void> {
  await cdp.send('Network.emulateNetworkConditions', { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
}

/** A moment the client checks its link at: how a test brings it about. */
export interface Trigger {
  event: 'online' | 'visibilitychange' | 'pageshow';
  fire(page: DemoPage): Promise<void>;
}

export const TRIGGERS = {
  online: {
    event: 'online',
    async fire(page) {
      const cdp = await page.page.context().newCDPSession(page.page);
      await cdp.send('Network.enable');
      await setOffline(cdp, true);
      await expect.poll(() => page.page.evaluate(() => navigator.onLine)).toBe(false);
      await setOffline(cdp, false);
      await expect.poll(() => page.page.evaluate(() => navigator.onLine)).toBe(true);
    },
  },
  // Headless Chromium never hides a page; the event is dispatched as the browser would, with the
  // document still visible, as it is when a tab comes back to the front.
  visibilitychange: {
    event: 'visibilitychange',
    fire: (page) => page.page.evaluate(() => void document.dispatchEvent(new Event('visibilitychange', { bubbles: true }))),
  },
  // As fired when a page comes back from the back/forward cache.
  pageshow: {
    event: 'pageshow',
    fire: (page) => page.page.evaluate(() => void window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))),
  },
} satisfies Record<string, Trigger>;

/** One Chromium and one demo server (30 s heartbeat) for `triggers`, each in a page of its own. */
export function describeLifecycle(triggers: Trigger[]): void {
  describe('page lifecycle', () => {
    const HEARTBEAT = 30_000;
    /** Far below the heartbeat deadline (60 s): only the lifecycle check can recover this fast. */
    const RECOVERY = 10_000;
    let browser: Browser;
    let demo: Demo;
    let page: DemoPage | undefined;
    beforeAll(async () => {
      browser = await launchChromium();
      demo = await startDemo({ port: 0, heartbeatInterval: HEARTBEAT, tickInterval: 100 });
    });
    afterAll(async () => {
      await browser?.close();
      await demo?.close();
    });
    afterEach(async () => {
      await page?.close();
      page = undefined;
    });

    it.each(triggers)('$event: the client checks its link at once and replaces a dead one long before the heartbeat deadline', async ({ fire }) => {
      page = await openDemo(browser, demo.url, QUERY);
      await page.until('open websocket');
      await page.flowing(5);
      const { opens, sessionId } = await page.stats();

      // The link dies without closing: from now on the proxy passes nothing on it, either way.
      demo.network.freezeConnections();
      await page.quiet();
      const firedAt = Date.now();
      await fire(page);
      await expect.poll(async () => (await page!.stats()).opens, { timeout: RECOVERY }).toBe(opens + 1);
      expect(Date.now() - firedAt).toBeLessThan(RECOVERY);
      await page.until('open websocket');
      await page.flowing();
      const after = await page.stats();
      expect(after.resumed).toBe(true);
      expect(after.sessionId).toBe(sessionId);
      await page.expectNothingLost();
    });
  });
}
