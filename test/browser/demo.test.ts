/**
 * The demo page in Chromium: each network condition, switched on with the page's own toggle, makes
 * the client reach the transport the README promises; lifting it brings the client back to WebSocket
 * through the upgrade probe. Throughout, the page's own counters — computed from the numbered ticker
 * and from the echoes of what it sends every second — show nothing lost and nothing duplicated.
 * A screenshot of the page under each condition goes to test-output/browser/; those taken on a
 * fallback and while reconnecting show the page's countdown to the next upgrade probe or attempt.
 */
import { describe, expect, it } from 'vitest';
import { INSTALL_HINT, findChromium } from './chromium.js';
import { FAST, openDemo } from './demo-page.js';
import { FALLBACKS, HEARTBEAT, useDemoPage, walkFallback } from './demo-walks.js';

it('finds a Chromium to run the browser tests in', () => {
  expect(findChromium(), INSTALL_HINT).toBeDefined();
});

describe('the demo page', () => {
  const context = useDemoPage();

  // The other ways of falling back, each on its own, are in demo-walks.long.ts (npm run chaos); the
  // whole chain below falls back from a refused upgrade and from a buffered stream.
  it.each([FALLBACKS.hanging])(
    '$conditions: falls back to $transport, returns to websocket when lifted, and loses or repeats nothing',
    (fallback) => walkFallback(context, fallback),
  );

  it('walks down the whole chain and back up: websocket → sse → long-polling → websocket', async () => {
    const { page } = context;
    await page.toggle('ws-blocked');
    await page.until('open sse', 30_000);
    await page.flowing(5);
    await page.toggle('sse-buffered');
    await page.until('open long-polling', 30_000);
    await page.flowing(5);
    await page.toggle('normal');
    await page.until('open websocket', 30_000);
    await page.flowing();
    await page.settled();
    const { transports } = await page.stats();
    expect(transports.map(({ transport, reason }) => `${transport} (${reason})`)).toEqual([
      'websocket (initial)',
      'sse (refused)',
      // The SSE attempt after the cut waits for the carrier the tabs share, whose response began but
      // which the proxy holds back: long polling, raced, won, and the reason is the held-back stream (§13.3).
      'long-polling (buffered)',
      'websocket (upgrade)',
    ]);
    await page.expectNothingLost();
    // The README's picture, docs/demo.png, shows this walk on the demo's own settings (5 s heartbeat).
    await page.screenshot('demo');
  });

  it('slow: stays on websocket, and the round trip shows the added latency', async () => {
    const { page } = context;
    await page.toggle('slow');
    // A pressed toggle says so: aria-pressed, and an "on" badge; the others read "off".
    const badge = (condition: string) =>
      page.page.$eval(`button[data-condition="${condition}"]`, (button) => getComputedStyle(button, '::after').content);
    expect(await page.page.getAttribute('button[data-condition="slow"]', 'aria-pressed')).toBe('true');
    expect(await badge('slow')).toBe('"on"');
    expect(await badge('offline')).toBe('"off"');
    expect(await badge('normal')).toBe('"off"');
    // 400 ms each way.
    await expect.poll(async () => (await page.stats()).rtt, { timeout: 20_000, interval: 200 }).toBeGreaterThanOrEqual(800);
    await page.screenshot('demo-slow');
    await page.toggle('normal');
    await expect.poll(async () => (await page.stats()).rtt, { timeout: 20_000, interval: 200 }).toBeLessThan(400);
    const stats = await page.stats();
    expect(stats.transports.map((event) => event.transport)).toEqual(['websocket']);
    expect(stats.opens).toBe(1);
    await page.settled();
    await page.expectNothingLost();
  });

  it('offline: keeps trying, then resumes where it left off once the network is back', async () => {
    const { page } = context;
    const before = await page.stats();
    await page.toggle('offline');
    await expect.poll(async () => (await page.stats()).state, { timeout: 10_000 }).toBe('reconnecting');
    // At least two attempts failed against the dead network.
    await expect.poll(async () => (await page.stats()).errors.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(before.errors.length + 2);
    // While it waits, the page counts down to the next attempt.
    await page.screenshotCountdown('demo-offline', 'reconnect');
    expect((await page.stats()).countdown.probe).toBe('');
    // The log explains each failure by its code in plain words, not with the browser's raw message.
    const log = (await page.page.textContent('#log')) ?? '';
    expect(log).toContain('TRANSPORT_ERROR — The connection failed or dropped');
    expect(log).not.toContain('Failed to fetch');
    expect(await page.page.locator('#log li.error').count()).toBeGreaterThanOrEqual(2);

    await page.toggle('normal');
    await page.until('open websocket', 30_000);
    await page.flowing();
    expect((await page.stats()).resumed).toBe(true);
    await page.settled();
    await page.expectNothingLost();
  });

  it('drop connection now: reconnects over websocket and resumes the session', async () => {
    const { page } = context;
    const { opens, sessionId } = await page.stats();
    await page.page.click('#drop');
    await expect.poll(async () => (await page.stats()).opens, { timeout: 10_000 }).toBe(opens + 1);
    await page.until('open websocket');
    await page.flowing();
    const stats = await page.stats();
    expect(stats.resumed).toBe(true);
    expect(stats.sessionId).toBe(sessionId);
    await page.screenshot('demo-dropped');
    await page.settled();
    await page.expectNothingLost();
  });

  it('freeze connection: the heartbeat deadline finds the dead link, and the client resumes', async () => {
    const { page } = context;
    const { opens } = await page.stats();
    // The page states the demo server's heartbeat, and the server's default next to it.
    expect(await page.page.textContent('#heartbeat')).toBe(
      `Server heartbeat here: ${HEARTBEAT / 1000} s (the server's default is 15 s), so a frozen connection is found within ${(2 * HEARTBEAT) / 1000} s.`,
    );
    expect(await page.page.textContent('#last-message')).toBe('last message < 1 s ago');
    const frozenAt = Date.now();
    await page.page.click('#freeze');
    // Nothing arrives any more: the age of the last message grows.
    await expect.poll(() => page.page.textContent('#last-message'), { timeout: 4 * HEARTBEAT + 5_000, interval: 100 }).toMatch(/^last message [1-9]\d* s ago$/);
    await expect
      .poll(async () => (await page.stats()).errors.map((error) => error.code), { timeout: 4 * HEARTBEAT + 5_000 })
      .toContain('HEARTBEAT_TIMEOUT');
    const found = (await page.stats()).errors.find((error) => error.code === 'HEARTBEAT_TIMEOUT');
    expect((found?.at ?? Number.POSITIVE_INFINITY) - frozenAt).toBeLessThan(2 * HEARTBEAT + 1_500);
    await expect.poll(async () => (await page.stats()).opens, { timeout: 10_000 }).toBe(opens + 1);
    await page.until('open websocket');
    await page.flowing();
    expect((await page.stats()).resumed).toBe(true);
    await page.screenshot('demo-frozen');
    await page.settled();
    await page.expectNothingLost();
  });

  it('fits a phone screen without sideways scrolling', async () => {
    const phone = await openDemo(context.browser, context.demo.url, FAST, {
      viewport: { width: 390, height: 844 },
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      await phone.until('open websocket');
      await phone.flowing(3);
      const { scrollWidth, innerWidth } = await phone.page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
      await phone.screenshot('demo-phone');
      expect(phone.errors).toEqual([]);
    } finally {
      await phone.close();
    }
  });
});
