/**
 * The fallback chain (PROTOCOL.md §13.3) against real breakage: a loopback HTTP proxy between the
 * client and the reference server refuses, hangs, silences or buffers what passes through it. Each
 * scenario asserts the transport reached and why, and that no message was lost or duplicated in
 * either direction while it happened.
 */
import { MapMemory } from '../helpers/memory.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Client, ClientOptions, TransportEvent, TransportMemory } from '../../src/client/index.js';
import { deferred, nextTurn, when } from '../helpers/signals.js';
import { useProxiedServer } from './fixture.js';

/** Short deadlines keep the scenarios fast; the default timings are measured in bench/. */
const FAST: ClientOptions = { connectTimeout: 1_000, reconnectDelay: 5, maxReconnectDelay: 50, minUptime: 0, storage: null };

describe('fallback through a misbehaving network', () => {
  const requests: string[] = [];
  const net = useProxiedServer(FAST, (server) =>
    server.http.on('request', (request) => requests.push(`${request.method} ${new URL(request.url ?? '/', 'http://x').pathname}`)),
  );

  function transports(made: Client): TransportEvent[] {
    const seen: TransportEvent[] = [];
    made.on('transport', (event) => seen.push(event));
    return seen;
  }

  /** Resolves with the first `transport` event that names `name`. */
  function reaches(made: Client, name: TransportEvent['transport']) {
    const reached = deferred<TransportEvent>();
    made.on('transport', (event) => {
      if (event.transport === name) reached.resolve(event);
    });
    return reached.promise;
  }

  /** Pushes 1..count from the server, one per event-loop turn; resolves when the client has all. */
  async function pushAndCount(made: Client, count: number) {
    const got: number[] = [];
    const all = when(() => got.length >= count);
    made.on('message', ({ data }) => {
      got.push(data as number);
      all.wake();
    });
    for (let n = 1; n <= count; n++) {
      await net.server.server.broadcast(n);
      await nextTurn();
    }
    await all.promise;
    return got;
  }

  afterEach(() => {
    requests.length = 0;
  });

  it.each([
    ['ws-blocked', 'refused'],
    ['ws-hanging', 'timeout'],
    ['ws-silent', 'silent'],
  ] as const)('moves from WebSocket to SSE when the upgrade is %s, and says %s', async (condition, reason) => {
    await net.start(condition);
    const made = net.client();
    const seen = transports(made);
    const event = await reaches(made, 'sse');
    expect(event).toEqual({ transport: 'sse', previous: null, reason });
    expect(seen).toHaveLength(1);
    expect(await pushAndCount(made, 200)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  it('moves from SSE to long polling when a proxy buffers the event stream, and says buffered', async () => {
    await net.start('normal');
    // WebSocket blocked and SSE buffered: the two conditions at once, as behind some corporate proxies.
    net.proxy.setCondition('ws-blocked');
    const made = net.client({ transports: ['sse', 'long-polling'] });
    net.proxy.setCondition('sse-buffered');
    const event = await reaches(made, 'long-polling');
    expect(event).toEqual({ transport: 'long-polling', previous: null, reason: 'buffered' });
    expect(await pushAndCount(made, 200)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  it('skips SSE when no EventSource exists and goes straight to long polling', async () => {
    await net.start('ws-blocked');
    const made = net.client({ EventSource: undefined });
    const event = await reaches(made, 'long-polling');
    expect(event.reason).toBe('refused');
    expect(requests.filter((line) => line.endsWith('/sse'))).toEqual([]);
  });

  it('keeps exactly-once order both ways across a fallback to SSE and an upgrade back to WebSocket', async () => {
    await net.start('normal');
    const serverSaw: number[] = [];
    net.server.server.on('message', (data) => {
      serverSaw.push(data as number);
    });
    const made = net.client({ upgradeInterval: 100 });
    const seen = transports(made);
    await reaches(made, 'websocket');
    const appSaw: number[] = [];
    const all = when(() => appSaw.length >= 600);
    made.on('message', ({ data }) => {
      appSaw.push(data as number);
      all.wake();
    });
    const sends: Promise<void>[] = [];
    const onSse = reaches(made, 'sse');
    const backOnWebSocket = deferred<void>();
    for (let n = 1; n <= 600; n++) {
      sends.push(made.send(n));
      await net.server.server.broadcast(n);
      if (n === 150) net.proxy.setCondition('ws-blocked'); // cuts the open WebSocket; the next upgrade gets 503
      if (n === 300) {
        await onSse;
        net.proxy.setCondition('normal'); // the next probe succeeds and the client moves back
        made.on('transport', (event) => {
          if (event.transport === 'websocket') backOnWebSocket.resolve();
        });
      }
      await nextTurn();
    }
    await backOnWebSocket.promise;
    await Promise.all(sends);
    await all.promise;
    expect(appSaw).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(serverSaw).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
    expect(seen.map(({ transport, reason }) => `${transport}:${reason}`)).toEqual([
      'websocket:initial',
      'sse:refused',
      'websocket:upgrade',
    ]);
  });

  it('remembers the transport that worked, so the next client starts there', async () => {
    await net.start('ws-blocked');
    const memory = new MapMemory();
    const first = net.client({ storage: memory });
    await reaches(first, 'sse');
    first.close();
    const next = net.client({ storage: memory, upgradeInterval: 0 });
    const event = await reaches(next, 'sse');
    expect(event).toEqual({ transport: 'sse', previous: null, reason: 'remembered' });
    // Only the first client paid for the refused upgrade.
    expect(requests.filter((line) => line.endsWith('/ws'))).toHaveLength(0);
  });
});
