/**
 * Racing (PROTOCOL.md §13.3) against real breakage: with the default deadlines, a client behind a
 * proxy that hangs, silences or buffers a transport reaches the next one well before its connect
 * deadline, because the next transport started alongside the first after its head start. Each
 * scenario asserts one session on the server, and no message lost or repeated in either direction.
 */
import { describe, expect, it } from 'vitest';
import type { Client, ClientOptions, TransportEvent } from '../../src/client/index.js';
import { deferred, nextTurn, when } from '../helpers/signals.js';
import { LockTable } from '../helpers/tab-locks.js';
import { useProxiedServer } from './fixture.js';

/** The defaults that matter here (connectTimeout 3 s, raceAfter 500 ms), with no memory and quick retries. */
const DEFAULTS: ClientOptions = { reconnectDelay: 5, maxReconnectDelay: 50, minUptime: 0, storage: null, upgradeInterval: 0 };
const CONNECT_TIMEOUT = 3_000;

describe('racing the next transport through a misbehaving network', () => {
  const net = useProxiedServer(DEFAULTS);

  /** Resolves with the first `transport` event, and the ms it took. */
  function firstTransport(made: Client, started: number) {
    const reached = deferred<{ event: TransportEvent; ms: number }>();
    made.once('transport', (event) => reached.resolve({ event, ms: Date.now() - started }));
    return reached.promise;
  }

  /** Sends 1..count from each side, one pair per turn; resolves with what each side got once both have all. */
  async function exchange(made: Client, count: number) {
    const appSaw: number[] = [];
    const serverSaw: number[] = [];
    const all = when(() => appSaw.length >= count && serverSaw.length >= count);
    made.on('message', ({ data }) => {
      appSaw.push(data as number);
      all.wake();
    });
    net.server.server.on('message', (data) => {
      serverSaw.push(data as number);
      all.wake();
    });
    const sends: Promise<void>[] = [];
    for (let n = 1; n <= count; n++) {
      sends.push(made.send(n));
      await net.server.server.broadcast(n);
      await nextTurn();
    }
    await Promise.all(sends);
    await all.promise;
    return { appSaw, serverSaw };
  }

  const upTo = (count: number) => Array.from({ length: count }, (_, i) => i + 1);

  it.each([
    ['ws-hanging', 'timeout'],
    ['ws-silent', 'silent'],
  ] as const)('§13.3 reaches SSE well before the connect deadline when the upgrade is %s, says %s, and keeps one session', async (condition, reason) => {
    await net.start(condition);
    const started = Date.now();
    const made = net.client();
    // Sent before any connection opened: they wait in the outbox and go out once, on the winner.
    const early = [made.send('early-1'), made.send('early-2')];
    const { event, ms } = await firstTransport(made, started);
    expect(event).toEqual({ transport: 'sse', previous: null, reason });
    expect(ms).toBeLessThan(CONNECT_TIMEOUT);
    await Promise.all(early);
    const { appSaw, serverSaw } = await exchange(made, 100);
    expect(appSaw).toEqual(upTo(100));
    expect(serverSaw).toEqual(upTo(100));
    expect(net.server.server.sessions.size).toBe(1);
    expect(made.transport).toBe('sse');
  });

  it('§13.3 reaches long polling well before the connect deadline when SSE is buffered, and keeps one session', async () => {
    // This proxy takes one condition at a time: a refused WebSocket costs no deadline anyway.
    await net.start('sse-buffered');
    const started = Date.now();
    const made = net.client({ transports: ['sse', 'long-polling'] });
    const { event, ms } = await firstTransport(made, started);
    expect(event).toEqual({ transport: 'long-polling', previous: null, reason: 'buffered' });
    expect(ms).toBeLessThan(CONNECT_TIMEOUT);
    const { appSaw, serverSaw } = await exchange(made, 100);
    expect(appSaw).toEqual(upTo(100));
    expect(serverSaw).toEqual(upTo(100));
    expect(net.server.server.sessions.size).toBe(1);
  });

  it('§13.3 starts no race on a healthy network: one ticket, one connection, over WebSocket', async () => {
    await net.start('normal');
    const requests: string[] = [];
    net.server.http.on('request', (request) => requests.push(new URL(request.url ?? '/', 'http://x').pathname));
    const made = net.client();
    const { event } = await firstTransport(made, Date.now());
    expect(event.transport).toBe('websocket');
    const { appSaw } = await exchange(made, 10);
    expect(appSaw).toEqual(upTo(10));
    expect(requests.filter((path) => path.endsWith('/ticket'))).toHaveLength(1);
    expect(requests.filter((path) => path.endsWith('/sse') || path.endsWith('/poll'))).toEqual([]);
  });

  it('§13.3 races onto the connection the tabs share: two tabs behind a hanging upgrade reach one shared SSE carrier, a session each', async () => {
    await net.start('ws-hanging');
    const carriers: string[] = [];
    net.server.http.on('request', (request) => {
      const path = new URL(request.url ?? '/', 'http://x').pathname;
      if (path.endsWith('/carrier')) carriers.push(path);
    });
    const table = new LockTable();
    const started = Date.now();
    const tabs = [0, 1].map(() => net.client({ locks: table.tab().locks, BroadcastChannel }));
    const reached = await Promise.all(tabs.map((made) => firstTransport(made, started)));
    for (const { event, ms } of reached) {
      expect(event).toEqual({ transport: 'sse', previous: null, reason: 'timeout' });
      expect(ms).toBeLessThan(CONNECT_TIMEOUT);
    }
    expect(new Set(tabs.map((made) => made.sharing))).toEqual(new Set(['holder', 'follower']));
    expect(carriers).toHaveLength(1);
    expect(net.server.server.sessions.size).toBe(2);
    const got = tabs.map(() => [] as unknown[]);
    const all = when(() => got.every((list) => list.length >= 20));
    tabs.forEach((made, i) =>
      made.on('message', ({ data }) => {
        got[i]!.push(data);
        all.wake();
      }),
    );
    for (let n = 1; n <= 20; n++) await net.server.server.broadcast(n);
    await all.promise;
    for (const list of got) expect(list).toEqual(upTo(20));
  });
});
