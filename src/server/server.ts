/**
 * The reference server: `createServer()` and `attach()` to a Node http(s) server (docs/PROTOCOL.md).
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { Endpoint, type Payload } from '../protocol/index.js';
import { Emitter, type Listener } from './emitter.js';
import { UnbrokenServerError, UnbrokenTypeError } from './errors.js';
import { answerError, answerPreflight, answerUpgradeRequired, originAdmitted, type OriginCheck } from './http.js';
import { SessionHub, type ServerStats } from './hub.js';
import type { Authenticate } from './identity.js';
import { Limits, socketAddress } from './limits.js';
import type { Sendable } from './sendable.js';
import type { ServerEvents, Session } from './session.js';
import { MemoryStore, type MessageStore } from './store.js';
import { TicketStore } from './tickets.js';
import type { TransportContext } from './transports/context.js';
import { LongPollingTransport } from './transports/long-polling.js';
import { handleSend } from './transports/send.js';
import { handleSse } from './transports/sse.js';
import { handleTicket } from './transports/ticket.js';
import { WebSocketTransport } from './transports/websocket.js';

export interface ServerOptions {
  /**
   * Path the server serves: `P/ws`, `P/sse`, `P/poll` and `P/send` (§3).
   * @default '/realtime'
   */
  path?: string;
  /**
   * Where messages are kept for replay (§6).
   * @default new MemoryStore()
   */
  store?: MessageStore;
  /**
   * Heartbeat interval in ms (`hello.hb`): every connection gets a frame at least this often, and
   * WebSocket ping frames go out at this pace (§7.1, §11).
   * @default 15_000
   */
  heartbeatInterval?: number;
  /**
   * Reconnect delay floor in ms the client must respect (`hello.retry`, SSE `retry:`, §10.1).
   * @default 1_000
   */
  retry?: number;
  /**
   * Largest frame or upstream request body accepted, in bytes (`hello.max`, §12).
   * @default 1_048_576
   */
  maxMessageSize?: number;
  /**
   * Origins allowed besides the server's own: a list, or a predicate. Same-origin requests (an
   * `Origin` whose host is the request's `Host`) and requests without an `Origin` header (not from a
   * browser) are always allowed; this adds to them, it does not replace them (§3.2).
   * @default none: same-origin only
   */
  allowedOrigins?: readonly string[] | ((origin: string) => boolean);
  /**
   * How long a session survives without a connection, in ms (§3.3).
   * @default 300_000
   */
  sessionTimeout?: number;
  /**
   * On `close()`, each client is told to reconnect after a delay drawn from `[0, shutdownJitter)` ms,
   * so that they do not all come back at once (§10.2).
   * @default 5_000
   */
  shutdownJitter?: number;
  /**
   * Most bytes buffered for one connection; a client that reads slower is disconnected with
   * `BACKPRESSURE` and resumes from the store (§12). Keep it above the largest message sent.
   * @default 1_048_576 (1 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Most bytes buffered across every connection; past it the connections that hold the most (the
   * slowest readers) are cut with `BACKPRESSURE` first, and resume from the store (§12.1).
   * @default 67_108_864 (64 MiB)
   */
  maxTotalBufferedBytes?: number;
  /**
   * Sessions alive at once (connected or waiting for their client within `sessionTimeout`); a
   * connection that would create one more is refused with `TOO_MANY_CONNECTIONS` (§12.1).
   * @default 100_000
   */
  maxSessions?: number;
  /**
   * Sessions alive at once created from one client address (see `clientAddress`); more are refused
   * with `TOO_MANY_CONNECTIONS`. Raise it when many users share an address (a NAT, a proxy whose
   * forwarded address `clientAddress` does not read).
   * @default 500
   */
  maxSessionsPerAddress?: number;
  /**
   * Downstream connections (and WebSocket upgrade probes) open at once; more are refused with
   * `TOO_MANY_CONNECTIONS` (§12.1).
   * @default 50_000
   */
  maxConnections?: number;
  /**
   * Downstream connections (and upgrade probes) open at once from one client address; more are
   * refused with `TOO_MANY_CONNECTIONS`.
   * @default 500
   */
  maxConnectionsPerAddress?: number;
  /**
   * New sessions one client address may create per second (a token bucket that saves up one
   * second's worth); more are refused with `RATE_LIMITED` (§12.1).
   * @default 20
   */
  sessionsPerSecondPerAddress?: number;
  /**
   * Client messages one session may send per second (a token bucket that saves up one second's
   * worth). Past it the client is slowed, never refused: the server stops reading its WebSocket, or
   * holds its next `POST P/send`, until the budget is back; nothing is lost (§12.1).
   * @default 200
   */
  messagesPerSecond?: number;
  /**
   * How long the body of an upstream request (`POST P/send`) may take to arrive, in ms; a slower
   * one is answered `REQUEST_TIMEOUT` and its connection closed (§12.1).
   * @default 8_000
   */
  bodyTimeout?: number;
  /**
   * Upper bound, in ms, for the attached http server's `headersTimeout`: `attach()` lowers it to this
   * when it is higher (headers arrive before the path is known, so this bound cannot be per path).
   * Node checks it every `connectionsCheckingInterval` (30 s unless the http server was created with
   * another). `0` leaves the http server's setting alone.
   * @default 10_000
   */
  headersTimeout?: number;
  /**
   * The address a request counts against for the per-address limits. Behind a reverse proxy every
   * request comes from the proxy: return the client address the proxy forwards (e.g. the last entry
   * of `X-Forwarded-For` that your proxy appended), never a header a client can set freely.
   * @default the socket's remote address
   */
  clientAddress?: (request: http.IncomingMessage) => string;
  /**
   * Checks who a client is (§3.5): called with the HTTP request and what the client's `auth` option
   * supplied, before a session is created, on every new connection of a session (each `POST
   * P/ticket`), and for every `auth` frame. Return an {@link Identity} (`session.user`) to accept;
   * `null`/`undefined`, a throw or a rejection refuses with `UNAUTHORIZED`. A connection whose
   * identity `id` differs from its session's never attaches to it. With `expiresAt`, the client is
   * asked for fresh credentials before it and its connection closes past it.
   * @default none: every client is accepted and `session.user` is null
   */
  authenticate?: Authenticate;
  /**
   * How long a ticket from `POST P/ticket` stays valid, in ms (§3.4). It is used once, at once.
   * @default 30_000
   */
  ticketTtl?: number;
  /**
   * Most tickets outstanding (issued, neither used nor expired) in total; past it `POST P/ticket` is
   * answered `RATE_LIMITED` (§3.4).
   * @default 10_000
   */
  maxTickets?: number;
  /**
   * Most tickets outstanding per client address (the socket's remote address: behind a proxy, the
   * proxy's); past it `POST P/ticket` is answered `RATE_LIMITED` (§3.4).
   * @default 1_000
   */
  maxTicketsPerAddress?: number;
  /**
   * Clock in ms, for heartbeats and timeouts.
   * @default Date.now
   */
  now?: () => number;
  /**
   * Random numbers in `[0, 1)`, for the shutdown jitter. Session ids never come from it.
   * @default Math.random
   */
  random?: () => number;
}

