/**
 * Conformance of the reference server over Server-Sent Events with `POST P/send` upstream
 * (docs/PROTOCOL.md §7.2, §7.3, and the sections of §3–§12 that apply to HTTP), driven by Node's
 * `fetch` and a hand-written event-stream parser — no EventSource, no SDK.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeServerBatch, httpStatusFor, type ErrorCode, type HelloFrame, type ServerFrame } from '../../src/protocol/index.js';
import { MemoryStore } from '../../src/server/index.js';
import { MIXED_TEXTS, waitUntil, within } from '../helpers/raw-frames.js';
import {
  RawSse,
  UPSTREAM_HEADERS,
  framesOf,
  parseErrorBody,
  postSend,
  type HttpAnswer,
  type RawSseOptions,
} from '../helpers/raw-http.js';
import { Harnesses, type Harness } from '../helpers/raw-server.js';
import { ticketFor } from '../helpers/raw-ticket.js';

const harnesses = new Harnesses();
const streams = new Set<RawSse>();
afterEach(async () => {
  for (const stream of streams) stream.close();
  streams.clear();
  await harnesses.closeAll();
});

async function openSse(h: Harness, options: RawSseOptions = {}): Promise<RawSse> {
  const sse = await RawSse.connect(h.httpBase, options);
  streams.add(sse);
  return sse;
}

function expectErrorAnswer(reply: { status: number; text: string }, code: ErrorCode): void {
  expect(reply.status, reply.text).toBe(httpStatusFor(code));
  const body = parseErrorBody(reply.text);
  expect(body).toEqual({ code, message: expect.any(String) });
}

/** An SSE session that went away (its session lives on), and its hello. */
async function droppedSession(h: Harness): Promise<HelloFrame> {
  const sse = await openSse(h);
  const hello = await sse.hello();
  sse.close();
  await waitUntil('the server to see the stream end', () => h.server.sessions.get(hello.sid)?.connected === false);
  return hello;
}

/**
 * §7.2: a refused `GET P/sse` is a `200 text/event-stream` response of one event whose batch is the
 * `error` frame alone, after which the server ends the response.
 */
