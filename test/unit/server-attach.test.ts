/**
 * `createServer()` and `attach()` on a real http.Server at 127.0.0.1 port 0: coexistence with an
 * application's own request handler and with other WebSocket servers, CORS, the `error` event and
 * option checks. The protocol itself is covered by test/conformance.
 */
import http from 'node:http';
import type net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeServerBatch } from '../../src/protocol/index.js';
import { createServer, MemoryStore, UnbrokenTypeError, type MessageStore, type ServerOptions } from '../../src/server/index.js';
import { deferred } from '../helpers/signals.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';
import { requestTicket, ticketFor } from '../helpers/raw-ticket.js';

/** Node's collector, made callable without a flag: what the tests of a leak ask for. */
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc') as () => void;

const started: StartedServer[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(started.splice(0).map((server) => server.close()));
});

async function start(options: Parameters<typeof startServer>[0] = {}): Promise<StartedServer> {
  const server = await startServer(options);
  started.push(server);
  return server;
}

const app: http.RequestListener = (request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain' }).end(`app: ${request.method} ${request.url}`);
};

/** `url` with a fresh ticket from the server at `base` (§3.4): what admits a downstream request. */
async function withTicket(url: string, base: string): Promise<string> {
  return `${url}&ticket=${await ticketFor(base)}`;
}

/** Opens a WebSocket and resolves with its first text message, or its close code. */
function firstMessage(url: string, headers: Record<string, string> = {}): Promise<string | number> {
  const ws = new WebSocket(url, { headers });
  const result = deferred<string | number>();
  ws.once('message', (data) => {
    result.resolve(String(data));
    ws.terminate();
  });
  ws.once('close', (code) => result.resolve(code));
  ws.once('error', () => result.resolve(-1));
  return result.promise;
}

