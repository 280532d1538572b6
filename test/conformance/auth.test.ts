/**
 * Conformance of tickets, session keys and identity (docs/PROTOCOL.md §3.4, §3.5), driven by raw
 * clients: what a URL copied from a log yields (nothing), what a session id without its key yields
 * (nothing), and how `authenticate`, expiry and `disconnect()` act on live connections.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { httpStatusFor, type ErrorCode, type JsonValue } from '../../src/protocol/index.js';
import type { Identity, ServerOptions } from '../../src/server/index.js';
import { waitUntil, within } from '../helpers/raw-frames.js';
import { RAW_CONNECTION, RawSse, UPSTREAM_HEADERS, framesOf, httpEndpoint, parseErrorBody, poll, postSend, type HttpAnswer } from '../helpers/raw-http.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { keyFor, randomToken, requestTicket, ticketFor } from '../helpers/raw-ticket.js';
import { SharedMemoryStore } from '../helpers/shared-memory-store.js';
import { deferred } from '../helpers/signals.js';
import { RawWs } from '../helpers/raw-ws.js';

const harnesses = new Harnesses();
const inFlight = new Set<AbortController>();
afterEach(async () => {
  for (const controller of inFlight) controller.abort();
  inFlight.clear();
  await harnesses.closeAll();
});

function expectErrorAnswer(reply: HttpAnswer | { status: number; text: string }, code: ErrorCode): void {
  expect(reply.status, reply.text).toBe(httpStatusFor(code));
  expect(parseErrorBody(reply.text)).toEqual({ code, message: expect.any(String) });
}

/** A poll the test may leave pending; aborted after the test. */
function startPoll(h: Harness, options: Parameters<typeof poll>[1]): Promise<HttpAnswer> {
  const controller = new AbortController();
  inFlight.add(controller);
  return poll(h.httpBase, { ...options, signal: controller.signal }).finally(() => inFlight.delete(controller));
}

/**
 * The application's check used here: credentials `{ user, ttl? }` are accepted as that user, with an
 * expiry `ttl` ms from now; `user: 'throw'` throws and `user: 'reject'` rejects.
 */
function tokens(now: () => number = Date.now): NonNullable<ServerOptions['authenticate']> {
  return (_request, credentials) => {
    if (typeof credentials !== 'object' || credentials === null || Array.isArray(credentials)) return null;
    const { user, ttl } = credentials as { user?: JsonValue; ttl?: JsonValue };
    if (user === 'throw') throw new Error('the application failed');
    if (user === 'reject') return Promise.reject(new Error('the application refused'));
    if (typeof user !== 'string') return null;
    const identity: Identity = typeof ttl === 'number' ? { id: user, expiresAt: now() + ttl } : { id: user };
    return Promise.resolve(identity);
  };
}

/** The query of the request line the server recorded for `endpoint` at `index` (from the end with negative). */
function recorded(h: Harness, endpoint: string, index = -1): URLSearchParams {
  const lines = h.requestLines.filter((line) => line.includes(`/realtime${endpoint}?`));
  const line = lines.at(index);
  if (!line) throw new Error(`no recorded request for ${endpoint}: ${JSON.stringify(h.requestLines)}`);
  return new URL(line.split(' ')[1]!, 'http://recorded').searchParams;
}

