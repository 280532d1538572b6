/**
 * §3.6 several server processes, one shared store: what a raw client sees when its requests go to
 * different servers. The servers share a store in this process (test/helpers/shared-memory-store.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { HelloFrame, ServerFrame } from '../../src/protocol/index.js';
import { UnbrokenServerError, type ServerOptions, type Session, type StoreEvents, type StoredMessage } from '../../src/server/index.js';
import { waitUntil, within } from '../helpers/raw-frames.js';
import { deferred, nextTurn } from '../helpers/signals.js';
import { RawSse, framesOf, poll, postSend } from '../helpers/raw-http.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { randomToken, ticketFor } from '../helpers/raw-ticket.js';
import { RawWs } from '../helpers/raw-ws.js';
import { SharedMemoryStore } from '../helpers/shared-memory-store.js';

/** A shared store whose history the test can lose, as a restarted Redis without persistence does. */
class LosableStore extends SharedMemoryStore {
  readonly #subscribers: StoreEvents[] = [];

  override subscribe(listener: (message: StoredMessage) => void, events?: StoreEvents): () => void {
    if (events) this.#subscribers.push(events);
    return super.subscribe(listener, events);
  }

  loseHistory(): void {
    this.loseState();
    for (const events of this.#subscribers) events.historyLost?.();
  }

  /** As a store whose reader retention overtook. */
  overrun(): void {
    for (const events of this.#subscribers) events.overrun?.();
  }
}

const harnesses = new Harnesses();
afterEach(() => harnesses.closeAll());

async function twoServers(store = new SharedMemoryStore()): Promise<[Harness, Harness]> {
  return [await harnesses.start({ store }), await harnesses.start({ store })];
}

/**
 * Two servers on one shared store whose `authenticate` takes credentials `{ user, ttl }` and cannot
 * check user `down` now (AUTH_UNAVAILABLE, §3.5).
 */
async function twoServersWithOutage(): Promise<[Harness, Harness]> {
  const authenticate: NonNullable<ServerOptions['authenticate']> = (_request, credentials) => {
    const { user, ttl } = (credentials ?? {}) as { user?: string; ttl?: number };
    if (user === 'down') throw new UnbrokenServerError('AUTH_UNAVAILABLE', 'the users database is down');
    return typeof user === 'string' ? { id: user, expiresAt: Date.now() + (ttl ?? 60_000) } : null;
  };
  const store = new SharedMemoryStore();
  return [await harnesses.start({ store, authenticate, heartbeatInterval: 5_000 }), await harnesses.start({ store, authenticate, heartbeatInterval: 5_000 })];
}

const messageIds = (frames: readonly ServerFrame[]): string[] => frames.flatMap((frame) => (frame.t === 'msg' ? [frame.id] : []));

/** Holds the marking of upstream batches processed (§8) while `held` is armed. */
class GatedStore extends SharedMemoryStore {
  held: Promise<void> | null = null;
  override async advance(...args: Parameters<SharedMemoryStore['advance']>): ReturnType<SharedMemoryStore['advance']> {
    if (this.held) await this.held;
    return super.advance(...args);
  }
}

/**
 * Two servers on a {@link GatedStore}; a long-polling session opened at A joins `lobby` there. Then
 * A handles the message `data` while the client's next poll takes the connection to B, so A has let
 * the session go by the time its listener runs: the batch waits in the store until then. `handle`
 * gets every message at both servers; `listen` sees A before anything happens.
 */
async function handledAsAnotherTakesOver(
  data: Record<string, boolean>,
  handle: (request: Record<string, unknown>, session: Session) => unknown,
  listen: (a: Harness) => void = () => undefined,
): Promise<{ a: Harness; b: Harness; store: GatedStore; sid: string }> {
  const store = new GatedStore();
  const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
  listen(a);
  for (const h of [a, b]) {
    h.onProcessed = ({ data: received }, session) => {
      const request = received as Record<string, unknown>;
      if (typeof request.join === 'string') void session.join(request.join);
      handle(request, session);
    };
  }
  const c = randomToken();
  const hello = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll')[0] as Extract<ServerFrame, { t: 'hello' }>;
  framesOf(await postSend(a.httpBase, [{ t: 'msg', s: 1, d: { join: 'lobby' } }], { sid: hello.sid }), 'the join');
  await waitUntil('the join', () => a.server.sessions.get(hello.sid)?.rooms.has('lobby') === true);
  const gate = deferred();
  store.held = gate.promise;
  const handled = postSend(a.httpBase, [{ t: 'msg', s: 2, d: data }], { sid: hello.sid });
  const polling = poll(b.httpBase, { c, last: hello.cursor });
  await waitUntil('A to let the session go', () => !a.server.sessions.has(hello.sid));
  store.held = null;
  gate.resolve();
  framesOf(await handled, 'the message at A');
  void polling.catch(() => undefined);
  return { a, b, store, sid: hello.sid };
}

describe('§3.6 several server processes', () => {
  it('§3.6.any-process admits a connection at one server with a ticket another issued, and resumes the session there', async () => {
    const [a, b] = await twoServers();
    const first = await RawWs.open(a.wsBase);
    const hello = await first.hello();
    first.terminate();
    await waitUntil('server A to see the connection drop', () => a.server.sessions.get(hello.sid)?.connected === false);
    // The ticket of server B names the session server A created.
    const second = await RawWs.open(b.wsBase, { sid: hello.sid });
    const resumed = await second.hello();
    expect(resumed).toMatchObject({ sid: hello.sid, resumed: true });
    second.terminate();
  });

  it('§3.4.ticket-limit voids at every server the ticket a full table gave up to another address', async () => {
    const store = new SharedMemoryStore();
    const a = await harnesses.start({ store, maxTickets: 2 });
    const b = await harnesses.start({ store });
    const given = await ticketFor(a.httpBase, { localAddress: '127.0.0.1' });
    await ticketFor(a.httpBase, { localAddress: '127.0.0.1' });
    await ticketFor(a.httpBase, { localAddress: '127.0.0.2' });
    const refused = await b.connect({ ticket: given });
    expect(await refused.next('error')).toMatchObject({ frame: { code: 'UNAUTHORIZED' } });
  });

  it('§12.1.rate-kept spends no budget of re-created sessions on a resume at a process that does not hold the session', async () => {
    const store = new SharedMemoryStore();
    const limits = { sessionsPerSecondPerAddress: 1, maxSessionsPerAddress: 2, now: () => 1_000_000 };
    const a = await harnesses.start({ store, ...limits });
    const b = await harnesses.start({ store, ...limits });
    const client = await RawWs.open(a.wsBase);
    const hello = await client.hello();
    client.terminate();
    await waitUntil('server A to see the connection drop', () => a.server.sessions.get(hello.sid)?.connected === false);
    // Made-up ids spend server B's budget of re-creations (2), each session ended so that the
    // per-address count does not bind.
    for (const made of ['M'.repeat(22), 'N'.repeat(22)]) {
      const recreated = await RawWs.open(b.wsBase, { sid: made });
      expect(await recreated.hello()).toMatchObject({ sid: made, resumed: false });
      b.server.sessions.get(made)!.close();
      await recreated.closed();
    }
    const refused = await RawWs.open(b.wsBase, { sid: 'P'.repeat(22) });
    expect((await refused.next('error')).frame).toMatchObject({ code: 'RATE_LIMITED' });
    // The session that lives at server A resumes at server B all the same.
    const resumed = await RawWs.open(b.wsBase, { sid: hello.sid });
    expect(await resumed.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    resumed.terminate();
  });

  it('§3.4.key-check learns no session from the store for a POST with a wrong key: it is refused, and the server holds nothing for it', async () => {
    const [a, b] = await twoServers();
    const client = await RawWs.open(a.wsBase);
    const { sid } = await client.hello();
    const forged = await postSend(b.httpBase, [{ t: 'msg', s: 1, d: 'forged' }], { sid, key: randomToken() });
    expect(forged.status).toBe(404);
    expect(JSON.parse(forged.text)).toMatchObject({ code: 'UNKNOWN_SESSION' });
    expect(b.server.sessions.has(sid)).toBe(false);
    expect(b.server.stats()).toMatchObject({ sessions: 0, addresses: 0 });
    client.terminate();
  });

  it('§3.6.exactly-once hands a message over once, whichever server a POST reaches, and acknowledges repeats', async () => {
    const [a, b] = await twoServers();
    const { hello } = await (async () => {
      const frames = framesOf(await poll(a.httpBase, { open: true, c: randomToken() }), 'the first poll');
      return { hello: frames[0] as Extract<ServerFrame, { t: 'hello' }> };
    })();
    const batch = [{ t: 'msg', s: 1, d: 'once' }];
    const atA = framesOf(await postSend(a.httpBase, batch, { sid: hello.sid }), 'the POST at A');
    const atB = framesOf(await postSend(b.httpBase, [...batch, { t: 'msg', s: 2, d: 'twice' }], { sid: hello.sid }), 'the POST at B');
    expect(atA).toEqual([{ t: 'ack', s: 1 }]);
    expect(atB).toEqual([{ t: 'ack', s: 2 }]);
    expect([...a.processedFor(hello.sid), ...b.processedFor(hello.sid)]).toEqual(['once', 'twice']);
    expect(b.processedFor(hello.sid)).toEqual(['twice']);
  });

  it('§7.3.answer-after begins the answer to a POST only once its batch was processed, also while the store takes its time', async () => {
    // The claim of §3.6.exactly-once waits for the store: here a real 150 ms, which an answer sent
    // before the processing would beat.
    class SlowStore extends SharedMemoryStore {
      override async advance(...args: Parameters<SharedMemoryStore['advance']>): ReturnType<SharedMemoryStore['advance']> {
        await new Promise((resolve) => setTimeout(resolve, 150));
        return super.advance(...args);
      }
    }
    const [a] = await twoServers(new SlowStore());
    const frames = framesOf(await poll(a.httpBase, { open: true, c: randomToken() }), 'the first poll');
    const hello = frames[0] as Extract<ServerFrame, { t: 'hello' }>;
    let processedAtHeaders: unknown[] | undefined;
    const answer = await postSend(a.httpBase, [{ t: 'msg', s: 1, d: 'first' }], {
      sid: hello.sid,
      onHeaders: () => (processedAtHeaders = [...a.processedFor(hello.sid)]),
    });
    expect(framesOf(answer, 'the POST')).toEqual([{ t: 'ack', s: 1 }]);
    expect(processedAtHeaders).toEqual(['first']);
  });

  it('§3.6.supersede closes the connection at one server with SUPERSEDED when the session attaches at another', async () => {
    const [a, b] = await twoServers();
    const first = await RawWs.open(a.wsBase);
    const hello = await first.hello();
    const second = await RawWs.open(b.wsBase, { sid: hello.sid });
    expect((await second.hello()).resumed).toBe(true);
    const error = await first.next('error');
    expect(error.frame).toMatchObject({ code: 'SUPERSEDED' });
    expect((await first.closed()).code).toBe(4409);
    // Server A let the session go; server B holds it.
    await waitUntil('server A to let the session go', () => !a.server.sessions.has(hello.sid));
    expect(b.server.sessions.get(hello.sid)?.connected).toBe(true);
    second.terminate();
  });

  it('§3.6.continue answers a poll that continues at another server with the messages after its last, and no hello', async () => {
    const [a, b] = await twoServers();
    const c = randomToken();
    const opened = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll');
    const hello = opened[0] as Extract<ServerFrame, { t: 'hello' }>;
    const first = await a.server.broadcast('one');
    const second = await b.server.broadcast('two');
    const continued = framesOf(await poll(b.httpBase, { c, last: hello.cursor }), 'the poll at B');
    expect(continued.some((frame) => frame.t === 'hello')).toBe(false);
    expect(messageIds(continued)).toEqual([first, second]);
    // And back at A: the connection goes on from where B left the client.
    const third = await a.server.broadcast('three');
    const back = framesOf(await poll(a.httpBase, { c, last: second }), 'the poll back at A');
    expect(back.some((frame) => frame.t === 'hello')).toBe(false);
    expect(messageIds(back)).toEqual([third]);
  });

  it('§3.6.continue holds a poll that continues at another server while there is nothing new: an ack the client has does not answer it at once', async () => {
    const [a, b] = await twoServers();
    const c = randomToken();
    const opened = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll');
    const hello = opened[0] as Extract<ServerFrame, { t: 'hello' }>;
    // A processed message: the POST's answer acks it.
    expect(framesOf(await postSend(a.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }), 'the POST')).toEqual([{ t: 'ack', s: 1 }]);
    const arrived = b.handled('/poll');
    const held = poll(b.httpBase, { c, last: hello.cursor });
    await arrived;
    await waitUntil('the connection taken over at B', () => b.server.sessions.get(hello.sid)?.connected === true);
    // B read the stream from the store (found nothing) within this turn's I/O; then a message comes.
    await nextTurn();
    const later = await b.server.broadcast('two');
    const continued = framesOf(await held, 'the poll at B');
    // The ack the POST's answer gave is not repeated: the poll holds the message alone.
    expect(continued.map((frame) => frame.t)).toEqual(['msg']);
    expect(messageIds(continued)).toEqual([later]);
  });

  it('§3.6.continue answers an idle poll that continues at another server with the heartbeat after hb, as any poll', async () => {
    const store = new SharedMemoryStore();
    const a = await harnesses.start({ store, heartbeatInterval: 400 });
    const b = await harnesses.start({ store, heartbeatInterval: 400 });
    const c = randomToken();
    const opened = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll');
    const hello = opened[0] as Extract<ServerFrame, { t: 'hello' }>;
    framesOf(await postSend(a.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }), 'the POST');
    const started = Date.now();
    const continued = framesOf(await within('the idle poll at B to be answered', poll(b.httpBase, { c, last: hello.cursor })), 'the poll at B');
    expect(continued.map((frame) => frame.t)).toEqual(['hb']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('§3.5 asks the connection again at the process that holds it when fresh credentials sent to another process could not be checked (AUTH_UNAVAILABLE)', async () => {
    const [a, b] = await twoServersWithOutage();
    const reported: string[] = [];
    b.server.on('error', (error) => reported.push(error.code));
    // Lives 2 s: asked 1 s before its end; the check at B fails, so A asks again half the time left later.
    const sse = await RawSse.connect(a.httpBase, { credentials: { user: 'bob', ttl: 2_000 } });
    const hello = await sse.hello();
    const first = await sse.next('auth');
    framesOf(await postSend(b.httpBase, [{ t: 'auth', c: { user: 'down' } }], { sid: hello.sid }), 'the POST at B');
    const again = await sse.next('auth');
    expect(again.frame.ms).toBeLessThan(first.frame.ms);
    expect(reported).toEqual(['AUTH_UNAVAILABLE']);
    // Checked at B this time: A's session takes the fresh identity, and the connection goes on.
    framesOf(await postSend(b.httpBase, [{ t: 'auth', c: { user: 'bob' } }], { sid: hello.sid }), 'the second POST at B');
    const session = a.server.sessions.get(hello.sid)!;
    await waitUntil('the fresh identity taken at A', () => (session.user?.expiresAt ?? 0) > Date.now() + 10_000);
    expect(sse.ended).toBe(false);
  });

  it('§3.5 asks at most once for credentials that could not be checked at another process, and not at all once fresh ones were taken meanwhile', async () => {
    const [a, b] = await twoServersWithOutage();
    b.server.on('error', () => undefined);
    // Lives 4 s: asked 2 s before its end; a failed check at B would have A asked again 1 s later.
    const sse = await RawSse.connect(a.httpBase, { credentials: { user: 'bob', ttl: 4_000 } });
    const hello = await sse.hello();
    await sse.next('auth');
    const failedAt = Date.now();
    for (let n = 0; n < 3; n++) framesOf(await postSend(b.httpBase, [{ t: 'auth', c: { user: 'down' } }], { sid: hello.sid }), `failed check ${n}`);
    // Then the check can be made, at B too: A's session takes the fresh identity through the store.
    framesOf(await postSend(b.httpBase, [{ t: 'auth', c: { user: 'bob' } }], { sid: hello.sid }), 'the check that works');
    const session = a.server.sessions.get(hello.sid)!;
    await waitUntil('the fresh identity taken at A', () => (session.user?.expiresAt ?? 0) > Date.now() + 10_000);
    // Past the time the ask was due: a message marks the place on the stream.
    await waitUntil('the ask to be due', () => Date.now() > failedAt + 1_300, 3_000);
    const mark = await b.server.broadcast('mark');
    await sse.next('msg', (frame) => frame.id === mark);
    expect(sse.frames.filter((received) => received.frame.t === 'auth')).toHaveLength(1);
  });

  it('§6.5 a message handled as another server takes the connection sees the session in its rooms', async () => {
    const seen: string[][] = [];
    await handledAsAnotherTakesOver({ check: true }, (request, session) => request.check && seen.push([...session.rooms]));
    expect(seen).toEqual([['lobby']]);
  });

  it('§6.5 the end of a copy another server took the connection from ends the session at that server, and its rooms with it', async () => {
    const store = new GatedStore();
    const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
    const left: string[] = [];
    a.server.on('leave', (_session, room) => left.push(`A ${room}`));
    b.server.on('leave', (_session, room) => left.push(`B ${room}`));
    const ended: string[] = [];
    a.server.on('close', (_session, reason) => ended.push(`A ${reason}`));
    b.server.on('close', (_session, reason) => ended.push(`B ${reason}`));
    for (const h of [a, b]) {
      h.onProcessed = ({ data }, session) => {
        const request = data as { join?: string; close?: boolean };
        if (request.join) void session.join(request.join);
        if (request.close) session.close();
      };
    }
    const c = randomToken();
    const hello = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll')[0] as Extract<ServerFrame, { t: 'hello' }>;
    framesOf(await postSend(a.httpBase, [{ t: 'msg', s: 1, d: { join: 'lobby' } }], { sid: hello.sid }), 'the join');
    await waitUntil('the join', () => a.server.sessions.get(hello.sid)?.rooms.has('lobby') === true);
    const gate = deferred();
    store.held = gate.promise;
    const closing = postSend(a.httpBase, [{ t: 'msg', s: 2, d: { close: true } }], { sid: hello.sid });
    const polling = poll(b.httpBase, { c, last: hello.cursor });
    await waitUntil('A to let the session go', () => !a.server.sessions.has(hello.sid));
    store.held = null;
    gate.resolve();
    await closing;
    // B holds it: B ends it, as its own session.close() would. Its poll ends (§7.4), and its rooms with it.
    await waitUntil('B to end the session', () => !b.server.sessions.has(hello.sid));
    expect(ended).toEqual(['A closed', 'B closed']);
    expect(left).toEqual(['B lobby']);
    expect(await store.members('lobby')).toEqual([]);
    expect(await store.getSession(hello.sid)).toBeNull();
    expect((await polling).status).toBe(200);
  });

  it('§3.6 the end of a copy this server let go ends the session here when it came back here since', async () => {
    const store = new SharedMemoryStore();
    const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
    const ended: string[] = [];
    a.server.on('close', (session, reason) => ended.push(`A ${session === copy} ${reason}`));
    const c = randomToken();
    const hello = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll')[0] as Extract<ServerFrame, { t: 'hello' }>;
    const copy = a.server.sessions.get(hello.sid)!;
    // The polls go round: to B, then back to A, which serves the session with a copy of its own again.
    const atB = poll(b.httpBase, { c, last: hello.cursor });
    await waitUntil('A to let the session go', () => !a.server.sessions.has(hello.sid));
    const message = await b.server.sessions.get(hello.sid)!.send('to B');
    await atB;
    const atA = poll(a.httpBase, { c, last: message });
    await waitUntil('A to hold the session again', () => a.server.sessions.get(hello.sid)?.connected === true);
    expect(a.server.sessions.get(hello.sid)).not.toBe(copy);
    copy.close();
    expect(ended.sort()).toEqual(['A false closed', 'A true closed']);
    expect(a.server.sessions.has(hello.sid)).toBe(false);
    expect(await store.getSession(hello.sid)).toBeNull();
    expect((await atA).status).toBe(200);
    expect(store.signals.filter((signal) => signal.kind === 'close')).toEqual([]);
  });

  it('§3.3.same-id-fresh a copy this server let go sends nothing to a session created under its id after the session ended elsewhere', async () => {
    const store = new SharedMemoryStore();
    const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
    const c = randomToken();
    const hello = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll')[0] as Extract<ServerFrame, { t: 'hello' }>;
    const copy = a.server.sessions.get(hello.sid)!;
    const moved = poll(b.httpBase, { c, last: hello.cursor });
    await waitUntil('A to let the session go', () => !a.server.sessions.has(hello.sid));
    // While the session lives at B, what A's copy sends reaches it, in call order; its data is checked at once.
    expect(() => copy.send(undefined as never)).toThrow(expect.objectContaining({ code: 'INVALID_DATA' }));
    const changed = { n: 1 };
    const sends = [copy.send('while it lives'), copy.send(changed)];
    // Taken at the call, as any send's data is: a change after it is not sent.
    changed.n = 2;
    const [live, next] = await Promise.all(sends);
    expect((await moved).text).toContain(live);
    const read = await store.read(hello.sid, hello.cursor, 10);
    expect(read.messages.map((message) => [message.id, message.data])).toEqual([
      [live, 'while it lives'],
      [next, { n: 1 }],
    ]);
    b.server.sessions.get(hello.sid)!.close();
    const again = framesOf(await poll(b.httpBase, { open: true, sid: hello.sid, key: 'another-key-aaaaaaaa', c: randomToken() }), 'the new session')[0] as Extract<ServerFrame, { t: 'hello' }>;
    expect([again.sid, again.resumed]).toEqual([hello.sid, false]);
    // It puts the new session in no room, nor takes it out of one.
    await b.server.sessions.get(hello.sid)!.join('lobby');
    await copy.join('admins');
    await copy.leave('lobby');
    expect(await store.members('admins')).toEqual([]);
    expect(await store.members('lobby')).toEqual([hello.sid]);
    await expect(copy.send('for the first session only')).rejects.toMatchObject({ code: 'SESSION_ENDED' });
    const { messages } = await store.read(hello.sid, again.cursor, 10);
    expect(messages).toEqual([]);
  });

  it('§3.3.same-id the end of a copy of an ended session leaves alone the session created under its id since', async () => {
    const store = new SharedMemoryStore();
    const [a, b] = [await harnesses.start({ store }), await harnesses.start({ store })];
    const ended: string[] = [];
    b.server.on('close', (_session, reason) => ended.push(reason));
    const c = randomToken();
    const hello = framesOf(await poll(a.httpBase, { open: true, c }), 'the first poll')[0] as Extract<ServerFrame, { t: 'hello' }>;
    const copy = a.server.sessions.get(hello.sid)!;
    // The connection moves to B; A lets its copy go.
    const moved = poll(b.httpBase, { c, last: hello.cursor });
    await waitUntil('A to let the session go', () => !a.server.sessions.has(hello.sid));
    // The session ends at B, and its client comes back to its id with the same key: a new session (§3.3.same-id).
    b.server.sessions.get(hello.sid)!.close();
    await moved;
    const again = framesOf(await poll(b.httpBase, { open: true, sid: hello.sid, c: randomToken() }), 'the new session')[0] as Extract<ServerFrame, { t: 'hello' }>;
    expect([again.sid, again.resumed]).toEqual([hello.sid, false]);
    // The old copy's end reaches B, which holds the new session: it lives on.
    const heard = deferred<void>();
    const unsubscribe = store.subscribeSignals((signal) => {
      if (signal.kind === 'close') heard.resolve();
    });
    copy.close();
    await heard.promise;
    unsubscribe();
    await nextTurn();
    expect(ended).toEqual(['closed']);
    expect(b.server.sessions.get(hello.sid)?.connected).toBe(true);
    expect(await store.getSession(hello.sid)).not.toBeNull();
  });

  it('§3.6.shutdown leaves the sessions of a server that shuts down to the others: a client resumes them there', async () => {
    const [a, b] = await twoServers();
    const first = await RawWs.open(a.wsBase);
    const hello = await first.hello();
    await a.server.close();
    await first.closed();
    const second = await RawWs.open(b.wsBase, { sid: hello.sid });
    expect(await second.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    second.terminate();
  });

  it('§3.6.lost closes every connection when the store loses its history, and lets its sessions go (the gap each client is told once: redis-cluster.test.ts, with a Redis restarted)', async () => {
    const store = new LosableStore();
    const [a] = await twoServers(store);
    const client = await RawWs.open(a.wsBase);
    const hello = await client.hello();
    store.loseHistory();
    const error = await client.next('error');
    expect(error.frame).toMatchObject({ code: 'SERVER_RESTART' });
    await client.closed();
    expect(a.server.sessions.has(hello.sid)).toBe(false);
  });

  it('§6.3 closes every connection with BACKPRESSURE when the store could not tell it every message live, and keeps the sessions', async () => {
    const store = new LosableStore();
    const [a] = await twoServers(store);
    const client = await RawWs.open(a.wsBase);
    const hello = await client.hello();
    store.overrun();
    const error = await client.next('error');
    expect(error.frame).toMatchObject({ code: 'BACKPRESSURE' });
    await client.closed();
    const again = await RawWs.open(a.wsBase, { sid: hello.sid });
    expect((await again.hello()).resumed).toBe(true);
    again.terminate();
  });

  it('§9 answers a held poll cut with BACKPRESSURE with 503 and the code, not as a server fault', async () => {
    const store = new LosableStore();
    const [a] = await twoServers(store);
    const [first] = framesOf(await poll(a.httpBase, { open: true }), 'the first poll');
    const hello = first as HelloFrame;
    const arrived = a.handled('/poll');
    const held = poll(a.httpBase, { sid: hello.sid, last: hello.cursor });
    await arrived;
    store.overrun();
    const answer = await within('the held poll to be answered', held);
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'BACKPRESSURE' });
  });
});
