/**
 * The reference server: `createServer()` and `attach()` to a Node http(s) server (docs/PROTOCOL.md).
 */
import type http from 'node:http';
import type https from 'node:https';
import { Endpoint, type Payload } from '../protocol/index.js';
import { Attachment, type AttachedServer } from './attachment.js';
import { Emitter, type Listener } from './emitter.js';
import { UnbrokenServerError, UnbrokenTypeError, asServerError, describeThrown } from './errors.js';
import { answerError, answerPreflight, answerUpgradeRequired, corsHeaders, originAdmitted, originRefusal } from './http.js';
import { SessionHub, type ServerStats } from './hub.js';
import { Limits } from './limits.js';
import { resolveServerOptions, type ServerOptions } from './options.js';
import type { SendArgument, Sendable } from './sendable.js';
import { ServerSession, type RoomTarget, type ServerEvents, type Session } from './session.js';
import { MemoryStore, type MessageStore } from './store.js';
import { TicketStore } from './tickets.js';
import type { TransportContext } from './transports/context.js';
import { LongPollingTransport } from './transports/long-polling.js';
import { handleSend } from './transports/send.js';
import { handleSse } from './transports/sse.js';
import { handleTicket } from './transports/ticket.js';
import { WebSocketTransport } from './transports/websocket.js';
import { CarrierRegistry } from './transports/carrier.js';


/** Options of `broadcast()` and `session.send()`. */
export interface SendOptions {
  /** Event name: 1–128 characters without CR, LF or NUL (§4.2). */
  event?: string;
}

/**
 * The server. Create it with {@link createServer}, which explains `Incoming` (the data of `message`
 * listeners) and `Outgoing` (what `broadcast()` and `session.send()` take).
 */
