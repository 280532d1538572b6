/**
 * Dead-link detection (PROTOCOL.md §11): a socket that stays open but passes nothing is declared dead
 * within 2 × the server's heartbeat interval, measured from the last byte received.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { UnbrokenError } from '../../src/client/index.js';
import { deferred, when } from '../helpers/signals.js';
import { TRANSPORTS, startFixture, type Fixture } from './fixture.js';

const HEARTBEAT = 150;

describe.each(TRANSPORTS)('liveness over %s', (transport) => {
  let fixture: Fixture;
  afterEach(async () => {
    await fixture?.close();
  });

  it('detects a connection that stays open but goes silent within the heartbeat deadline, then resumes', async () => {
    fixture = await startFixture(transport, { heartbeatInterval: HEARTBEAT, retry: 5 });
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 500 });
    const received: unknown[] = [];
    const got = (n: number) => when(() => received.length >= n);
    let progress = got(1);
    client.on('message', ({ data }) => {
      received.push(data);
      progress.wake();
    });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    await fixture.server.server.broadcast('before');
    await progress.promise;

    const silentAt = Date.now();
    fixture.proxy.setMode('silent');
    const deadLink = deferred<UnbrokenError>();
    client.on('error', (error) => deadLink.resolve(error));
    const error = await deadLink.promise;
    const detectedAfter = Date.now() - silentAt;

    expect(error.code).toBe('HEARTBEAT_TIMEOUT');
    // The deadline runs from the last byte received, which the proxy passed at or before the switch to
    // silent; the client may read it a little later on a busy machine, more often on SSE, whose stream
    // check (§13.3) has pongs in flight right after it opens.
    expect(detectedAfter).toBeLessThanOrEqual(2 * HEARTBEAT + 250);
    expect(client.state).toBe('reconnecting');

    // Sent while the link is dead: it is in the store and must be replayed once the network is back.
    await fixture.server.server.broadcast('while silent');
    progress = got(3);
    fixture.proxy.setMode('pass');
    fixture.proxy.dropAll();
    await fixture.server.server.broadcast('after');
    await progress.promise;
    expect(received).toEqual(['before', 'while silent', 'after']);
  });

  it('finds a frozen stream dead within 2 × hb + 1 s while the application keeps sending and its POSTs are answered', async () => {
    fixture = await startFixture(transport, { heartbeatInterval: HEARTBEAT, retry: 5 });
    // Upstream requests go to the server directly, around the proxy: only the stream freezes, as
    // when a proxy or NAT forgets the one long-lived flow (POSTs of SSE and long polling keep working).
    const direct = `:${fixture.server.port}/`;
    const fetch: typeof globalThis.fetch = (input, init) =>
      globalThis.fetch(init?.method === 'POST' ? String(input).replace(`:${fixture.proxy.port}/`, direct) : input, init);
    const client = fixture.client({ reconnectDelay: 5, connectTimeout: 500, fetch });
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    let acknowledged = 0;
    const sender = setInterval(() => void client.send('during the freeze').then(() => acknowledged++, () => {}), 30);
    try {
      const frozenAt = Date.now();
      fixture.proxy.setMode('silent');
      const ackedAtFreeze = acknowledged;
      const rtt = client.ping();
      const deadLink = deferred<UnbrokenError>();
      client.on('error', (error) => deadLink.resolve(error));
      const error = await deadLink.promise;
      const detectedAfter = Date.now() - frozenAt;
      expect(error.code).toBe('HEARTBEAT_TIMEOUT');
      expect(detectedAfter).toBeLessThanOrEqual(2 * HEARTBEAT + 1_000);
      // The round trip goes through the stream: no pong while it is frozen.
      await expect(rtt).rejects.toMatchObject({ code: 'HEARTBEAT_TIMEOUT' });
      if (transport !== 'websocket') expect(acknowledged).toBeGreaterThan(ackedAtFreeze);
    } finally {
      clearInterval(sender);
      fixture.proxy.setMode('pass');
    }
  });

  it('stays open while heartbeats arrive on an otherwise idle connection', async () => {
    fixture = await startFixture(transport, { heartbeatInterval: HEARTBEAT });
    const client = fixture.client();
    const errors: UnbrokenError[] = [];
    client.on('error', (error) => errors.push(error));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    // Nothing but heartbeats flows now: wait for twelve chunks (heartbeat frames and ping frames) to pass the proxy.
    let chunks = 0;
    const sixHeartbeats = when(() => chunks >= 12);
    fixture.proxy.onDownstream(() => {
      chunks++;
      sixHeartbeats.wake();
    });
    await sixHeartbeats.promise;
    await client.ping();
    expect(errors).toEqual([]);
    expect(client.state).toBe('open');
  });
});
