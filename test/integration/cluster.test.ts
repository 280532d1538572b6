/**
 * Several servers sharing one store, with no sticky sessions (docs/PROTOCOL.md §3.3, §3.4, §7.4, §8):
 * the client's every connection and every HTTP request goes to the next server in turn, the network is
 * cut now and then, and messages both ways still arrive exactly once and in order. The servers share
 * a store in this process (test/helpers/shared-memory-store.ts); the Redis suites run the same rules
 * across real processes.
 */
import { EventSource } from 'eventsource';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { connect, type Client, type ClientOptions } from '../../src/client/index.js';
import { SharedMemoryStore } from '../helpers/shared-memory-store.js';
import { startServer, type StartedServer } from '../helpers/start-server.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { TRANSPORTS } from './fixture.js';

interface Cluster {
  store: SharedMemoryStore;
  servers: StartedServer[];
  proxies: TcpProxy[];
  /** Client messages each server handed to the application, in order: [server, data]. */
  handled: [number, unknown][];
  close(): Promise<void>;
}

async function startCluster(size: number, hb = 1000): Promise<Cluster> {
  const store = new SharedMemoryStore();
  const servers: StartedServer[] = [];
  const proxies: TcpProxy[] = [];
  const handled: [number, unknown][] = [];
  for (let index = 0; index < size; index++) {
    // A reconnection floor of 50 ms (`hello.retry`, 1 s by default), as the clients' own delay: the
    // tests reconnect many times, and each would otherwise wait a second.
    const server = await startServer({ store, heartbeatInterval: hb, retry: 50 });
    server.server.on('message', (data) => handled.push([index, data]));
    servers.push(server);
    proxies.push(await startTcpProxy(server.port));
  }
  return {
    store,
    servers,
    proxies,
    handled,
    async close() {
      for (const proxy of proxies) await proxy.close();
      for (const server of servers) await server.close();
    },
  };
}

/**
 * What a round-robin load balancer does: each WebSocket, each EventSource and each HTTP request goes
 * to the next server. Returns the environment to inject and the URL to connect to.
 */
function roundRobin(initial: readonly number[]): { url: string; environment: Partial<ClientOptions>; remove(port: number): void } {
  let ports = [...initial];
  // One turn for streams and one for requests, so that every new stream surely lands on the next
  // server (with one turn for both, the requests between two streams could bring it back).
  const turns = { stream: 0, request: 0 };
  const rewrite = (input: string, turn: keyof typeof turns): string => {
    const url = new URL(input);
    url.port = String(ports[turns[turn]++ % ports.length]);
    return url.toString();
  };
  class RoundRobinWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(rewrite(String(url), 'stream'), protocols);
    }
  }
  class RoundRobinEventSource extends EventSource {
    constructor(url: string | URL, init?: EventSourceInit) {
      super(rewrite(String(url), 'stream'), init);
    }
  }
  const fetchNext: typeof fetch = (input, init) => {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    return globalThis.fetch(rewrite(url, 'request'), init);
  };
  return {
    url: `http://127.0.0.1:${ports[0]}/realtime`,
    // A load balancer takes a server it found dead out of its rotation (nginx does after a failed connect).
    remove(port) {
      ports = ports.filter((candidate) => candidate !== port);
    },
    environment: {
      WebSocket: RoundRobinWebSocket as unknown as ClientOptions['WebSocket'],
      EventSource: RoundRobinEventSource as unknown as ClientOptions['EventSource'],
      fetch: fetchNext,
    },
  };
}

function waitFor(check: () => boolean, what: string, timeout = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (check()) {
        clearInterval(timer);
        resolve();
      } else if (Date.now() - started > timeout) {
        clearInterval(timer);
        reject(new Error(`timed out waiting for ${what}`));
      }
    }, 10);
  });
}

let cluster: Cluster | null = null;
const clients: Client[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await cluster?.close();
  cluster = null;
});

