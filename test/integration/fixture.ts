/**
 * The integration fixture: the real reference server on 127.0.0.1 port 0, a loopback TCP proxy in
 * front of it (so a test can cut or silence the network for real), and clients in Node with the
 * `ws` and `eventsource` packages injected where a browser has them built in.
 */
import { EventSource } from 'eventsource';
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { connect, type Client, type ClientOptions, type TransportName } from '../../src/client/index.js';
import type { ServerOptions } from '../../src/server/index.js';
import { startServer } from '../helpers/start-server.js';
import { startNetworkProxy, type Condition, type NetworkProxy } from '../helpers/network-proxy.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/** Every transport the suites loop over. */
export const TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'long-polling'];

export type StartedServer = Awaited<ReturnType<typeof startServer>>;

export interface Fixture {
  server: StartedServer;
  proxy: TcpProxy;
  /** The endpoint URL as a client sees it: through the proxy. */
  url: string;
  client(options?: ClientOptions): Client;
  /** Stops the server and starts a new one on the same port with a new in-memory store. */
  restartServer(options?: ServerOptions, graceful?: boolean): Promise<StartedServer>;
  close(): Promise<void>;
}

/** Node-side stand-ins for what a browser provides. */
export const nodeEnvironment = {
  WebSocket: WebSocket as unknown as ClientOptions['WebSocket'],
  EventSource: EventSource as unknown as ClientOptions['EventSource'],
  fetch: globalThis.fetch,
} satisfies ClientOptions;

export async function startFixture(transport: TransportName, serverOptions: ServerOptions = {}): Promise<Fixture> {
  let server = await startServer(serverOptions);
  const proxy = await startTcpProxy(server.port);
  const url = `http://127.0.0.1:${proxy.port}/realtime`;
  const clients: Client[] = [];
  return {
    get server() {
      return server;
    },
    proxy,
    url,
    client(options = {}) {
      const client = connect(url, { ...nodeEnvironment, transports: [transport], ...options });
      clients.push(client);
      return client;
    },
    async restartServer(options = serverOptions, graceful = true) {
      const port = server.port;
      if (graceful) await server.server.close();
      await server.close();
      proxy.dropAll();
      server = await startServer({ ...options, port });
      return server;
    },
    async close() {
      for (const client of clients) client.close();
      await proxy.close();
      await server.close();
    },
  };
}

/** A reference server behind the misbehaving loopback proxy of test/helpers/network-proxy.ts. */
export interface ProxiedServer {
  readonly server: StartedServer;
  readonly proxy: NetworkProxy;
  /** Starts the server (retry floor 5 ms, 1 s heartbeat) and its proxy under `condition`. */
  start(condition: Condition): Promise<void>;
  /** A client through the proxy, with `defaults` under `options`; closed after the test. */
  client(options?: ClientOptions): Client;
}

/**
 * Registers, for the enclosing describe block, a server behind a network proxy started by each test
 * and ended after it, with its clients; `started` sees each server as it starts.
 */
export function useProxiedServer(defaults: ClientOptions, started?: (server: StartedServer) => void): ProxiedServer {
  let server: StartedServer | undefined;
  let proxy: NetworkProxy | undefined;
  const clients: Client[] = [];
  afterEach(async () => {
    for (const made of clients.splice(0)) made.close();
    await proxy?.close();
    await server?.close();
    proxy = undefined;
    server = undefined;
  });
  const running = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`no ${what}: call start() first`);
    return value;
  };
  return {
    get server() {
      return running(server, 'server');
    },
    get proxy() {
      return running(proxy, 'proxy');
    },
    async start(condition) {
      server = await startServer({ retry: 5, heartbeatInterval: 1_000 });
      started?.(server);
      proxy = await startNetworkProxy(server.port);
      proxy.setCondition(condition);
    },
    client(options = {}) {
      const made = connect(`http://127.0.0.1:${running(proxy, 'proxy').port}/realtime`, { ...nodeEnvironment, ...defaults, ...options });
      clients.push(made);
      return made;
    },
  };
}