describe('§3.4 tickets', () => {
  it('§3.4.no-secret-in-url puts no sid, key, credential or connection id in any URL, on any transport', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const credentials = { user: 'alice-credential-token' };
    const secrets: string[] = [credentials.user, RAW_CONNECTION];
    // WebSocket: a connection, then a resume.
    const ws = await h.connect({ credentials });
    const wsHello = await ws.hello();
    ws.close();
    await waitUntil('the server to see the WebSocket drop', () => h.server.sessions.get(wsHello.sid)?.connected === false);
    const resumed = await h.connect({ sid: wsHello.sid, last: wsHello.cursor, credentials });
    expect(await resumed.hello()).toMatchObject({ sid: wsHello.sid, resumed: true });
    // SSE with upstream.
    const sse = await RawSse.connect(h.httpBase, { credentials });
    const sseHello = await sse.hello();
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'up' }], { sid: sseHello.sid }));
    // Long polling: a first poll, a continuing one, upstream.
    const first = framesOf(await poll(h.httpBase, { open: true, credentials }));
    const pollHello = first[0]!;
    if (pollHello.t !== 'hello') throw new Error('expects a hello');
    const held = startPoll(h, { last: pollHello.cursor });
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'up' }], { sid: pollHello.sid }));
    await h.server.broadcast('answer the held poll');
    framesOf(await held);
    for (const hello of [wsHello, sseHello, pollHello]) secrets.push(hello.sid, hello.key);

    const endpoints = ['/ws?', '/sse?', '/poll?', '/send?', '/ticket?'];
    for (const endpoint of endpoints) expect(h.requestLines.some((line) => line.includes(endpoint)), endpoint).toBe(true);
    for (const line of h.requestLines) {
      for (const secret of secrets) expect(line, `a URL holds ${secret}`).not.toContain(secret);
      const names = [...new URL(line.split(' ')[1]!, 'http://recorded').searchParams.keys()];
      expect(names.every((name) => ['v', 'ticket', 'last'].includes(name)), line).toBe(true);
    }
  });

  it('§3.4.no-secret-in-url reads no session id, key or connection id from a URL, on any endpoint', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const owner = await h.connect();
    const { sid, key } = await owner.hello();
    // Every name a server could be tempted to read, with the owner's values.
    const query = { sid, key, session: `${sid}.${key}`, 'X-Unbroken-Session': `${sid}.${key}`, c: RAW_CONNECTION, connection: RAW_CONNECTION };
    // Downstream, with a ticket for a new session: each opens a new session, not the owner's.
    const ws = await h.connect({ query });
    expect(await ws.hello()).toMatchObject({ resumed: false, sid: expect.not.stringMatching(sid) });
    const sse = await RawSse.connect(h.httpBase, { query });
    expect(await sse.hello()).toMatchObject({ resumed: false, sid: expect.not.stringMatching(sid) });
    sse.close();
    const [first] = framesOf(await poll(h.httpBase, { open: true, c: null, query }));
    expect(first).toMatchObject({ t: 'hello', resumed: false, sid: expect.not.stringMatching(sid) });
    // Upstream: a POST that names the session in its URL only is refused, and nothing reaches the owner's session.
    const handled: unknown[] = [];
    h.server.on('message', (data) => handled.push(data));
    const url = httpEndpoint(h.httpBase, '/send', { query });
    const forged = await fetch(url, { method: 'POST', headers: UPSTREAM_HEADERS, body: JSON.stringify([{ t: 'msg', s: 1, d: 'forged' }]) });
    expect(forged.status).not.toBe(200);
    // A poll that names its connection in the URL only continues nothing: without a ticket, it is refused.
    const continued = await poll(h.httpBase, { c: null, query, last: (first as { cursor: string }).cursor });
    expect(continued.status).toBe(httpStatusFor('UNAUTHORIZED'));
    expect((await owner.sync()).map((received) => received.frame.t)).toEqual([]);
    expect(handled).toEqual([]);
  });

  it('§3.4.key gives every hello a session key of at least 128 random bits, unlike the sid and unlike other sessions', async () => {
    const h = await harnesses.start();
    const hellos = await Promise.all([1, 2, 3].map(async () => (await h.connect()).hello()));
    for (const hello of hellos) {
      expect(hello.key).toMatch(/^[A-Za-z0-9_-]{22,64}$/);
      expect(hello.key).not.toBe(hello.sid);
    }
    expect(new Set(hellos.map((hello) => hello.key)).size).toBe(3);
  });

  it('§3.4.no-ticket yields nothing to URLs replayed from a victim: no message, no supersede, nothing sent as the victim, no bye', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    // The victim, over WebSocket, SSE and long polling (three sessions), each URL recorded.
    const victimWs = await h.connect();
    const wsHello = await victimWs.hello();
    const wsLine = recorded(h, '/ws');
    const victimSse = await RawSse.connect(h.httpBase);
    const sseHello = await victimSse.hello();
    const sseLine = recorded(h, '/sse');
    const pollFirst = framesOf(await poll(h.httpBase, { open: true }));
    const pollHello = pollFirst[0]!;
    if (pollHello.t !== 'hello') throw new Error('expects a hello');
    const firstPollLine = recorded(h, '/poll');
    const held = startPoll(h, { last: pollHello.cursor });
    await waitUntil('the continuing poll to arrive', () => h.requestLines.filter((line) => line.includes('/poll?')).length === 2);
    const continuingPollLine = recorded(h, '/poll');
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'mine' }], { sid: sseHello.sid }));
    const sendLine = recorded(h, '/send');
    const sessions = h.server.sessions.size;

    // The attacker replays each URL exactly, without the headers a URL does not carry.
    const wsReplay = await RawWs.open(h.wsBase, { ticket: wsLine.get('ticket'), last: wsLine.get('last') ?? undefined });
    expect(await wsReplay.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect((await wsReplay.closed()).code).toBe(4401);
    const sseReplay = await RawSse.connect(h.httpBase, { ticket: sseLine.get('ticket'), last: sseLine.get('last') ?? undefined });
    expect(await sseReplay.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    await sseReplay.finished();
    expectErrorAnswer(await poll(h.httpBase, { ticket: firstPollLine.get('ticket'), last: firstPollLine.get('last') ?? undefined, c: null }), 'UNAUTHORIZED');
    expectErrorAnswer(await poll(h.httpBase, { last: continuingPollLine.get('last') ?? undefined, c: null }), 'UNAUTHORIZED');
    const forged = [{ t: 'msg', s: 2, d: 'forged' }, { t: 'bye' }];
    expect(sendLine.toString()).toBe('v=1');
    expectErrorAnswer(await postSend(h.httpBase, forged), 'UNKNOWN_SESSION');
    for (const victim of [wsHello, sseHello, pollHello]) {
      // The id is no secret: the attacker may know it, and still lacks the key.
      const headers = { ...UPSTREAM_HEADERS, 'X-Unbroken-Session': `${victim.sid}.${randomToken()}` };
      expectErrorAnswer(await postSend(h.httpBase, forged, { headers }), 'UNKNOWN_SESSION');
    }
    // The replayed WebSocket request line is the victim's, character for character.
    const wsLines = h.requestLines.filter((line) => line.includes('/ws?'));
    expect(wsLines).toHaveLength(2);
    expect(wsLines[1]).toBe(wsLines[0]);

    // Nothing happened to the victim: still connected everywhere, nothing processed as it, no session ended.
    expect(h.processed).toEqual([{ sid: sseHello.sid, data: 'mine' }]);
    expect(h.ended).toEqual([]);
    expect(h.server.sessions.size).toBe(sessions);
    expect((await victimWs.sync()).filter((received) => received.frame.t === 'error')).toEqual([]);
    const privateId = await h.server.sessions.get(wsHello.sid)!.send('private');
    expect((await victimWs.next('msg')).frame.id).toBe(privateId);
    const news = await h.server.broadcast('news');
    expect((await victimSse.next('msg', (frame) => frame.id === news)).frame.d).toBe('news');
    expect(framesOf(await held)).toContainEqual({ t: 'msg', id: news, d: 'news' });
    expect(victimSse.frames.filter((received) => received.frame.t === 'error')).toEqual([]);
    expect(wsReplay.messages()).toEqual([]);
    expect(sseReplay.messages()).toEqual([]);
  });

  it('§3.4.key-check answers 401 to a ticket request naming a held session without its key, and touches nothing', async () => {
    const h = await harnesses.start();
    const victim = await h.connect();
    const hello = await victim.hello();
    expectErrorAnswer(await requestTicket(h.httpBase, { sid: hello.sid, key: null }), 'UNAUTHORIZED');
    expectErrorAnswer(await requestTicket(h.httpBase, { sid: hello.sid, key: randomToken() }), 'UNAUTHORIZED');
    expect(h.connections).toEqual([hello.sid]);
    expect(h.server.sessions.get(hello.sid)?.connected).toBe(true);
    expect((await victim.sync()).map((received) => received.frame.t)).toEqual([]);
    // With its key, the same request is a ticket.
    expect((await requestTicket(h.httpBase, { sid: hello.sid, key: hello.key })).status).toBe(200);
  });

  it('§3.4.send-key refuses POST P/send with a missing, malformed or wrong session key as 404 UNKNOWN_SESSION', async () => {
    const h = await harnesses.start();
    const sse = await RawSse.connect(h.httpBase);
    const hello = await sse.hello();
    for (const value of [undefined, hello.sid, `${hello.sid}.`, `${hello.sid}.${randomToken()}`, `${hello.sid}.${hello.key}.x`, 'x'.repeat(500)]) {
      const headers: Record<string, string> = { ...UPSTREAM_HEADERS };
      if (value !== undefined) headers['X-Unbroken-Session'] = value;
      expectErrorAnswer(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'forged' }], { headers }), 'UNKNOWN_SESSION');
    }
    expect(h.processed).toEqual([]);
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'real' }], { sid: hello.sid, key: hello.key }));
    expect(h.processedFor(hello.sid)).toEqual(['real']);
  });

  it('§3.4.ticket-once admits one downstream request per ticket: each later use is refused with UNAUTHORIZED', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const ticket = await ticketFor(h.httpBase);
    const first = await h.connect({ ticket });
    await first.hello();
    const again = await h.connect({ ticket });
    expect(await again.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect((await again.closed()).code).toBe(4401);
    const sse = await RawSse.connect(h.httpBase, { ticket });
    expect(await sse.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expectErrorAnswer(await poll(h.httpBase, { ticket }), 'UNAUTHORIZED');
    expect(h.connections).toHaveLength(1);
  });

  it('§3.4.ticket-ttl refuses a ticket used after its ttl, not before, and says the ttl in the answer', async () => {
    let clock = 1_000_000;
    const h = await harnesses.start({ ticketTtl: 1_000, now: () => clock });
    const answer = await requestTicket(h.httpBase);
    expect(answer).toMatchObject({ status: 200, ttl: 1_000 });
    expect(answer.ticket).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const inTime = await requestTicket(h.httpBase);
    clock += 999;
    expect(await (await h.connect({ ticket: inTime.ticket! })).hello()).toMatchObject({ resumed: false });
    clock += 2;
    const late = await h.connect({ ticket: answer.ticket! });
    expect(await late.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect(h.connections).toHaveLength(1);
  });

  it('§3.4.ticket-limit answers 429 RATE_LIMITED past the outstanding tickets allowed per address and in total, and issues again as they are used or expire', async () => {
    let offset = 0;
    const h = await harnesses.start({ ticketTtl: 1_000, maxTicketsPerAddress: 3, maxTickets: 5, maxMessageSize: 1_024, now: () => Date.now() + offset });
    const tickets = [await ticketFor(h.httpBase), await ticketFor(h.httpBase), await ticketFor(h.httpBase)];
    expectErrorAnswer(await requestTicket(h.httpBase), 'RATE_LIMITED');
    // Using one makes room for one.
    await (await h.connect({ ticket: tickets[0]! })).hello();
    await ticketFor(h.httpBase);
    expectErrorAnswer(await requestTicket(h.httpBase), 'RATE_LIMITED');
    // Expired ones are dropped when the next is asked for.
    offset = 1_001;
    await ticketFor(h.httpBase);
  });

  it('§3.4.ticket-body refuses a ticket request without its headers, with a body that is not a JSON object (or not UTF-8), too deep or too large', async () => {
    const h = await harnesses.start({ maxMessageSize: 1_024 });
    expectErrorAnswer(await requestTicket(h.httpBase, { body: '[' }), 'PROTOCOL_ERROR');
    expectErrorAnswer(await requestTicket(h.httpBase, { body: Uint8Array.from([...Buffer.from('{"credentials":"a'), 0xff, ...Buffer.from('"}')]) }), 'PROTOCOL_ERROR');
    expectErrorAnswer(await requestTicket(h.httpBase, { body: '[1]' }), 'PROTOCOL_ERROR');
    expectErrorAnswer(await requestTicket(h.httpBase, { body: `{"credentials":${'['.repeat(200)}${']'.repeat(200)}}` }), 'PROTOCOL_ERROR');
    expectErrorAnswer(await requestTicket(h.httpBase, { body: JSON.stringify({ credentials: 'x'.repeat(4_096) }) }), 'MESSAGE_TOO_LARGE');
    expectErrorAnswer(await requestTicket(h.httpBase, { headers: { 'Content-Type': 'application/json' } }), 'FORBIDDEN');
    expect(h.requestLines.every((line) => line.startsWith('POST /realtime/ticket?v=1'))).toBe(true);
  });

  it('§3.4.connect-check refuses a ticket for a session that was created meanwhile with another key', async () => {
    const h = await harnesses.start();
    const sid = 'M'.repeat(22);
    const mine = await ticketFor(h.httpBase, { sid, key: randomToken() });
    const theirs = await ticketFor(h.httpBase, { sid, key: randomToken() });
    const first = await h.connect({ ticket: mine });
    expect(await first.hello()).toMatchObject({ sid, resumed: false });
    const second = await h.connect({ ticket: theirs });
    expect(await second.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect(h.connections).toEqual([sid]);
    expect((await first.sync()).map((received) => received.frame.t)).toEqual([]);
  });

  it('§3.4.connect-check refuses a ticket for a session that was created meanwhile for another identity, even with the same key', async () => {
    const h = await harnesses.start({ authenticate: tokens() });
    const sid = 'M'.repeat(22);
    const key = randomToken();
    const alices = await ticketFor(h.httpBase, { sid, key, credentials: { user: 'alice' } });
    const bobs = await ticketFor(h.httpBase, { sid, key, credentials: { user: 'bob' } });
    const bob = await h.connect({ ticket: bobs });
    expect(await bob.hello()).toMatchObject({ sid, resumed: false });
    const alice = await h.connect({ ticket: alices });
    expect(await alice.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect(h.server.sessions.get(sid)?.user).toMatchObject({ id: 'bob' });
    expect((await bob.sync()).map((received) => received.frame.t)).toEqual([]);
  });

  it('§3.4.ticket-limit answers the ticket limit in total, whatever the address', async () => {
    const h = await harnesses.start({ maxTicketsPerAddress: 100, maxTickets: 2 });
    await ticketFor(h.httpBase);
    await ticketFor(h.httpBase);
    expectErrorAnswer(await requestTicket(h.httpBase), 'RATE_LIMITED');
  });

  it('§3.4.ticket-limit does not let a few addresses at their own bound shut out the rest: a full table gives up the largest holder\'s oldest ticket to an address holding fewer', async () => {
    const h = await harnesses.start({ maxTicketsPerAddress: 3, maxTickets: 5 });
    const from = (localAddress: string) => ({ localAddress });
    const first = await ticketFor(h.httpBase, from('127.0.0.1'));
    await ticketFor(h.httpBase, from('127.0.0.1'));
    await ticketFor(h.httpBase, from('127.0.0.1'));
    await ticketFor(h.httpBase, from('127.0.0.2'));
    const second = await ticketFor(h.httpBase, from('127.0.0.2'));
    // Full. A newcomer gets a ticket: the oldest of the largest holder (127.0.0.1) is dropped.
    const newcomer = await ticketFor(h.httpBase, from('127.0.0.3'));
    const dropped = await h.connect({ ticket: first });
    expect(await dropped.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    // Each holder now has at most one more than the others: nobody gains by taking from another.
    expectErrorAnswer(await requestTicket(h.httpBase, from('127.0.0.2')), 'RATE_LIMITED');
    expectErrorAnswer(await requestTicket(h.httpBase, from('127.0.0.3')), 'RATE_LIMITED');
    expectErrorAnswer(await requestTicket(h.httpBase, from('127.0.0.1')), 'RATE_LIMITED');
    // The tickets of the others still admit their connections.
    expect(await (await h.connect({ ticket: second })).hello()).toMatchObject({ resumed: false });
    expect(await (await h.connect({ ticket: newcomer })).hello()).toMatchObject({ resumed: false });
  });

  it('§3.4.malformed treats a malformed sid or key in a ticket request as absent: a new session', async () => {
    const h = await harnesses.start();
    const ticket = await ticketFor(h.httpBase, { sid: 'short', key: 'bad key' });
    const hello = await (await h.connect({ ticket })).hello();
    expect(hello.sid).not.toBe('short');
    expect(hello.resumed).toBe(false);
  });
});

describe('§3.5 identity', () => {
  it('§3.5.refuse answers 401 UNAUTHORIZED when authenticate refuses, throws or rejects, and creates no session', async () => {
    const h = await harnesses.start({ authenticate: tokens() });
    for (const credentials of [undefined, 'not an object', { user: 42 }, { user: 'throw' }, { user: 'reject' }, { user: 'x'.repeat(300) }]) {
      expectErrorAnswer(await requestTicket(h.httpBase, { credentials }), 'UNAUTHORIZED');
    }
    // A refused ticket request leaves the downstream request without a ticket: refused too.
    const ws = await h.connect({ credentials: { user: 'throw' } });
    expect(await ws.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect(h.server.sessions.size).toBe(0);
    expect(h.connections).toEqual([]);
  });

  it('§3.5.user exposes the identity authenticate returned as session.user, before the connection event', async () => {
    const users: unknown[] = [];
    const h = await harnesses.start({ authenticate: tokens() });
    h.server.on('connection', (session) => users.push(session.user));
    const hello = await (await h.connect({ credentials: { user: 'alice' } })).hello();
    expect(users).toEqual([{ id: 'alice' }]);
    expect(h.server.sessions.get(hello.sid)?.user).toEqual({ id: 'alice' });
  });

  it('§3.5.same-user refuses a ticket for a held session when the identity differs, and touches nothing', async () => {
    const h = await harnesses.start({ authenticate: tokens() });
    const alice = await h.connect({ credentials: { user: 'alice' } });
    const hello = await alice.hello();
    expectErrorAnswer(await requestTicket(h.httpBase, { sid: hello.sid, credentials: { user: 'mallory' } }), 'UNAUTHORIZED');
    expect(h.server.sessions.get(hello.sid)?.user).toEqual({ id: 'alice' });
    expect((await alice.sync()).map((received) => received.frame.t)).toEqual([]);
    const again = await h.connect({ sid: hello.sid, last: hello.cursor, credentials: { user: 'alice' } });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: true });
  });

  it('§3.5.refresh asks for fresh credentials with an auth frame before expiresAt and takes them on the live WebSocket, nothing lost', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const client = await h.connect({ credentials: { user: 'alice', ttl: 400 } });
    const hello = await client.hello();
    const session = h.server.sessions.get(hello.sid)!;
    const expiresAt = session.user!.expiresAt!;
    const asked = await client.next('auth');
    // N = min(60 000, half the time left): asked about 200 ms before the expiry.
    expect(asked.frame.ms).toBeGreaterThan(0);
    expect(asked.frame.ms).toBeLessThanOrEqual(200);
    const before = await h.server.broadcast('before');
    client.send([{ t: 'msg', s: 1, d: 'one' }, { t: 'auth', c: { user: 'alice', ttl: 60_000 } }, { t: 'msg', s: 2, d: 'two' }]);
    await waitUntil('the fresh identity to be adopted', () => (session.user?.expiresAt ?? 0) > expiresAt);
    // Past the old expiry, the same connection still carries both ways.
    await waitUntil('the old expiry to pass', () => Date.now() > expiresAt + 50, 2_000);
    const after = await h.server.broadcast('after');
    expect((await client.sync()).filter((received) => received.frame.t === 'error')).toEqual([]);
    expect(client.messages().map((received) => received.frame.id)).toEqual([before, after]);
    expect(h.processedFor(hello.sid)).toEqual(['one', 'two']);
    expect(client.closeInfo).toBeUndefined();
    expect(h.connections).toEqual([hello.sid]);
  });

  it('§3.5 reports fresh credentials whose identity throws when read again as INTERNAL_ERROR, and goes on checking the next ones', async () => {
    // `odd`: an identity whose id reads once, then throws (a getter of the application's).
    let reads = 0;
    const odd = {
      get id(): string {
        if (++reads > 1) throw new Error('read twice');
        return 'alice';
      },
    };
    const accept = tokens();
    const h = await harnesses.start({
      heartbeatInterval: 5_000,
      authenticate: (request, credentials) => ((credentials as { user?: string } | undefined)?.user === 'odd' ? odd : accept(request, credentials)),
    });
    const reported: string[] = [];
    h.server.on('error', (error) => reported.push(error.code));
    const client = await h.connect({ credentials: { user: 'alice' } });
    const hello = await client.hello();
    const session = h.server.sessions.get(hello.sid)!;
    client.send([{ t: 'auth', c: { user: 'odd' } }]);
    await waitUntil('the failed check reported', () => reported.length > 0);
    expect(reported).toEqual(['INTERNAL_ERROR']);
    // The next fresh credentials are checked as usual.
    client.send([{ t: 'auth', c: { user: 'alice', ttl: 60_000 } }]);
    await waitUntil('the fresh identity to be adopted', () => session.user?.expiresAt !== undefined);
    expect(client.closeInfo).toBeUndefined();
  });

  it('§3.5.refresh takes fresh credentials in a POST P/send batch for an SSE connection', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const sse = await RawSse.connect(h.httpBase, { credentials: { user: 'bob', ttl: 300 } });
    const hello = await sse.hello();
    const session = h.server.sessions.get(hello.sid)!;
    const expiresAt = session.user!.expiresAt!;
    await sse.next('auth');
    framesOf(await postSend(h.httpBase, [{ t: 'auth', c: { user: 'bob', ttl: 60_000 } }, { t: 'msg', s: 1, d: 'kept' }], { sid: hello.sid }));
    await waitUntil('the fresh identity to be adopted', () => (session.user?.expiresAt ?? 0) > expiresAt);
    await waitUntil('the old expiry to pass', () => Date.now() > expiresAt + 50, 2_000);
    const after = await h.server.broadcast('after');
    expect((await sse.next('msg', (frame) => frame.id === after)).frame.d).toBe('after');
    expect(h.processedFor(hello.sid)).toEqual(['kept']);
  });

  it('§3.5.refresh closes the connection with UNAUTHORIZED when the fresh credentials name another user', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const client = await h.connect({ credentials: { user: 'alice' } });
    const hello = await client.hello();
    client.send([{ t: 'auth', c: { user: 'mallory' } }]);
    expect(await client.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect((await client.closed()).code).toBe(4401);
    expect(h.server.sessions.get(hello.sid)?.user).toEqual({ id: 'alice' });
  });

  it('§3.5.expire closes the connection with UNAUTHORIZED past expiresAt, keeps the session, and resumes it with nothing lost', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const client = await h.connect({ credentials: { user: 'alice', ttl: 250 } });
    const hello = await client.hello();
    const session = h.server.sessions.get(hello.sid)!;
    await client.next('auth');
    expect(await client.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect((await client.closed()).code).toBe(4401);
    expect(Date.now()).toBeGreaterThanOrEqual(session.user!.expiresAt!);
    expect(h.server.sessions.get(hello.sid)).toBe(session);
    expect(h.ended).toEqual([]);
    // Nothing more is taken from the expired identity, over HTTP either.
    expectErrorAnswer(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'late' }], { sid: hello.sid }), 'UNAUTHORIZED');
    const missed = await session.send('while away');
    const again = await h.connect({ sid: hello.sid, last: hello.cursor, credentials: { user: 'alice', ttl: 60_000 } });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    expect((await again.next('msg')).frame.id).toBe(missed);
    expect(h.processed).toEqual([]);
  });

  it('§3.5.disconnect ends every session of a user on every transport in well under 1 s, and voids its tickets', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, authenticate: tokens() });
    const alice = { user: 'alice' };
    const ws = await h.connect({ credentials: alice });
    const wsHello = await ws.hello();
    const sse = await RawSse.connect(h.httpBase, { credentials: alice });
    const sseHello = await sse.hello();
    const first = framesOf(await poll(h.httpBase, { open: true, credentials: alice }))[0]!;
    if (first.t !== 'hello') throw new Error('expects a hello');
    const arrived = h.handled('/poll');
    const held = startPoll(h, { last: first.cursor });
    await arrived;
    const bob = await h.connect({ credentials: { user: 'bob' } });
    const bobHello = await bob.hello();
    const staleTicket = await ticketFor(h.httpBase, { sid: wsHello.sid, credentials: alice });

    const order: string[] = [];
    h.server.on('close', (session, reason) => order.push(`close ${session.user?.id} ${reason}`));
    const started = performance.now();
    const ended = h.server.disconnect((session) => session.user?.id === 'alice');
    order.push('returned');
    expect(ended).toBe(3);
    const [wsAt, sseAt, pollAt] = await within(
      'every connection of alice to be told',
      Promise.all([
        ws.next('error').then((received) => (expect(received.frame).toMatchObject({ code: 'UNAUTHORIZED' }), performance.now())),
        sse.next('error').then((received) => (expect(received.frame).toMatchObject({ code: 'UNAUTHORIZED' }), performance.now())),
        held.then((reply) => (expectErrorAnswer(reply, 'UNAUTHORIZED'), performance.now())),
      ]),
      1_000,
    );
    const slowest = Math.max(wsAt, sseAt, pollAt) - started;
    console.info(`disconnect(): every connection of 3 sessions told UNAUTHORIZED within ${slowest.toFixed(1)} ms`);
    expect(slowest).toBeLessThan(1_000);
    expect(order).toEqual(['close alice disconnected', 'close alice disconnected', 'close alice disconnected', 'returned']);
    expect((await ws.closed()).code).toBe(4401);
    await sse.finished();
    expect([...h.server.sessions.keys()]).toEqual([bobHello.sid]);
    expect((await bob.sync()).map((received) => received.frame.t)).toEqual([]);
    // A ticket issued before the logout does not bring the session back.
    const late = await h.connect({ ticket: staleTicket });
    expect(await late.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    expect(h.server.sessions.has(wsHello.sid)).toBe(false);
    expectErrorAnswer(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'late' }], { sid: sseHello.sid }), 'UNKNOWN_SESSION');
    expect(keyFor(wsHello.sid)).toBe(wsHello.key);
  });

  it('§3.5.disconnect voids the tickets of sessions still to be made that the predicate picks: a tab still connecting does not come back as the user', async () => {
    const h = await harnesses.start({ authenticate: tokens() });
    // Tickets issued before the logout, for no session yet: a new one, and one under an id the server does not hold.
    const fresh = await ticketFor(h.httpBase, { credentials: { user: 'alice' } });
    const sameId = await ticketFor(h.httpBase, { sid: randomToken(), credentials: { user: 'alice' } });
    const bobs = await ticketFor(h.httpBase, { credentials: { user: 'bob' } });
    expect(h.server.disconnect((session) => session.user?.id === 'alice')).toBe(0);
    for (const ticket of [fresh, sameId]) {
      const late = await h.connect({ ticket });
      expect(await late.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    }
    expect(h.server.sessions.size).toBe(0);
    const bob = await h.connect({ ticket: bobs });
    expect(await bob.hello()).toMatchObject({ resumed: false });
  });

  it('§3.5.disconnect holds for a ticket taken from a shared store before the logout whose session is made after it', async () => {
    // Holds the making of sessions while `held` is armed: the ticket was taken, the session not made yet.
    class Gated extends SharedMemoryStore {
      held: Promise<void> | null = null;
      reached = deferred();
      override async createSession(...args: Parameters<SharedMemoryStore['createSession']>): ReturnType<SharedMemoryStore['createSession']> {
        if (this.held) {
          this.reached.resolve();
          await this.held;
        }
        return super.createSession(...args);
      }
    }
    const store = new Gated();
    const h = await harnesses.start({ store, authenticate: tokens() });
    const logouts = [
      (session: { user: { id: string } | null }) => session.user?.id === 'alice',
      // A predicate that throws cannot say no: the admission is refused.
      (): boolean => {
        throw new Error('the predicate failed');
      },
    ];
    for (const logout of logouts) {
      const answer = await requestTicket(h.httpBase, { credentials: { user: 'alice' } });
      const { ticket, sid } = JSON.parse(answer.text) as { ticket: string; sid: string };
      const gate = deferred();
      store.held = gate.promise;
      store.reached = deferred();
      const late = h.connect({ ticket });
      await store.reached.promise;
      // Neither the ticket (taken) nor the session (not made) is there for the logout to find.
      expect(h.server.disconnect(logout)).toBe(0);
      store.held = null;
      gate.resolve();
      const refused = await late;
      expect(await refused.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED', message: 'the application disconnected this session' } });
      expect(h.server.sessions.size).toBe(0);
      // The session made for it went with it: the shared store holds it no more.
      await refused.closed();
      await vi.waitFor(async () => expect(await store.getSession(sid)).toBeNull());
    }
    // A login after the logouts is admitted.
    const fresh = await h.connect({ credentials: { user: 'alice' } });
    expect(await fresh.hello()).toMatchObject({ resumed: false });
  });

  it('§3.5.disconnect voids such tickets in a store shared by several processes too, where any process takes them', async () => {
    const store = new SharedMemoryStore();
    const [a, b] = [await harnesses.start({ store, authenticate: tokens() }), await harnesses.start({ store, authenticate: tokens() })];
    const ticket = await ticketFor(a.httpBase, { credentials: { user: 'alice' } });
    // And one for a session A holds, to be used at B.
    const open = await a.connect({ credentials: { user: 'alice' } });
    const hello = await open.hello();
    const resume = await ticketFor(a.httpBase, { sid: hello.sid, credentials: { user: 'alice' } });
    expect(a.server.disconnect((session) => session.user?.id === 'alice')).toBe(1);
    for (const [h, used] of [[a, ticket], [b, ticket], [b, resume]] as const) {
      const late = await h.connect({ ticket: used });
      expect(await late.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
    }
    expect(a.server.sessions.size + b.server.sessions.size).toBe(0);
  });
});