describe.each(TRANSPORTS)('three servers, one shared store, no sticky sessions, over %s', (transport) => {
  it('§3.3 §8 carries messages both ways exactly once and in order while every reconnection moves the session', async () => {
    cluster = await startCluster(3);
    const { url, environment } = roundRobin(cluster.proxies.map((proxy) => proxy.port));
    const client = connect(url, { ...environment, transports: [transport], reconnectDelay: 50 });
    clients.push(client);
    const received: unknown[] = [];
    client.on('message', (message) => received.push(message.data));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));

    const total = 60;
    const sends: Promise<void>[] = [];
    let opens = 0;
    client.on('open', () => opens++);
    for (let n = 1; n <= total; n++) {
      // Downstream from whichever server, upstream to whichever the client reaches.
      await cluster.servers[n % 3]!.server.broadcast({ down: n });
      sends.push(client.send({ up: n }));
      if (n % 10 === 0) {
        // A reset of every connection: the client comes back through another server.
        const before = opens;
        for (const proxy of cluster.proxies) proxy.dropAll();
        await waitFor(() => opens > before, 'the client to open again');
      }
    }
    await Promise.all(sends);
    await waitFor(() => received.length >= total && cluster!.handled.length >= total, 'every message both ways');

    expect(received).toEqual(Array.from({ length: total }, (_, index) => ({ down: index + 1 })));
    expect(cluster.handled.map(([, data]) => data)).toEqual(Array.from({ length: total }, (_, index) => ({ up: index + 1 })));
    // The session was served by more than one server.
    const sid = client.sessionId!;
    const attaches = cluster.store.signals.filter((signal) => signal.kind === 'attached' && signal.session === sid).length;
    expect(attaches).toBeGreaterThanOrEqual(7);
    const nodes = new Set(cluster.store.signals.filter((signal) => signal.kind === 'attached' && signal.session === sid).map((signal) => (signal as { node: string }).node));
    expect(nodes.size).toBe(3);
    // One session across the cluster: no server created another for this client.
    const created: string[] = [];
    for (const server of cluster.servers) for (const session of server.server.sessions.values()) created.push(session.id);
    expect(new Set(created)).toEqual(new Set([sid]));
  }, 60_000);
});


describe('long polling through a round-robin balancer', () => {
  it('§3.6 §13.5 answers each poll that moves to another server only with something new: no answer of acks alone, so the client never spaces its polls out', async () => {
    // Three servers: with two, a poll and a POST per echo would bring every poll back to the same one.
    cluster = await startCluster(3);
    for (const server of cluster.servers) server.server.on('message', (data, session) => void session.send(data));
    const balancer = roundRobin(cluster.proxies.map((proxy) => proxy.port));
    // What each poll was answered, read from a copy of the answer.
    const answers: string[] = [];
    const recording: typeof fetch = async (input, init) => {
      const response = await balancer.environment.fetch!(input, init);
      const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
      if (new URL(url).pathname.endsWith('/poll') && response.ok) answers.push(await response.clone().text());
      return response;
    };
    const client = connect(balancer.url, { ...balancer.environment, fetch: recording, transports: ['long-polling'], reconnectDelay: 50 });
    clients.push(client);
    const received: unknown[] = [];
    client.on('message', (message) => received.push(message.data));
    const errors: string[] = [];
    client.on('error', ({ code }) => errors.push(code));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    for (let n = 1; n <= 8; n++) {
      await client.send({ echo: n });
      await waitFor(() => received.some((data) => (data as { echo?: number }).echo === n), `echo ${n}`);
    }
    // Before, each poll that moved to the other server was answered at once with the ack of what the
    // client had sent, and after three such answers the client waited a second before each poll.
    const acksAlone = answers.filter((text) => /^\[(\{"t":"ack","s":\d+\},?)+\]$/.test(text));
    expect(acksAlone).toEqual([]);
    expect(received.filter((data) => (data as { echo?: number }).echo !== undefined)).toHaveLength(8);
    expect(errors).toEqual([]);
  }, 30_000);
});

