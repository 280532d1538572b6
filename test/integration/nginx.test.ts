/**
 * One server process behind nginx running the documented configuration (docs/deploy/nginx.conf),
 * looped over every transport: the client in Node, forced onto one transport, through a real nginx.
 * What each transport needs from the proxy is checked by what reaches the client: the WebSocket
 * upgrade goes through, the event stream is not held back, request bodies pass, the client's
 * address is the one nginx saw, and a client resumes after nginx drops every connection.
 */
import { EventSource, type EventSourceInit } from 'eventsource';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, type Client, type ClientOptions, type FetchLike, type TransportName } from '../../src/client/index.js';
import { resolveServerOptions } from '../../src/server/options.js';
import { startCluster, type Cluster } from '../helpers/cluster.js';
import { DEPLOY_CONFIG, startNginx, type Nginx } from '../helpers/nginx.js';
import { when } from '../helpers/signals.js';
import { TRANSPORTS, nodeEnvironment } from './fixture.js';

interface Numbered {
  n: number;
  node: string;
  pid: number;
  at: number;
}

interface Echo {
  echo: unknown;
  node: string;
  pid: number;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** How late one message may arrive once handed to the server: far above loopback, far below a buffer's wait. */
const PROMPT = 1_000;

/** Resolves when `promise` does, or rejects with `what` once `ms` have passed. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

let cluster: Cluster;
let nginx: Nginx;
const clients: Client[] = [];

beforeAll(async () => {
  // A short retry floor, so that reconnecting after nginx comes back takes milliseconds.
  cluster = await startCluster(1, { serverOptions: { retry: 20 } });
  nginx = await startNginx({ upstreams: cluster.ports });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await nginx?.stop();
  await cluster?.stopAll();
});

function open(transport: TransportName, options: ClientOptions = {}): Client {
  const client = connect(`${nginx.origin}/realtime`, {
    ...nodeEnvironment,
    transports: [transport],
    storage: null,
    reconnectDelay: 20,
    maxReconnectDelay: 100,
    ...options,
  });
  clients.push(client);
  return client;
}

/**
 * What a page served by the site sends on every request and every transport: an `Origin` header
 * naming the site, which the server admits only when nginx passes on the `Host` the browser sent
 * (PROTOCOL.md §3.2). Each request also claims another client address in `X-Forwarded-For`, as any
 * client can: nginx appends the address it saw, and only that one may count.
 */
function pageOfTheSite(origin: string): Pick<ClientOptions, 'WebSocket' | 'EventSource' | 'fetch'> {
  const fetch: FetchLike = (input, init) => {
    const headers = new Headers(init?.headers);
    headers.set('Origin', origin);
    headers.set('X-Forwarded-For', '203.0.113.7');
    return globalThis.fetch(input, { ...init, headers });
  };
  class PageWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { origin, headers: { 'X-Forwarded-For': '203.0.113.7' } });
    }
  }
  class PageEventSource extends EventSource {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(url, { ...init, fetch: (input, fetchInit) => fetch(input, fetchInit) });
    }
  }
  return {
    fetch,
    WebSocket: PageWebSocket as unknown as ClientOptions['WebSocket'],
    EventSource: PageEventSource as unknown as ClientOptions['EventSource'],
  };
}

/** Resolves at the client's next `open` (a `hello` arrived); fails after 5 s, time for several attempts. */
function opened(client: Client): Promise<void> {
  const open = new Promise<void>((resolve) => client.once('open', () => resolve()));
  return within(5_000, 'the client did not open a connection through nginx', open);
}

/** Every `numbered` message the client delivers, and a way to wait for the first `count`. */
function numbered(client: Client) {
  const seen: { n: number; delay: number }[] = [];
  const waiters = new Set<() => void>();
  client.on('message:numbered', ({ data }) => {
    const { n, at } = data as Numbered;
    // The process runs on this machine: its clock is this one.
    seen.push({ n, delay: Date.now() - at });
    for (const wake of waiters) wake();
  });
  return {
    /** The numbers delivered, in order. */
    numbers: () => seen.map((message) => message.n),
    /** How long each took from the server's broadcast to the client's listener, in ms. */
    delays: () => seen.map((message) => message.delay),
    until(count: number): Promise<void> {
      const reached = when(() => seen.length >= count);
      waiters.add(reached.wake);
      return reached.promise.finally(() => waiters.delete(reached.wake));
    },
  };
}

