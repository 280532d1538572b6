import { beforeEach, describe, expect, it } from 'vitest';
import type { Transport } from '../../src/client/transport.js';
import { availableTransports } from '../../src/client/transport-selector.js';
import { longPolling, longPollingTransport } from '../../src/client/transports/long-polling.js';
import { CONNECTION_HEADER, CloseCode, encodeBatch } from '../../src/protocol/index.js';
import { CONTEXT, FakeFetch, Recorder, TICKET, hello, settle } from './client-http-fakes.js';

describe('long-polling transport (PROTOCOL.md §7.4)', () => {
  let net: FakeFetch;
  let rec: Recorder;
  beforeEach(() => {
    net = new FakeFetch();
    rec = new Recorder();
    rec.followCursor();
  });

  const start = (): Transport => longPolling(net.fetch)(rec.url, rec.handlers, CONTEXT);
  const polls = (): URL[] => net.to('/poll').map((request) => request.url);
  const connectionIds = (): string[] => net.to('/poll').map((request) => (request.init.headers as Record<string, string>)[CONNECTION_HEADER]!);

  /** A transport whose first poll was answered with a hello; its second poll is in flight. */
  const opened = async (): Promise<Transport> => {
    const transport = start();
    net.last('/poll').frames(hello({ sid: 'session-abcdefghijkl', cursor: 'e1-0' }));
    await settle();
    return transport;
  };

  it('is available with fetch', () => {
    expect(availableTransports([longPollingTransport], { fetch: net.fetch }).map((t) => t.name)).toEqual(['long-polling']);
    expect(availableTransports([longPollingTransport], {})).toEqual([]);
  });

  it('polls /poll at once with the ticket and the query of the moment, its connection id in a header, called as a plain function, uncached (§13.5.no-secret-in-url)', () => {
    rec.sid = 'session-abcdefghijkl';
    rec.cursor = 'e1-3';
    const transport = start();
    expect(polls()).toHaveLength(1);
    expect(polls()[0]!.pathname).toBe('/realtime/poll');
    expect(Object.fromEntries(polls()[0]!.searchParams)).toEqual({ v: '1', ticket: TICKET, last: 'e1-3' });
    expect(connectionIds()[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(net.last('/poll').init.method).toBeUndefined();
    expect(net.last('/poll').init.cache).toBe('no-store');
    expect(transport.binary).toBe(false);
    transport.close(CloseCode.Reconnecting);
  });

  it('sends one connection id on every poll of a transport, and a new one for a new transport, always in the header (§13.5.no-secret-in-url)', async () => {
    const first = await opened();
    const ids = connectionIds();
    first.close(CloseCode.Reconnecting);
    const second = start();
    const next = connectionIds().at(-1);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(1);
    expect(next).not.toBe(ids[0]);
    second.close(CloseCode.Reconnecting);
  });

  it('reports onOpen when the first answer arrives with 200, before its frames, and only once', async () => {
    const transport = start();
    expect(rec.log).toEqual([]);
    net.last('/poll').frames(hello(), { t: 'msg', id: 'e1-1', d: 1 });
    await settle();
    net.last('/poll').frames({ t: 'hb' });
    await settle();
    expect(rec.log).toEqual(['open', 'frames hello,msg', 'frames hb']);
    transport.close(CloseCode.Reconnecting);
  });

  it('keeps exactly one poll in flight, and starts the next after onFrames with the cursor it left (§7.4.one-poll, §6.3.present)', async () => {
    const inFlightDuringFrames: number[] = [];
    const follow = rec.afterFrames;
    rec.afterFrames = (frames) => {
      follow(frames);
      inFlightDuringFrames.push(net.to('/poll').length);
    };
    const transport = await opened();
    expect(polls()).toHaveLength(2);
    expect(polls()[1]!.searchParams.get('last')).toBe('e1-0');
    // Only the first poll carries the ticket: it is used once (§3.4).
    expect(polls()[1]!.searchParams.get('ticket')).toBeNull();
    transport.send(encodeBatch([{ t: 'ping', n: 1 }]));
    net.last('/send').frames({ t: 'ack', s: 0 });
    await settle();
    expect(polls()).toHaveLength(2);
    net.last('/poll').frames({ t: 'msg', id: 'e1-1', d: 1 }, { t: 'msg', id: 'e1-2', d: 2 });
    await settle();
    expect(polls()).toHaveLength(3);
    expect(polls()[2]!.searchParams.get('last')).toBe('e1-2');
    net.last('/poll').frames({ t: 'hb' });
    await settle();
    expect(polls()[3]!.searchParams.get('last')).toBe('e1-2');
    // Each answer was handed over while its own poll was the last one made: none overlapped. (The
    // POST's answer went to onReply, not onFrames: it is not the stream, §7.3.)
    expect(inFlightDuringFrames).toEqual([1, 2, 3]);
    transport.close(CloseCode.Reconnecting);
  });

  it('reports the code of a refused poll from its error body, and polls no more', async () => {
    await opened();
    net.last('/poll').answer(409, '{"code":"SUPERSEDED","message":"a newer poll of this session replaced this one"}');
    await settle();
    expect(rec.log.at(-1)).toBe(`close ${CloseCode.Superseded} SUPERSEDED`);
    expect(polls()).toHaveLength(2);
  });

  it('reports a first poll refused with 426 as UNSUPPORTED_VERSION, without onOpen', async () => {
    start();
    net.last('/poll').answer(426, '{"code":"UNSUPPORTED_VERSION","message":"expects v to name one of 1"}');
    await settle();
    expect(rec.log).toEqual([`close ${CloseCode.UnsupportedVersion} UNSUPPORTED_VERSION`]);
  });

  it('reports a poll that fails on the network as a transport error', async () => {
    await opened();
    net.last('/poll').fail();
    await settle();
    expect(rec.log.at(-1)).toBe('close 1006 TRANSPORT_ERROR');
    expect(polls()).toHaveLength(2);
  });

  it('rejects a malformed answer whole with PROTOCOL_ERROR, and polls no more', async () => {
    await opened();
    net.last('/poll').answer(200, '[{"t":"msg","id":"e1-1","d":1},{"t":"msg","id":"e1-2"}]');
    await settle();
    expect(rec.log).toEqual(['open', 'frames hello', `close ${CloseCode.ProtocolError} PROTOCOL_ERROR`]);
    expect(rec.cursor).toBe('e1-0');
    expect(polls()).toHaveLength(2);
  });

  it('treats a hello on a later poll as a replaced link: hands nothing over and reports TRANSPORT_ERROR (§7.4.no-repeat)', async () => {
    await opened();
    net.last('/poll').frames(hello({ sid: 'session-abcdefghijkl', resumed: true, cursor: 'e1-0' }), { t: 'msg', id: 'e1-1', d: 1 });
    await settle();
    expect(rec.log).toEqual(['open', 'frames hello', 'close 1006 TRANSPORT_ERROR']);
    expect(polls()).toHaveLength(2);
  });

  it('gives every poll and POST a signal of its own, so that no signal gathers a listener per request', async () => {
    const transport = await opened();
    for (let n = 1; n <= 3; n++) {
      net.last('/poll').frames({ t: 'msg', id: `e1-${n}`, d: n });
      transport.send(encodeBatch([{ t: 'msg', s: n, d: n }]));
      await settle();
      net.last('/send').frames({ t: 'ack', s: n });
      await settle();
    }
    const signals = net.requests.filter((request) => request.url.pathname !== '/realtime/ticket').map((request) => request.init.signal);
    expect(signals.length).toBeGreaterThanOrEqual(7);
    expect(new Set(signals).size).toBe(signals.length);
    // The answered ones are not aborted by a later close(); the ones in flight are.
    transport.close(CloseCode.Reconnecting);
    await settle();
    expect(net.requests.filter((request) => request.aborted).map((request) => request.url.pathname)).toEqual(['/realtime/poll']);
  });

  it('aborts the poll and the POST in flight on close(), and reports nothing after', async () => {
    const transport = await opened();
    transport.send(encodeBatch([{ t: 'ping', n: 1 }]));
    const [poll, post] = [net.last('/poll'), net.last('/send')];
    transport.close(CloseCode.Reconnecting);
    await settle();
    expect(poll.aborted).toBe(true);
    expect(post.aborted).toBe(true);
    expect(rec.log).toEqual(['open', 'frames hello']);
    expect(net.requests).toHaveLength(3);
  });

  it('reports nothing for an answer that arrives after close(), and does not poll again', async () => {
    const transport = start();
    const poll = net.last('/poll');
    // The answer is already on its way when the core closes the link.
    poll.frames(hello());
    transport.close(CloseCode.Reconnecting);
    await settle();
    expect(rec.log).toEqual([]);
    expect(polls()).toHaveLength(1);
  });
});
