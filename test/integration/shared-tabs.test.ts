/**
 * Tabs that share one connection (PROTOCOL.md §7.5), simulated in Node: each "tab" is a client with
 * its own view of one Web Locks table (test/helpers/tab-locks.ts) and Node's real BroadcastChannel,
 * against the real server over loopback. The Chromium suite (test/browser/shared-tabs.test.ts) proves
 * the same with real tabs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '../../src/client/index.js';
import { LockTable, type SimulatedTab } from '../helpers/tab-locks.js';
import { deferred, when } from '../helpers/signals.js';
import { startFixture, type Fixture } from './fixture.js';

const SHARED = ['sse', 'long-polling'] as const;

/** A simulated tab with its client and the messages it received. */
type Tab = { tab: SimulatedTab; client: Client; received: unknown[] };

/** Whether the tab holds its group's lock: the carrier (the other lock a tab holds is its own, `…|tab|…`). */
const holds = ({ tab }: { tab: SimulatedTab }): boolean => tab.held().some((name) => !name.includes('|tab|'));

describe.each(SHARED)('tabs sharing one %s connection', (transport) => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  /** Requests the server saw, by endpoint, and the most that were open at once. */
  function watchRequests(): { seen: Map<string, number>; peak: Map<string, number> } {
    const seen = new Map<string, number>();
    const open = new Map<string, number>();
    const peak = new Map<string, number>();
    fixture.server.http.prependListener('request', (request, response) => {
      const endpoint = new URL(request.url ?? '/', 'http://x').pathname.replace('/realtime', '');
      seen.set(endpoint, (seen.get(endpoint) ?? 0) + 1);
      open.set(endpoint, (open.get(endpoint) ?? 0) + 1);
      peak.set(endpoint, Math.max(peak.get(endpoint) ?? 0, open.get(endpoint)!));
      response.once('close', () => open.set(endpoint, (open.get(endpoint) ?? 1) - 1));
    });
    return { seen, peak };
  }

  function tabs(count: number, table = new LockTable()): Tab[] {
    return Array.from({ length: count }, () => {
      const tab = table.tab();
      const client = fixture.client({ locks: tab.locks, BroadcastChannel: tab.BroadcastChannel, reconnectDelay: 20, maxReconnectDelay: 200 });
      const received: unknown[] = [];
      client.on('message', ({ data }) => received.push(data));
      return { tab, client, received };
    });
  }

  /** `count` tabs, once every one of them is open. */
  async function openTabs(count: number): Promise<ReturnType<typeof tabs>> {
    const open = tabs(count);
    const allOpen = when(() => open.every(({ client }) => client.state === 'open'));
    for (const { client } of open) client.on('open', allOpen.wake);
    await allOpen.promise;
    return open;
  }

  /**
   * Resolves once every tab of `tabs` received `data` itself, not a count: a tab that lost some still
   * gets there, and the comparison after shows what it lost.
   */
  function allReceived(some: readonly Tab[], data: unknown): Promise<void> {
    const all = when(() => some.every(({ received }) => received.includes(data)));
    for (const { client } of some) client.on('message', all.wake);
    return all.promise;
  }

  /** Resolves once one of `others` holds the next carrier and every one of them is back on it. */
  function takeover(others: readonly Tab[]): Promise<void> {
    const tookOver = when(() => others.some(holds) && others.every(({ client }) => client.state === 'open' && client.sharing !== null));
    for (const { client } of others) client.on('open', tookOver.wake);
    return tookOver.promise;
  }

  /** Resolves once the tab that hung is open again, as a follower of the new holder. */
  function backAsFollower({ client }: Tab): Promise<void> {
    const back = when(() => client.state === 'open' && client.sharing === 'follower');
    client.on('open', back.wake);
    return back.promise;
  }

  /**
   * When each carrier opened, as the server saw its opening request (a poll of a carrier that is open
   * carries its id in a header; the opening one does not); `next(n)` resolves once `n` have.
   */
  function watchCarrierOpenings(): { times: number[]; next(count: number): Promise<void> } {
    const carrierPath = transport === 'sse' ? '/realtime/carrier?' : '/realtime/carrier-poll?';
    const times: number[] = [];
    const waits = new Set<{ wake(): void }>();
    fixture.server.http.prependListener('request', (request) => {
      if (!request.url?.startsWith(carrierPath) || request.headers['x-unbroken-carrier'] !== undefined) return;
      times.push(performance.now());
      for (const wait of waits) wait.wake();
    });
    return {
      times,
      next(count) {
        const wait = when(() => times.length >= count);
        waits.add(wait);
        return wait.promise;
      },
    };
  }

  it('opens every tab on one carrier, each with its own session, messages and acknowledgements', async () => {
    fixture = await startFixture(transport, { retry: 10 });
    const requests = watchRequests();
    const byTab = new Map<string, unknown[]>();
    fixture.server.server.on('message', (data, session) => {
      byTab.set(session.id, [...(byTab.get(session.id) ?? []), data]);
      void session.send({ echo: data as string });
    });
    const open = await openTabs(4);

    expect(new Set(open.map(({ client }) => client.sessionId)).size).toBe(4);
    expect(open.every(({ client }) => client.transport === transport)).toBe(true);
    await Promise.all(open.flatMap(({ client }, tab) => [1, 2, 3].map((n) => client.send(`${tab}:${n}`))));
    const echoed = when(() => open.every(({ received }) => received.length === 3));
    for (const { client } of open) client.on('message', echoed.wake);
    await echoed.promise;

    open.forEach(({ client, received }, tab) => {
      expect(byTab.get(client.sessionId!)).toEqual([1, 2, 3].map((n) => `${tab}:${n}`));
      expect(received).toEqual([1, 2, 3].map((n) => ({ echo: `${tab}:${n}` })));
    });
    const carrier = transport === 'sse' ? '/carrier' : '/carrier-poll';
    const own = transport === 'sse' ? '/sse' : '/poll';
    expect(requests.seen.get(own) ?? 0).toBe(0);
    // One held request for all four tabs, and never a second beside it.
    expect(requests.peak.get(carrier)).toBe(1);
    if (transport === 'sse') expect(requests.seen.get(carrier)).toBe(1);
  });

  it('hands the carrier to another tab when the holder leaves, and no tab loses or repeats a message', async () => {
    fixture = await startFixture(transport, { retry: 10, heartbeatInterval: 2_000 });
    const requests = watchRequests();
    const open = await openTabs(3);
    const carriers = watchCarrierOpenings();

    const holderIndex = open.findIndex(holds);
    expect(holderIndex).toBeGreaterThanOrEqual(0);
    const holder = open[holderIndex]!;
    const others = open.filter((_, index) => index !== holderIndex);
    const sent: number[] = [];
    const broadcast = async (from: number, to: number): Promise<void> => {
      for (let n = from; n <= to; n++) {
        await fixture.server.server.broadcast(n);
        sent.push(n);
      }
    };

    // The takeover, as the server sees it: the next carrier's opening request.
    let leftAt = 0;
    // Every other tab's session opens again once the holder left: on the next carrier, resumed.
    const reopened = new Map<Client, boolean[]>();
    const allReopened = when(() => reopened.size === others.length);
    for (const { client } of others) {
      client.on('open', ({ resumed }) => {
        if (leftAt === 0) return;
        reopened.set(client, [...(reopened.get(client) ?? []), resumed]);
        allReopened.wake();
      });
    }

    // Messages the old carrier delivered, then more still on their way when its holder goes away: a
    // broadcast settles without I/O, and a tab reads only with some, so none of 31–60 has arrived yet.
    await broadcast(1, 30);
    await allReceived(others, 30);
    await broadcast(31, 60);
    expect(others.map(({ received }) => received.length)).toEqual([30, 30]);
    // The holder tab goes away, as a closed tab would.
    leftAt = performance.now();
    holder.client.close();
    holder.tab.crash();
    // Messages while there is no carrier: the next carrier's request needs I/O, so all of these are
    // stored before any tab can read again.
    await broadcast(61, 120);
    await carriers.next(1);
    const tookOverAt = carriers.times[0]!;
    await allReopened.promise;
    // Messages on the next carrier.
    await broadcast(121, 200);

    await allReceived(others, 200);
    for (const { received } of others) expect(received).toEqual(sent);
    expect([...reopened.values()].flat().every((resumed) => resumed)).toBe(true);
    // Taking over is a lock grant and one carrier request: well within the 1 s a tab waits to hear of a
    // holder before it connects on its own (PROTOCOL.md §13.6) — and none did. One request: the tabs
    // whose links the handover ended keep their places, so the lock does not pass from tab to tab,
    // each opening a carrier it gives up at once.
    expect(tookOverAt - leftAt).toBeLessThan(1_000);
    expect(carriers.times).toHaveLength(1);
    expect(requests.seen.get(transport === 'sse' ? '/sse' : '/poll') ?? 0).toBe(0);
  });

  it('gives the carrier to the next tab once the tab that kept it through a handover has no client left', async () => {
    fixture = await startFixture(transport, { retry: 10, heartbeatInterval: 2_000 });
    const open = await openTabs(3);
    const carriers = watchCarrierOpenings();

    // The holder goes away; the next tab in line holds the next carrier, and every session is back on it.
    const first = open.find(holds)!;
    const rest = open.filter((tab) => tab !== first);
    const backOnNext = when(() => rest.every(({ client }) => client.state === 'open') && rest.some(holds));
    for (const { client } of rest) client.on('open', backOnNext.wake);
    const taken = carriers.next(1);
    first.client.close();
    first.tab.crash();
    await taken;
    await backOnNext.promise;
    const second = rest.find(holds)!;
    const last = rest.find((tab) => tab !== second)!;

    // Its client closes, its tab stays: the place it kept for the handover ends too, and the carrier
    // passes to the last tab, whose session resumes on it and goes on.
    const resumed = deferred<boolean>();
    last.client.on('open', ({ resumed: was }) => resumed.resolve(was));
    const passed = carriers.next(2);
    second.client.close();
    await passed;
    expect(await resumed.promise).toBe(true);
    expect([holds(second), holds(last)]).toEqual([false, true]);
    const received = when(() => last.received.includes('after'));
    last.client.on('message', received.wake);
    await fixture.server.server.broadcast('after');
    await received.promise;
    expect(carriers.times).toHaveLength(2);
  });

  it('takes the carrier from a holder whose page hangs, and the hung tab steps down when it runs again', async () => {
    // A heartbeat deadline of 1 s: a session on a carrier nobody relays notices within it (§11).
    fixture = await startFixture(transport, { retry: 10, heartbeatInterval: 500 });
    const open = await openTabs(3);
    const carriers = watchCarrierOpenings();
    const hung = open.find(holds)!;
    const others = open.filter((tab) => tab !== hung);
    /** How each other tab's client opened after the hang: on the carrier the tabs share, or on its own. */
    const opensAfter: (string | null)[] = [];
    for (const { client } of others) client.on('open', () => opensAfter.push(client.sharing));
    const sent: number[] = [];
    const broadcast = async (from: number, to: number): Promise<void> => {
      for (let n = from; n <= to; n++) {
        await fixture.server.server.broadcast(n);
        sent.push(n);
      }
    };

    await broadcast(1, 20);
    await allReceived(open, 20);
    hung.tab.hang();
    await broadcast(21, 60);
    // Another tab took the lock and holds the next carrier; every other session is back, on it.
    const tookOver = takeover(others);
    await tookOver;
    await broadcast(61, 80);
    await allReceived(others, 80);
    for (const { received } of others) expect(received).toEqual(sent);
    expect(opensAfter.length).toBeGreaterThanOrEqual(2);
    expect(opensAfter).not.toContain(null);
    expect(carriers.times).toHaveLength(1);

    // The hung tab runs again: it hears of the newer holder, gives up its carrier, and its session
    // resumes on the new one with nothing lost or repeated; no third carrier opens. What it says of
    // its old carrier first (it answers the question it missed) is older news: no other tab moves.
    const opensBeforeWake = opensAfter.length;
    const back = backAsFollower(hung);
    hung.tab.wake();
    await back;
    await broadcast(81, 100);
    await allReceived(open, 100);
    for (const { received } of open) expect(received).toEqual(sent);
    expect(holds(hung)).toBe(false);
    expect(carriers.times).toHaveLength(1);
    expect(opensAfter).toHaveLength(opensBeforeWake);
  });

  it('takes the carrier from a holder that hangs while the stream is quiet, long before the heartbeat deadline', async () => {
    // A heartbeat deadline of 60 s, past the test's limit of 40 s: only a tab that asks after its
    // holder once it heard nothing for QUIET_WAIT finds it hung in time (§13.6). A batch heard just
    // before the hang puts that off by one quiet spell at most: about 14 s in all.
    fixture = await startFixture(transport, { retry: 10, heartbeatInterval: 30_000 });
    const open = await openTabs(3);
    const carriers = watchCarrierOpenings();
    const hung = open.find(holds)!;
    const others = open.filter((tab) => tab !== hung);
    await fixture.server.server.broadcast('before');
    await allReceived(open, 'before');
    hung.tab.hang();
    const tookOver = takeover(others);
    await tookOver;
    expect(carriers.times).toHaveLength(1);
    await fixture.server.server.broadcast('after');
    await allReceived(others, 'after');
    for (const { received } of others) expect(received).toEqual(['before', 'after']);
    // The hung tab runs again and follows the new holder.
    const back = backAsFollower(hung);
    hung.tab.wake();
    await back;
    expect(carriers.times).toHaveLength(1);
  }, 40_000);

  it('takes the carrier from a holder that hangs before a new tab opens: the tab connects on its own, then holds the next carrier', async () => {
    fixture = await startFixture(transport, { retry: 10 });
    const table = new LockTable();
    const [first] = tabs(1, table);
    await new Promise<void>((resolve) => first!.client.once('open', () => resolve()));
    first!.tab.hang();
    const [late] = tabs(1, table);
    // Nobody answers where the carrier stands: the tab connects on its own after 1 s (§13.6), asks once
    // more, and takes the lock; its session then moves to the carrier it opened.
    const opens: (string | null)[] = [];
    const shared = when(() => opens.at(-1) === 'holder');
    late!.client.on('open', () => {
      opens.push(late!.client.sharing);
      shared.wake();
    });
    await shared.promise;
    expect(opens).toEqual([null, 'holder']);
    const received = when(() => late!.received.includes('after'));
    late!.client.on('message', received.wake);
    await fixture.server.server.broadcast('after');
    await received.promise;
    first!.tab.wake();
  });

  it('tells every tab of a graceful restart (§10.2) with SERVER_RESTART, and each waits the delay the server gave', async () => {
    // Every notice says 1 s: a tab that heard of its carrier's end before its notice reconnects at once.
    fixture = await startFixture(transport, { retry: 10, shutdownJitter: 2_000, random: () => 0.5 });
    const open = await openTabs(4);
    const seen = open.map(({ client }) => {
      const heard = { errors: [] as string[], messages: [] as string[], waits: [] as number[] };
      client.on('error', ({ code, message }) => heard.errors.push(code) && heard.messages.push(message));
      client.on('schedule', ({ kind, delay }) => kind === 'reconnect' && heard.waits.push(delay));
      return heard;
    });
    const scheduled = when(() => seen.every(({ waits }) => waits.length > 0));
    for (const { client } of open) client.on('schedule', scheduled.wake);
    await fixture.server.server.close();
    await scheduled.promise;
    for (const [index, { errors, messages, waits }] of seen.entries()) {
      const role = holds(open[index]!) ? 'holder' : 'follower';
      expect(errors[0], `tab ${index} (${role}): ${messages.join('; ')}`).toBe('SERVER_RESTART');
      expect(waits[0], `tab ${index} (${role})`).toBeGreaterThan(500);
    }
  });

  it('connects a tab on its own when sharing is off', async () => {
    fixture = await startFixture(transport);
    const requests = watchRequests();
    const client = fixture.client({ share: false });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    expect(requests.seen.get(transport === 'sse' ? '/sse' : '/poll')).toBeGreaterThan(0);
    expect(requests.seen.get('/carrier') ?? requests.seen.get('/carrier-poll') ?? 0).toBe(0);
  });
});