describe('attach', () => {
  it('answers its own path and hands every other request to the handler the http server already had', async () => {
    const server = await start({ httpHandler: app });
    const home = await fetch(`http://127.0.0.1:${server.port}/`);
    expect(await home.text()).toBe('app: GET /');
    const elsewhere = await fetch(`http://127.0.0.1:${server.port}/realtimes/poll?v=1`);
    expect(await elsewhere.text()).toBe('app: GET /realtimes/poll?v=1');
    const poll = await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl));
    expect(decodeServerBatch(await poll.text())[0]?.t).toBe('hello');
  });

  it('answers 405 for the wrong method on an endpoint', async () => {
    const server = await start();
    const reply = await fetch(`${server.baseUrl}/send?v=1`);
    expect(reply.status).toBe(405);
    expect(reply.headers.get('allow')).toBe('POST');
    expect(await reply.json()).toEqual({ code: 'PROTOCOL_ERROR', message: expect.any(String) });
  });

  it('leaves upgrades of other paths to other listeners, so another WebSocket server can share the http server', async () => {
    const server = await start();
    const other = new WebSocketServer({ noServer: true });
    server.http.on('upgrade', (request, socket, head) => {
      if (request.url === '/other') other.handleUpgrade(request, socket, head, (ws) => ws.send('other server'));
    });
    expect(await firstMessage(`ws://127.0.0.1:${server.port}/other`)).toBe('other server');
    const hello = await firstMessage(await withTicket(`${server.wsUrl}?v=1`, server.baseUrl));
    expect(typeof hello === 'string' && decodeServerBatch(hello)[0]?.t).toBe('hello');
    other.close();
  });

  it('refuses an upgrade of another path when no other listener could answer it', async () => {
    const server = await start();
    const result = await firstMessage(`ws://127.0.0.1:${server.port}/nobody`);
    expect(result).toBe(-1);
  });

  it('§10.2 after close answers its path with SERVER_RESTART until the http server closes, and the rest as before', async () => {
    const server = await start({ httpHandler: app });
    await server.server.close();
    const poll = await fetch(`${server.baseUrl}/poll?v=1`);
    expect(poll.status).toBe(503);
    expect(await poll.json()).toEqual({ code: 'SERVER_RESTART', message: expect.any(String) });
    const other = await fetch(`http://127.0.0.1:${server.port}/elsewhere`);
    expect(await other.text()).toBe('app: GET /elsewhere');
  });

  it('gives the application its request listeners back once the http server closes', async () => {
    const httpServer = http.createServer(app);
    const server = createServer().attach(httpServer);
    await server.close();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    expect(httpServer.listeners('request')).toEqual([app]);
    expect(httpServer.listenerCount('upgrade')).toBe(0);
  });

  it('lets a server attached after a closed one take over the path on the same http server', async () => {
    const first = await start({ httpHandler: app });
    await first.server.close();
    const second = createServer().attach(first.http);
    const poll = await fetch(await withTicket(`${first.baseUrl}/poll?v=1`, first.baseUrl));
    expect(decodeServerBatch(await poll.text())[0]?.t).toBe('hello');
    expect(await firstMessage(await withTicket(`${first.wsUrl}?v=1`, first.baseUrl))).toMatch(/"t":"hello"/);
    await second.close();
  });

  it('once the http server closes, runs each application listener once per request, also after a closed server was replaced on it, and no closed server answers', async () => {
    let calls = 0;
    const counting: http.RequestListener = (request, response) => {
      calls++;
      app(request, response);
    };
    const httpServer = http.createServer(counting);
    const first = createServer().attach(httpServer);
    await first.close();
    const second = createServer().attach(httpServer);
    await second.close();
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = httpServer.address() as net.AddressInfo;
      expect(await (await fetch(`http://127.0.0.1:${port}/elsewhere`)).text()).toBe('app: GET /elsewhere');
      expect(await (await fetch(`http://127.0.0.1:${port}/realtime/poll?v=1`)).text()).toBe('app: GET /realtime/poll?v=1');
      expect(calls).toBe(2);
    } finally {
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
  });

  it('passes a request outside its path, through a closed server it replaced, to an application listener added between the two, and answers no 404 beside it', async () => {
    const httpServer = http.createServer();
    const first = createServer().attach(httpServer);
    let calls = 0;
    httpServer.on('request', (request, response) => {
      calls++;
      app(request, response);
    });
    // An upgrade listener of the application's, also added between the two: another WebSocket server.
    const other = new WebSocketServer({ noServer: true });
    httpServer.on('upgrade', (request, socket, head) => {
      if (request.url === '/other-ws') other.handleUpgrade(request, socket, head, (ws) => ws.send('other'));
    });
    await first.close();
    const second = createServer().attach(httpServer);
    const errors: unknown[] = [];
    httpServer.on('clientError', (error) => errors.push(error));
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = httpServer.address() as net.AddressInfo;
      const answer = await fetch(`http://127.0.0.1:${port}/elsewhere`);
      expect([answer.status, await answer.text()]).toEqual([200, 'app: GET /elsewhere']);
      expect(calls).toBe(1);
      expect(await firstMessage(`ws://127.0.0.1:${port}/other-ws`)).toBe('other');
      expect(errors).toEqual([]);
    } finally {
      await second.close();
      other.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
    // Given back, the closed servers unwrapped: the application's listeners alone, and no server kept.
    expect(httpServer.listenerCount('request')).toBe(1);
    expect(httpServer.listenerCount('upgrade')).toBe(1);
  });

  it('leaves the polls of a server that is not closed to the server attached after it on the same path', async () => {
    const first = await start({ httpHandler: app });
    const opened = await fetch(await withTicket(`${first.baseUrl}/poll?v=1`, first.baseUrl), { headers: { 'X-Unbroken-Connection': 'first-server-connection' } });
    const [hello] = decodeServerBatch(await opened.text());
    if (hello?.t !== 'hello') throw new Error('expects a hello');
    const second = createServer().attach(first.http);
    try {
      // The first server still holds the connection, but the path is the second's: the client starts afresh there.
      const next = await fetch(`${first.baseUrl}/poll?v=1&last=${hello.cursor}`, { headers: { 'X-Unbroken-Connection': 'first-server-connection' } });
      expect(next.status).toBe(401);
    } finally {
      await second.close();
    }
  });

  it('§10.2 lets go of an http server 2 × hb after its shutdown once a server attached later answers for it: restarts in place keep no closed server', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    const httpServer = http.createServer(app);
    // Each closed server is replaced at once, as the README's restart does: 12 of them would pass the
    // 10 listeners of one event after which Node warns of a leak.
    const closed: WeakRef<object>[] = [];
    let current = createServer({ heartbeatInterval: 20 }).attach(httpServer);
    for (let restart = 0; restart < 12; restart++) {
      await current.close();
      closed.push(new WeakRef(current));
      current = createServer({ heartbeatInterval: 20 }).attach(httpServer);
    }
    try {
      // Once no poll can be owed its notice, nothing holds a closed server: the garbage collector takes them.
      await vi.waitFor(
        () => {
          collectGarbage();
          expect(closed.filter((server) => server.deref() !== undefined)).toHaveLength(0);
        },
        { timeout: 5_000, interval: 20 },
      );
      await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
      const { port } = httpServer.address() as net.AddressInfo;
      const base = `http://127.0.0.1:${port}/realtime`;
      expect(await (await fetch(`http://127.0.0.1:${port}/elsewhere`)).text()).toBe('app: GET /elsewhere');
      const poll = await fetch(await withTicket(`${base}/poll?v=1`, base));
      expect(decodeServerBatch(await poll.text())[0]?.t).toBe('hello');
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
      expect(httpServer.listenerCount('close')).toBe(1);
    } finally {
      process.off('warning', onWarning);
      await current.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
    expect(httpServer.listeners('request')).toEqual([app]);
  });

  it('§10.2 answers its path with SERVER_RESTART past 2 × hb while no server replaced it, and lets go at once when one does', async () => {
    const httpServer = http.createServer(app);
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const { port } = httpServer.address() as net.AddressInfo;
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    let second: ReturnType<typeof createServer> | undefined;
    try {
      let first: ReturnType<typeof createServer> | null = createServer({ heartbeatInterval: 1_000 }).attach(httpServer);
      await first.close();
      // Past the 2 × hb after which no poll is owed its notice.
      vi.advanceTimersByTime(2_000);
      vi.useRealTimers();
      const poll = await fetch(`http://127.0.0.1:${port}/realtime/poll?v=1`);
      expect([poll.status, (await poll.json()).code]).toEqual([503, 'SERVER_RESTART']);
      const closed = new WeakRef(first);
      first = null;
      second = createServer().attach(httpServer);
      // Let go as the second took over its listeners: nothing holds the first one any more (a WeakRef
      // keeps its target to the end of the task it was read in, hence the turn).
      await new Promise((resolve) => setImmediate(resolve));
      collectGarbage();
      expect(closed.deref()).toBeUndefined();
      const opened = await fetch(await withTicket(`http://127.0.0.1:${port}/realtime/poll?v=1`, `http://127.0.0.1:${port}/realtime`));
      expect(decodeServerBatch(await opened.text())[0]?.t).toBe('hello');
    } finally {
      vi.useRealTimers();
      await second?.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
  });

  it('serves two servers on two paths of one http server: each answers its own, no 404 beside it, and a closed one goes on answering its path past 2 × hb', async () => {
    const httpServer = http.createServer();
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    const { port } = httpServer.address() as net.AddressInfo;
    const base = (path: string) => `http://127.0.0.1:${port}${path}`;
    vi.useFakeTimers({ toFake: ['setTimeout'] });
    const a = createServer({ path: '/a', heartbeatInterval: 1_000 }).attach(httpServer);
    const b = createServer({ path: '/b' }).attach(httpServer);
    try {
      vi.useRealTimers();
      // The inner server answers its ticket request later (it reads the body): the outer one writes nothing beside it.
      for (const path of ['/a', '/b']) expect((await requestTicket(base(path))).status).toBe(200);
      vi.useFakeTimers({ toFake: ['setTimeout'] });
      await a.close();
      vi.advanceTimersByTime(2_000);
      vi.useRealTimers();
      // Closed beneath a server of another path: still its path's (§10.2.answer-after-close), answered once.
      const refused = await requestTicket(base('/a'));
      expect([refused.status, JSON.parse(refused.text).code]).toEqual([503, 'SERVER_RESTART']);
      expect((await requestTicket(base('/b'))).status).toBe(200);
      const elsewhere = await fetch(base('/c'));
      expect(elsewhere.status).toBe(404);
    } finally {
      vi.useRealTimers();
      await b.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    }
  });

  it('serves under a custom path and on a second attached http server', async () => {
    const server = await start({ path: '/custom/rt/' });
    expect(server.baseUrl).toBe(`http://127.0.0.1:${server.port}/custom/rt`);
    const second = http.createServer(app);
    const sockets = new Set<net.Socket>();
    second.on('connection', (socket) => sockets.add(socket));
    server.server.attach(second);
    await new Promise<void>((resolve) => second.listen(0, '127.0.0.1', resolve));
    const { port } = second.address() as net.AddressInfo;
    const poll = await fetch(await withTicket(`http://127.0.0.1:${port}/custom/rt/poll?v=1`, `http://127.0.0.1:${port}/custom/rt`));
    expect(decodeServerBatch(await poll.text())[0]?.t).toBe('hello');
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => second.close(() => resolve()));
  });
});

