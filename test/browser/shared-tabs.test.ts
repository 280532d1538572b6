/**
 * Many tabs, one connection (PROTOCOL.md §7.5), in real Chromium tabs of one browser context, whose
 * HTTP/1.1 connection pool holds six connections per host. On SSE and on long polling, 8 tabs of one
 * origin all open, and the application's own request from the last tab still gets through at once;
 * then the holder tab closing, and the next one freezing in the background, under 200 messages a
 * second loses and repeats nothing in any tab; with 3 tabs, a holder tab stopped in the debugger (no
 * `freeze` event) is replaced long before the heartbeat deadline, and steps down when it runs again;
 * and a graceful restart reaches every tab as `SERVER_RESTART`. The same with 20 tabs runs in
 * `npm run chaos` (shared-tabs.long.ts), which reuses this file's page and checks.
 */
import { readFile } from 'node:fs/promises';
import type http from 'node:http';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARRIER_WAIT } from '../../src/client/tab-group.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';
import { launchChromium } from './chromium.js';

const root = new URL('../../', import.meta.url);

/** The tab page: one client on the transport `?t=` names, its messages and opens kept on `window.tab`. */
const TAB_PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<script src="/unbroken-realtime.iife.min.js"></script></head><body><script>
const transport = new URLSearchParams(location.search).get('t');
window.tab = { received: [], opens: [], errors: [], waits: [] };
const client = Unbroken.connect('/realtime', { transports: [transport], reconnectDelay: 50, maxReconnectDelay: 500 });
client.on('message', ({ data }) => tab.received.push(data));
client.on('open', ({ resumed }) => tab.opens.push({ at: performance.now(), resumed, transport: client.transport, sharing: client.sharing }));
client.on('error', (error) => tab.errors.push(error.code + ' ' + error.message));
client.on('schedule', ({ kind, delay }) => kind === 'reconnect' && tab.waits.push(delay));
window.client = client;
</script></body></html>`;

async function serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://tabs').pathname;
  if (path === '/tab.html') response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(TAB_PAGE);
  else if (path === '/ping') response.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
  else if (path === '/unbroken-realtime.iife.min.js') {
    response.writeHead(200, { 'content-type': 'text/javascript' }).end(await readFile(new URL('dist/unbroken-realtime.iife.min.js', root)));
  } else response.writeHead(404).end();
}

interface TabState {
  received: number[];
  /** `sharing`: the tab's part on the connection the tabs share, `null` on a connection of its own. */
  opens: { at: number; resumed: boolean; transport: string; sharing: string | null }[];
  errors: string[];
  /** The delays of the reconnections it scheduled. */
  waits: number[];
}

const stateOf = (page: Page): Promise<TabState> => page.evaluate(() => (window as unknown as { tab: TabState }).tab);
const sharingOf = (page: Page): Promise<string | null> => page.evaluate(() => (window as unknown as { client: { sharing: string | null } }).client.sharing);

export const TABS_PAGE = { serve, stateOf, sharingOf };

/** Opens `count` tabs of the tab page in a new context, all at once. */
export async function openTabs(browser: Browser, port: number, transport: string, count: number): Promise<{ context: BrowserContext; pages: Page[] }> {
  const context = await browser.newContext();
  const pages = await Promise.all(Array.from({ length: count }, () => context.newPage()));
  await Promise.all(pages.map((page) => page.goto(`http://127.0.0.1:${port}/tab.html?t=${transport}`)));
  return { context, pages };
}

/** Every tab opened within 10 s on `transport`, one holds the connection, and a plain fetch from the last one answers within 1 s. */
export async function expectAllOpen(pages: Page[], transport: string): Promise<void> {
  await Promise.all(pages.map((page) => page.waitForFunction(() => (window as unknown as { tab: TabState }).tab.opens.length > 0, null, { timeout: 10_000 })));
  for (const page of pages) {
    const { opens } = await stateOf(page);
    expect(opens[0]!.transport).toBe(transport);
    expect(opens[0]!.at).toBeLessThan(10_000);
  }
  const roles = await Promise.all(pages.map(sharingOf));
  expect(roles.filter((role) => role === 'holder')).toHaveLength(1);
  expect(roles.filter((role) => role === 'follower')).toHaveLength(pages.length - 1);
  const ping = await pages.at(-1)!.evaluate(async () => {
    const start = performance.now();
    const text = await (await fetch('/ping', { cache: 'no-store' })).text();
    return { text, ms: performance.now() - start };
  });
  expect(ping.text).toBe('pong');
  expect(ping.ms).toBeLessThan(1_000);
}

