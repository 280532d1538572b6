/**
 * Dead links in a real Chromium, observed from outside through the demo page's own state.
 *
 * - CDP offline while a WebSocket is open: Chromium keeps the socket OPEN and frozen — no close, no
 *   error. Only the heartbeat deadline (2 × the server's interval, PROTOCOL.md §11) can tell; the
 *   client then reconnects once the network is back and resumes with nothing lost.
 * - Page lifecycle (lifecycle.ts): when the network comes back (`online`), the client checks its
 *   link at once (§11: SHOULD ping at once) and recovers within seconds, long before its heartbeat
 *   deadline. The dispatched `visibilitychange` and `pageshow` run in liveness.long.ts.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.mjs';
import { launchChromium } from './chromium.js';
import { DemoPage, openDemo } from './demo-page.js';
import { QUERY, TRIGGERS, describeLifecycle, setOffline } from './lifecycle.js';

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

describeLifecycle([TRIGGERS.online]);