describe('CORS', () => {
  it('answers a preflight from an allowed origin, and refuses one from another origin', async () => {
    const server = await start({ allowedOrigins: ['https://app.example'] });
    const allowed = await fetch(`${server.baseUrl}/send?v=1`, { method: 'OPTIONS', headers: { Origin: 'https://app.example' } });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-allow-headers')).toMatch(/X-Unbroken/);
    const refused = await fetch(`${server.baseUrl}/send?v=1`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example' } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets an allowed origin read the stream', async () => {
    const server = await start({ allowedOrigins: (origin) => origin.endsWith('.example') });
    const poll = await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl), { headers: { Origin: 'https://a.example' } });
    expect(poll.headers.get('access-control-allow-origin')).toBe('https://a.example');
  });
});

describe('events', () => {
  it('reports a throwing listener on the error event as LISTENER_ERROR with the thrown value as cause', async () => {
    const server = await start();
    const reported = deferred<Error>();
    server.server.on('error', (error) => reported.resolve(error));
    server.server.on('connection', () => {
      throw new Error('application bug');
    });
    await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl));
    const error = await reported.promise;
    expect(error).toMatchObject({ name: 'UnbrokenServerError', code: 'LISTENER_ERROR', cause: expect.objectContaining({ message: 'application bug' }) });
  });

  it('reports an async listener whose promise rejects as LISTENER_ERROR, and keeps serving', async () => {
    const server = await start();
    const reported = deferred<Error>();
    server.server.on('error', (error) => reported.resolve(error));
    server.server.on('connection', async () => {
      await Promise.resolve();
      throw new Error('database down');
    });
    const first = await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl));
    expect(first.status).toBe(200);
    expect(await reported.promise).toMatchObject({ code: 'LISTENER_ERROR', cause: expect.objectContaining({ message: 'database down' }) });
  });

  it('writes to the console when nobody listens for errors, and keeps serving', async () => {
    const server = await start();
    const logged = deferred<unknown>();
    vi.spyOn(console, 'error').mockImplementation((value: unknown) => logged.resolve(value));
    server.server.on('connection', () => {
      throw new Error('unheard');
    });
    const first = await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl));
    expect(first.status).toBe(200);
    expect(await logged.promise).toMatchObject({ code: 'LISTENER_ERROR' });
  });

  it('removes a listener with the function on() returns, and once() listens once', async () => {
    const server = await start();
    const seen: string[] = [];
    const off = server.server.on('connection', (session) => seen.push(`on ${session.id}`));
    server.server.once('connection', (session) => seen.push(`once ${session.id}`));
    const first = decodeServerBatch(await (await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl))).text())[0];
    off();
    await fetch(await withTicket(`${server.baseUrl}/poll?v=1`, server.baseUrl));
    const sid = first?.t === 'hello' ? first.sid : '';
    expect(seen).toEqual([`on ${sid}`, `once ${sid}`]);
  });
});