/** Broadcasts 1..count at `perSecond`, calling `at(n)` after each; resolves with what was sent. */
async function broadcast(server: StartedServer, count: number, perSecond: number, at: (n: number) => Promise<void>): Promise<number[]> {
  const sent: number[] = [];
  const start = Date.now();
  for (let n = 1; n <= count; n++) {
    const due = start + (n * 1000) / perSecond;
    if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
    await server.server.broadcast(n);
    sent.push(n);
    await at(n);
  }
  return sent;
}

/** Each page received exactly `sent` since `from` (an index into its messages), once and in order. */
async function expectReceived(pages: Page[], sent: number[], from: Map<Page, number>): Promise<void> {
  await Promise.all(
    pages.map((page) =>
      page.waitForFunction(([count, skip]) => (window as unknown as { tab: TabState }).tab.received.length >= skip + count, [sent.length, from.get(page) ?? 0] as const, {
        timeout: 15_000,
      }),
    ),
  );
  for (const page of pages) expect((await stateOf(page)).received.slice(from.get(page) ?? 0)).toEqual(sent);
}

async function holderOf(pages: Page[]): Promise<Page> {
  const roles = await Promise.all(pages.map(sharingOf));
  expect(roles.filter((role) => role === 'holder')).toHaveLength(1);
  return pages[roles.indexOf('holder')]!;
}

/** Resolves once one of `pages` holds the connection, within `timeout` ms. */
async function takeover(pages: Page[], timeout = 10_000): Promise<void> {
  await Promise.any(
    pages.map((page) => page.waitForFunction(() => (window as unknown as { client: { sharing: string | null } }).client.sharing === 'holder', null, { timeout })),
  );
}

/**
 * No tab opened a connection of its own since `from` (its opens so far): a tab waits {@link
 * CARRIER_WAIT} ms to hear of a holder before it connects on its own, so a hand-over slower than that,
 * by the tabs' own clocks, shows as such an open.
 */
async function expectOnlyShared(pages: Page[], from: Map<Page, number>): Promise<void> {
  for (const page of pages) {
    const opens = (await stateOf(page)).opens.slice(from.get(page) ?? 0);
    expect(opens.length).toBeGreaterThan(0);
    expect(opens.filter((open) => open.sharing === null)).toEqual([]);
  }
}

/** How many messages (or opens) each of `pages` has had so far. */
async function countsOf(pages: Page[], of: 'received' | 'opens' | 'errors' | 'waits' = 'received'): Promise<Map<Page, number>> {
  return new Map(await Promise.all(pages.map(async (page) => [page, (await stateOf(page))[of].length] as const)));
}

/**
 * Registers, for the enclosing describe block, a browser and a server with `count` tabs of the tab
 * page open on `transport`, each open once; a test may narrow `pages` for the tests after it.
 */
function useTabs(transport: string, count: number, heartbeatInterval: number): { server: StartedServer; pages: Page[] } {
  const tabs = {} as { server: StartedServer; pages: Page[] };
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  beforeAll(async () => {
    browser = await launchChromium();
    // Every restart notice says half the jitter (2.5 s): a tab that reconnected at once shows as such.
    tabs.server = await startServer({ httpHandler: (request, response) => void serve(request, response), retry: 50, heartbeatInterval, random: () => 0.5 });
    ({ context, pages: tabs.pages } = await openTabs(browser, tabs.server.port, transport, count));
    await Promise.all(tabs.pages.map((page) => page.waitForFunction(() => (window as unknown as { tab: TabState }).tab.opens.length > 0, null, { timeout: 10_000 })));
  });
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await tabs.server?.close();
  });
  return tabs;
}

