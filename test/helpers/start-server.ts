/**
 * Starts the reference server on a real http.Server at 127.0.0.1 (port 0 unless told otherwise), for
 * integration and conformance tests. `close()` never hangs: it destroys every socket the http server
 * accepted (WebSockets, SSE streams and held polls included) before it waits for anything.
 */
import http from 'node:http';
import type net from 'node:net';
import { createServer, type ServerOptions, type UnbrokenServer } from '../../src/server/index.js';

export interface StartServerOptions extends ServerOptions {
  /**
   * Handles every request outside the server's path, as an application (e.g. Express) would;
   * `null` for none, as in `createServer().attach(http.createServer())`.
   * @default answers 404
   */
  httpHandler?: http.RequestListener | null;
  /**
   * Port to listen on. A restart test passes the port of a server it stopped, so clients reconnect
   * to the same URL and meet a new server with a new store.
   * @default 0 (a free port)
   */
  port?: number;
}

export interface StartedServer {
  server: UnbrokenServer;
  http: http.Server;
  /** `http://127.0.0.1:PORT/realtime` (or the configured path). */
  baseUrl: string;
  /** `ws://127.0.0.1:PORT/realtime/ws`. */
  wsUrl: string;
  port: number;
  /**
   * Stops abruptly, as a crash would: no reconnect notice, every connection cut. Call
   * `server.close()` first for a graceful shutdown. Safe to call more than once.
   */
  close(): Promise<void>;
}

function notFound(_request: http.IncomingMessage, response: http.ServerResponse): void {
  response.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
}

export async function startServer(options: StartServerOptions = {}): Promise<StartedServer> {
  const { httpHandler = notFound, port: requestedPort = 0, ...serverOptions } = options;
  const httpServer = httpHandler === null ? http.createServer() : http.createServer(httpHandler);
  const sockets = new Set<net.Socket>();
  httpServer.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const server = createServer(serverOptions).attach(httpServer);
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(requestedPort, '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address();
  if (address === null || typeof address === 'string') throw new Error('the http server has no TCP address');
  const port = address.port;
  // The server ignores trailing slashes of its path; so do the URLs handed to tests.
  const path = (serverOptions.path ?? '/realtime').replace(/\/+$/, '');

  let closing: Promise<void> | undefined;
  return {
    server,
    http: httpServer,
    baseUrl: `http://127.0.0.1:${port}${path}`,
    wsUrl: `ws://127.0.0.1:${port}${path}/ws`,
    port,
    close() {
      closing ??= (async () => {
        const listening = new Promise<void>((resolve) => {
          if (!httpServer.listening) resolve();
          else httpServer.close(() => resolve());
        });
        for (const socket of sockets) socket.destroy();
        httpServer.closeAllConnections();
        // The sockets are gone, so this ends sessions and timers without waiting on any client.
        await server.close();
        await listening;
      })();
      return closing;
    },
  };
}