describe('createServer options', () => {
  it.each<[string, ServerOptions]>([
    ['a path without a leading slash', { path: 'realtime' }],
    ['a path with a query', { path: '/rt?x=1' }],
    ['a heartbeat interval of 0', { heartbeatInterval: 0 }],
    ['a fractional retry', { retry: 1.5 }],
    ['a negative session timeout', { sessionTimeout: -1 }],
    ['a tiny maxMessageSize', { maxMessageSize: 10 }],
    ['a path that is not a string', { path: 42 as unknown as string }],
    ['allowedOrigins as one string', { allowedOrigins: 'https://app.example' as unknown as string[] }],
    ['an allowed origin with a trailing slash', { allowedOrigins: ['https://app.example/'] }],
    ['an allowed origin with a path', { allowedOrigins: ['https://app.example/app'] }],
    ['an allowed origin in upper case', { allowedOrigins: ['https://App.example'] }],
    ['an allowed origin with its default port', { allowedOrigins: ['https://app.example:443'] }],
    ['an allowed origin that is not a string', { allowedOrigins: [42] as unknown as string[] }],
    ['a store without the methods of one', { store: {} as unknown as MessageStore }],
    ['a store whose optional method is not a function', { store: Object.assign(new MemoryStore(), { close: 1 }) as unknown as MessageStore }],
    ['a clock that is not a function', { now: 5 as unknown as () => number }],
    ['a random source that is not a function', { random: 0.5 as unknown as () => number }],
    ['a clientAddress that is not a function', { clientAddress: 'x' as unknown as () => string }],
  ])('refuses %s with INVALID_OPTION', (_name, options) => {
    expect(() => createServer(options)).toThrow(UnbrokenTypeError);
    expect(() => createServer(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });

  it('says what was wrong: a number given as a string shows its quotes, a store the methods it lacks, an origin the form it takes', () => {
    const messageOf = (options: ServerOptions): string => {
      try {
        createServer(options);
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(messageOf({ retry: '1000' as unknown as number })).toBe('expects retry to be an integer ≥ 0, got "1000"');
    expect(messageOf({ store: { append: () => undefined } as unknown as MessageStore })).toContain(
      'got an object whose head, join, leave, members, roomsOf, read, subscribe are not a function',
    );
    expect(messageOf({ allowedOrigins: ['https://app.example/'] })).toContain('scheme://host[:port], lower case, no path or trailing /), got "https://app.example/"');
  });

  it('takes origins of other schemes as written, and an empty entry as none', () => {
    for (const allowedOrigins of [['chrome-extension://abcdefghijklmnop'], ['capacitor://localhost', 'tauri://localhost'], [''], ''.split(',')]) {
      expect(() => createServer({ allowedOrigins })).not.toThrow();
    }
    expect(() => createServer({ allowedOrigins: null as unknown as string[] })).not.toThrow();
  });

  it('takes a list of origins as an array or a Set, and a predicate', async () => {
    for (const allowedOrigins of [['https://app.example', 'http://localhost:3000'], new Set(['https://app.example']), (origin: string) => origin === 'https://app.example']) {
      const server = await start({ allowedOrigins });
      const answer = await fetch(`${server.baseUrl}/ticket?v=1`, { method: 'POST', headers: { Origin: 'https://app.example', 'Content-Type': 'application/json', 'X-Unbroken': '1' }, body: '{}' });
      expect(answer.status).toBe(200);
      const refused = await fetch(`${server.baseUrl}/ticket?v=1`, { method: 'POST', headers: { Origin: 'https://evil.example', 'Content-Type': 'application/json', 'X-Unbroken': '1' }, body: '{}' });
      expect(refused.status).toBe(403);
    }
  });

  it('refuses to attach once closed', async () => {
    const server = createServer();
    await server.close();
    expect(() => server.attach(http.createServer())).toThrow(expect.objectContaining({ code: 'SERVER_CLOSED' }));
  });
});