describe.each(['sse', 'long-polling'] as const)('8 tabs on %s', (transport) => {
  const tabs = useTabs(transport, 8, 5_000);

  it('opens all 8 tabs within 10 s, and a plain fetch from the last one answers within 1 s', async () => {
    await expectAllOpen(tabs.pages, transport);
  });

  it('loses and repeats nothing in any tab when the holder tab closes under 200 messages a second', async () => {
    const holder = await holderOf(tabs.pages);
    tabs.pages = tabs.pages.filter((page) => page !== holder);
    const from = await countsOf(tabs.pages);
    const opened = await countsOf(tabs.pages, 'opens');
    let tookOver: Promise<void> | undefined;
    const sent = await broadcast(tabs.server, 300, 200, async (n) => {
      if (n !== 100) return;
      await holder.close({ runBeforeUnload: false });
      tookOver = takeover(tabs.pages);
    });
    await expectReceived(tabs.pages, sent, from);
    await tookOver;
    // The deadline a tab waits for a carrier is the one a new holder must meet.
    await expectOnlyShared(tabs.pages, opened);
    await holderOf(tabs.pages);
  });

  it('hands over when the holder tab freezes, and the frozen tab rejoins with everything when it resumes', async () => {
    const holder = await holderOf(tabs.pages);
    const others = tabs.pages.filter((page) => page !== holder);
    const from = await countsOf(tabs.pages);
    const opened = await countsOf(others, 'opens');
    // A background tab is frozen the way Chromium does it: the document's `freeze` event, then no task
    // of the page runs until its `resume` event. Headless Chromium never hides a page and freezes only
    // hidden ones, so the page is held here by one task that runs for a second.
    let tookOver: Promise<void> | undefined;
    const sent = await broadcast(tabs.server, 400, 200, async (n) => {
      if (n === 100) {
        tookOver = takeover(others);
        await holder.evaluate(() => {
          document.dispatchEvent(new Event('freeze'));
          setTimeout(() => {
            const until = performance.now() + 1_000;
            while (performance.now() < until);
            document.dispatchEvent(new Event('resume'));
          });
        });
      }
    });
    // While it was frozen (1 s), another tab took over, before any of them connected on its own.
    await tookOver;
    await expectReceived(tabs.pages, sent, from);
    await expectOnlyShared(others, opened);
    await holderOf(tabs.pages);
  });

  it('tells every tab of a graceful restart (§10.2) with SERVER_RESTART, whichever BroadcastChannel brings the end first', async () => {
    const errors = await countsOf(tabs.pages, 'errors');
    const waits = await countsOf(tabs.pages, 'waits');
    await tabs.server.server.close();
    for (const page of tabs.pages) {
      const seen = waits.get(page)!;
      await page.waitForFunction((count) => (window as unknown as { tab: TabState }).tab.waits.length > count, seen, { timeout: 10_000 });
      const state = await stateOf(page);
      expect(state.errors[errors.get(page)!]).toMatch(/^SERVER_RESTART /);
      // The notice's delay, not at once: the end of the carrier the tabs share came after it.
      expect(state.waits[seen]).toBeGreaterThan(2_000);
    }
  });
});

describe.each(['sse', 'long-polling'] as const)('3 tabs on %s, the holder hangs', (transport) => {
  // A heartbeat deadline of 60 s: the other tabs find the holder hung by asking after it once they
  // heard nothing from it for QUIET_WAIT (§13.6).
  const tabs = useTabs(transport, 3, 30_000);

  it('takes the carrier from a holder tab stopped in the debugger, and that tab steps down with everything when it runs again', async () => {
    const holder = await holderOf(tabs.pages);
    const others = tabs.pages.filter((page) => page !== holder);
    const from = await countsOf(tabs.pages);
    const opened = await countsOf(others, 'opens');
    // A page whose script stops without a `freeze` event: paused in the debugger at its next statement,
    // as a long task or a tab the browser suspended without telling it would hold it.
    const debug = await holder.context().newCDPSession(holder);
    await debug.send('Debugger.enable');
    await debug.send('Debugger.pause');
    // At most two quiet spells and 3 s for the answer, then a new carrier: 30 s is ample, and half
    // the heartbeat deadline.
    const tookOver = takeover(others, 30_000);
    const sent = await broadcast(tabs.server, 200, 50, async () => undefined);
    await tookOver;
    await expectReceived(others, sent, from);
    // Every other tab came back on the carrier the tabs share, not on one of its own.
    await expectOnlyShared(others, opened);

    const reopened = await countsOf(others, 'opens');
    await debug.send('Debugger.resume');
    await holder.waitForFunction(() => (window as unknown as { client: { sharing: string | null } }).client.sharing === 'follower', null, { timeout: 10_000 });
    const more = await broadcast(tabs.server, 20, 50, async () => undefined);
    await expectReceived(tabs.pages, [...sent, ...more], from);
    await holderOf(tabs.pages);
    // What the hung tab still said of its old carrier when it ran again moved no other tab.
    expect(await countsOf(others, 'opens')).toEqual(reopened);
  });
});