export interface UnbrokenServer<Incoming = Payload, in Outgoing extends Sendable<Outgoing> = Payload> {
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
  broadcast<T = Outgoing>(data: SendArgument<Outgoing, T>, options?: SendOptions): Promise<string>;
  /**
   * Addresses the sessions in a room, or in any of several rooms (§6.5).
   *
   * @example
   * await realtime.to('lobby').send({ text: 'hi' }, { event: 'chat' });
   * const users = (await realtime.to('lobby').sessions()).map((s) => s.user?.id);
   * @throws {UnbrokenTypeError} synchronously: `INVALID_ROOM` for a name that is empty, longer than
   * 128 characters or holds a control character, or for an empty list.
   */
  to(rooms: string | readonly string[]): RoomTarget<Incoming, Outgoing>;
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
   * Resolves once the store can serve (a store backed by a database answered), rejects with
   * {@link UnbrokenServerError} `STORE_ERROR` saying why when it cannot — e.g. Redis unreachable at
   * start. The failure is also reported on the `error` event, so a server nobody awaits does not
   * fail silently. The in-memory store is ready at once.
   *
   * @example
   * const realtime = createServer({ store: new RedisStore({ url: process.env.REDIS_URL }) });
   * await realtime.ready(); // throws if Redis cannot be reached
   * realtime.attach(httpServer.listen(8080));
   */
  ready(): Promise<void>;
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



type Handler = (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => void;
interface Route {
  readonly method: string;
  readonly handle: Handler;
  readonly holds?: (request: http.IncomingMessage, url: URL) => boolean;
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
  readonly #carriers: CarrierRegistry;
  /**
   * The endpoints answered over plain HTTP, by path under the server's path; `holds` says whether a
   * request continues a connection of this server's, for the polls of §10.2.missed-notice.
   */
  readonly #routes: ReadonlyMap<string, Route>;
  readonly #attachments: Attachment[] = [];
  #closing: Promise<void> | null = null;
  /**
   * Set `2 × hb` after a shutdown, when no poll can still be owed its notice (§10.2.missed-notice: a
   * client that has not polled by then counts its link dead, §11): a server attached later on the
   * same http server then answers everything, and this one lets go of it.
   */
  #spent = false;
  /** The attachments a server of the same path was attached over since (a restart in place). */
  readonly #replaced = new WeakSet<Attachment>();
  readonly #headersTimeout: number;
  /** The store's readiness, its failure already reported on `error` (see `ready()`). */
  readonly #ready: Promise<void>;
  #stopStoreReports: (() => void) | undefined;

  constructor(options: ServerOptions) {
    const resolved = resolveServerOptions(options);
    const { store, now, authenticate, maxMessageSize, retry, heartbeatInterval } = resolved;
    this.#headersTimeout = resolved.headersTimeout;
    const { maxSessions, maxSessionsPerAddress, maxConnections, maxConnectionsPerAddress, sessionsPerSecondPerAddress, messagesPerSecond, clientAddress } = resolved;
    // §12.1.bodies: eight bodies of the largest size from one address at once, and no fewer in total.
    const maxBodyBytesPerAddress = 8 * maxMessageSize;
    const maxBodyBytes = Math.max(resolved.maxTotalBufferedBytes, maxBodyBytesPerAddress);
    const limits = new Limits(
      {
        maxSessions,
        maxSessionsPerAddress,
        maxConnections,
        maxConnectionsPerAddress,
        sessionsPerSecondPerAddress,
        messagesPerSecond,
        maxBodyBytesPerAddress,
        maxBodyBytes,
        clientAddress,
      },
      now,
    );
    this.#tickets = new TicketStore({ ttl: resolved.ticketTtl, maxTickets: resolved.maxTickets, maxTicketsPerAddress: resolved.maxTicketsPerAddress }, now);
    this.#path = resolved.path;
    this.store = store ?? new MemoryStore();
    this.#ownsStore = store === undefined;
    this.#emitter = new Emitter<ServerEvents>((error, event) => {
      const wrapped = new UnbrokenServerError('LISTENER_ERROR', `a '${String(event)}' listener failed: ${describeThrown(error)}`, { cause: error });
      // A throwing 'error' listener has nowhere left to report to.
      if (event === 'error') console.error(wrapped);
      else this.#hub.fail(wrapped);
    });
    const { sessionTimeout, shutdownJitter, maxBufferedBytes, maxTotalBufferedBytes, maxRoomsPerSession, random } = resolved;
    this.#hub = new SessionHub(
      { store: this.store, heartbeatInterval, retry, maxMessageSize, sessionTimeout, shutdownJitter, maxBufferedBytes, maxTotalBufferedBytes, maxRoomsPerSession, limits, now, random, authenticate },
      this.#emitter,
    );
    this.#context = {
      hub: this.#hub,
      originAllowed: resolved.originAllowed,
      limits,
      bodyTimeout: resolved.bodyTimeout,
      maxMessageSize,
      retry,
      heartbeatInterval,
      now,
      tickets: this.#tickets,
      authenticate,
    };
    // A store's own troubles (a lost connection, a stalled database) have no caller to reject: they
    // are the server's `error` events.
    this.#stopStoreReports = this.store.onError?.((error) => this.#hub.fail(asServerError('STORE_ERROR', 'the store failed', error)));
    this.#ready = Promise.resolve(this.store.ready?.());
    this.#ready.catch((error: unknown) => {
      this.#hub.fail(asServerError('STORE_ERROR', 'the store is not ready', error));
    });
    this.#websocket = new WebSocketTransport(this.#context);
    const context = this.#context;
    const longPolling = new LongPollingTransport(context);
    const carriers = (this.#carriers = new CarrierRegistry(context));
    this.#routes = new Map<string, Route>([
      [Endpoint.sse, { method: 'GET', handle: (request, response, url) => handleSse(context, request, response, url) }],
      [
        Endpoint.poll,
        { method: 'GET', handle: (request, response, url) => longPolling.handle(request, response, url), holds: (request, url) => longPolling.continues(request, url) },
      ],
      [Endpoint.send, { method: 'POST', handle: (request, response, url) => handleSend(context, request, response, url) }],
      [Endpoint.ticket, { method: 'POST', handle: (request, response, url) => void handleTicket(context, request, response, url).catch(() => response.destroy()) }],
      // §7.5: carriers, which the tabs of one browser share.
      [Endpoint.carrier, { method: 'GET', handle: (request, response, url) => carriers.openStream(request, response, url) }],
      [Endpoint.carrierPoll, { method: 'GET', handle: (request, response, url) => carriers.poll(request, response, url), holds: (request) => carriers.continues(request) }],
      [Endpoint.attach, { method: 'POST', handle: (request, response, url) => carriers.attach(request, response, url) }],
      [Endpoint.detach, { method: 'POST', handle: (request, response, url) => carriers.detach(request, response, url) }],
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
    // §12.1: a client that sends its headers slowly holds a socket; bound how long.
    if (this.#headersTimeout > 0 && (httpServer.headersTimeout === 0 || httpServer.headersTimeout > this.#headersTimeout)) {
      httpServer.headersTimeout = this.#headersTimeout;
      if (httpServer.requestTimeout > 0 && httpServer.requestTimeout < this.#headersTimeout) httpServer.requestTimeout = this.#headersTimeout;
    }
    const attached: AttachedServer = {
      handleRequest: (request, response) => this.#handleRequest(request, response),
      handleUpgrade: (request, socket, head) => {
        const url = this.#ownUrl(request);
        if (url?.pathname !== this.#path + Endpoint.websocket) return false;
        this.#websocket.handleUpgrade(request, socket, head, url);
        return true;
      },
      // Once closed: a poll owed a notice comes here though a new server answers the path (§10.2).
      holdsPoll: (request) => this.#closing !== null && !this.#spent && this.#holdsPoll(request),
      // A server of the same path answers it now: once no notice is owed, this one lets go (§10.2).
      wrapped: (attachment, path) => {
        if (path !== this.#path) return;
        this.#replaced.add(attachment);
        if (this.#spent) this.#release(attachment);
      },
      path: this.#path,
    };
    this.#attachments.push(new Attachment(httpServer, attached, (attachment) => this.#detach(attachment)));
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
    return this.#hub.append({ kind: 'all' }, data, options);
  }

  to(rooms: string | readonly string[]): RoomTarget {
    return this.#hub.to(rooms);
  }

  disconnect(predicate: (session: Session) => boolean): number {
    if (typeof predicate !== 'function') {
      throw new UnbrokenTypeError('INVALID_OPTION', `expects disconnect() to be given a function, got ${typeof predicate}`);
    }
    this.#tickets.loggedOut(predicate);
    const voided: string[] = [];
    const ended = this.#hub.disconnect((session) => {
      if (!predicate(session)) return false;
      // §3.5: a ticket issued before the logout must not bring the session back.
      voided.push(...this.#tickets.revoke(session.id));
      return true;
    });
    // Nor may one for a session this server does not hold (a tab still connecting, a session to be
    // created under an id): the predicate is asked about the session the ticket would make.
    voided.push(...this.#tickets.revokeWhere((grant, address) => {
      if (grant.sid !== null && this.#hub.sessions.has(grant.sid)) return false;
      return predicate(ServerSession.standIn(this.#hub, grant, address));
    }));
    // With a shared store, a ticket is taken from there (it admits at any process, §3.6).
    const cluster = this.#hub.cluster;
    for (const ticket of voided) {
      cluster?.state.takeTicket(ticket).catch((error: unknown) => this.#hub.fail(asServerError('STORE_ERROR', 'voiding a ticket in the store failed', error)));
    }
    return ended;
  }

  ready(): Promise<void> {
    return this.#ready.then(() => undefined);
  }

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#tickets.clear();
    await this.#hub.close();
    // After the hub: each session's shutdown notice went out on its channel first (§10.2).
    this.#carriers.close();
    this.#stopStoreReports?.();
    this.#stopStoreReports = undefined;
    if (this.#attachments.length === 0) this.#websocket.close();
    if (this.#ownsStore) await this.store.close?.();
    // Not before a client's own deadline: it holds `hb` to 100 ms and up (§13.5.clamp).
    setTimeout(() => {
      this.#spent = true;
      for (const attachment of [...this.#attachments]) this.#release(attachment);
    }, Math.min(Math.max(2 * this.#context.heartbeatInterval, 200), 2 ** 31 - 1)).unref();
  }

  /**
   * Lets go of an http server that a server of the same path, attached later, answers for (a restart
   * in place, README "Restarts"); on any other, a closed server goes on answering its path (§10.2).
   */
  #release(attachment: Attachment): void {
    if (this.#replaced.has(attachment) && attachment.release()) this.#forget(attachment);
  }

  /** The http server closed: give it back its listeners. */
  #detach(attachment: Attachment): void {
    if (!this.#attachments.includes(attachment)) return;
    attachment.detach();
    this.#forget(attachment);
  }

  #forget(attachment: Attachment): void {
    const index = this.#attachments.indexOf(attachment);
    if (index < 0) return;
    this.#attachments.splice(index, 1);
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

  /** True when `request` is a poll that continues a connection or carrier this server holds. */
  #holdsPoll(request: http.IncomingMessage): boolean {
    if (request.method !== 'GET') return false;
    const url = this.#ownUrl(request);
    return url !== null && this.#routes.get(url.pathname.slice(this.#path.length))?.holds?.(request, url) === true;
  }

  /** Answers a request under the server's path; returns false for any other request. */
  #handleRequest(request: http.IncomingMessage, response: http.ServerResponse): boolean {
    const url = this.#ownUrl(request);
    if (!url) return false;
    const endpoint = url.pathname.slice(this.#path.length);
    const route = this.#routes.get(endpoint);
    if (!route) return false;
    const admitted = originAdmitted(request, this.#context.originAllowed);
    // §3.2.cors: a disallowed origin gets FORBIDDEN and no CORS header on every endpoint — except
    // `GET P/sse`, whose refusal is an event the page must be able to read (§7.2), and the ticket
    // request that begins every connection (§3.4): its refusal, and the preflight before it, are
    // readable, so a page of a refused origin learns why at its first attempt instead of retrying.
    if (!admitted && endpoint === Endpoint.ticket && request.method === 'POST') {
      answerError(request, response, 'FORBIDDEN', originRefusal(request), undefined, corsHeaders(request));
    } else if (!admitted && !(endpoint === Endpoint.sse && request.method === 'GET') && !(endpoint === Endpoint.ticket && request.method === 'OPTIONS')) {
      answerError(request, response, 'FORBIDDEN', originRefusal(request));
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
 *   session.send({ echo: data }).catch(console.error);
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
  // Through `unknown`: TypeScript cannot relate a generic Outgoing to the default the methods'
  // conditional parameter types (`SendArgument`) compare it with.
  return new Server(options) as unknown as UnbrokenServer<Incoming, Outgoing>;
}