async function expectStreamRefusal(h: Harness, options: RawSseOptions, code: ErrorCode): Promise<RawSse> {
  const sse = await openSse(h, options);
  expect(sse.response.status).toBe(200);
  expect(sse.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
  await sse.finished();
  expect(sse.events).toHaveLength(1);
  expect(decodeServerBatch(sse.eventOf(0).data)).toEqual([{ t: 'error', code, message: expect.any(String) }]);
  expect(sse.eventOf(0).id).toBeUndefined();
  return sse;
}

/** §7.3: the answer to a POST of pings alone: the cumulative ack, nothing else. */
const ackOnly = (s: number): ServerFrame[] => [{ t: 'ack', s }];

describe('§7.2 Server-Sent Events', () => {
  it('§7.2 answers GET P/sse with 200, text/event-stream, no-cache, X-Accel-Buffering: no and no content encoding', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h, { headers: { 'Accept-Encoding': 'gzip, deflate, br' } });
    expect(sse.response.status).toBe(200);
    expect(sse.response.headers.get('content-type')).toMatch(/^text\/event-stream\b/);
    expect(sse.response.headers.get('cache-control')).toMatch(/\bno-cache\b/);
    expect(sse.response.headers.get('x-accel-buffering')).toBe('no');
    expect(sse.response.headers.get('content-encoding') ?? 'identity').toBe('identity');
    await sse.hello();
  });

  it('§7.2 sends the hello batch as the first event, with retry: set to hello.retry and no id line', async () => {
    const h = await harnesses.start({ retry: 1234 });
    const sse = await openSse(h);
    const hello = await sse.next('hello');
    expect(hello.index).toBe(0);
    expect(hello.batch).toBe(0);
    expect(hello.frame.retry).toBe(1234);
    const event = sse.eventOf(hello.batch);
    expect(event.retry).toBe('1234');
    expect(event.id).toBeUndefined();
  });

  it('§7.2 gives every event that carries messages an id: line set to the id of its last message', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    await sse.hello();
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => h.server.broadcast(i)));
    await sse.take('msg', 20);
    const batches = new Set(sse.messages().map((r) => r.batch));
    for (const batch of batches) {
      const inBatch = sse.messages().filter((r) => r.batch === batch);
      expect(sse.eventOf(batch).id).toBe(inBatch[inBatch.length - 1]!.frame.id);
    }
    expect(sse.messages().map((r) => r.frame.id)).toEqual(ids);
  });

  it('§7.2 sends control-only events (hello, hb) without an id line', async () => {
    const h = await harnesses.start({ heartbeatInterval: 100 });
    const sse = await openSse(h);
    await sse.hello();
    await sse.take('hb', 2, 3_000);
    for (const received of sse.frames) {
      const event = sse.eventOf(received.batch);
      const carriesMessages = sse.frames.some((r) => r.batch === received.batch && r.frame.t === 'msg');
      if (!carriesMessages) expect(event.id, JSON.stringify(event)).toBeUndefined();
    }
  });

  it('§7.2 carries one batch per event on data lines, whatever CR, LF or U+2028 the data holds', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    await sse.hello();
    const tricky = 'line 1\nline 2\r\nline 3\rend\u2028\u2029';
    await h.server.broadcast(tricky, { event: 'multi' });
    const received = await sse.next('msg');
    expect(received.frame).toMatchObject({ e: 'multi', d: tricky });
  });

  it('§7.2 carries several messages sent in one turn as one event, whatever characters they hold, with the id of the last', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    await sse.hello();
    const texts = MIXED_TEXTS;
    // No await between the sends: the server queues them in one turn and writes them as one batch.
    const ids = await Promise.all(texts.map((text) => h.server.broadcast(text)));
    const received = await sse.take('msg', texts.length);
    expect(received.map((r) => r.frame)).toEqual(texts.map((text, i) => ({ t: 'msg', id: ids[i], d: text })));
    expect(new Set(received.map((r) => r.batch)).size).toBe(1);
    expect(sse.eventOf(received[0]!.batch).id).toBe(ids[ids.length - 1]);
  });

  it('§7.2 resumes from the last query parameter when there is no Last-Event-ID header', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const ids = [await h.server.broadcast('a'), await h.server.broadcast('b')];
    const sse = await openSse(h, { sid: hello.sid, last: hello.cursor });
    expect(await sse.hello()).toMatchObject({ resumed: true, cursor: hello.cursor });
    const received = await sse.take('msg', 2);
    expect(received.map((r) => r.frame.id)).toEqual(ids);
  });

  it('§7.2 resumes from the Last-Event-ID header, which wins over the last parameter', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const [first, second, third] = [await h.server.broadcast('a'), await h.server.broadcast('b'), await h.server.broadcast('c')];
    const sse = await openSse(h, { sid: hello.sid, last: hello.cursor, lastEventId: first });
    expect(await sse.hello()).toMatchObject({ resumed: true, cursor: first });
    const received = await sse.take('msg', 2);
    expect(received.map((r) => r.frame.id)).toEqual([second, third]);
  });

  it('§7.2 the first event of a connection with a gap carries the hello and the gap together', async () => {
    const h = await harnesses.start({ store: new MemoryStore({ epoch: 'k2' }) });
    const sse = await openSse(h, { sid: 'G'.repeat(22), last: 'zz-4' });
    const hello = await sse.next('hello');
    const gap = await sse.next('gap');
    expect(gap.batch).toBe(hello.batch);
    expect(gap.frame).toEqual({ t: 'gap', reason: 'unknown-epoch', after: 'zz-4', cursor: hello.frame.cursor });
  });

  it('§7.2 sends binary data as standard base64 with padding in b', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    await sse.hello();
    await h.server.broadcast(new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0xfb]));
    const received = await sse.next('msg');
    expect(received.frame.b).toBe('3q2+7/s=');
    expect('d' in received.frame).toBe(false);
  });

  it('§7.2 a newer connection of the session ends the older stream with SUPERSEDED', async () => {
    const h = await harnesses.start();
    const older = await openSse(h);
    const hello = await older.hello();
    const newer = await openSse(h, { sid: hello.sid, last: hello.cursor });
    expect((await newer.hello()).resumed).toBe(true);
    await older.finished();
    expect(older.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'SUPERSEDED' });
  });
});