/** Options of `broadcast()` and `session.send()`. */
export interface SendOptions {
  /** Event name: 1–128 characters without CR, LF or NUL (§4.2). */
  event?: string;
}

/**
 * The server. Create it with {@link createServer}, which explains `Incoming` (the data of `message`
 * listeners) and `Outgoing` (what `broadcast()` and `session.send()` take).
 */
export interface UnbrokenServer<Incoming = Payload, Outgoing extends Sendable<Outgoing> = Payload> {
  /**
   * Serves the server's path on `httpServer` (plain `node:http`, `node:https`, or what Express's
   * `app.listen()` returns). Requests under the path are answered here; every other request goes to
   * the `request` listeners the http server had when `attach()` was called, and upgrade requests for
   * other paths to its `upgrade` listeners of that time and any added later. Attach after the
   * application's own request handler. Once the http server closes, it gets its listeners back.
   */
  attach(httpServer: http.Server | https.Server): this;
  /** Adds a listener; returns the function that removes it. */
  on<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents<Incoming, Outgoing>[E]>): () => void;
  /** Adds a listener that is removed after its first call; returns the function that removes it. */
  once<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents<Incoming, Outgoing>[E]>): () => void;
  off<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents<Incoming, Outgoing>[E]>): void;
  /**
   * Sends a message to every session. It is appended to the store first, so clients that are away
   * get it on resume, within retention (§6.1).
   *
   * @returns the message id, once the store appended it.
   * @throws {UnbrokenTypeError} synchronously: `INVALID_EVENT_NAME` for an event name that breaks
   * §4.2, `INVALID_DATA` for data that is neither JSON-serialisable nor a Uint8Array/Buffer. Nothing
   * is sent then.
   * Rejects with {@link UnbrokenServerError} `SERVER_CLOSED` after `close()`, or with the store's error.
   */
  broadcast(data: Outgoing, options?: SendOptions): Promise<string>;
  /** Live sessions by id. */
  readonly sessions: ReadonlyMap<string, Session<Incoming, Outgoing>>;
  /** What the server holds now: sessions, connections, buffered bytes, addresses counted (§12.1). */
  stats(): ServerStats;
  /**
   * Ends every session for which `predicate` is true — e.g. `(s) => s.user?.id === userId` on logout
   * (§3.5): each connection is closed with `UNAUTHORIZED`, the session ends with reason
   * `disconnected`, and the tickets issued for it are void. A client that comes back must
   * authenticate as a new session.
   * @returns how many sessions ended.
   */
  disconnect(predicate: (session: Session<Incoming, Outgoing>) => boolean): number;
  readonly store: MessageStore;
  /**
   * Shuts down gracefully (§10.2): every connection gets a `reconnect` notice with its own jittered
   * delay and an ack of what was processed, then closes; every session ends with reason `shutdown`.
   * Resolves once every connection is gone. The http server itself stays up, and until it closes
   * the server goes on answering every request under its path at once with `SERVER_RESTART` (a
   * long-polling client that held no poll at the time gets its `reconnect` notice on its next poll);
   * other requests go to the application as before.
   */
  close(): Promise<void>;
}

