/**
 * The demo page, driven from Node with playwright-core: open it, read the state it exposes
 * (`window.demoStats`, see demo/demo.js), press its toggles, wait for what it shows.
 */
import { mkdir } from 'node:fs/promises';
import type { Browser, BrowserContextOptions, Page } from 'playwright-core';
import { expect } from 'vitest';

/** Where screenshots go (git-ignored). */
export const SCREENSHOTS = new URL('../../test-output/browser/', import.meta.url);

/** A network condition of demo/network-conditions.mjs. */
export type Condition = 'normal' | 'slow' | 'ws-blocked' | 'ws-hanging' | 'ws-silent' | 'sse-buffered' | 'offline';

/** What `window.demoStats` holds (demo/demo.js, typedef DemoStats). */
export interface DemoStats {
  state: 'connecting' | 'open' | 'reconnecting' | 'closed';
  cause: string | null;
  transport: string | null;
  transportReason: string | null;
  /** Who holds the connection while open: this tab, another tab, or nobody else; `null` while not open. */
  sharing: 'holder' | 'follower' | 'own' | null;
  lastEventId: string | null;
  sessionId: string | null;
  opens: number;
  resumed: boolean | null;
  received: number;
  ticks: number;
  lastTick: number | null;
  sent: number;
  acked: number;
  failed: number;
  echoes: number;
  lost: number;
  duplicated: number;
  gaps: number;
  rtt: number | null;
  conditions: Condition[];
  options: Record<string, unknown>;
  timeline: { at: number; kind: string; text: string }[];
  states: { at: number; from: string; to: string; cause: string }[];
  transports: { at: number; transport: string; previous: string | null; reason: string }[];
  errors: { at: number; code: string; message: string }[];
  scheduled: { reconnect: number | null; probe: number | null };
  countdown: { reconnect: string; probe: string };
  lastMessageAt: number | null;
  heartbeatInterval: number | null;
}

/** A countdown of the page: to the client's next connection attempt, or to its next WebSocket probe. */
export type Countdown = 'reconnect' | 'probe';

/** What each countdown reads while it runs, and the element that shows it. */
export const COUNTDOWNS: { readonly [K in Countdown]: { pattern: RegExp; selector: string } } = {
  reconnect: { pattern: /^next attempt in \d+(\.\d)? s$/, selector: '#next-attempt' },
  probe: { pattern: /^WebSocket probe in \d+(\.\d)? s$/, selector: '#next-probe' },
};

/**
 * Client options for tests, read by the page from its query: short deadlines and a quick upgrade
 * probe, so a fallback and the way back take seconds.
 */
export const FAST = { connectTimeout: 1000, upgradeInterval: 2000, reconnectDelay: 100, maxReconnectDelay: 1000 };

export class DemoPage {
  /** Uncaught errors of the page's scripts. */
  readonly errors: string[] = [];

  constructor(readonly page: Page) {
    page.on('pageerror', (error) => this.errors.push(error.message));
  }

  stats(): Promise<DemoStats> {
    return this.page.evaluate(() => (window as unknown as { demoStats: DemoStats }).demoStats);
  }

  /** Waits until the page shows `expected`, e.g. `open sse`: its state and transport. */
  async until(expected: string, timeout = 20_000): Promise<void> {
    await expect
      .poll(async () => {
        const { state, transport } = await this.stats();
        return `${state} ${transport}`;
      }, { timeout, interval: 100 })
      .toBe(expected);
    // The page shows it too, not only its state object.
    expect(await this.page.getAttribute('body', 'data-state')).toBe(expected.split(' ')[0]);
    expect(await this.page.textContent('#transport')).toBe(expected.split(' ')[1]);
  }

  /** Waits until `count` more ticker messages arrived: the stream flows. */
  async flowing(count = 10, timeout = 15_000): Promise<void> {
    const from = (await this.stats()).ticks;
    await expect.poll(async () => (await this.stats()).ticks - from, { timeout, interval: 100 }).toBeGreaterThanOrEqual(count);
  }

  /**
   * Waits until no ticker message has arrived for `ms` (the ticker runs every 100 ms or faster): the
   * link has gone quiet, and nothing sent before it died is still on its way.
   */
  async quiet(ms = 600, timeout = 10_000): Promise<void> {
    let ticks = (await this.stats()).ticks;
    let since = Date.now();
    await expect
      .poll(async () => {
        const now = (await this.stats()).ticks;
        if (now !== ticks) [ticks, since] = [now, Date.now()];
        return Date.now() - since >= ms;
      }, { timeout, interval: 50 })
      .toBe(true);
  }

