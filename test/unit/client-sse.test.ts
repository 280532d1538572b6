import { beforeEach, describe, expect, it } from 'vitest';
import type { Transport } from '../../src/client/transport.js';
import { availableTransports } from '../../src/client/transport-selector.js';
import { sse, sseTransport } from '../../src/client/transports/sse.js';
import { CloseCode, SESSION_HEADER, UPSTREAM_HEADER, codeForClose, encodeBatch, type ClientFrame, type ErrorCode } from '../../src/protocol/index.js';
import { CONTEXT, FakeEventSource, FakeEventSourceClass, FakeFetch, Recorder, TICKET, hello, settle } from './client-http-fakes.js';

/** Client frames as the outbox writes them: one text batch. */
const batch = (...frames: ClientFrame[]): string => encodeBatch(frames);
const msg = (s: number, d: string = 'x'): ClientFrame => ({ t: 'msg', s, d });

describe('SSE transport (PROTOCOL.md §7.2)', () => {
  let net: FakeFetch;
  let rec: Recorder;
  beforeEach(() => {
    FakeEventSource.made.length = 0;
    net = new FakeFetch();
    rec = new Recorder();
  });

  const start = (): { transport: Transport; source: FakeEventSource } => {
    const transport = sse(FakeEventSourceClass, net.fetch)(rec.url, rec.handlers, CONTEXT);
    return { transport, source: FakeEventSource.latest() };
  };

  it('is available only with both EventSource and fetch', () => {
    const names = (env: Parameters<typeof availableTransports>[1]) => availableTransports([sseTransport], env).map((t) => t.name);
    expect(names({ EventSource: FakeEventSourceClass, fetch: net.fetch })).toEqual(['sse']);
    expect(names({ EventSource: FakeEventSourceClass })).toEqual([]);
    expect(names({ fetch: net.fetch })).toEqual([]);
  });

  it('opens an EventSource on /sse with the ticket and the query of the moment, no session id, and reports onOpen when it opens (§13.5.no-secret-in-url)', () => {
    rec.sid = 'session-abcdefghijkl';
    rec.cursor = 'e1-7';
    const { transport, source } = start();
    expect(source.url.pathname).toBe('/realtime/sse');
    expect(Object.fromEntries(source.url.searchParams)).toEqual({ v: '1', ticket: TICKET, last: 'e1-7' });
    expect(transport.binary).toBe(false);
    expect(rec.log).toEqual([]);
    source.open();
    expect(rec.log).toEqual(['open']);
  });

  it('hands each event to onFrames as one validated batch, with base64 data decoded to bytes', () => {
    const { source } = start();
    source.open();
    source.message(JSON.stringify([hello(), { t: 'msg', id: 'e1-1', d: 'json' }]));
    source.message(JSON.stringify([{ t: 'msg', id: 'e1-2', b: '//4=' }, { t: 'hb' }]));
    expect(rec.log).toEqual(['open', 'frames hello,msg', 'frames msg,hb']);
    expect(rec.batches[1]![0]).toEqual({ t: 'msg', id: 'e1-2', b: new Uint8Array([0xff, 0xfe]) });
  });

  it('rejects a malformed batch whole: nothing of it is handed over, the EventSource closes, PROTOCOL_ERROR', () => {
    const { source } = start();
    source.open();
    source.message('[{"t":"msg","id":"e1-1","d":"valid"},{"t":"surprise"}]');
    source.message(JSON.stringify([{ t: 'msg', id: 'e1-2', d: 'after' }]));
    expect(rec.log).toEqual(['open', `close ${CloseCode.ProtocolError} PROTOCOL_ERROR`]);
    expect(source.readyState).toBe(2);
  });

  it('closes the EventSource at its first error, so its own reconnection never runs, and reports a transport error', () => {
    const { source } = start();
    source.open();
    source.error();
    source.error();
    expect(source.readyState).toBe(2);
    expect(rec.log).toEqual(['open', 'close 1006 TRANSPORT_ERROR']);
    expect(codeForClose(rec.closes[0]!.code)).toBeUndefined();
  });

  it('reports nothing after close(), and closes the EventSource', () => {
    const { transport, source } = start();
    transport.close(CloseCode.Reconnecting);
    expect(source.readyState).toBe(2);
    source.open();
    source.message(JSON.stringify([hello()]));
    source.error();
    expect(rec.log).toEqual([]);
  });
});

