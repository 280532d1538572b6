/**
 * Conformance of the reference server over long polling (docs/PROTOCOL.md §7.4, with `POST P/send`
 * upstream, §7.3, and the sections of §3–§12 that apply to it), driven by Node's `fetch` alone.
 *
 * A held poll is shown to be held by what answers it: a message broadcast after the poll was sent,
 * a `SUPERSEDED` caused by a newer poll, or an `hb` — never by a timer that expires first.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { httpStatusFor, type ErrorCode, type HelloFrame, type ServerFrame } from '../../src/protocol/index.js';
import { MemoryStore, createServer } from '../../src/server/index.js';
import { MIXED_TEXTS, waitUntil, within } from '../helpers/raw-frames.js';
import { framesOf, parseErrorBody, poll, postSend, type HttpAnswer } from '../helpers/raw-http.js';
import { FAST, Harnesses, type Harness } from '../helpers/raw-server.js';
import { randomToken } from '../helpers/raw-ticket.js';

const harnesses = new Harnesses();
const inFlight = new Set<AbortController>();
afterEach(async () => {
  for (const controller of inFlight) controller.abort();
  inFlight.clear();
  await harnesses.closeAll();
});

function expectErrorAnswer(reply: HttpAnswer, code: ErrorCode): void {
  expect(reply.status, reply.text).toBe(httpStatusFor(code));
  expect(parseErrorBody(reply.text)).toEqual({ code, message: expect.any(String) });
}

/** A poll that the test may leave pending; aborted after the test. */
function startPoll(h: Harness, options: { sid?: string; last?: string }): Promise<HttpAnswer> {
  const controller = new AbortController();
  inFlight.add(controller);
  return poll(h.httpBase, { ...options, signal: controller.signal }).finally(() => inFlight.delete(controller));
}

/** The first poll of a new long-polling connection; returns its hello and the rest of its batch. */
async function firstPoll(h: Harness, options: { sid?: string; last?: string; c?: string } = {}): Promise<{ hello: HelloFrame; rest: ServerFrame[] }> {
  const frames = framesOf(await poll(h.httpBase, { ...options, open: true }), 'the first poll');
  const [hello, ...rest] = frames;
  expect(hello?.t, JSON.stringify(frames)).toBe('hello');
  return { hello: hello as HelloFrame, rest };
}

/** A new connection's hello, and its next poll once the server holds it. */
async function heldPoll(h: Harness): Promise<{ hello: HelloFrame; held: Promise<HttpAnswer> }> {
  const { hello } = await firstPoll(h);
  const arrived = h.handled('/poll');
  const held = startPoll(h, { sid: hello.sid, last: hello.cursor });
  await arrived;
  return { hello, held };
}

/** The cursor after a batch: the id of its last message, else `cursor`. */
function cursorAfter(frames: readonly ServerFrame[], cursor: string): string {
  let last = cursor;
  for (const frame of frames) {
    if (frame.t === 'msg') last = frame.id;
    if (frame.t === 'hello' || frame.t === 'gap') last = frame.cursor;
  }
  return last;
}

const messagesOf = (frames: readonly ServerFrame[]): string[] => frames.flatMap((frame) => (frame.t === 'msg' ? [frame.id] : []));