describe('§3 connecting over SSE', () => {
  it('§3.1.refuse §7.2.refuse refuses GET P/sse without v with one event carrying an UNSUPPORTED_VERSION error frame, then ends the response', async () => {
    const h = await harnesses.start();
    await expectStreamRefusal(h, { v: null }, 'UNSUPPORTED_VERSION');
    expect(h.server.sessions.size).toBe(0);
  });

  it('§3.1 answers v=3,1 over SSE with hello.v 1', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h, { v: '3,1' });
    expect((await sse.hello()).v).toBe(1);
  });

  it('§3.2.origin §7.2.refuse refuses GET P/sse from a disallowed Origin with a FORBIDDEN error event, creating no session', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'] });
    const refused = await expectStreamRefusal(h, { origin: 'https://evil.example' }, 'FORBIDDEN');
    // Readable cross-origin, so a browser's EventSource sees the refusal (§7.2).
    expect(refused.response.headers.get('access-control-allow-origin')).toBe('https://evil.example');
    expect(h.server.sessions.size).toBe(0);
    const allowed = await openSse(h, { origin: 'https://app.example' });
    expect((await allowed.hello()).resumed).toBe(false);
  });
});

describe('§7.3 HTTP upstream: POST P/send', () => {
  it('§7.3.answer answers 200 with the ack of the batch, and answers its ping with a pong on the session\'s stream', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(
      h.httpBase,
      [
        { t: 'msg', s: 1, d: 'one' },
        { t: 'ping', n: 42 },
        { t: 'msg', s: 2, d: { two: 2 } },
      ],
      { sid: hello.sid },
    );
    expect(framesOf(reply, 'POST /send')).toEqual(ackOnly(2));
    expect((await sse.next('pong')).frame).toEqual({ t: 'pong', n: 42 });
    expect(h.processedFor(hello.sid)).toEqual(['one', { two: 2 }]);
  });

  it('§7.3.answer answers a batch without messages (a lone ping) with an ack too, and its pong down the stream', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    expect(framesOf(await postSend(h.httpBase, [{ t: 'ping', n: 5 }], { sid: hello.sid }))).toEqual(ackOnly(0));
    expect((await sse.next('pong')).frame).toEqual({ t: 'pong', n: 5 });
  });

  it('§7.3 puts an ack of a batch on the stream after the frames its processing wrote there, and none when it wrote nothing', async () => {
    const h = await harnesses.start();
    h.onProcessed = (message, session) => {
      if (message.data === 'echo me') void session.send({ echo: message.data });
    };
    const sse = await openSse(h);
    const hello = await sse.hello();
    expect(framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'echo me' }], { sid: hello.sid }))).toEqual(ackOnly(1));
    const echo = await sse.next('msg');
    const ack = await sse.next('ack');
    expect(echo.frame).toMatchObject({ d: { echo: 'echo me' } });
    expect(ack.frame).toEqual({ t: 'ack', s: 1 });
    expect([ack.batch, ack.index]).toEqual([echo.batch, echo.index + 1]);
    // A batch that wrote nothing to the stream adds nothing to it: the next frame there is a broadcast's.
    expect(framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 2, d: 'quiet' }], { sid: hello.sid }))).toEqual(ackOnly(2));
    const id = await h.server.broadcast('after');
    await sse.next('msg', (frame) => frame.id === id);
    expect(sse.frames.map(({ frame }) => frame.t)).toEqual(['hello', 'msg', 'ack', 'msg']);
  });

  it.each([
    ['without Content-Type', { 'X-Unbroken': '1' }],
    ['with Content-Type text/plain', { 'Content-Type': 'text/plain', 'X-Unbroken': '1' }],
    ['with a form Content-Type', { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Unbroken': '1' }],
    ['without X-Unbroken', { 'Content-Type': 'application/json' }],
    ['with X-Unbroken: 0', { 'Content-Type': 'application/json', 'X-Unbroken': '0' }],
  ])('§7.3.headers refuses a POST %s with 403 FORBIDDEN and processes nothing', async (_name, headers) => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'forged' }], { sid: hello.sid, headers });
    expectErrorAnswer(reply, 'FORBIDDEN');
    expect(h.processed).toEqual([]);
  });

  it('§7.3 accepts Content-Type application/json with a charset parameter', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, [{ t: 'ping', n: 1 }], {
      sid: hello.sid,
      headers: { ...UPSTREAM_HEADERS, 'Content-Type': 'application/json; charset=utf-8' },
    });
    expect(framesOf(reply)).toEqual(ackOnly(0));
    expect((await sse.next('pong')).frame).toEqual({ t: 'pong', n: 1 });
  });

  it('§7.3 refuses an unknown sid with 404 UNKNOWN_SESSION', async () => {
    const h = await harnesses.start();
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'lost' }], { sid: 'U'.repeat(22) });
    expectErrorAnswer(reply, 'UNKNOWN_SESSION');
    expect(h.processed).toEqual([]);
    expect(h.server.sessions.has('U'.repeat(22))).toBe(false);
  });

  it('§3.1 refuses a POST without v with 426 UNSUPPORTED_VERSION', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x' }], { sid: hello.sid, v: null });
    expectErrorAnswer(reply, 'UNSUPPORTED_VERSION');
    expect(h.processed).toEqual([]);
  });

  it('§3.2 refuses a POST from a disallowed Origin with 403 FORBIDDEN', async () => {
    const h = await harnesses.start({ allowedOrigins: ['https://app.example'] });
    const sse = await openSse(h, { origin: 'https://app.example' });
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x' }], { sid: hello.sid, origin: 'https://evil.example' });
    expectErrorAnswer(reply, 'FORBIDDEN');
    expect(h.processed).toEqual([]);
  });

  it.each([
    ['text that is not JSON', '[{"t":'],
    ['a JSON object', '{"t":"ping","n":1}'],
    ['an empty array', '[]'],
    ['an unknown t', '[{"t":"nope"}]'],
    ['a msg with a string s', '[{"t":"msg","s":"1","d":1}]'],
    ['a valid msg then an invalid frame', '[{"t":"msg","s":1,"d":"x"},{"t":"ping"}]'],
    // Not JSON text (RFC 8259 §8.1): read leniently, the bad bytes would reach the application as U+FFFD.
    ['bytes that are not UTF-8', Uint8Array.from([...Buffer.from('[{"t":"msg","s":1,"d":"a'), 0xff, 0xc3, ...Buffer.from('b"}]')])],
  ] as [string, string | Uint8Array][])('§5.invalid-batch §5.stay-up answers a POST body with %s with 400 PROTOCOL_ERROR, processes none of it, and keeps serving', async (_name, body) => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, body, { sid: hello.sid });
    expectErrorAnswer(reply, 'PROTOCOL_ERROR');
    expect(h.processed).toEqual([]);
    const next = await postSend(h.httpBase, [{ t: 'ping', n: 9 }], { sid: hello.sid });
    expect(framesOf(next)).toEqual(ackOnly(0));
    expect((await sse.next('pong')).frame).toEqual({ t: 'pong', n: 9 });
  });

  it('§5 bye over POST ends the session: later POSTs meet 404 and a new stream starts afresh', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }, { t: 'bye' }], { sid: hello.sid }));
    expect(h.ended).toContain(hello.sid);
    await sse.finished();
    expectErrorAnswer(await postSend(h.httpBase, [{ t: 'msg', s: 2, d: 'two' }], { sid: hello.sid }), 'UNKNOWN_SESSION');
    const again = await openSse(h, { sid: hello.sid, last: hello.cursor });
    expect(await again.hello()).toMatchObject({ sid: hello.sid, resumed: false, ack: 0 });
  });

  it('§8.dedup acks a resent message over POST without processing it again, and refuses a hole with 400', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    const again = framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    expect(again).toContainEqual({ t: 'ack', s: 1 });
    expect(h.processedFor(hello.sid)).toEqual(['one']);
    const hole = await postSend(h.httpBase, [{ t: 'msg', s: 3, d: 'three' }], { sid: hello.sid });
    expectErrorAnswer(hole, 'PROTOCOL_ERROR');
    expect(h.processedFor(hello.sid)).toEqual(['one']);
  });

  it('§12.server-size answers a POST body larger than hello.max with 413 MESSAGE_TOO_LARGE and processes none of it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const sse = await openSse(h);
    const hello = await sse.hello();
    expect(hello.max).toBe(1024);
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x'.repeat(2048) }], { sid: hello.sid });
    expectErrorAnswer(reply, 'MESSAGE_TOO_LARGE');
    expect(h.processed).toEqual([]);
  });

  it('§4.3 hands base64 b from a POST to the application as bytes', async () => {
    const h = await harnesses.start();
    const sse = await openSse(h);
    const hello = await sse.hello();
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, b: 'AQID' }], { sid: hello.sid }));
    const [data] = h.processedFor(hello.sid);
    expect(data).toBeInstanceOf(Uint8Array);
    expect([...(data as Uint8Array)]).toEqual([1, 2, 3]);
  });
});