describe('HTTP upstream (PROTOCOL.md §7.3)', () => {
  let net: FakeFetch;
  let rec: Recorder;
  beforeEach(() => {
    FakeEventSource.made.length = 0;
    net = new FakeFetch();
    rec = new Recorder();
    rec.followCursor();
  });

  /** An SSE transport that received its hello. */
  const opened = (fields: Parameters<typeof hello>[0] = {}): { transport: Transport; source: FakeEventSource } => {
    const transport = sse(FakeEventSourceClass, net.fetch)(rec.url, rec.handlers, CONTEXT);
    const source = FakeEventSource.latest();
    source.open();
    source.message(JSON.stringify([hello({ sid: 'session-abcdefghijkl', ...fields })]));
    return { transport, source };
  };

  it('posts one batch to /send naming its session by X-Unbroken-Session, not in the URL, and hands the answer to onReply, not onFrames (§13.5.no-secret-in-url)', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1, 'hello')));
    const post = net.last('/send');
    expect(post.init.method).toBe('POST');
    expect(post.init.headers).toEqual({
      'Content-Type': 'application/json',
      [UPSTREAM_HEADER]: '1',
      [SESSION_HEADER]: 'session-abcdefghijkl.key-of-session-000000001',
    });
    expect(post.init.cache).toBe('no-store');
    expect([...post.url.searchParams.keys()]).toEqual(['v']);
    expect(post.body).toBe('[{"t":"msg","s":1,"d":"hello"}]');
    post.frames({ t: 'ack', s: 1 });
    await settle();
    expect(rec.log.at(-1)).toBe('reply ack 1');
    expect(rec.batches).toHaveLength(1);
  });

  it('keeps one POST in flight and merges every batch written meanwhile into the next one, in order (§7.3.one-request)', async () => {
    const { transport } = opened();
    for (let s = 1; s <= 50; s++) transport.send(batch(msg(s)));
    expect(net.to('/send')).toHaveLength(1);
    net.last('/send').frames({ t: 'ack', s: 1 });
    await settle();
    expect(net.to('/send')).toHaveLength(2);
    const merged = JSON.parse(net.last('/send').body!) as ClientFrame[];
    expect(merged).toEqual(Array.from({ length: 49 }, (_, i) => msg(i + 2)));
    transport.send(batch(msg(51)));
    expect(net.to('/send')).toHaveLength(2);
    net.last('/send').frames({ t: 'ack', s: 50 });
    await settle();
    expect(net.last('/send').body).toBe(batch(msg(51)));
    expect(net.to('/send')).toHaveLength(3);
  });

  it('starts the next POST once the answer to the last one began, before its body arrived (§7.3.one-request)', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    transport.send(batch(msg(2)));
    expect(net.to('/send')).toHaveLength(1);
    const body = net.last('/send').headers();
    await settle();
    // The server answers once it processed the batch (§7.3.answer-after): the next one cannot overtake it.
    expect(net.to('/send').map((request) => request.body)).toEqual([batch(msg(1)), batch(msg(2))]);
    expect(rec.log.filter((entry) => entry.startsWith('reply'))).toEqual([]);
    transport.send(batch(msg(3)));
    expect(net.to('/send')).toHaveLength(2);
    // The second answer's body comes first: acks are cumulative, so the older one changes nothing.
    net.last('/send').frames({ t: 'ack', s: 2 });
    await settle();
    expect(net.to('/send')).toHaveLength(3);
    body({ t: 'ack', s: 1 });
    await settle();
    expect(rec.log.filter((entry) => entry.startsWith('reply'))).toEqual(['reply ack 2', 'reply ack 1']);
    expect(net.last('/send').body).toBe(batch(msg(3)));
    expect(rec.closes).toEqual([]);
  });

  it('starts the next POST when the stream acknowledged every message, before the last one was answered (§7.3.one-request)', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    transport.send(batch(msg(2)));
    expect(net.to('/send')).toHaveLength(1);
    // The core read an ack of every message it wrote on the stream: the batch in flight was processed.
    transport.settled!();
    expect(net.to('/send').map((request) => request.body)).toEqual([batch(msg(1)), batch(msg(2))]);
    // The first answer, when it comes, starts nothing more: the second POST is the one in flight.
    transport.send(batch(msg(3)));
    net.to('/send')[0]!.frames({ t: 'ack', s: 1 });
    await settle();
    expect(net.to('/send')).toHaveLength(2);
    net.last('/send').frames({ t: 'ack', s: 2 });
    await settle();
    expect(net.last('/send').body).toBe(batch(msg(3)));
    expect(rec.closes).toEqual([]);
  });

  it('holds the next POST behind one carrying a ping or auth until its answer began, whatever the stream acknowledged (§7.3.one-request)', async () => {
    const { transport } = opened();
    transport.send(encodeBatch([{ t: 'ping', n: 1 }]));
    transport.send(batch(msg(1)));
    transport.settled!();
    expect(net.to('/send')).toHaveLength(1);
    net.last('/send').headers();
    await settle();
    expect(net.to('/send')).toHaveLength(2);
    // Merged with messages, `auth` holds the request back all the same.
    transport.send(batch(msg(2)));
    transport.send(encodeBatch([{ t: 'auth' }]));
    net.last('/send').headers();
    await settle();
    expect(JSON.parse(net.last('/send').body!)).toEqual([msg(2), { t: 'auth' }]);
    transport.send(batch(msg(3)));
    transport.settled!();
    expect(net.to('/send')).toHaveLength(3);
    net.last('/send').headers();
    await settle();
    expect(net.last('/send').body).toBe(batch(msg(3)));
  });

  it('starts no further POST on an answer that is not 200: the link fails instead', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    transport.send(batch(msg(2)));
    net.last('/send').answer(503, '{"code":"SERVER_RESTART","message":"restarting"}');
    await settle();
    expect(net.to('/send')).toHaveLength(1);
    expect(rec.closes.map((close) => close.error?.code)).toEqual(['SERVER_RESTART']);
  });

  it('merges no further than hello.max bytes, counted in UTF-8 (§4.1.size)', async () => {
    // Each batch `[{"t":"msg","s":N,"d":"ééé"}]` is 32 bytes (é is two): two merge into 63, three into 94.
    const { transport } = opened({ max: 93 });
    const sizes = (): number[] => net.to('/send').map((r) => Buffer.byteLength(r.body!));
    transport.send(batch(msg(1, 'ééé')));
    for (let s = 2; s <= 6; s++) transport.send(batch(msg(s, 'ééé')));
    for (let i = 0; i < 3; i++) {
      net.last('/send').frames({ t: 'ack', s: 0 });
      await settle();
    }
    expect(sizes()).toEqual([32, 63, 63, 32]);
    expect(net.to('/send').flatMap((r) => (JSON.parse(r.body!) as Array<{ s: number }>).map((f) => f.s))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(sizes().every((size) => size <= 93)).toBe(true);
  });

  it('merges nothing before the hello, when hello.max is not known yet', async () => {
    const transport = sse(FakeEventSourceClass, net.fetch)(rec.url, rec.handlers, CONTEXT);
    transport.send(batch({ t: 'ping', n: 1 }));
    transport.send(batch({ t: 'ping', n: 2 }));
    transport.send(batch({ t: 'ping', n: 3 }));
    net.last('/send').frames({ t: 'ack', s: 0 });
    await settle();
    expect(net.to('/send').map((r) => r.body)).toEqual([batch({ t: 'ping', n: 1 }), batch({ t: 'ping', n: 2 })]);
    transport.close(CloseCode.Reconnecting);
  });

  it.each<[number, string, ErrorCode, number]>([
    [404, '{"code":"UNKNOWN_SESSION","message":"no such session"}', 'UNKNOWN_SESSION', 1006],
    [403, '{"code":"FORBIDDEN","message":"expects X-Unbroken"}', 'FORBIDDEN', CloseCode.Forbidden],
    [426, '{"code":"UNSUPPORTED_VERSION","message":"v"}', 'UNSUPPORTED_VERSION', CloseCode.UnsupportedVersion],
    [413, '{"code":"MESSAGE_TOO_LARGE","message":"too big"}', 'MESSAGE_TOO_LARGE', CloseCode.MessageTooBig],
    [409, '{"code":"SUPERSEDED","message":"newer"}', 'SUPERSEDED', CloseCode.Superseded],
    [503, '{"code":"SERVER_RESTART","message":"shutting down"}', 'SERVER_RESTART', CloseCode.ServiceRestart],
    [400, '{"code":"PROTOCOL_ERROR","message":"bad batch"}', 'PROTOCOL_ERROR', CloseCode.ProtocolError],
    [500, '{"code":"OUTBOX_FULL","message":"a code no server sends"}', 'INTERNAL_ERROR', CloseCode.InternalError],
    [503, '<html>a proxy answered</html>', 'SERVER_RESTART', CloseCode.ServiceRestart],
    [502, '<html>bad gateway</html>', 'TRANSPORT_ERROR', 1006],
  ])('reports a POST answered %i %s as %s (close code %i)', async (status, body, code, closeCode) => {
    const { transport, source } = opened();
    transport.send(batch(msg(1)));
    net.last('/send').answer(status, body);
    await settle();
    expect(rec.closes).toHaveLength(1);
    expect(rec.closes[0]!.code).toBe(closeCode);
    expect(rec.closes[0]!.error?.code).toBe(code);
    expect(source.readyState).toBe(2);
  });

  it('passes the error body message on', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    net.last('/send').answer(404, '{"code":"UNKNOWN_SESSION","message":"no such session: connect downstream first"}');
    await settle();
    expect(rec.closes[0]!.error?.message).toBe('no such session: connect downstream first');
  });

  it('reports a POST that fails on the network as TRANSPORT_ERROR, with the fetch error as cause', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    net.last('/send').fail();
    await settle();
    expect(rec.log.at(-1)).toBe('close 1006 TRANSPORT_ERROR');
    expect(rec.closes[0]!.error?.cause).toBeInstanceOf(TypeError);
  });

  it('fails with PROTOCOL_ERROR when a POST answer holds anything but acks: a pong comes down the stream (§5, §7.3)', async () => {
    const { transport } = opened();
    transport.send(batch({ t: 'ping', n: 1 }));
    net.last('/send').frames({ t: 'pong', n: 1 });
    await settle();
    expect(rec.log.slice(-1)).toEqual([`close ${CloseCode.ProtocolError} PROTOCOL_ERROR`]);
    expect(rec.batches).toHaveLength(1);
  });

  it('calls the answered callback of every batch a POST carried once the POST was answered, after onReply', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)), () => rec.log.push('answered 1'));
    transport.send(batch(msg(2)), () => rec.log.push('answered 2'));
    transport.send(batch(msg(3)), () => rec.log.push('answered 3'));
    expect(rec.log.filter((line) => line.startsWith('answered'))).toEqual([]);
    net.last('/send').frames({ t: 'ack', s: 1 });
    await settle();
    expect(rec.log.slice(-2)).toEqual(['reply ack 1', 'answered 1']);
    net.last('/send').frames({ t: 'ack', s: 3 });
    await settle();
    expect(rec.log.slice(-3)).toEqual(['reply ack 3', 'answered 2', 'answered 3']);
  });

  it('rejects a malformed POST answer whole with PROTOCOL_ERROR', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    net.last('/send').answer(200, '[{"t":"ack","s":"1"}]');
    await settle();
    expect(rec.log.slice(-1)).toEqual([`close ${CloseCode.ProtocolError} PROTOCOL_ERROR`]);
    expect(rec.batches).toHaveLength(1);
  });

  it('aborts the POST in flight on close() to reconnect, drops what was queued, and reports nothing after', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    transport.send(batch(msg(2)));
    const before = rec.log.length;
    transport.close(CloseCode.Reconnecting);
    await settle();
    expect(net.last('/send').aborted).toBe(true);
    expect(net.to('/send')).toHaveLength(1);
    transport.send(batch(msg(3)));
    expect(net.to('/send')).toHaveLength(1);
    expect(rec.log.length).toBe(before);
  });

  it('lets the bye go out on close(1000), which ends the session, without aborting the POST in flight', async () => {
    const { transport } = opened();
    transport.send(batch(msg(1)));
    transport.send(batch({ t: 'bye' }));
    transport.close(CloseCode.Normal);
    await settle();
    const [first, bye] = net.to('/send');
    expect(first!.aborted).toBe(false);
    expect(bye!.body).toBe(batch({ t: 'bye' }));
    expect(bye!.init.keepalive).toBe(true);
    first!.frames({ t: 'ack', s: 1 });
    await settle();
    expect(rec.log).toEqual(['open', 'frames hello']);
  });
});