describe.each(TRANSPORTS)('a session served by several servers over %s', (transport) => {
  async function openClient(size: number): Promise<{ client: Client; received: unknown[]; balancer: ReturnType<typeof roundRobin> }> {
    cluster = await startCluster(size);
    const balancer = roundRobin(cluster.proxies.map((proxy) => proxy.port));
    const { url, environment } = balancer;
    const client = connect(url, { ...environment, transports: [transport], reconnectDelay: 50 });
    clients.push(client);
    const received: unknown[] = [];
    client.on('message', (message) => received.push(message.data));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    return { client, received, balancer };
  }

  it('§6.5 receives a room it joined through one server from messages sent by another, live and on resume', async () => {
    const { client, received } = await openClient(3);
    for (const server of cluster!.servers) {
      server.server.on('message', (data, session) => {
        const request = data as { join?: string };
        if (request.join) void session.join(request.join);
      });
    }
    await client.send({ join: 'lobby' });
    // Whichever server handled the request, every server sees the membership.
    await waitFor(() => cluster!.handled.length === 1, 'the join request');
    const members = await cluster!.servers[2]!.server.to('lobby').sessions();
    expect(members.map((session) => session.id)).toEqual([client.sessionId]);
    await cluster!.servers[0]!.server.to('elsewhere').send({ room: 'elsewhere' });
    for (let n = 1; n <= 6; n++) {
      await cluster!.servers[n % 3]!.server.to('lobby').send({ room: n });
      if (n === 3) for (const proxy of cluster!.proxies) proxy.dropAll();
    }
    await waitFor(() => received.length >= 6, 'the room messages');
    expect(received).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({ room: n })));
  }, 30_000);

  it('§11 answers a ping sent through another server than the one that holds the stream', async () => {
    const { client } = await openClient(2);
    for (let n = 0; n < 4; n++) expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });

  it('§3.3 §8 goes on through the other servers when one crashes mid-stream, nothing lost or repeated either way', async () => {
    const { client, received, balancer } = await openClient(3);
    const total = 40;
    const sends: Promise<void>[] = [];
    for (let n = 1; n <= total; n++) {
      // Always from a server that stays up: server 1 crashes halfway.
      await cluster!.servers[n % 2 === 0 ? 0 : 2]!.server.broadcast({ down: n });
      sends.push(client.send({ up: n }));
      if (n === total / 2) {
        balancer.remove(cluster!.proxies[1]!.port);
        cluster!.proxies[1]!.dropAll();
        await cluster!.proxies[1]!.close();
        await cluster!.servers[1]!.close();
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await Promise.all(sends);
    await waitFor(() => received.length >= total && cluster!.handled.length >= total, 'every message both ways');
    expect(received).toEqual(Array.from({ length: total }, (_, index) => ({ down: index + 1 })));
    expect(cluster!.handled.map(([, data]) => data)).toEqual(Array.from({ length: total }, (_, index) => ({ up: index + 1 })));
  }, 30_000);
});

describe('one server of several shutting down', () => {
  it('§10.2 leaves its sessions to the others: the client resumes the same session, in its rooms', async () => {
    cluster = await startCluster(2);
    const { url, environment } = roundRobin([cluster.proxies[0]!.port, cluster.proxies[1]!.port]);
    const client = connect(url, { ...environment, transports: ['websocket'], reconnectDelay: 50 });
    clients.push(client);
    const received: unknown[] = [];
    client.on('message', (message) => received.push(message.data));
    const opens: boolean[] = [];
    client.on('open', (event) => opens.push(event.resumed));
    await new Promise<void>((resolve) => client.once('open', () => resolve()));
    const sid = client.sessionId!;
    const holder = cluster.servers.findIndex((server) => server.server.sessions.get(sid)?.connected);
    expect(holder).toBeGreaterThanOrEqual(0);
    await cluster.servers[holder]!.server.sessions.get(sid)!.join('lobby');
    const closes: string[] = [];
    for (const server of cluster.servers) server.server.on('close', (_session, reason) => closes.push(reason));
    await cluster.servers[holder]!.server.close();
    const other = cluster.servers[1 - holder]!.server;
    await waitFor(() => opens.length === 2, 'the client to open again');
    expect(other.sessions.get(sid)?.connected).toBe(true);
    expect(client.sessionId).toBe(sid);
    expect(opens).toEqual([false, true]);
    await other.to('lobby').send({ after: 'shutdown' });
    await waitFor(() => received.length >= 1, 'the room message');
    expect(received).toEqual([{ after: 'shutdown' }]);
    expect(await cluster.store.getSession(sid)).not.toBeNull();
  });
});
