/**
 * Authentication on the client (PROTOCOL.md §3.4, §3.5): a ticket before every attempt, `auth` called
 * for it and when the server asks, UNAUTHORIZED handled once and fatal twice in a row. On a mock
 * socket, a ticket-answering fetch and a fake clock.
 */
import { describe, expect, it, vi } from 'vitest';
import type { UnbrokenError } from '../../src/client/index.js';
import { CloseCode, UPSTREAM_HEADER, type JsonValue } from '../../src/protocol/index.js';
import { freshTicket, record, settle, useMockServer } from './client-harness.js';

const refused = { status: 401, body: '{"code":"UNAUTHORIZED","message":"the credentials were refused"}' };

describe('client authentication (§3.4, §3.5)', () => {
  const server = useMockServer();

  it('asks for a ticket before every attempt, with the credentials of a fresh auth call and the last hello\'s sid and key, and opens with the ticket alone in the URL (§13.5.no-secret-in-url)', async () => {
    let calls = 0;
    const client = server.client({ auth: async () => ({ token: `t${++calls}` }), random: () => 0 });
    const peer = await server.accept({ sid: 'session-abcdefghijkl', key: 'key-abcdefghijklmnop' });
    peer.close(CloseCode.InternalError);
    const second = await server.accept();
    // `max`: the client's maxMessageSize, the largest batch it reads (§4.1.size).
    expect(server.tickets.map(({ body }) => body)).toEqual([
      { credentials: { token: 't1' }, max: 4_194_304 },
      { sid: 'session-abcdefghijkl', key: 'key-abcdefghijklmnop', credentials: { token: 't2' }, max: 4_194_304 },
    ]);
    expect(server.tickets[0]!.url.pathname).toBe('/realtime/ticket');
    expect(Object.fromEntries(server.tickets[0]!.url.searchParams)).toEqual({ v: '1' });
    expect(server.tickets[0]!.headers).toEqual({ 'Content-Type': 'application/json', [UPSTREAM_HEADER]: '1' });
    for (const { url } of [peer, second]) {
      expect([...url.searchParams.keys()].sort()).toEqual(url === peer.url ? ['ticket', 'v'] : ['last', 'ticket', 'v']);
    }
    expect(peer.url.searchParams.get('ticket')).not.toBe(second.url.searchParams.get('ticket'));
    client.close();
  });

  it('calls auth again after UNAUTHORIZED and retries at once, without backoff', async () => {
    let calls = 0;
    const client = server.client({ auth: () => ++calls, random: () => 0.99 });
    const log = record(client, ['state', 'error', 'open']);
    const peer = await server.accept();
    const before = Date.now();
    peer.send({ t: 'error', code: 'UNAUTHORIZED', message: 'expired' });
    peer.close(CloseCode.Unauthorized);
    await server.accept();
    expect(Date.now() - before).toBeLessThan(50);
    expect(calls).toBe(2);
    expect(log).toEqual(['state connecting>open connected', 'open', 'error UNAUTHORIZED', 'state open>reconnecting UNAUTHORIZED', 'state reconnecting>open connected', 'open']);
    client.close();
  });

  it('closes with UNAUTHORIZED when the attempt right after an UNAUTHORIZED is refused the same way before its hello (§13.5.reauthenticate)', async () => {
    const client = server.client({ auth: () => 'revoked' });
    const log = record(client, ['error', 'close']);
    const peer = await server.accept();
    server.answerTicket = () => refused;
    peer.send({ t: 'error', code: 'UNAUTHORIZED', message: 'the application disconnected this user' });
    await settle(50);
    expect(server.tickets).toHaveLength(2);
    expect(log).toEqual(['error UNAUTHORIZED', 'error UNAUTHORIZED', 'close UNAUTHORIZED']);
    expect(client.state).toBe('closed');
  });

  /**
   * A client with a short backoff whose `auth` throws `thrown` at the calls (from 1) `throwsAt` picks,
   * and gives `credentials` at the others; `calls()` counts them.
   */
  function authThrowing(throwsAt: (call: number) => boolean, credentials: (call: number) => JsonValue, thrown = new Error('offline')) {
    let calls = 0;
    const auth = (): JsonValue => {
      if (throwsAt(++calls)) throw thrown;
      return credentials(calls);
    };
    return { client: server.client({ auth, reconnectDelay: 20, maxReconnectDelay: 40, random: () => 0.5 }), calls: () => calls };
  }

  it('fails the attempt with UNAUTHORIZED, caused by what auth threw, and retries with backoff, never closing, while it throws: the sends wait and go once it gives credentials again', async () => {
    const thrown = new Error('the token service cannot be reached');
    let failing = true;
    const { client } = authThrowing(() => failing, () => ({ token: 't' }), thrown);
    const errors: UnbrokenError[] = [];
    client.on('error', (error) => errors.push(error));
    const sent = client.send('written while offline');
    await settle(400);
    expect(errors.length).toBeGreaterThanOrEqual(4);
    expect(errors.every((error) => error.code === 'UNAUTHORIZED' && error.cause === thrown)).toBe(true);
    expect(server.tickets).toHaveLength(0);
    expect(client.state).toBe('reconnecting');
    failing = false;
    const peer = await server.accept();
    await settle();
    expect(peer.frames()).toContainEqual({ t: 'msg', s: 1, d: 'written while offline' });
    peer.send({ t: 'ack', s: 1 });
    await sent;
    expect(client.state).toBe('open');
    client.close();
  });

  it('retries at once with fresh credentials when the server refuses the credentials auth gave after it threw, as after any first refusal (§13.5.reauthenticate)', async () => {
    const { client, calls } = authThrowing((call) => call === 1, (call) => ({ token: `t${call}` }));
    const log = record(client, ['error', 'close', 'open']);
    let answers = 0;
    server.answerTicket = (call) => (++answers === 1 ? refused : freshTicket(call));
    await server.accept();
    expect(log).toEqual(['error UNAUTHORIZED', 'error UNAUTHORIZED', 'open']);
    expect(calls()).toBe(3);
    client.close();
  });

  it('still closes when the server refuses, before a hello, the credentials auth gave after it threw following an UNAUTHORIZED', async () => {
    const { client } = authThrowing((call) => call === 2, () => 'revoked');
    const log = record(client, ['error', 'close']);
    const peer = await server.accept({ retry: 0 });
    server.answerTicket = () => refused;
    peer.send({ t: 'error', code: 'UNAUTHORIZED', message: 'the application disconnected this user' });
    await settle(300);
    // Refused live; auth threw (retried with backoff); then refused before a hello with credentials
    // auth gave: as after any UNAUTHORIZED, that refusal right after closes the client.
    expect(log).toEqual(['error UNAUTHORIZED', 'error UNAUTHORIZED', 'error UNAUTHORIZED', 'close UNAUTHORIZED']);
    expect(client.state).toBe('closed');
  });

  it('treats a bare 401 or 403 from a proxy as a transport failure: it backs off and retries, never closes (§13.5.bare-status)', async () => {
    for (const status of [401, 403]) {
      server.answerTicket = () => ({ status, body: '<html>sign in to the proxy</html>' });
      const client = server.client({ random: () => 0.5 });
      const log = record(client, ['error', 'close']);
      await settle(10_000);
      expect(log.length).toBeGreaterThanOrEqual(3);
      expect(new Set(log)).toEqual(new Set(['error TRANSPORT_ERROR']));
      server.answerTicket = freshTicket;
      await server.accept();
      expect(client.state).toBe('open');
      client.close();
    }
  });

  it('answers the server\'s auth frame with fresh credentials on the live connection, without reconnecting (§13.5.reauthenticate)', async () => {
    let calls = 0;
    const client = server.client({ auth: () => ({ token: `t${++calls}` }) });
    const log = record(client, ['state', 'error', 'open']);
    const peer = await server.accept();
    peer.send({ t: 'auth', ms: 60_000 });
    await settle();
    expect(peer.frames()).toContainEqual({ t: 'auth', c: { token: 't2' } });
    expect(server.peers).toHaveLength(1);
    expect(log).toEqual(['state connecting>open connected', 'open']);
    client.close();
  });

  it('keeps the live connection when auth throws on the server\'s auth frame: the identity lasts until its expiry, and the error is reported', async () => {
    let fail = false;
    const client = server.client({
      auth: () => {
        if (fail) throw new TypeError('fetch failed');
        return { token: 't' };
      },
    });
    const log = record(client, ['state', 'error', 'open', 'close']);
    const peer = await server.accept();
    fail = true;
    peer.send({ t: 'auth', ms: 3_000 });
    await settle();
    expect(log).toEqual(['state connecting>open connected', 'open', 'error UNAUTHORIZED']);
    expect(client.state).toBe('open');
    expect(server.peers).toHaveLength(1);
    // Asked again later, with the token service back: the credentials go on the same connection.
    fail = false;
    peer.send({ t: 'auth', ms: 1_000 });
    await settle();
    expect(peer.frames()).toContainEqual({ t: 'auth', c: { token: 't' } });
    expect(client.state).toBe('open');
    client.close();
  });

  it('answers an auth frame with {t:"auth"} alone without an auth option', async () => {
    const client = server.client();
    const peer = await server.accept();
    peer.send({ t: 'auth', ms: 0 });
    await settle();
    expect(peer.frames()).toContainEqual({ t: 'auth' });
    client.close();
  });

  it('closes with NO_TRANSPORT, saying fetch is needed, when WebSocket runs but fetch does not', async () => {
    vi.stubGlobal('fetch', undefined);
    try {
      const client = server.client({ fetch: undefined });
      const errors: UnbrokenError[] = [];
      client.on('error', (error) => errors.push(error));
      await settle();
      expect(errors).toMatchObject([{ code: 'NO_TRANSPORT', message: expect.stringMatching(/each needs fetch \(for its ticket\)/) }]);
      expect(client.state).toBe('closed');
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