describe('§7.4 long polling', () => {
  it('§7.4.open answers the first poll at once with the hello, exactly once and first', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello, rest } = await within('the first poll to be answered at once', firstPoll(h), 2_000);
    expect(hello).toMatchObject({ v: 1, resumed: false, ack: 0, hb: 5_000 });
    expect(rest.filter((frame) => frame.t === 'hello')).toEqual([]);
  });

  it('§7.4.open answers the first poll of a resumed connection at once with the hello and the waiting messages', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const ws = await h.connect();
    const before = await ws.hello();
    ws.terminate();
    await waitUntil('the server to see the WebSocket drop', () => h.server.sessions.get(before.sid)?.connected === false);
    const ids = [await h.server.broadcast('a'), await h.server.broadcast('b')];
    const { hello, rest } = await within('the first poll to be answered at once', firstPoll(h, { sid: before.sid, last: before.cursor }), 2_000);
    expect(hello).toMatchObject({ sid: before.sid, resumed: true, cursor: before.cursor });
    expect(messagesOf(rest)).toEqual(ids);
  });

  it('§7.4 holds a later poll until a message arrives, then answers with it', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { held } = await heldPoll(h);
    const id = await h.server.broadcast('news');
    const frames = framesOf(await held, 'the held poll');
    expect(frames).toEqual([{ t: 'msg', id, d: 'news' }]);
  });

  it('§7.4 answers a held poll with the messages of one turn in one batch, whatever characters they hold, its Content-Length in bytes', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { held } = await heldPoll(h);
    const texts = MIXED_TEXTS;
    // No await between the sends: the server queues them in one turn and answers the poll with them all.
    const ids = await Promise.all(texts.map((text) => h.server.broadcast(text)));
    const reply = await held;
    expect(framesOf(reply, 'the held poll')).toEqual(texts.map((text, i) => ({ t: 'msg', id: ids[i], d: text })));
    expect(reply.headers.get('content-length')).toBe(String(Buffer.byteLength(reply.text)));
  });

  it('§7.4.open opens a new connection, with a hello at once, for a poll with a ticket even when c and last continue', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello } = await firstPoll(h, {});
    // A new client attempt: same session, same cursor, same connection id, a new ticket. It must not be held.
    const frames = framesOf(
      await within('a new connection to be answered at once', poll(h.httpBase, { sid: hello.sid, last: hello.cursor, open: true }), 2_000),
    );
    expect(frames[0]).toMatchObject({ t: 'hello', sid: hello.sid, resumed: true, cursor: hello.cursor });
  });

  it('§3.4.no-ticket refuses with 401 UNAUTHORIZED a poll without a ticket that continues no connection, and touches no session', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const first = framesOf(await poll(h.httpBase, { c: null, open: true }));
    const hello = first[0] as HelloFrame;
    const connections = h.connections.length;
    // No connection id, then one nobody registered: neither continues anything.
    expectErrorAnswer(await within('the poll without c', poll(h.httpBase, { last: hello.cursor, c: null }), 2_000), 'UNAUTHORIZED');
    expectErrorAnswer(await within('the poll with an unknown c', poll(h.httpBase, { last: hello.cursor, c: randomToken() }), 2_000), 'UNAUTHORIZED');
    expect(h.connections.length).toBe(connections);
    expect(h.server.sessions.get(hello.sid)?.connected).toBe(true);
  });

  it('§7.4 answers a held poll with [{"t":"hb"}] after hb ms without messages', async () => {
    const hb = 150;
    const h = await harnesses.start({ heartbeatInterval: hb });
    const { hello } = await firstPoll(h);
    const started = Date.now();
    const frames = framesOf(await within('the held poll to be answered', startPoll(h, { sid: hello.sid, last: hello.cursor }), 20 * hb));
    expect(frames).toEqual([{ t: 'hb' }]);
    expect(Date.now() - started).toBeLessThanOrEqual(hb + 150);
  });

  it('§7.4 tells the next poll why the connection closed while no poll was held (a logout), as a stream of its own would have', async () => {
    const h = await harnesses.start();
    const { hello } = await firstPoll(h);
    // No poll held now: the client is between two polls.
    expect(h.server.disconnect(() => true)).toBe(1);
    const next = await within('the next poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor }));
    expectErrorAnswer(next, 'UNAUTHORIZED');
    expect(JSON.parse(next.text).message).toBe('the application disconnected this session');
    // Told once: the poll after that is refused as any poll that continues nothing.
    const after = await within('the poll after', poll(h.httpBase, { sid: hello.sid, last: hello.cursor }));
    expectErrorAnswer(after, 'UNAUTHORIZED');
    expect(JSON.parse(after.text).message).not.toBe('the application disconnected this session');
  });

  it('§7.4 a newer poll of the session answers the older one at once with SUPERSEDED', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello, held: older } = await heldPoll(h);
    const newer = startPoll(h, { sid: hello.sid, last: hello.cursor });
    expectErrorAnswer(await within('the older poll to be answered', older, 2_000), 'SUPERSEDED');
    const id = await h.server.broadcast('for the newer poll');
    expect(messagesOf(framesOf(await newer))).toEqual([id]);
  });

  it('§7.4 answers a poll with the messages after its last, so a lost answer is recovered by polling again', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello } = await firstPoll(h);
    const ids = [await h.server.broadcast(1), await h.server.broadcast(2)];
    const first = framesOf(await startPoll(h, { sid: hello.sid, last: hello.cursor }));
    expect(messagesOf(first)).toEqual(ids);
    // The answer is "lost": the client polls again with the same last and gets the same messages.
    const repeated = framesOf(await startPoll(h, { sid: hello.sid, last: hello.cursor }));
    expect(messagesOf(repeated)).toEqual(ids);
    const third = await h.server.broadcast(3);
    const next = framesOf(await startPoll(h, { sid: hello.sid, last: cursorAfter(repeated, hello.cursor) }));
    expect(messagesOf(next)).toEqual([third]);
  });

  it('§7.4 sends binary data as base64 b with padding', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello } = await firstPoll(h);
    await h.server.broadcast(new Uint8Array([0xff, 0xfe]));
    const frames = framesOf(await startPoll(h, { sid: hello.sid, last: hello.cursor }));
    expect(frames).toEqual([{ t: 'msg', id: expect.any(String), b: '//4=' }]);
  });

  it('§7.4 carries upstream messages on POST P/send, acked in its answer', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello } = await firstPoll(h);
    const frames = framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'up' }], { sid: hello.sid }));
    expect(frames).toContainEqual({ t: 'ack', s: 1 });
    expect(h.processedFor(hello.sid)).toEqual(['up']);
  });
});

