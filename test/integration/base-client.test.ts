/**
 * `BaseClient` over real sockets: a client given transport definitions uses those and no other —
 * the one it is given, and on a fallback only the next of its own list (PROTOCOL.md §13.3).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  BaseClient,
  connect,
  longPollingTransport,
  sseTransport,
  webSocketTransport,
  type ClientTransport,
  type TransportEvent,
} from '../../src/client/index.js';
import { deferred, when } from '../helpers/signals.js';
import { startNetworkProxy, type NetworkProxy } from '../helpers/network-proxy.js';
import { startServer } from '../helpers/start-server.js';
import { nodeEnvironment, type StartedServer } from './fixture.js';

const FAST = { connectTimeout: 1_000, reconnectDelay: 5, maxReconnectDelay: 50, minUptime: 0, storage: null };

describe('BaseClient: the transports it is given, and no other', () => {
  let server: StartedServer | undefined;
  let proxy: NetworkProxy | undefined;
  const clients: BaseClient[] = [];
  /** `METHOD /endpoint` of every request the server saw, upgrades included. */
  const requests: string[] = [];

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await proxy?.close();
    await server?.close();
    proxy = server = undefined;
    requests.length = 0;
  });

  async function start(): Promise<string> {
    server = await startServer({ retry: 5, heartbeatInterval: 1_000 });
    const record = (request: { method?: string; url?: string }) =>
      requests.push(`${request.method} ${new URL(request.url ?? '/', 'http://x').pathname.replace('/realtime', '')}`);
    server.http.on('request', record);
    server.http.on('upgrade', record);
    server.server.on('connection', (session) => void session.send('world'));
    server.server.on('message', (data, session) => void session.send({ echo: data as string }));
    proxy = await startNetworkProxy(server.port);
    proxy.setCondition('normal');
    return `http://127.0.0.1:${proxy.port}/realtime`;
  }

  function client(url: string, transports: readonly ClientTransport[]): BaseClient {
    const made = new BaseClient(url, { ...nodeEnvironment, ...FAST, transports });
    clients.push(made);
    return made;
  }

  /** Sends `hello` and resolves with the two messages the server answers with. */
  async function exchange(made: BaseClient): Promise<unknown[]> {
    const received: unknown[] = [];
    const both = when(() => received.length === 2);
    made.on('message', ({ data }) => {
      received.push(data);
      both.wake();
    });
    await made.send('hello');
    await both.promise;
    return received;
  }

  it.each([
    ['websocket', webSocketTransport, 'GET /ws'],
    ['sse', sseTransport, 'GET /sse'],
    ['long-polling', longPollingTransport, 'GET /poll'],
  ] as const)('connects, sends and receives on %s alone', async (name, transport, downstream) => {
    const made = client(await start(), [transport]);
    expect(await exchange(made)).toEqual(['world', { echo: 'hello' }]);
    expect(made.transport).toBe(name);
    // Its ticket, its downstream and (on HTTP) its POSTs: nothing of another transport.
    const others = ['GET /ws', 'GET /sse', 'GET /poll', 'GET /carrier'].filter((endpoint) => endpoint !== downstream);
    expect(requests).toContain(downstream);
    expect(requests.filter((line) => others.includes(line))).toEqual([]);
  });

  it('on WebSocket alone, tries WebSocket again when it is refused, and never another transport', async () => {
    const url = await start();
    proxy!.setCondition('ws-blocked');
    const made = client(url, [webSocketTransport]);
    const failures: string[] = [];
    const twoFailed = when(() => failures.length >= 2);
    made.on('error', (error) => {
      failures.push(error.code);
      twoFailed.wake();
    });
    await twoFailed.promise;
    expect(made.state).toBe('reconnecting');
    expect(made.transport).toBeNull();
    expect(requests.filter((line) => line === 'POST /ticket').length).toBeGreaterThanOrEqual(2);
    expect(requests.filter((line) => line !== 'POST /ticket')).toEqual([]);
  });

  /** With WebSocket refused, `made` falls back to long polling and exchanges there, never asking for SSE. */
  async function expectLongPollingAlone(made: BaseClient): Promise<void> {
    const reached = deferred<TransportEvent>();
    made.on('transport', (event) => reached.resolve(event));
    const exchanged = exchange(made);
    expect(await reached.promise).toEqual({ transport: 'long-polling', previous: null, reason: 'refused' });
    expect(await exchanged).toEqual(['world', { echo: 'hello' }]);
    expect(requests.filter((line) => line === 'GET /sse' || line === 'GET /carrier')).toEqual([]);
  }

  it('falls back to the next transport of its own list, skipping one it was not given', async () => {
    const url = await start();
    proxy!.setCondition('ws-blocked');
    const made = client(url, [webSocketTransport, longPollingTransport]);
    await expectLongPollingAlone(made);
  });

  it('connect() takes the imported transports too, mixed with names, and uses only those', async () => {
    const url = await start();
    proxy!.setCondition('ws-blocked');
    const made = connect(url, { ...nodeEnvironment, ...FAST, transports: [webSocketTransport, 'long-polling'] });
    clients.push(made);
    await expectLongPollingAlone(made);
  });

  it('refuses at once a list that is empty or holds anything but transports of this package', () => {
    const url = 'http://127.0.0.1:9/realtime';
    const make = (transports: unknown) => () => new BaseClient(url, { ...nodeEnvironment, transports: transports as ClientTransport[] });
    expect(make([])).toThrow(new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got []'));
    expect(make(['websocket'])).toThrow(new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got ["websocket"]'));
    expect(make([{ name: 'websocket' }])).toThrow(TypeError);
    // One transport instead of a list, and no options at all (plain JavaScript): the same message.
    expect(make(webSocketTransport)).toThrow(new TypeError(`unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got "websocket"`));
    expect(make(undefined)).toThrow(new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got undefined'));
    expect(() => new (BaseClient as unknown as new (url: string) => BaseClient)(url)).toThrow(new TypeError('unbroken: transports expects a list of websocket, sse, long-polling or of webSocketTransport…, got undefined'));
  });
});
