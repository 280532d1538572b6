/**
 * Dead links in a real Chromium, observed from outside through the demo page's own state.
 *
 * - CDP offline while a WebSocket is open: Chromium keeps the socket OPEN and frozen — no close, no
 *   error. Only the heartbeat deadline (2 × the server's interval, PROTOCOL.md §11) can tell; the
 *   client then reconnects once the network is back and resumes with nothing lost.
 * - Page lifecycle: when the network comes back (`online`), the tab becomes visible
 *   (`visibilitychange`) or the page is shown again (`pageshow`), the client checks its link at once
 *   (§11: SHOULD ping at once). With a 30 s heartbeat (a 60 s deadline) and a link that died without
 *   closing, only that check can explain a recovery within seconds.
 */
import type { Browser, CDPSession } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.mjs';
import { launchChromium } from './chromium.js';
import { DemoPage, openDemo } from './demo-page.js';

/** The client stays on WebSocket here, so each recovery is a plain reconnection. */
const QUERY = { transports: 'websocket', connectTimeout: 2000, reconnectDelay: 100, maxReconnectDelay: 500 };

async function setOffline(cdp: CDPSession, offline: boolean): Promise<void> {
  await cdp.send('Network.emulateNetworkConditions', { offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
}

let browser: Browser;
let page: DemoPage | undefined;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await page?.close();
  page = undefined;
});

describe('a WebSocket frozen by CDP offline', () => {
  const HEARTBEAT = 500;
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo({ port: 0, heartbeatInterval: HEARTBEAT, tickInterval: 100 });
  });
  afterAll(async () => {
    await demo?.close();
  });

  it('is found dead by the heartbeat deadline; the client reconnects once back online and resumes with nothing lost', async () => {
    page = await openDemo(browser, demo.url, QUERY);
    await page.until('open websocket');
    await page.flowing(5);
    const cdp = await page.page.context().newCDPSession(page.page);
    await cdp.send('Network.enable');
    const before = await page.stats();

    const offlineAt = Date.now();
    await setOffline(cdp, true);
    await expect
      .poll(async () => (await page!.stats()).errors.slice(before.errors.length).map((error) => error.code), { timeout: 10_000 })
      .toContain('HEARTBEAT_TIMEOUT');
    const stats = await page.stats();
    const dead = stats.errors.slice(before.errors.length).find((error) => error.code === 'HEARTBEAT_TIMEOUT');
    // The socket said nothing: no close, no error came before the deadline did.
    expect(stats.errors[before.errors.length]?.code).toBe('HEARTBEAT_TIMEOUT');
    expect((dead?.at ?? Number.POSITIVE_INFINITY) - offlineAt).toBeLessThan(2 * HEARTBEAT + 1_500);
    // Still offline, new attempts fail.
    await expect.poll(async () => (await page!.stats()).errors.length, { timeout: 10_000 }).toBeGreaterThan(before.errors.length + 1);
    expect((await page.stats()).state).toBe('reconnecting');
    await page.screenshot('liveness-cdp-offline');

    await setOffline(cdp, false);
    await page.until('open websocket', 15_000);
    await page.flowing();
    const after = await page.stats();
    expect(after.resumed).toBe(true);
    expect(after.sessionId).toBe(before.sessionId);
    await page.expectNothingLost();
  });
});

describe('page lifecycle', () => {
  const HEARTBEAT = 30_000;
  /** Far below the heartbeat deadline (60 s): only the lifecycle check can recover this fast. */
  const RECOVERY = 10_000;
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo({ port: 0, heartbeatInterval: HEARTBEAT, tickInterval: 100 });
  });
  afterAll(async () => {
    await demo?.close();
  });

  const triggers: { event: string; fire(page: DemoPage): Promise<void> }[] = [
    {
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
    {
      // Headless Chromium never hides a page; the event is dispatched as the browser would, with the
      // document still visible, as it is when a tab comes back to the front.
      event: 'visibilitychange',
      fire: (page) => page.page.evaluate(() => void document.dispatchEvent(new Event('visibilitychange', { bubbles: true }))),
    },
    {
      // As fired when a page comes back from the back/forward cache.
      event: 'pageshow',
      fire: (page) => page.page.evaluate(() => void window.dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true }))),
    },
  ];

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