describe('§3, §6, §10, §11 over long polling', () => {
  it('§3.1.refuse refuses a poll without v with 426 UNSUPPORTED_VERSION', async () => {
    const h = await harnesses.start();
    expectErrorAnswer(await poll(h.httpBase, { v: null }), 'UNSUPPORTED_VERSION');
  });

  it('§3.1 refuses a poll with v=3 with 426 UNSUPPORTED_VERSION and answers v=3,1 with hello.v 1', async () => {
    const h = await harnesses.start();
    expectErrorAnswer(await poll(h.httpBase, { v: '3' }), 'UNSUPPORTED_VERSION');
    const frames = framesOf(await poll(h.httpBase, { v: '3,1', open: true }));
    expect(frames[0]).toMatchObject({ t: 'hello', v: 1 });
  });

  it('§3.2 refuses a poll from a disallowed Origin with 403 FORBIDDEN, creating no session', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'] });
    expectErrorAnswer(await poll(h.httpBase, { origin: 'https://evil.example', open: true }), 'FORBIDDEN');
    expect(h.server.sessions.size).toBe(0);
    const frames = framesOf(await poll(h.httpBase, { origin: 'https://app.example', open: true }));
    expect(frames[0]?.t).toBe('hello');
  });

  it('§3.3.same-id adopts a well-formed unknown sid over long polling with resumed false and ack 0', async () => {
    const h = await harnesses.start();
    const { hello } = await firstPoll(h, { sid: 'L'.repeat(24) });
    expect(hello).toMatchObject({ sid: 'L'.repeat(24), resumed: false, ack: 0 });
  });

  it('§3.3 a WebSocket connection of the session supersedes its long-polling one: the held poll is answered with SUPERSEDED', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const { hello, held } = await heldPoll(h);
    const ws = await h.connect({ sid: hello.sid, last: hello.cursor });
    expect(await ws.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    expectErrorAnswer(await within('the held poll to be answered', held), 'SUPERSEDED');
    expect(h.server.sessions.get(hello.sid)?.transport).toBe('websocket');
  });

  it('§6.3.replay-or-gap puts the gap in the body of the first poll, with the hello and before any message', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const ids = [await h.server.broadcast('x'), await h.server.broadcast('y')];
    const { hello, rest } = await firstPoll(h, { sid: 'P'.repeat(22), last: 'zz-3' });
    expect(rest[0]).toEqual({ t: 'gap', reason: 'unknown-epoch', after: 'zz-3', cursor: hello.cursor });
    expect(messagesOf(rest)).toEqual(ids);
  });

  it('§11.server-dead considers a long-polling connection dead when no poll arrived for 2 × hb ms, not sooner, and keeps the session', async () => {
    const hb = 1_000;
    let clock = 1_000_000;
    const h = await harnesses.start({ heartbeatInterval: hb, now: () => clock });
    // Two connections whose last polls were answered 10 ms apart on the server's clock. Every pass
    // of the server's sweep judges both at once, so the first one's end is the signal that a pass
    // ran with the clock where the test put it.
    const earlier = (await firstPoll(h)).hello;
    clock += 10;
    const later = (await firstPoll(h, { c: randomToken() })).hello;
    const connected = (hello: HelloFrame) => h.server.sessions.get(hello.sid)?.connected;
    clock += 2 * hb - 5;
    await waitUntil('the earlier connection to be found dead', () => connected(earlier) === false);
    expect(connected(later)).toBe(true);
    // A link is probed once per heartbeat period: the next look finds the later one dead too.
    clock += hb;
    await waitUntil('the later connection to be found dead', () => connected(later) === false);
    expect(h.ended).toEqual([]);
  });

  it('§10.2.notice answers a held poll with a reconnect frame (ms in [0, jitter)) on shutdown', async () => {
    const jitter = 300;
    const h = await harnesses.start({ heartbeatInterval: 5_000, shutdownJitter: jitter, random: () => 0.25 });
    const { hello } = await firstPoll(h);
    const held = startPoll(h, { sid: hello.sid, last: hello.cursor });
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    const closing = h.server.close();
    const frames = framesOf(await within('the held poll to be answered', held));
    const reconnect = frames.find((frame) => frame.t === 'reconnect');
    expect(reconnect, JSON.stringify(frames)).toBeDefined();
    if (reconnect?.t === 'reconnect') {
      expect(reconnect.ms).toBeGreaterThanOrEqual(0);
      expect(reconnect.ms).toBeLessThan(jitter);
    }
    await within('server.close() to settle', closing);
    // The notice went out with the held poll: a poll that continues the connection is not given it
    // again (its wait would start over) but refused at once.
    expectErrorAnswer(await within('a continuing poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor })), 'SERVER_RESTART');
  });
});