type UpgradeListener = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

interface Attachment {
  readonly httpServer: http.Server | https.Server;
  readonly onRequest: http.RequestListener;
  readonly onUpgrade: UpgradeListener;
  readonly onClose: () => void;
  readonly previous: readonly http.RequestListener[];
  readonly previousUpgrade: readonly UpgradeListener[];
}

type Handler = (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => void;

function checkInteger(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects ${name} to be an integer ≥ ${min}, got ${value}`);
  }
  return value;
}

function normalisePath(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  if (!trimmed.startsWith('/') || /[?#]/.test(trimmed)) {
    throw new UnbrokenTypeError('INVALID_OPTION', `expects path to start with / and hold no ? or #, got ${JSON.stringify(path)}`);
  }
  return trimmed;
}

function originCheck(allowed: ServerOptions['allowedOrigins']): OriginCheck {
  if (allowed === undefined) return () => false;
  if (typeof allowed === 'function') return allowed;
  const set = new Set(allowed);
  return (origin) => set.has(origin);
}

class Server implements UnbrokenServer {
  readonly store: MessageStore;
  readonly #path: string;
  readonly #ownsStore: boolean;
  readonly #emitter: Emitter<ServerEvents>;
  readonly #hub: SessionHub;
  readonly #tickets: TicketStore;
  readonly #context: TransportContext;
  readonly #websocket: WebSocketTransport;
  /** The endpoints answered over plain HTTP, by path under the server's path. */
  readonly #routes: ReadonlyMap<string, { readonly method: string; readonly handle: Handler }>;
  readonly #attachments: Attachment[] = [];
  #closing: Promise<void> | null = null;
  readonly #headersTimeout: number;

