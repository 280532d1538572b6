/**
 * What the demo page's tests share: one Chromium and one demo server per file, a fresh page per test
 * that already flows over WebSocket, and the fallback walks (a condition switched on with the page's
 * own toggle makes the client reach the transport the README promises; lifting it brings the client
 * back to WebSocket through the upgrade probe). demo.test.ts runs one walk per way of falling back in
 * `npm test`; demo-walks.long.ts runs the others in `npm run chaos`.
 */
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import { startDemo, type Demo } from '../../demo/server.mjs';
import { launchChromium } from './chromium.js';
import { DemoPage, FAST, openDemo, type Condition } from './demo-page.js';

/** The server's heartbeat: a frozen link is found within twice that. */
export const HEARTBEAT = 1000;

/** The demo server and the page of the current test, set by {@link useDemoPage}'s hooks. */
export interface DemoContext {
  browser: Browser;
  demo: Demo;
  page: DemoPage;
}

/**
 * Registers the hooks of a file (or describe block) that drives the demo page: the page of each test
 * sends one message every second throughout, so upstream delivery is checked under every condition.
 */
export function useDemoPage(): DemoContext {
  const context = {} as DemoContext;
  beforeAll(async () => {
    context.browser = await launchChromium();
    context.demo = await startDemo({ port: 0, heartbeatInterval: HEARTBEAT, tickInterval: 100 });
  });
  afterAll(async () => {
    await context.browser?.close();
    await context.demo?.close();
  });
  beforeEach(async () => {
    context.demo.network.setCondition('normal');
    context.page = await openDemo(context.browser, context.demo.url, { ...FAST, autosend: 1 });
    await context.page.until('open websocket');
    await context.page.flowing(5);
  });
  afterEach(async () => {
    await context.page?.close();
  });
  return context;
}

/** A way of falling back: the conditions switched on, and the transport the client must reach. */
export interface Fallback {
  name: string;
  conditions: Condition[];
  transport: string;
}

export const FALLBACKS = {
  /** The upgrade is refused: the next attempt starts at once. */
  blocked: { name: 'ws-blocked', conditions: ['ws-blocked'], transport: 'sse' },
  /** The upgrade never answers: the race starts SSE beside it (§13.3). */
  hanging: { name: 'ws-hanging', conditions: ['ws-hanging'], transport: 'sse' },
  /** The upgrade succeeds but nothing comes through it: the hello deadline. */
  silent: { name: 'ws-silent', conditions: ['ws-silent'], transport: 'sse' },
  /** WebSocket refused and the SSE stream held back by a buffering proxy. */
  buffered: { name: 'sse-buffered', conditions: ['ws-blocked', 'sse-buffered'], transport: 'long-polling' },
} satisfies Record<string, Fallback>;

/**
 * Switches `fallback`'s conditions on, waits for its transport, lifts them and waits for WebSocket to
 * come back by the upgrade probe; then nothing may be lost or repeated either way.
 */
export async function walkFallback({ demo, page }: DemoContext, { name, conditions, transport }: Fallback): Promise<void> {
  for (const condition of conditions) await page.toggle(condition);
  expect(demo.network.active).toEqual(conditions);
  expect((await page.stats()).conditions).toEqual(conditions);

  await page.until(`open ${transport}`, 30_000);
  await page.flowing();
  // On a fallback, the page counts down to the client's next WebSocket probe.
  await page.screenshotCountdown(`demo-${name}`, 'probe');

  await page.toggle('normal');
  expect(demo.network.active).toEqual([]);
  await page.until('open websocket', 30_000);
  expect((await page.stats()).transports.at(-1)).toMatchObject({ transport: 'websocket', previous: transport, reason: 'upgrade' });
  await page.flowing();
  await page.settled();
  await page.expectNothingLost();
  await page.screenshot(`demo-${name}-lifted`);
}