describe('§10.2 a closed server over long polling', () => {
  it('§10.2.missed-notice answers the continuing poll of a connection that held no poll at shutdown with [ack, reconnect]', async () => {
    const jitter = 400;
    const h = await harnesses.start({ heartbeatInterval: 5_000, shutdownJitter: jitter, random: () => 0.5 });
    const { hello } = await firstPoll(h);
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    // No poll is held: the client is between two polls when the server closes.
    await h.server.close();
    const frames = framesOf(await within('the continuing poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor })));
    expect(frames).toEqual([
      { t: 'ack', s: 1 },
      { t: 'reconnect', ms: 200 },
    ]);
    // The notice is given once; any other poll is refused at once.
    expectErrorAnswer(await within('a later poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor })), 'SERVER_RESTART');
  });

  it('§10.2.missed-notice gives that poll its notice from the closed server also when a new server was attached to the same http server at once; every other request is the new one\'s', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000, shutdownJitter: 400, random: () => 0.5 });
    const { hello } = await firstPoll(h);
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    await h.server.close();
    // The README's restart on one http server: the closed server replaced at once.
    const successor = createServer(FAST).attach(h.started.http);
    try {
      const frames = framesOf(await within('the continuing poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor })));
      expect(frames).toEqual([
        { t: 'ack', s: 1 },
        { t: 'reconnect', ms: 200 },
      ]);
      // A poll that opens a connection is the new server's.
      const [opened] = framesOf(await within('a new connection', poll(h.httpBase, { open: true, c: 'raw-successor-connection' })));
      expect(opened?.t).toBe('hello');
      expect(successor.sessions.size).toBe(1);
      // The notice was given once: the old connection's next poll goes to the new server, which holds no such connection.
      expectErrorAnswer(await within('a later poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor })), 'UNAUTHORIZED');
    } finally {
      await successor.close();
    }
  });

  it('§10.2.answer-after-close refuses at once with 503 SERVER_RESTART a poll that continues nothing and an upstream request, once closed', async () => {
    const h = await harnesses.start();
    const { hello } = await firstPoll(h);
    await h.server.close();
    expectErrorAnswer(await within('a new poll', poll(h.httpBase, { sid: hello.sid, last: hello.cursor, c: 'another' })), 'SERVER_RESTART');
    expectErrorAnswer(await within('a POST', postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'late' }], { sid: hello.sid })), 'SERVER_RESTART');
    expect(h.processed).toEqual([]);
  });
});