it('keeps nginx read timeout at twice the default heartbeat interval or more, so that no healthy connection is cut', async () => {
  const config = await readFile(DEPLOY_CONFIG, 'utf8');
  const seconds = Number(/^\s*proxy_read_timeout\s+(\d+)s;/m.exec(config)?.[1]);
  expect(seconds * 1_000).toBeGreaterThanOrEqual(2 * resolveServerOptions({}).heartbeatInterval);
});

describe.each(TRANSPORTS)('behind nginx with the documented config, over %s', (transport) => {
  it('carries a message each way, a 300 kB one too, for a page of the site, counting it by the address nginx saw', async () => {
    const client = open(transport, pageOfTheSite(nginx.origin));
    const echoes: Echo[] = [];
    const twoEchoes = when(() => echoes.length === 2);
    client.on('message:echo', ({ data }) => {
      echoes.push(data as Echo);
      twoEchoes.wake();
    });
    const large = 'x'.repeat(300_000);
    await opened(client);

    await client.send('hello');
    await client.send(large);
    await twoEchoes.promise;

    const { pid, name } = cluster.nodes[0]!;
    expect(echoes).toEqual([
      { echo: 'hello', node: name, pid },
      { echo: large, node: name, pid },
    ]);
    expect(client.transport).toBe(transport);
    expect(await cluster.addresses(0)).toEqual(['127.0.0.1']);
  });

  it('delivers 200 pushed messages in order, each one as soon as it is sent (nginx holds nothing back)', async () => {
    const client = open(transport);
    const moves: string[] = [];
    client.on('transport', ({ transport: to, reason }) => moves.push(`${to}:${reason}`));
    const received = numbered(client);
    await opened(client);

    // One at a time: each must arrive before the next is sent, so no later message can push it
    // through a buffer. A proxy that buffers the stream would keep the first one back.
    for (let n = 1; n <= 10; n++) {
      await cluster.broadcast(0, 1, n);
      await within(PROMPT, `message ${n} did not arrive through nginx`, received.until(n));
    }
    await cluster.broadcast(0, 190, 11);
    await within(5_000, 'the 200 messages did not all arrive', received.until(200));

    expect(received.numbers()).toEqual(range(1, 200));
    expect(Math.max(...received.delays().slice(0, 10))).toBeLessThan(PROMPT);
    expect(client.transport).toBe(transport);
    expect(moves).toEqual([`${transport}:initial`]);
  });

  it('resumes after nginx drops every connection: nothing lost, nothing repeated, the same session', async () => {
    const client = open(transport);
    const opens: { sessionId: string; resumed: boolean }[] = [];
    client.on('open', ({ sessionId, resumed }) => opens.push({ sessionId, resumed }));
    const gaps: unknown[] = [];
    client.on('gap', (gap) => gaps.push(gap));
    const received = numbered(client);
    await opened(client);
    await cluster.broadcast(0, 10, 1);
    await within(5_000, 'messages 1–10 did not arrive', received.until(10));

    const reopened = opened(client);
    // Messages broadcast while nginx is down reach the client only by the replay of its resume.
    await nginx.restart(() => cluster.broadcast(0, 10, 11));
    await reopened;
    await cluster.broadcast(0, 10, 21);
    await within(5_000, 'messages 11–30 did not arrive', received.until(30));
    await client.send('after');

    expect(received.numbers()).toEqual(range(1, 30));
    expect(gaps).toEqual([]);
    expect(opens).toHaveLength(2);
    expect(opens[1]).toEqual({ sessionId: opens[0]!.sessionId, resumed: true });
    expect(client.transport).toBe(transport);
  });
});
