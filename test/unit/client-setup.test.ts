import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { connect, isUnbrokenError, webSocketTransport, type Client, type WebSocketLike } from '../../src/client/index.js';
import { endpointUrl, resolveOptions } from '../../src/client/options.js';
import { CloseCode, Endpoint } from '../../src/protocol/index.js';
import { ENDPOINT, MockServer, record, settle } from './client-harness.js';

/** A WebSocket that records the URLs it is opened with and never connects. */
class UrlRecorder implements WebSocketLike {
  static urls: string[] = [];
  binaryType = 'blob';
  readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  constructor(url: string) {
    UrlRecorder.urls.push(url);
  }
  send(): void {}
  close(): void {}
}

describe('client setup', () => {
  const clients: Client[] = [];
  const make = (...args: Parameters<typeof connect>): Client => {
    const client = connect(...args);
    clients.push(client);
    return client;
  };

  beforeEach(() => {
    vi.useFakeTimers();
    UrlRecorder.urls = [];
    // Every attempt asks for its ticket first (§3.4): answered here, never on the network.
    vi.stubGlobal('fetch', new MockServer(false).fetch);
  });
  /** The URLs the WebSocket was opened with, each checked for its ticket and shown without it. */
  const withoutTicket = (): string[] =>
    UrlRecorder.urls.map((url) => {
      expect(new URL(url).searchParams.get('ticket')).toMatch(/^ticket-\d{16}$/);
      return url.replace(/&ticket=[\w-]+/, '');
    });
  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  describe('WebSocket URL derivation (PROTOCOL.md §3)', () => {
    it.each([
      ['http://example.com/realtime', 'ws://example.com/realtime/ws?v=1'],
      ['https://example.com/realtime', 'wss://example.com/realtime/ws?v=1'],
      ['https://example.com:8443/realtime/', 'wss://example.com:8443/realtime/ws?v=1'],
      ['https://example.com/realtime?token=a%20b', 'wss://example.com/realtime/ws?token=a+b&v=1'],
      ['wss://example.com/realtime', 'wss://example.com/realtime/ws?v=1'],
      ['ws://example.com/realtime', 'ws://example.com/realtime/ws?v=1'],
      // A WebSocket URL with a fragment throws in its constructor: the fragment is left out.
      ['https://example.com/realtime?room=a#top', 'wss://example.com/realtime/ws?room=a&v=1'],
    ])('derives from %s the URL %s', async (url, expected) => {
      make(url, { WebSocket: UrlRecorder });
      await settle(0);
      expect(withoutTicket()).toEqual([expected]);
    });

    it.each([
      ['/realtime', 'https://app.example/chat/page', 'wss://app.example/realtime/ws?v=1'],
      ['realtime', 'http://app.example/chat/page', 'ws://app.example/chat/realtime/ws?v=1'],
    ])('resolves the relative %s against the page location %s', async (url, href, expected) => {
      vi.stubGlobal('location', { href });
      make(url, { WebSocket: UrlRecorder });
      await settle(0);
      expect(withoutTicket()).toEqual([expected]);
    });

    it('puts the cursor on the stream requests only: upstream requests carry v alone, and a link may build their URL once (§3)', () => {
      const base = 'http://example.com/realtime?token=t';
      const query = (endpoint: string, ticket?: string) => [...new URL(endpointUrl(base, endpoint, 'cursor-7', ticket)).searchParams];
      expect(query(Endpoint.send)).toEqual([['token', 't'], ['v', '1']]);
      expect(query(Endpoint.ticket)).toEqual([['token', 't'], ['v', '1']]);
      expect(query(Endpoint.sse, 'tk')).toEqual([['token', 't'], ['v', '1'], ['ticket', 'tk'], ['last', 'cursor-7']]);
      expect(query(Endpoint.poll)).toEqual([['token', 't'], ['v', '1'], ['last', 'cursor-7']]);
    });

    it('throws a TypeError for a relative URL without a page location', () => {
      expect(() => connect('/realtime', { WebSocket: UrlRecorder })).toThrow(TypeError);
      expect(() => connect('/realtime', { WebSocket: UrlRecorder })).toThrow(/expects an http\(s\) URL, or a path in a page, got \/realtime/);
    });

    it('throws a TypeError for a URL of another scheme', () => {
      expect(() => connect('ftp://example.com/realtime', { WebSocket: UrlRecorder })).toThrow(TypeError);
    });
  });

  describe('amounts (ms, bytes, messages)', () => {
    it.each([
      ['connectTimeout', 'abc', '≥ 1, got string abc'],
      ['connectTimeout', 0, '≥ 1, got number 0'],
      ['maxMessageSize', 0, '≥ 1, got number 0'],
      ['maxMessageSize', '4096', '≥ 1, got string 4096'],
      ['reconnectDelay', Number.NaN, '≥ 0, got number NaN'],
      ['maxReconnectDelay', Number.POSITIVE_INFINITY, '≥ 0, got number Infinity'],
      ['outboxLimit', -5, '≥ 0, got number -5'],
      ['raceAfter', true, '≥ 0, got boolean true'],
      ['rememberFor', 10n, '≥ 0, got bigint 10'],
    ])('throws at once on %s: %s, naming the option and the value', (name, value, shown) => {
      expect(() => connect(ENDPOINT, { [name]: value } as unknown as Parameters<typeof connect>[1])).toThrow(new TypeError(`unbroken: expects ${name} ${shown}`));
    });

    it('takes 0 where it turns something off, and an amount given as undefined or null as its default', () => {
      const options = { transports: [webSocketTransport], raceAfter: 0, upgradeInterval: 0, connectTimeout: undefined, reconnectDelay: null };
      const resolved = resolveOptions(options as unknown as Parameters<typeof resolveOptions>[0]);
      expect(resolved).toMatchObject({ raceAfter: 0, upgradeInterval: 0, connectTimeout: 3_000, reconnectDelay: 500, maxMessageSize: 4_194_304, outboxLimit: 10_000 });
    });
  });

  describe('options given by plain JavaScript', () => {
    it('starts with every default when the options are null (plain JavaScript)', async () => {
      make(ENDPOINT, null as unknown as Parameters<typeof connect>[1]);
      vi.stubGlobal('WebSocket', UrlRecorder);
      await settle(0);
      expect(withoutTicket()).toEqual(['ws://example.test/realtime/ws?v=1']);
    });

    it.each([
      ['random', 0.5, 'number'],
      // Not the value: it may be a secret (a token given instead of a function that gives it).
      ['auth', 'eyJhbGciOi.secret', 'string'],
      ['WebSocket', {}, 'object'],
      ['fetch', true, 'boolean'],
      ['EventSource', 'EventSource', 'string'],
      ['BroadcastChannel', 1, 'number'],
    ])('throws at once on %s that is not a function: %s, naming the option and the value', (name, value, shown) => {
      expect(() => connect(ENDPOINT, { [name]: value } as unknown as Parameters<typeof connect>[1])).toThrow(new TypeError(`unbroken: expects ${name} a function, got ${shown}`));
    });
  });

  describe('a ticket request that fails', () => {
    /** The first error of a client whose ticket requests are answered `status` with `body`. */
    const firstError = async (status: number, body: string): Promise<Error> => {
      const fetch = (): Promise<Response> => Promise.resolve(new Response(body, { status }));
      const client = connect(ENDPOINT, { fetch, WebSocket: UrlRecorder, transports: ['websocket'], storage: null });
      const error = await new Promise<Error>((resolve) => client.once('error', resolve));
      client.close();
      return error;
    };

    it('says the URL may miss the endpoint when a page answers it 200 with no ticket', async () => {
      expect(await firstError(200, '<!doctype html><html><head><title>Chat</title></head></html>')).toMatchObject({
        code: 'PROTOCOL_ERROR',
        message: 'expects the ticket answer to hold a base64url ticket, got "<!doctype html><html><head><title>Chat</": is the URL the endpoint?',
      });
    });

    it('quotes no field of a JSON answer without a ticket: it may hold a session key', async () => {
      const error = await firstError(200, '{"sid":"s-aaaaaaaaaaaaaaaa","key":"secret-key-aaaaaaaa"}');
      expect(error).toMatchObject({ code: 'PROTOCOL_ERROR', message: "expects the ticket answer to hold a base64url ticket, got an object: is the URL the endpoint?" });
    });

    it('takes a bare 404 for a transport failure, not for an unknown session: no server of the protocol answers so (§13.5.bare-status)', async () => {
      expect(await firstError(404, 'Not Found')).toMatchObject({
        code: 'TRANSPORT_ERROR',
        message: "answered 404 without an error body: a proxy, or not the endpoint",
      });
      expect(await firstError(404, '{"code":"UNKNOWN_SESSION","message":"no such session"}')).toMatchObject({ code: 'UNKNOWN_SESSION', message: 'no such session' });
      // A proxy's bare 503 still counts for what it says: the client retries either way.
      expect(await firstError(503, '')).toMatchObject({ code: 'SERVER_RESTART' });
    });

    it('says why, from the cause Node\'s fetch keeps its reason in', async () => {
      const refused = Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new AggregateError([], ''), { code: 'ECONNREFUSED' }) });
      const fetch = (): Promise<Response> => Promise.reject(refused);
      const client = connect(ENDPOINT, { fetch, WebSocket: UrlRecorder, transports: ['websocket'], storage: null });
      const error = await new Promise<Error>((resolve) => client.once('error', resolve));
      client.close();
      expect(error).toMatchObject({ code: 'TRANSPORT_ERROR', message: 'the ticket request failed: TypeError: fetch failed (ECONNREFUSED)' });
    });
  });

  describe('transports option', () => {
    it('throws at once on an unknown transport name, naming the known ones', () => {
      const transports = ['websocket', 'smoke-signals'] as unknown as ['websocket'];
      expect(() => connect(ENDPOINT, { transports })).toThrow(
        new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got ["websocket","smoke-signals"]'),
      );
    });

    it('throws at once on a single name instead of a list, naming what it got', () => {
      const transports = 'websocket' as unknown as ['websocket'];
      expect(() => connect(ENDPOINT, { transports })).toThrow(
        new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got "websocket"'),
      );
    });

    it('throws at once on an empty list', () => {
      expect(() => connect(ENDPOINT, { transports: [] })).toThrow(TypeError);
    });

    it('closes with the fatal NO_TRANSPORT, saying how to fix it, when no transport can run', async () => {
      expect.assertions(4);
      vi.stubGlobal('WebSocket', undefined);
      vi.stubGlobal('EventSource', undefined);
      vi.stubGlobal('fetch', undefined);
      const client = make(ENDPOINT);
      const log = record(client);
      client.on('error', (error) => {
        expect(isUnbrokenError(error) && error.code).toBe('NO_TRANSPORT');
        expect(error.message).toMatch(/pass `ws` as the WebSocket option/);
      });
      await settle(60_000);
      expect(log).toEqual(['error NO_TRANSPORT', 'state connecting>closed NO_TRANSPORT', 'close NO_TRANSPORT']);
      expect(client.state).toBe('closed');
    });

    it('says what WebSocket alone lacks where fetch runs but no WebSocket does (Node 20 without ws)', async () => {
      vi.stubGlobal('WebSocket', undefined);
      const client = make(ENDPOINT, { transports: ['websocket'] });
      const messages: string[] = [];
      client.on('error', (error) => messages.push(`${error.code}: ${error.message}`));
      await settle(0);
      expect(messages).toEqual([
        'NO_TRANSPORT: cannot run websocket here: each needs fetch (for its ticket), websocket a WebSocket and sse an EventSource too; in Node, pass `ws` as the WebSocket option and `eventsource` (its EventSource) as EventSource',
      ]);
    });

    it('skips transports that cannot run here and closes with NO_TRANSPORT when none is left', async () => {
      vi.stubGlobal('EventSource', undefined);
      vi.stubGlobal('fetch', undefined);
      const client = make(ENDPOINT, { transports: ['sse', 'long-polling'], WebSocket: UrlRecorder });
      const log = record(client, ['error']);
      await settle(0);
      expect(log).toEqual(['error NO_TRANSPORT']);
      expect(UrlRecorder.urls).toEqual([]);
    });

    it('looks up globalThis.WebSocket when an attempt starts, not when the client is made', async () => {
      const server = new MockServer();
      try {
        const client = make(ENDPOINT);
        vi.stubGlobal('WebSocket', server.WebSocket);
        await server.accept();
        expect(client.state).toBe('open');
      } finally {
        server.stop();
      }
    });
  });

  describe('transport event', () => {
    let server: MockServer;
    beforeEach(() => {
      server = new MockServer();
    });
    afterEach(() => server.stop());

    it('is emitted with reason initial at the first hello, and not again for the same transport', async () => {
      const client = make(ENDPOINT, { WebSocket: server.WebSocket, random: () => 0 });
      const log = record(client, ['transport', 'open']);
      const peer = await server.accept();
      peer.close(CloseCode.InternalError);
      await server.accept();
      expect(log).toEqual(['transport null>websocket initial', 'open', 'open']);
    });
  });

  it('retries with TRANSPORT_ERROR when the WebSocket constructor throws', async () => {
    let calls = 0;
    class Throwing extends UrlRecorder {
      constructor(url: string) {
        super(url);
        calls++;
        throw new SyntaxError('blocked by policy');
      }
    }
    // WebSocket only: with another transport listed, the client would rightly fall back to it.
    const client = make(ENDPOINT, { WebSocket: Throwing, transports: ['websocket'], random: () => 0.5 });
    const errors: unknown[] = [];
    client.on('error', (error) => errors.push(error));
    await settle(0);
    expect(errors).toMatchObject([{ code: 'TRANSPORT_ERROR', cause: expect.any(SyntaxError) }]);
    expect(client.state).toBe('reconnecting');
    await settle(10_000);
    expect(calls).toBeGreaterThan(1);
    expect(calls).toBeLessThan(10);
  });
});