describe('§3.3, §12 over SSE', () => {
  it('§3.3.supersede a newer SSE connection of a session supersedes its WebSocket connection with 4409', async () => {
    const h = await harnesses.start();
    const ws = await h.connect();
    const hello = await ws.hello();
    const sse = await openSse(h, { sid: hello.sid, last: hello.cursor });
    expect(await sse.hello()).toMatchObject({ sid: hello.sid, resumed: true });
    const close = await ws.closed();
    expect(ws.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'SUPERSEDED' });
    expect(close.code).toBe(4409);
    expect(h.server.sessions.get(hello.sid)?.transport).toBe('sse');
  });

  it('§12 answers a chunked POST body (no Content-Length) larger than hello.max with 413 and processes none of it', async () => {
    const h = await harnesses.start({ maxMessageSize: 1024 });
    const sse = await openSse(h);
    const hello = await sse.hello();
    const reply = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'x'.repeat(4096) }], { sid: hello.sid, chunked: true });
    expectErrorAnswer(reply, 'MESSAGE_TOO_LARGE');
    expect(h.processed).toEqual([]);
  });

  it('§12.buffer bounds what it buffers for an SSE client that does not read: ends the stream with BACKPRESSURE, and the store replays what it missed', async () => {
    // The response body is not read, so fetch stops reading the socket once its own small buffer
    // is full; the kernel buffers fill next, then the server's response buffer grows. The test
    // broadcasts (awaiting each) until the server drops the stream, with a cap far above what the
    // bound plus kernel buffers can hold.
    const h = await harnesses.start({ maxBufferedBytes: 256 * 1024, heartbeatInterval: 1_000 });
    const sse = await openSse(h, { paused: true });
    await waitUntil('the session to connect', () => h.server.sessions.size === 1);
    const [sid] = [...h.server.sessions.keys()];
    const connected = (): boolean => h.server.sessions.get(sid!)?.connected === true;
    const chunk = 'y'.repeat(32 * 1024);
    const ids: string[] = [];
    while (connected() && ids.length * chunk.length < 64 * 1024 * 1024) {
      ids.push(await h.server.broadcast(`${ids.length}:${chunk}`));
      if (ids.length % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(connected(), `still connected after ${ids.length} messages of 32 KiB`).toBe(false);
    sse.startReading();
    const hello = await sse.hello();
    await sse.finished(20_000);
    expect(sse.frames.at(-1)?.frame).toMatchObject({ t: 'error', code: 'BACKPRESSURE' });
    const again = await openSse(h, { sid: hello.sid, last: hello.cursor });
    expect((await again.hello()).resumed).toBe(true);
    await again.next('msg', (msg) => msg.id === ids[ids.length - 1], 20_000);
    expect(again.messages().map((r) => r.frame.id)).toEqual(ids);
  }, 60_000);

  it('§12.buffer cuts the stream of a client that never reads again once its close grace passed: it holds no connection and no buffered byte', async () => {
    const h = await harnesses.start({ maxBufferedBytes: 256 * 1024, heartbeatInterval: 1_000 });
    await openSse(h, { paused: true });
    await waitUntil('the session to connect', () => h.server.sessions.size === 1);
    const [session] = [...h.server.sessions.values()];
    const chunk = 'z'.repeat(32 * 1024);
    for (let sent = 0; session!.connected && sent < 2_048; sent++) {
      await h.server.broadcast(chunk);
      if (sent % 8 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(session!.connected).toBe(false);
    // Cut with BACKPRESSURE, the stream still held what it had buffered for the reader.
    await waitUntil('the server to let the stream go', () => h.server.stats().connections === 0, 12_000);
    expect(h.server.stats()).toMatchObject({ connections: 0, bufferedBytes: 0 });
  }, 30_000);
});

describe('§6, §10, §11 over SSE', () => {
  it('§6.3 replays over SSE every message after last, then the live stream', async () => {
    const h = await harnesses.start();
    const hello = await droppedSession(h);
    const missed = [await h.server.broadcast('m1'), await h.server.broadcast('m2')];
    const sse = await openSse(h, { sid: hello.sid, last: hello.cursor });
    await sse.hello();
    await sse.take('msg', 2);
    const live = await h.server.broadcast('live');
    await sse.next('msg', (msg) => msg.id === live);
    expect(sse.messages().map((r) => r.frame.id)).toEqual([...missed, live]);
  });

  it('§11.server-hb sends an hb frame on an idle SSE stream at least every hb ms', async () => {
    const hb = 150;
    const h = await harnesses.start({ heartbeatInterval: hb });
    const sse = await openSse(h);
    await sse.hello();
    await sse.take('hb', 3, 20 * hb);
    const times = sse.frames.map((r) => r.at);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(hb + 100);
  });

  it('§11.server-dead considers an SSE stream dead when a write fails, and keeps its session', async () => {
    const h = await harnesses.start({ heartbeatInterval: 100 });
    const sse = await openSse(h);
    const hello = await sse.hello();
    sse.close();
    await waitUntil('the session to show no connection', () => h.server.sessions.get(hello.sid)?.connected === false);
    expect(h.ended).toEqual([]);
  });

  it('§11.server-dead considers an SSE stream dead when its peer vanished without closing (a reset), and keeps its session', async () => {
    const h = await harnesses.start({ heartbeatInterval: 5_000 });
    const ticket = await ticketFor(h.httpBase);
    const socket = net.connect(h.port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    const hello = new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('utf8');
        if (received.includes('"t":"hello"')) resolve();
      });
    });
    socket.write(`GET /realtime/sse?v=1&ticket=${ticket} HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nAccept: text/event-stream\r\n\r\n`);
    await within('the hello', hello);
    const [session] = [...h.server.sessions.values()];
    expect(session!.connected).toBe(true);
    // No FIN: an abortive close, as a peer whose host went away answers the next segment.
    socket.resetAndDestroy();
    await h.server.broadcast('written to a stream whose peer is gone');
    await waitUntil('the session to show no connection', () => session!.connected === false);
    expect(h.ended).toEqual([]);
    expect(h.server.stats().connections).toBe(0);
  });

  it('§10.2.notice on shutdown sends a reconnect frame with ms in [0, jitter) and ends the response', async () => {
    const jitter = 400;
    const h = await harnesses.start({ shutdownJitter: jitter, random: () => 0.5 });
    const sse = await openSse(h);
    const hello = await sse.hello();
    framesOf(await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'one' }], { sid: hello.sid }));
    const closing = h.server.close();
    const reconnect = await sse.next('reconnect');
    expect(reconnect.frame.ms).toBeGreaterThanOrEqual(0);
    expect(reconnect.frame.ms).toBeLessThan(jitter);
    await sse.finished();
    await within('server.close() to settle', closing);
  });

  it('§10.2 refuses an upstream request after shutdown without processing it', async () => {
    const h = await harnesses.start({ shutdownJitter: 10 });
    const sse = await openSse(h);
    const hello = await sse.hello();
    await h.server.close();
    await sse.finished();
    const reply: HttpAnswer = await postSend(h.httpBase, [{ t: 'msg', s: 1, d: 'late' }], { sid: hello.sid }).catch(
      (error: unknown): HttpAnswer => ({
        status: 0,
        headers: new Headers(),
        text: String(error),
        frames: undefined,
        problem: 'no answer',
      }),
    );
    expect(reply.status).not.toBe(200);
    expect(h.processed).toEqual([]);
  });
});

describe('§10.2 a closed server over SSE', () => {
  it('§10.2.answer-after-close §7.2.refuse answers GET P/sse after close with one SERVER_RESTART error event, then ends the response', async () => {
    const h = await harnesses.start();
    await h.server.close();
    await expectStreamRefusal(h, {}, 'SERVER_RESTART');
  });
});