  /** Presses a condition's toggle and waits for the page to show the conditions layer's answer. */
  async toggle(condition: Condition): Promise<void> {
    const button = this.page.locator(`button[data-condition="${condition}"]`);
    const pressed = await button.getAttribute('aria-pressed');
    await button.click();
    if (condition === 'normal') await expect.poll(() => this.stats().then((s) => s.conditions), { timeout: 5_000 }).toEqual([]);
    else await expect.poll(() => button.getAttribute('aria-pressed'), { timeout: 5_000 }).toBe(pressed === 'true' ? 'false' : 'true');
  }

  /** Waits until every send was acknowledged and echoed once. */
  async settled(timeout = 20_000): Promise<void> {
    await expect
      .poll(async () => {
        const { sent, acked, echoes, failed } = await this.stats();
        return { acked: acked === sent, echoed: echoes === sent, failed };
      }, { timeout, interval: 200 })
      .toEqual({ acked: true, echoed: true, failed: 0 });
  }

  /** The page's own count: nothing lost, nothing duplicated, no gap; and no script error. */
  async expectNothingLost(): Promise<void> {
    const { lost, duplicated, gaps, ticks } = await this.stats();
    expect({ lost, duplicated, gaps }).toEqual({ lost: 0, duplicated: 0, gaps: 0 });
    expect(ticks).toBeGreaterThan(0);
    expect(await this.page.textContent('#lost')).toBe('0');
    expect(await this.page.textContent('#duplicated')).toBe('0');
    expect(this.errors).toEqual([]);
  }

  /**
   * Waits until the page shows the `kind` countdown running, with at least `margin` ms left, in its
   * state and on screen; returns the text shown.
   */
  async countdown(kind: Countdown, timeout = 40_000, margin = 800): Promise<string> {
    const { pattern, selector } = COUNTDOWNS[kind];
    await expect
      .poll(async () => {
        const { text, left } = await this.page.evaluate((k) => {
          const { countdown, scheduled } = (window as unknown as { demoStats: DemoStats }).demoStats;
          const at = scheduled[k];
          return { text: countdown[k], left: at === null ? 0 : at - Date.now() };
        }, kind);
        return pattern.test(text) && left >= margin;
      }, { timeout, interval: 100 })
      .toBe(true);
    const shown = (await this.page.textContent(selector)) ?? '';
    expect(shown).toMatch(pattern);
    return shown;
  }

  /**
   * Takes a screenshot while the `kind` countdown runs: waits for it, shoots, and checks that the
   * moment it counts down to had not come when the shot was done (else waits for the next one).
   * Returns the text the page showed.
   */
  async screenshotCountdown(name: string, kind: Countdown, timeout = 40_000): Promise<string> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const shown = await this.countdown(kind, Math.max(1_000, deadline - Date.now()));
      const before = (await this.stats()).scheduled[kind];
      await this.screenshot(name);
      const after = await this.page.evaluate((k) => {
        const { scheduled } = (window as unknown as { demoStats: DemoStats }).demoStats;
        return { at: scheduled[k], now: Date.now() };
      }, kind);
      if (after.at === before && before !== null && before > after.now) return shown;
      if (Date.now() > deadline) throw new Error(`the ${kind} countdown never lasted through a screenshot`);
    }
  }

  async screenshot(name: string, fullPage = true): Promise<void> {
    await mkdir(SCREENSHOTS, { recursive: true });
    await this.page.screenshot({ path: new URL(`${name}.png`, SCREENSHOTS).pathname, fullPage });
  }

  close(): Promise<void> {
    return this.page.context().close();
  }
}

/** Opens the demo page in a fresh context, with client options in its query. */
export async function openDemo(
  browser: Browser,
  url: string,
  query: Record<string, string | number> = FAST,
  context: BrowserContextOptions = { viewport: { width: 1280, height: 1000 } },
): Promise<DemoPage> {
  const page = await (await browser.newContext(context)).newPage();
  const demo = new DemoPage(page);
  const search = new URLSearchParams(Object.entries(query).map(([name, value]) => [name, String(value)]));
  await page.goto(`${url}?${search}`);
  return demo;
}