  constructor(options: ServerOptions) {
    const {
      path = '/realtime',
      store,
      heartbeatInterval = 15_000,
      retry = 1_000,
      maxMessageSize = 1_048_576,
      allowedOrigins,
      sessionTimeout = 300_000,
      shutdownJitter = 5_000,
      maxBufferedBytes = 1024 * 1024,
      maxTotalBufferedBytes = 64 * 1024 * 1024,
      maxSessions = 100_000,
      maxSessionsPerAddress = 500,
      maxConnections = 50_000,
      maxConnectionsPerAddress = 500,
      sessionsPerSecondPerAddress = 20,
      messagesPerSecond = 200,
      bodyTimeout = 8_000,
      headersTimeout = 10_000,
      clientAddress = socketAddress,
      now = Date.now,
      random = Math.random,
      authenticate,
      ticketTtl = 30_000,
      maxTickets = 10_000,
      maxTicketsPerAddress = 1_000,
    } = options;
    this.#headersTimeout = checkInteger('headersTimeout', headersTimeout, 0);
    const limits = new Limits(
      {
        maxSessions: checkInteger('maxSessions', maxSessions, 1),
        maxSessionsPerAddress: checkInteger('maxSessionsPerAddress', maxSessionsPerAddress, 1),
        maxConnections: checkInteger('maxConnections', maxConnections, 1),
        maxConnectionsPerAddress: checkInteger('maxConnectionsPerAddress', maxConnectionsPerAddress, 1),
        sessionsPerSecondPerAddress: checkInteger('sessionsPerSecondPerAddress', sessionsPerSecondPerAddress, 1),
        messagesPerSecond: checkInteger('messagesPerSecond', messagesPerSecond, 1),
        clientAddress,
      },
      now,
    );
    if (authenticate !== undefined && typeof authenticate !== 'function') {
      throw new UnbrokenTypeError('INVALID_OPTION', `expects authenticate to be a function, got ${typeof authenticate}`);
    }
    this.#tickets = new TicketStore(
      {
        ttl: checkInteger('ticketTtl', ticketTtl, 1),
        maxTickets: checkInteger('maxTickets', maxTickets, 1),
        maxTicketsPerAddress: checkInteger('maxTicketsPerAddress', maxTicketsPerAddress, 1),
      },
      now,
    );
    this.#path = normalisePath(path);
    this.store = store ?? new MemoryStore();
    this.#ownsStore = store === undefined;
    this.#emitter = new Emitter<ServerEvents>((error, event) => {
      const wrapped = new UnbrokenServerError('LISTENER_ERROR', `a '${String(event)}' listener threw: ${String(error)}`, { cause: error });
      // A throwing 'error' listener has nowhere left to report to.
      if (event === 'error') console.error(wrapped);
      else this.#hub.fail(wrapped);
    });
    this.#hub = new SessionHub(
      {
        store: this.store,
        heartbeatInterval: checkInteger('heartbeatInterval', heartbeatInterval, 1),
        retry: checkInteger('retry', retry, 0),
        maxMessageSize: checkInteger('maxMessageSize', maxMessageSize, 64),
        sessionTimeout: checkInteger('sessionTimeout', sessionTimeout, 0),
        shutdownJitter: checkInteger('shutdownJitter', shutdownJitter, 0),
        maxBufferedBytes: checkInteger('maxBufferedBytes', maxBufferedBytes, 1024),
        maxTotalBufferedBytes: checkInteger('maxTotalBufferedBytes', maxTotalBufferedBytes, 1024),
        limits,
        now,
        random,
        authenticate: authenticate ?? null,
      },
      this.#emitter,
    );
    this.#context = {
      hub: this.#hub,
      originAllowed: originCheck(allowedOrigins),
      limits,
      bodyTimeout: checkInteger('bodyTimeout', bodyTimeout, 1),
      maxMessageSize,
      retry,
      heartbeatInterval,
      now,
      tickets: this.#tickets,
      authenticate: authenticate ?? null,
    };
    this.#websocket = new WebSocketTransport(this.#context);
    const context = this.#context;
    const longPolling = new LongPollingTransport(context);
    this.#routes = new Map<string, { readonly method: string; readonly handle: Handler }>([
      [Endpoint.sse, { method: 'GET', handle: (request, response, url) => handleSse(context, request, response, url) }],
      [Endpoint.poll, { method: 'GET', handle: (request, response, url) => longPolling.handle(request, response, url) }],
      [Endpoint.send, { method: 'POST', handle: (request, response, url) => handleSend(context, request, response, url) }],
      [Endpoint.ticket, { method: 'POST', handle: (request, response, url) => void handleTicket(context, request, response, url).catch(() => response.destroy()) }],
      // §7.1: `P/ws` without an Upgrade header (a proxy that strips it) is answered here, not by the application.
      [Endpoint.websocket, { method: 'GET', handle: (request, response) => answerUpgradeRequired(request, response) }],
    ]);
  }

  get sessions(): ReadonlyMap<string, Session> {
    return this.#hub.sessions;
  }

  stats(): ServerStats {
    return this.#hub.stats();
  }

  attach(httpServer: http.Server | https.Server): this {
    if (this.#closing) throw new UnbrokenServerError('SERVER_CLOSED', 'cannot attach: the server is closed');
    if (this.#attachments.some((attachment) => attachment.httpServer === httpServer)) return this;
    // Take over the existing request listeners (as engine.io does): requests under the path are
    // answered here, the rest go to the application as before.
    const previous = httpServer.listeners('request') as http.RequestListener[];
    httpServer.removeAllListeners('request');
    // Upgrades are taken over the same way, so that a server attached later (one that replaces a
    // closed one on the same http server) answers its path before the listeners that were there.
    const previousUpgrade = httpServer.listeners('upgrade') as UpgradeListener[];
    httpServer.removeAllListeners('upgrade');
    // §12.1: a client that sends its headers slowly holds a socket; bound how long.
    if (this.#headersTimeout > 0 && (httpServer.headersTimeout === 0 || httpServer.headersTimeout > this.#headersTimeout)) {
      httpServer.headersTimeout = this.#headersTimeout;
      if (httpServer.requestTimeout > 0 && httpServer.requestTimeout < this.#headersTimeout) httpServer.requestTimeout = this.#headersTimeout;
    }
    const onRequest: http.RequestListener = (request, response) => {
      if (this.#handleRequest(request, response)) return;
      if (previous.length === 0 && httpServer.listenerCount('request') === 1) {
        response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not Found');
        return;
      }
      for (const listener of previous) listener.call(httpServer, request, response);
    };
    const onUpgrade: UpgradeListener = (request, socket, head) => {
      const url = this.#ownUrl(request);
      if (url?.pathname === this.#path + Endpoint.websocket) {
        this.#websocket.handleUpgrade(request, socket, head, url);
        return;
      }
      for (const listener of previousUpgrade) listener.call(httpServer, request, socket, head);
      if (previousUpgrade.length === 0 && httpServer.listenerCount('upgrade') === 1) {
        // Other paths belong to other listeners; with none, nobody would ever answer this socket.
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      }
    };
    // §10.2: a closed server keeps answering its path (SERVER_RESTART) until the http server closes.
    const onClose = (): void => this.#detach(attachment);
    const attachment: Attachment = { httpServer, onRequest, onUpgrade, onClose, previous, previousUpgrade };
    httpServer.on('request', onRequest);
    httpServer.on('upgrade', onUpgrade);
    httpServer.once('close', onClose);
    this.#attachments.push(attachment);
    return this;
  }

  on<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents[E]>): () => void {
    return this.#emitter.on(event, listener);
  }

  once<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents[E]>): () => void {
    return this.#emitter.once(event, listener);
  }

  off<E extends keyof ServerEvents>(event: E, listener: Listener<ServerEvents[E]>): void {
    this.#emitter.off(event, listener);
  }

  broadcast(data: Payload, options?: SendOptions): Promise<string> {
    return this.#hub.append(null, data, options);
  }

  disconnect(predicate: (session: Session) => boolean): number {
    if (typeof predicate !== 'function') {
      throw new UnbrokenTypeError('INVALID_OPTION', `expects disconnect() to be given a function, got ${typeof predicate}`);
    }
    return this.#hub.disconnect((session) => {
      if (!predicate(session)) return false;
      // §3.5: a ticket issued before the logout must not bring the session back.
      this.#tickets.revoke(session.id);
      return true;
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#tickets.clear();
    await this.#hub.close();
    if (this.#attachments.length === 0) this.#websocket.close();
    if (this.#ownsStore) await this.store.close?.();
  }

  /** The http server closed: give it back its listeners. */
  #detach(attachment: Attachment): void {
    const index = this.#attachments.indexOf(attachment);
    if (index < 0) return;
    this.#attachments.splice(index, 1);
    const { httpServer, onRequest, onUpgrade, onClose, previous, previousUpgrade } = attachment;
    httpServer.off('request', onRequest);
    httpServer.off('upgrade', onUpgrade);
    httpServer.off('close', onClose);
    for (const listener of [...previous].reverse()) httpServer.prependListener('request', listener);
    for (const listener of [...previousUpgrade].reverse()) httpServer.prependListener('upgrade', listener);
    if (this.#attachments.length === 0 && this.#closing) this.#websocket.close();
  }

  /** The request's URL when it lies under the server's path, else null. */
  #ownUrl(request: http.IncomingMessage): URL | null {
    const target = request.url ?? '/';
    if (!target.startsWith(this.#path + '/')) return null;
    try {
      return new URL(target, 'http://localhost');
    } catch {
      return null;
    }
  }

  /** Answers a request under the server's path; returns false for any other request. */
  #handleRequest(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const url = this.#ownUrl(request);
    if (!url) return false;
    const endpoint = url.pathname.slice(this.#path.length);
    const route = this.#routes.get(endpoint);
    if (!route) return false;
    // §3.2: a disallowed origin gets FORBIDDEN and no CORS header on every endpoint — except
    // `GET P/sse`, whose refusal is an event the page must be able to read (§7.2).
    if (!originAdmitted(request, this.#context.originAllowed) && !(endpoint === Endpoint.sse && request.method === 'GET')) {
      answerError(request, response, 'FORBIDDEN', `origin ${String(request.headers.origin)} is not allowed`);
    } else if (request.method === 'OPTIONS') {
      answerPreflight(request, response);
    } else if (request.method !== route.method) {
      answerError(request, response, 'PROTOCOL_ERROR', `expects ${route.method} ${this.#path}${endpoint}`, 405, { Allow: route.method });
    } else {
      route.handle(request, response, url);
    }
    return true;
  }
}

/**
 * Creates the reference server. Attach it to an http server to serve clients.
 *
 * The type parameters type the messages; nothing changes at run time.
 * - `Incoming`: the data `message` listeners get. It is what the application says its clients send:
 *   nothing checks it beyond the codec (a JSON value or bytes), so with clients it does not trust,
 *   use `unknown` and validate.
 * - `Outgoing`: what `broadcast()` and `session.send()` take; any type whose values are JSON values
 *   or bytes, interfaces included (see {@link Sendable}).
 *
 * @example
 * import http from 'node:http';
 * import { createServer } from 'unbroken-realtime/server';
 *
 * const realtime = createServer({ allowedOrigins: ['https://app.example'] });
 * realtime.on('message', (data, session) => {
 *   void session.send({ echo: data });
 * });
 * realtime.attach(http.createServer(app).listen(8080));
 * setInterval(() => void realtime.broadcast({ time: Date.now() }, { event: 'tick' }), 1000);
 *
 * @example
 * interface Chat { text: string }
 * const chat = createServer<Chat, Chat & { from: string }>();
 * chat.on('message', ({ text }, session) => void chat.broadcast({ text, from: session.id }));
 */
export function createServer<Incoming = Payload, Outgoing extends Sendable<Outgoing> = Payload>(
  options: ServerOptions = {},
): UnbrokenServer<Incoming, Outgoing> {
  // The one place the types are attached: Outgoing values are Payload values at run time (the
  // constraint above, and the check in every send); Incoming is the application's word (see above).
  return new Server(options) as UnbrokenServer<Incoming, Outgoing>;
}
