/**
 * SSE refusals (PROTOCOL.md §7.2): the server answers a refused `GET P/sse` with a `200` stream of one
 * `error` event, so the real client in Node reads the reason and ends at once, instead of taking the
 * refusal for a network failure and trying long polling next.
 *
 * Every request the client makes goes through one fetch (the EventSource's and the POSTs alike),
 * which adds the page's Origin and records the path; the server records what reached it. A request
 * is recorded when it is made, so "no request to /poll" needs no waiting.
 */
import type http from 'node:http';
import { EventSource, type EventSourceInit } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Client, type ClientOptions, type ClosedEvent } from '../../src/client/index.js';
import { deferred } from '../helpers/signals.js';
import { startServer, type StartServerOptions } from '../helpers/start-server.js';
import { nodeEnvironment, type StartedServer } from './fixture.js';

const ALLOWED_ORIGIN = 'https://app.example';

/** `METHOD /path` of a request, without its query. */
function requestLine(method: string | undefined, url: string | URL): string {
  return `${method ?? 'GET'} ${new URL(url, 'http://127.0.0.1').pathname}`;
}

/** How many times each entry occurs. */
function tally(entries: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of entries) counts[entry] = (counts[entry] ?? 0) + 1;
  return counts;
}

/**
 * A browser environment at `origin`: fetch and EventSource that send `Origin: origin` on every
 * request and record each request as it starts.
 */
function pageAt(origin: string) {
  const made: string[] = [];
  const originFetch: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : input;
    made.push(requestLine(init?.method ?? (input instanceof Request ? input.method : undefined), url));
    const headers = new Headers(init?.headers);
    headers.set('Origin', origin);
    return fetch(input, { ...init, headers });
  };
  // The eventsource package takes headers only through its `fetch` option; the client constructs
  // EventSource with the URL alone, as a browser's.
  class OriginEventSource extends EventSource {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(url, { ...init, fetch: originFetch });
    }
  }
  const environment = {
    ...nodeEnvironment,
    EventSource: OriginEventSource as unknown as ClientOptions['EventSource'],
    fetch: originFetch,
  } satisfies ClientOptions;
  return { environment, made };
}

describe('SSE refusals reaching the real client (§7.2)', () => {
  let server: StartedServer | undefined;
  let client: Client | undefined;

  afterEach(async () => {
    client?.close();
    await server?.close();
    server = client = undefined;
  });

  /**
   * Starts the server; `rewrite` runs first on every request, as a proxy in front of it would. What
   * reaches the server is recorded after the rewrite.
   */
  async function start(options: StartServerOptions, rewrite: (request: http.IncomingMessage) => void = () => {}) {
    server = await startServer(options);
    const reached: string[] = [];
    const origins = new Set<string | undefined>();
    let connections = 0;
    server.http.prependListener('request', (request: http.IncomingMessage) => {
      rewrite(request);
      reached.push(requestLine(request.method, request.url ?? '/'));
      origins.add(request.headers.origin);
    });
    server.server.on('connection', () => connections++);
    return { reached, origins, connections: () => connections, sessions: () => server!.server.sessions.size };
  }

  /** Connects a client at `origin` over SSE then long polling, recording its `close` and `transport` events. */
  function connectFrom(origin: string) {
    const page = pageAt(origin);
    client = connect(server!.baseUrl, { ...page.environment, transports: ['sse', 'long-polling'], storage: null });
    const closed = deferred<ClosedEvent>();
    client.on('close', (event) => closed.resolve(event));
    const transports: string[] = [];
    client.on('transport', ({ transport }) => transports.push(transport));
    return { closed: closed.promise, made: page.made, transports };
  }

  /** A proxy in front of the server that changes only the event-stream request, after its ticket (§3.4) was issued. */
  const onEventStream = (change: (request: http.IncomingMessage, url: URL) => void) => (request: http.IncomingMessage) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (url.pathname.endsWith('/sse')) change(request, url);
  };

  it('§7.2.refuse over SSE, a refused Origin ends the client with FORBIDDEN without trying long polling', async () => {
    const observed = await start(
      { allowedOrigins: [ALLOWED_ORIGIN] },
      onEventStream((request) => {
        request.headers.origin = 'https://evil.example';
      }),
    );
    const page = connectFrom(ALLOWED_ORIGIN);

    const { error } = await page.closed;

    expect(error?.code).toBe('FORBIDDEN');
    expect(tally(page.made)).toEqual({ 'POST /realtime/ticket': 1, 'GET /realtime/sse': 1 });
    expect(tally(observed.reached)).toEqual({ 'POST /realtime/ticket': 1, 'GET /realtime/sse': 1 });
    expect(page.transports).toEqual([]);
    expect(client?.state).toBe('closed');
    // Nothing on the server saw a client: the refusal came before any session (§3.2).
    expect(observed.connections()).toBe(0);
    expect(observed.sessions()).toBe(0);
  });

  it('§7.2.refuse over SSE, an unsupported version ends the client with UNSUPPORTED_VERSION without trying long polling', async () => {
    // A proxy (or an older server) that speaks no version of the client's: the stream's `v` becomes 99.
    const observed = await start(
      { allowedOrigins: [ALLOWED_ORIGIN] },
      onEventStream((request, url) => {
        url.searchParams.set('v', '99');
        request.url = url.pathname + url.search;
      }),
    );
    const page = connectFrom(ALLOWED_ORIGIN);

    const { error } = await page.closed;

    expect(error?.code).toBe('UNSUPPORTED_VERSION');
    expect(tally(page.made)).toEqual({ 'POST /realtime/ticket': 1, 'GET /realtime/sse': 1 });
    expect(tally(observed.reached)).toEqual({ 'POST /realtime/ticket': 1, 'GET /realtime/sse': 1 });
    expect(page.transports).toEqual([]);
    expect(observed.connections()).toBe(0);
    expect(observed.sessions()).toBe(0);
  });

  it('§3.2 over SSE, the same page at an allowed Origin opens its session and posts upstream with that Origin', async () => {
    const observed = await start({ allowedOrigins: [ALLOWED_ORIGIN] });
    const page = connectFrom(ALLOWED_ORIGIN);
    const received = deferred<unknown>();
    server!.server.on('message', (data) => received.resolve(data));

    await client!.send('hello');

    expect(await received.promise).toBe('hello');
    expect(page.transports).toEqual(['sse']);
    expect(observed.reached).toContain('POST /realtime/send');
    expect(observed.reached).not.toContain('GET /realtime/poll');
    expect([...observed.origins]).toEqual([ALLOWED_ORIGIN]);
  });
});
