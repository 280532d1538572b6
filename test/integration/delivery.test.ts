/**
 * End-to-end delivery over real sockets, looped over every transport: the client in Node against the
 * reference server, with a real TCP proxy in between that the tests use to kill connections.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { UnbrokenMessage } from '../../src/client/index.js';
import type { Payload, Session } from '../../src/server/index.js';
import { deferred, nextTurn, when } from '../helpers/signals.js';
import { TRANSPORTS, startFixture, type Fixture } from './fixture.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(TRANSPORTS)('delivery over %s', (transport) => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('answers the classic example: world on connection, server: reply to each message', async () => {
    fixture = await startFixture(transport);
    fixture.server.server.on('connection', (session) => {
      void session.send('world');
    });
    fixture.server.server.on('message', (_data, session) => {
      void session.send('server: reply');
    });
    const client = fixture.client();
    const received: unknown[] = [];
    const twoMessages = when(() => received.length === 2);
    client.on('message', ({ data }) => {
      received.push(data);
      twoMessages.wake();
    });
    await client.send('hello');
    await twoMessages.promise;
    expect(received).toEqual(['world', 'server: reply']);
    expect(client.state).toBe('open');
    expect(client.transport).toBe(transport);
  });

  it('delivers 1..1000 exactly once and in order both ways while the connection is killed every 100 messages', async () => {
    fixture = await startFixture(transport, { retry: 5, heartbeatInterval: 2_000 });
    const serverSaw: number[] = [];
    fixture.server.server.on('message', (data) => {
      serverSaw.push(data as number);
    });
    const client = fixture.client({ reconnectDelay: 5, maxReconnectDelay: 50, minUptime: 0 });
    let opened = 0;
    client.on('open', () => opened++);
    const appSaw: number[] = [];
    const allReceived = when(() => appSaw.length >= 1000);
    client.on('message', ({ data }) => {
      appSaw.push(data as number);
      allReceived.wake();
    });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));

    // The client sends 1..1000 while the server pushes 1..1000: interleaved, one per event-loop turn.
    const sends: Promise<void>[] = [];
    const kills: number[] = [];
    for (let n = 1; n <= 1000; n++) {
      sends.push(client.send(n));
      await fixture.server.server.broadcast(n);
      if (n % 100 === 50) {
        // Each kill hits a live connection: wait for the previous reconnection to finish first.
        if (client.state !== 'open') await new Promise<void>((resolve) => client.once('open', () => resolve()));
        // A long-polling link lives in its requests: cut it while a poll is on the wire.
        if (transport === 'long-polling') await new Promise((resolve) => fixture.server.http.once('request', resolve));
        fixture.proxy.dropAll();
        kills.push(n);
      }
      await nextTurn();
    }
    await Promise.all(sends);
    await allReceived.promise;

    expect(kills).toHaveLength(10);
    expect(opened).toBeGreaterThanOrEqual(11);
    expect(appSaw).toEqual(range(1, 1000));
    expect(serverSaw).toEqual(range(1, 1000));
  });

  it('merges broadcasts and messages to the session into one ordered stream, replaying both after a drop', async () => {
    fixture = await startFixture(transport, { retry: 5 });
    const sessionReady = deferred<Session>();
    fixture.server.server.on('connection', (session) => sessionReady.resolve(session));
    // A reconnection attempted while the proxy is silent loses its handshake: it times out and retries.
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 300 });
    const seen: Array<{ data: unknown; event: string | undefined }> = [];
    const allSeen = when(() => seen.length === 6);
    client.on('message', ({ data, event }) => {
      seen.push({ data, event });
      allSeen.wake();
    });
    const session = await sessionReady.promise;
    // The client must know its session before the link is cut, or it rightly starts a new one.
    if (client.state !== 'open') await new Promise<void>((resolve) => client.once('open', () => resolve()));
    await fixture.server.server.broadcast('b1');
    await session.send('s1', { event: 'direct' });
    // While the client is away: both kinds keep going into its stream.
    fixture.proxy.setMode('silent');
    fixture.proxy.dropAll();
    await fixture.server.server.broadcast('b2');
    await session.send('s2', { event: 'direct' });
    await fixture.server.server.broadcast('b3');
    fixture.proxy.setMode('pass');
    await session.send('s3', { event: 'direct' });
    await allSeen.promise;
    expect(seen).toEqual([
      { data: 'b1', event: undefined },
      { data: 's1', event: 'direct' },
      { data: 'b2', event: undefined },
      { data: 's2', event: 'direct' },
      { data: 'b3', event: undefined },
      { data: 's3', event: 'direct' },
    ]);
  });

  it('splits a burst to fit the client\'s maxMessageSize: 300 small messages in one tick, none skipped (§4.1.size)', async () => {
    fixture = await startFixture(transport);
    // About 40 KB in one tick: one batch without the client's limit, which would be skipped whole.
    const client = fixture.client({ maxMessageSize: 4_096 });
    const gaps: unknown[] = [];
    const errors: string[] = [];
    const received: number[] = [];
    // Every message, or a skipped batch (the client says so with a gap).
    const all = when(() => received.length >= 300 || gaps.length > 0);
    client.on('gap', (gap) => {
      gaps.push(gap);
      all.wake();
    });
    client.on('error', (error) => errors.push(error.code));
    client.on('message', ({ data }) => {
      received.push((data as { n: number }).n);
      all.wake();
    });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    await Promise.all(range(1, 300).map((n) => fixture.server.server.broadcast({ n, body: 'x'.repeat(100) })));
    await all.promise;
    expect(received).toEqual(range(1, 300));
    expect(gaps).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('receives named events by name without colliding with lifecycle events', async () => {
    fixture = await startFixture(transport);
    const client = fixture.client();
    const named = deferred<UnbrokenMessage>();
    const lifecycleOpen = deferred<void>();
    client.on('message:open', (message) => named.resolve(message));
    client.on('open', () => lifecycleOpen.resolve());
    await lifecycleOpen.promise;
    const id = await fixture.server.server.broadcast({ door: 'front' }, { event: 'open' });
    const message = await named.promise;
    expect(message).toEqual({ data: { door: 'front' }, id, event: 'open' });
  });

  it('carries binary data both ways as bytes (a Buffer at the server, whatever the transport)', async () => {
    fixture = await startFixture(transport);
    const fromClient = deferred<Payload>();
    fixture.server.server.on('message', (data) => fromClient.resolve(data));
    const client = fixture.client();
    const toClient = deferred<unknown>();
    client.on('message', ({ data }) => toClient.resolve(data));
    await client.send(new Uint8Array([0, 1, 2, 254, 255]));
    const received = await fromClient.promise;
    // One type for every transport: a listener's `String(data)` or `data.toString('hex')` must not
    // change when the client falls back from WebSocket.
    expect(Buffer.isBuffer(received)).toBe(true);
    expect([...(received as Uint8Array)]).toEqual([0, 1, 2, 254, 255]);
    await fixture.server.server.broadcast(new Uint8Array([9, 8, 7]));
    const data = await toClient.promise;
    expect(data).toBeInstanceOf(Uint8Array);
    expect([...(data as Uint8Array)]).toEqual([9, 8, 7]);
  });

  it('queues sends made before the connection opens and while it is down, and delivers them in order', async () => {
    fixture = await startFixture(transport, { retry: 5 });
    const serverSaw: unknown[] = [];
    const threeSeen = when(() => serverSaw.length === 3);
    fixture.server.server.on('message', (data) => {
      serverSaw.push(data);
      threeSeen.wake();
    });
    fixture.proxy.setMode('silent');
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 200 });
    const first = client.send('queued before open');
    const reconnecting = deferred<void>();
    client.on('state', ({ to }) => {
      if (to === 'reconnecting') reconnecting.resolve();
    });
    await reconnecting.promise; // the silent proxy made the first attempt time out
    const second = client.send('queued while reconnecting');
    fixture.proxy.setMode('pass');
    await Promise.all([first, second, client.send('third')]);
    await threeSeen.promise;
    expect(serverSaw).toEqual(['queued before open', 'queued while reconnecting', 'third']);
  });
});
