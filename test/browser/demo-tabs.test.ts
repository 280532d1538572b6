/**
 * The demo page with several tabs, in Chromium: "Open another tab" opens the same page with the same
 * options, and on SSE the two tabs share one connection (PROTOCOL.md §7.5). Each tab shows its role
 * (`data-sharing` on <body>, and the tabs tile); when the holder tab closes, the other takes over the
 * connection and shows it, having lost and repeated nothing of the ticker.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.mjs';
import { launchChromium } from './chromium.js';
import { DemoPage, FAST, openDemo } from './demo-page.js';

type Shown = 'holder' | 'follower' | 'own';

/** Waits until the page shows an open connection and a role; returns the role. */
async function roleOf(page: Page): Promise<Shown> {
  await page.waitForFunction(() => document.body.dataset.state === 'open' && document.body.dataset.sharing !== '', null, { timeout: 10_000 });
  return (await page.getAttribute('body', 'data-sharing')) as Shown;
}

/** Presses "Open another tab" and returns the demo page it opened. */
async function openAnotherTab(from: DemoPage): Promise<DemoPage> {
  const [popup] = await Promise.all([from.page.waitForEvent('popup'), from.page.click('#open-tab')]);
  await popup.waitForLoadState('domcontentloaded');
  return new DemoPage(popup);
}

describe('the demo page in several tabs', () => {
  let browser: Browser;
  let demo: Demo;
  let first: DemoPage | undefined;

  beforeAll(async () => {
    browser = await launchChromium();
    demo = await startDemo({ port: 0, heartbeatInterval: 1000, tickInterval: 100 });
  });
  afterEach(async () => {
    await first?.close();
    first = undefined;
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  it('opens a second tab that talks through the first one, which takes over when the holder closes', async () => {
    first = await openDemo(browser, demo.url, { ...FAST, transports: 'sse' });
    expect(await roleOf(first.page)).toBe('holder');
    expect(await first.page.textContent('#sharing-text')).toBe('this tab holds the shared connection');

    const second = await openAnotherTab(first);
    // The same address, options included.
    expect(second.page.url()).toBe(first.page.url());
    expect(await roleOf(second.page)).toBe('follower');
    expect(await second.page.textContent('#sharing-text')).toBe('another tab holds it, this tab talks through it');
    expect(await roleOf(first.page)).toBe('holder');
    await second.flowing(5);

    await first.page.close({ runBeforeUnload: false });
    // The follower's connection ends with the holder's carrier; it reconnects and holds the new one.
    await second.page.waitForFunction(() => document.body.dataset.sharing === 'holder', null, { timeout: 10_000 });
    expect(await roleOf(second.page)).toBe('holder');
    expect(await second.page.textContent('#sharing-text')).toBe('this tab holds the shared connection');
    await second.flowing(5);
    const stats = await second.stats();
    expect(stats.sharing).toBe('holder');
    expect(stats.resumed).toBe(true);
    expect(stats.timeline.filter((entry) => entry.kind === 'tabs').map((entry) => entry.text)).toEqual([
      'tabs: another tab holds it, this tab talks through it',
      'tabs: this tab holds the shared connection',
    ]);
    await second.expectNothingLost();
  });
});
